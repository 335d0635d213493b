"""A grader as a client sent it -> the checked grader (what the API echoes), or GraderConfigError naming
the field (`graders.b.operation`) and what to write instead."""

from __future__ import annotations

import ast
from collections.abc import Collection, Mapping
from typing import Any

from openft.graders import meteor
from openft.graders.formula import FormulaError, parse_formula
from openft.graders.string_check import OPERATIONS
from openft.graders.templates import TemplateError, check_namespaces
from openft.graders.text_similarity import EMBEDDING_METRICS, METRICS

TYPES = ("string_check", "text_similarity", "python", "score_model", "label_model", "multi")
MAX_SOURCE_CHARS = 256_000
_ROLES = ("user", "assistant", "system", "developer")


class GraderConfigError(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def validate_grader(raw: Any, *, for_reinforcement: bool = False) -> dict[str, Any]:
    return _validate(raw, "", for_reinforcement=for_reinforcement, inside_multi=False)


def _validate(raw: Any, at: str, *, for_reinforcement: bool, inside_multi: bool) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise GraderConfigError('A grader must be a JSON object with a "type".', at.rstrip(".") or "grader")
    kind = raw.get("type")
    if kind not in TYPES:
        raise GraderConfigError(f"type must be one of {', '.join(TYPES)}; got {kind!r}.", f"{at}type")
    if kind == "label_model" and for_reinforcement and not inside_multi:
        raise GraderConfigError(
            "A label_model grader can be used for reinforcement only inside a multi grader.", f"{at}type"
        )
    if kind == "multi" and inside_multi:
        raise GraderConfigError("A multi grader cannot contain another multi grader.", f"{at}type")
    grader: dict[str, Any] = {"type": kind, "name": _text(raw, "name", at, non_empty=True)}
    if kind in ("string_check", "text_similarity"):
        for field in ("input", "reference"):
            grader[field] = _template(raw, field, at)
        if kind == "string_check":
            grader["operation"] = _choice(raw, "operation", OPERATIONS, at)
        else:
            grader["evaluation_metric"] = _metric(raw, at)
            if "pass_threshold" in raw:
                grader["pass_threshold"] = raw["pass_threshold"]
    elif kind == "python":
        grader["source"] = _python_source(raw, at)
        grader["image_tag"] = raw.get("image_tag")
    elif kind in ("score_model", "label_model"):
        grader |= _model_grader(raw, kind, at)
    else:
        grader |= _multi(raw, at, for_reinforcement=for_reinforcement)
    return grader


def _text(raw: Mapping[str, Any], field: str, at: str, *, non_empty: bool = False) -> str:
    value = raw.get(field)
    if not isinstance(value, str):
        raise GraderConfigError(f"Missing required parameter: '{at}{field}' (a string).", f"{at}{field}")
    if non_empty and not value.strip():
        raise GraderConfigError(f"{at}{field} must not be empty.", f"{at}{field}")
    return value


def _template(raw: Mapping[str, Any], field: str, at: str) -> str:
    template = _text(raw, field, at)
    try:
        check_namespaces(template)
    except TemplateError as exc:
        raise GraderConfigError(exc.message, f"{at}{field}") from None
    return template


def _choice(raw: Mapping[str, Any], field: str, choices: Collection[str], at: str) -> str:
    value = raw.get(field)
    if value not in choices:
        raise GraderConfigError(
            f"{field} must be one of {', '.join(choices)}; got {value!r}.", f"{at}{field}"
        )
    return str(value)


def _metric(raw: Mapping[str, Any], at: str) -> str:
    if raw.get("evaluation_metric") == "meteor" and not meteor.available():
        raise GraderConfigError(
            f"evaluation_metric 'meteor' needs WordNet's synonyms, which this server lacks: "
            f"{meteor.INSTALL_HINT}.",
            f"{at}evaluation_metric",
        )
    return _choice(raw, "evaluation_metric", [*METRICS, *EMBEDDING_METRICS], at)


def _python_source(raw: Mapping[str, Any], at: str) -> str:
    source = _text(raw, "source", at, non_empty=True)
    if len(source) > MAX_SOURCE_CHARS:
        raise GraderConfigError(f"source is longer than {MAX_SOURCE_CHARS} characters.", f"{at}source")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise GraderConfigError(
            f"source does not parse: {exc.msg} (line {exc.lineno}).", f"{at}source"
        ) from None
    defines_grade = any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "grade"
        for node in tree.body
    )
    if not defines_grade:
        raise GraderConfigError(
            "source must define a top-level function grade(sample, item) that returns a number.",
            f"{at}source",
        )
    return source


def _model_grader(raw: Mapping[str, Any], kind: str, at: str) -> dict[str, Any]:
    grader: dict[str, Any] = {"model": _text(raw, "model", at, non_empty=True), "input": _messages(raw, at)}
    params = raw.get("sampling_params")
    if params is not None and not isinstance(params, Mapping):
        raise GraderConfigError("sampling_params must be an object.", f"{at}sampling_params")
    if kind == "score_model":
        grader["range"] = _range(raw.get("range"), at)
        grader["sampling_params"] = dict(params) if params else None
        return grader
    labels = raw.get("labels")
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(label, str) and label for label in labels)
    ):
        raise GraderConfigError("labels must be a non-empty list of strings.", f"{at}labels")
    passing = raw.get("passing_labels")
    if not isinstance(passing, list) or not passing or not set(passing) <= set(labels):
        raise GraderConfigError("passing_labels must be a non-empty subset of labels.", f"{at}passing_labels")
    return grader | {"labels": list(labels), "passing_labels": list(passing)}


def _messages(raw: Mapping[str, Any], at: str) -> list[dict[str, Any]]:
    messages = raw.get("input")
    if not isinstance(messages, list) or not messages:
        raise GraderConfigError("input must be a non-empty list of messages.", f"{at}input")
    checked = []
    for i, message in enumerate(messages):
        where = f"{at}input[{i}]"
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            raise GraderConfigError(f"{where} must be a message with a role of {', '.join(_ROLES)}.", where)
        content = message.get("content")
        texts = (
            [content]
            if isinstance(content, str)
            else [
                part.get("text", "")
                for part in (content if isinstance(content, list) else [content])
                if isinstance(part, Mapping)
            ]
        )
        if content is None or not texts:
            raise GraderConfigError(
                f"{where}.content must be text or a list of text parts.", f"{where}.content"
            )
        for text in texts:
            try:
                check_namespaces(text)
            except TemplateError as exc:
                raise GraderConfigError(exc.message, f"{where}.content") from None
        checked.append({key: message[key] for key in ("role", "content", "type") if key in message})
    return checked


def _range(value: Any, at: str) -> list[float]:
    if value is None:
        return [0.0, 1.0]
    numbers = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not numbers or value[0] >= value[1]:
        raise GraderConfigError("range must be two numbers [low, high] with low < high.", f"{at}range")
    return [float(value[0]), float(value[1])]


def _multi(raw: Mapping[str, Any], at: str, *, for_reinforcement: bool) -> dict[str, Any]:
    graders = raw.get("graders")
    if isinstance(graders, Mapping) and graders.get("type") in TYPES:
        graders = {graders.get("name") or "grader": graders}  # one grader, as the SDK's type spells it
    if not isinstance(graders, Mapping) or not graders:
        raise GraderConfigError(
            'graders must be an object of named graders, such as {"a": {...}, "b": {...}}.', f"{at}graders"
        )
    checked = {
        str(name): _validate(
            sub, f"{at}graders.{name}.", for_reinforcement=for_reinforcement, inside_multi=True
        )
        for name, sub in graders.items()
    }
    try:
        formula = parse_formula(raw.get("calculate_output"))  # type: ignore[arg-type]
    except FormulaError as exc:
        raise GraderConfigError(str(exc), f"{at}calculate_output") from None
    unknown = sorted(formula.names - set(checked))
    if unknown:
        raise GraderConfigError(
            f"calculate_output uses {', '.join(unknown)}, which is not among the graders "
            f"({', '.join(checked)}).",
            f"{at}calculate_output",
        )
    return {"graders": checked, "calculate_output": formula.text}
