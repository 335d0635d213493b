"""`score_model` and `label_model`: a judge model reads the rendered messages and answers with a score
or a label. The judge is any model openft serves (or an OpenAI-compatible URL the operator configured),
reached through the `Judge` the caller passes in."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from openft.graders.outcome import ErrorFlags, Outcome
from openft.graders.sample import RenderFailed, Sample, render_or_flag

DEFAULT_RANGE = (0.0, 1.0)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_REFUSALS = ("i can't", "i cannot", "i'm sorry", "i am sorry", "i won't")


@dataclass(frozen=True)
class JudgeAnswer:
    text: str
    total_tokens: int = 0


class JudgeError(Exception):
    """The judge could not answer (unknown model, server down): `model_grader_server_error`."""


class Judge(Protocol):
    def __call__(
        self, model: str, messages: Sequence[Mapping[str, str]], sampling_params: Mapping[str, Any]
    ) -> JudgeAnswer: ...


def grade_score(
    grader: Mapping[str, Any], sample: Sample, item: Mapping[str, Any] | None, judge: Judge | None
) -> Outcome:
    answered = _ask(grader, sample, item, judge)
    if isinstance(answered, Outcome):
        return answered
    low, high = grader.get("range") or DEFAULT_RANGE
    match = _NUMBER.search(answered.text)
    if match is None:
        flag = _refusal_or_parse_error(answered.text)
        return _with_usage(Outcome(0.0, flag), grader, answered)
    score = min(max(float(match.group()), low), high)
    return _with_usage(Outcome(score), grader, answered)


def grade_label(
    grader: Mapping[str, Any], sample: Sample, item: Mapping[str, Any] | None, judge: Judge | None
) -> Outcome:
    answered = _ask(grader, sample, item, judge)
    if isinstance(answered, Outcome):
        return answered
    said = _bare(answered.text)
    label = next((label for label in grader["labels"] if _bare(label) == said), None)
    if label is None:  # a longer answer that names exactly one label
        named = [label for label in grader["labels"] if re.search(rf"\b{re.escape(label.lower())}\b", said)]
        label = named[0] if len(named) == 1 else None
    if label is None:
        return _with_usage(Outcome(0.0, _refusal_or_parse_error(answered.text)), grader, answered)
    return _with_usage(Outcome(1.0 if label in grader["passing_labels"] else 0.0), grader, answered)


def _ask(
    grader: Mapping[str, Any], sample: Sample, item: Mapping[str, Any] | None, judge: Judge | None
) -> JudgeAnswer | Outcome:
    try:
        messages = [
            {
                "role": message["role"],
                "content": render_or_flag(_content_text(message["content"]), sample, item),
            }
            for message in grader["input"]
        ]
    except RenderFailed as failed:
        return Outcome(0.0, failed.flags)
    if judge is None:
        return Outcome.failed(
            model_grader_server_error=True,
            model_grader_server_error_details="no judge model is available to this caller",
        )
    try:
        return judge(grader["model"], messages, dict(grader.get("sampling_params") or {}))
    except JudgeError as exc:
        return Outcome.failed(
            model_grader_server_error=True, model_grader_server_error_details=str(exc)[:500]
        )


def _bare(text: str) -> str:
    """Lower case, without surrounding spaces, quotes and final punctuation: `"Correct."` is `correct`."""
    return text.strip().strip(".!\"'`* ").lower()


def _content_text(content: Any) -> str:
    """A message's content as a template: a string, or the text of its text parts."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else [content]
    return "".join(part.get("text", "") for part in parts if isinstance(part, Mapping))


def _refusal_or_parse_error(text: str) -> ErrorFlags:
    if text.strip().lower().startswith(_REFUSALS):
        return ErrorFlags(model_grader_refusal_error=True)
    return ErrorFlags(model_grader_parse_error=True)


def _with_usage(outcome: Outcome, grader: Mapping[str, Any], answered: JudgeAnswer) -> Outcome:
    outcome.token_usage = {grader["model"]: answered.total_tokens}
    outcome.sampled_model_name = grader["model"]
    return outcome
