"""The graders service (services/graders.py) below HTTP: a refused grader is a 400 with code
`invalid_grader` naming the field under the request's own prefix, and judge models resolve as chat
resolves them for the project (no model is loaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openft.errors import InvalidRequest
from openft.inference import embeddings
from openft.services import graders
from openft.services.checkpoint_permissions import grant
from openft.services.context import Project, ServiceContext
from openft.services.graders import checked_grader, resolve_judges
from tests.services.conftest import add_model

STRING_CHECK = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
JUDGE_INPUT = [{"role": "user", "content": "Score this answer: {{sample.output_text}}"}]


def score_model(model: str, name: str = "judge") -> dict[str, Any]:
    return {"type": "score_model", "name": name, "model": model, "input": JUDGE_INPUT}


def label_model(model: str) -> dict[str, Any]:
    return {
        "type": "label_model",
        "name": "labeler",
        "model": model,
        "input": JUDGE_INPUT,
        "labels": ["good", "bad"],
        "passing_labels": ["good"],
    }


def multi(**named: Any) -> dict[str, Any]:
    return {"type": "multi", "name": "all", "graders": named, "calculate_output": " + ".join(named)}


CHECK_ERRORS: list[tuple[Any, str, bool, str, str]] = [
    (multi(a="not an object"), "grader", False, "grader.graders.a", "must be a JSON object"),
    ({"type": "regex"}, "grader", False, "grader.type", "type must be one of"),
    ({**STRING_CHECK, "name": " "}, "grader", False, "grader.name", "must not be empty"),
    ({**STRING_CHECK, "operation": "near"}, "grader", False, "grader.operation", "operation must be one of"),
    ({**STRING_CHECK, "input": "{{answer}}"}, "grader", False, "grader.input", "{{answer}}"),
    (
        {"type": "python", "name": "p", "source": "x = 1"},
        "grader",
        False,
        "grader.source",
        "grade(sample, item)",
    ),
    (
        {"type": "python", "name": "p", "source": "def grade(:"},
        "grader",
        False,
        "grader.source",
        "does not parse",
    ),
    ({**score_model("m"), "range": [1, 0]}, "grader", False, "grader.range", "low < high"),
    ({**label_model("m"), "passing_labels": ["great"]}, "grader", False, "grader.passing_labels", "subset"),
    (
        label_model("m"),
        "method.reinforcement.grader",
        True,
        "method.reinforcement.grader.type",
        "inside a multi",
    ),
    (
        multi(a=STRING_CHECK, b={**STRING_CHECK, "operation": "near"}),
        "testing_criteria[2]",
        False,
        "testing_criteria[2].graders.b.operation",
        "operation must be one of",
    ),
    (
        multi(a=multi(b=STRING_CHECK)),
        "grader",
        False,
        "grader.graders.a.type",
        "cannot contain another multi",
    ),
    (
        {**multi(a=STRING_CHECK), "calculate_output": "a + c"},
        "grader",
        False,
        "grader.calculate_output",
        "not among the graders",
    ),
]


@pytest.mark.parametrize(
    ("raw", "field", "for_reinforcement", "param", "words"),
    CHECK_ERRORS,
    ids=[f"{i}-{e[3]}" for i, e in enumerate(CHECK_ERRORS)],
)
def test_a_refused_grader_names_its_field_under_the_requests_prefix(
    raw: Any, field: str, for_reinforcement: bool, param: str, words: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        checked_grader(raw, field=field, for_reinforcement=for_reinforcement)
    error = raised.value
    assert (error.status_code, error.param, error.code) == (400, param, "invalid_grader")
    assert error.message.startswith("Invalid grader: ") and words in error.message


def test_a_label_model_inside_a_multi_grader_is_accepted_for_reinforcement() -> None:
    grader = checked_grader(multi(label=label_model("judge-model")), for_reinforcement=True)
    assert grader["graders"]["label"]["passing_labels"] == ["good"]


def test_a_checked_grader_is_the_normalized_one() -> None:
    assert checked_grader(STRING_CHECK) == STRING_CHECK
    scored = checked_grader({**score_model("m"), "extra": "dropped"})
    assert scored == {**score_model("m"), "range": [0.0, 1.0], "sampling_params": None}
    assert graders.validate(STRING_CHECK).grader == STRING_CHECK


def test_a_cosine_grader_needs_the_embedding_model(monkeypatch: pytest.MonkeyPatch) -> None:
    cosine = {**STRING_CHECK, "type": "text_similarity", "evaluation_metric": "cosine"}
    del cosine["operation"]
    monkeypatch.setattr(embeddings, "available", lambda: False)

    with pytest.raises(InvalidRequest) as raised:
        checked_grader(multi(a=STRING_CHECK, b=cosine))

    assert (raised.value.param, raised.value.code) == ("grader.graders.b.evaluation_metric", "invalid_grader")
    assert embeddings.INSTALL_HINT in raised.value.message
    assert checked_grader({**cosine, "evaluation_metric": "bleu"})["evaluation_metric"] == "bleu"


@pytest.mark.parametrize(
    ("grader", "param", "model"),
    [
        (score_model("gpt-4o"), "grader.model", "gpt-4o"),
        (
            score_model("ft:openft-tiny:personal::nothere1"),
            "grader.model",
            "ft:openft-tiny:personal::nothere1",
        ),
        (multi(a=STRING_CHECK, b=label_model("unknown-judge")), "grader.graders.b.model", "unknown-judge"),
    ],
)
def test_an_unknown_judge_model_is_refused_naming_its_field(
    ctx: ServiceContext, project: Project, grader: dict[str, Any], param: str, model: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        resolve_judges(ctx, project, checked_grader(grader))
    assert (raised.value.param, raised.value.code) == (param, "invalid_grader")
    assert f"its judge model {model!r} cannot be used" in raised.value.message
    assert "does not exist or you do not have access to it" in raised.value.message


def test_judges_resolve_to_the_projects_models_by_name(
    ctx: ServiceContext, project: Project, tmp_path: Path
) -> None:
    judge = add_model(ctx, project, "ft:openft-tiny:personal::judge001", tmp_path / "judge")
    grader = checked_grader(multi(a=score_model(judge, "a"), b=score_model(judge, "b"), c=STRING_CHECK))

    judges = resolve_judges(ctx, project, grader, field="method.reinforcement.grader")

    assert list(judges) == [judge]
    assert judges[judge]["name"] == judge
    assert judges[judge]["weights_path"] == str((tmp_path / "judge").resolve())
    assert judges[judge]["adapter_path"] is None
    assert resolve_judges(ctx, project, checked_grader(STRING_CHECK)) == {}


def test_a_judge_of_another_project_must_be_shared_first(
    ctx: ServiceContext, project: Project, other_project: Project, tmp_path: Path
) -> None:
    theirs = add_model(ctx, other_project, "ft:openft-tiny:other::judge002", tmp_path / "theirs")
    grader = checked_grader(score_model(theirs))

    with pytest.raises(InvalidRequest) as raised:
        resolve_judges(ctx, project, grader)
    assert raised.value.param == "grader.model"

    grant(ctx, other_project, theirs, [project.id])
    assert list(resolve_judges(ctx, project, grader)) == [theirs]


def test_a_judge_whose_files_are_gone_is_refused(
    ctx: ServiceContext, project: Project, tmp_path: Path
) -> None:
    judge = add_model(ctx, project, "ft:openft-tiny:personal::judge003", tmp_path / "gone")
    (tmp_path / "gone").rmdir()
    with pytest.raises(InvalidRequest) as raised:
        resolve_judges(ctx, project, checked_grader(score_model(judge)))
    assert (raised.value.param, raised.value.code) == ("grader.model", "invalid_grader")
