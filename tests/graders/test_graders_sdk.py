"""`client.fine_tuning.alpha.graders` through the official SDK: validate and run every grader type,
including a nested multi grader and a misbehaving python grader; bad graders get a 400 naming the field."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import OpenAI

EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_json.team}}",
    "reference": "{{item.team}}",
    "operation": "eq",
}
CLOSE = {
    "type": "text_similarity",
    "name": "close",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reply}}",
    "evaluation_metric": "rouge_l",
}
PYTHON = {
    "type": "python",
    "name": "short",
    "source": "def grade(sample, item):\n    return 1.0 if len(sample['output_text']) < 40 else 0.0\n",
}
MULTI = {
    "type": "multi",
    "name": "routing",
    "graders": {"exact": EXACT, "close": CLOSE, "short": PYTHON},
    "calculate_output": "0.5 * exact + 0.25 * close + 0.25 * short",
}
ITEM = {"team": "billing", "reply": "the billing team"}


@pytest.mark.parametrize("grader", [EXACT, CLOSE, PYTHON, MULTI])
def test_validate_echoes_the_grader(shared_client: OpenAI, grader: dict[str, Any]) -> None:
    validated = shared_client.fine_tuning.alpha.graders.validate(grader=grader)  # type: ignore[arg-type]
    assert validated.grader is not None
    echoed = validated.grader.model_dump()
    assert {key: echoed[key] for key in ("type", "name")} == {"type": grader["type"], "name": grader["name"]}


def test_run_scores_each_grader_and_the_multi_formula(shared_client: OpenAI) -> None:
    graders = shared_client.fine_tuning.alpha.graders
    sample = '{"team": "billing"}'
    assert graders.run(grader=EXACT, model_sample=sample, item=ITEM).reward == 1.0  # type: ignore[arg-type]
    assert graders.run(grader=EXACT, model_sample='{"team": "sales"}', item=ITEM).reward == 0.0  # type: ignore[arg-type]
    result = graders.run(grader=MULTI, model_sample=sample, item=ITEM)  # type: ignore[arg-type]
    close = result.sub_rewards["close"]
    assert result.sub_rewards == {"exact": 1.0, "close": close, "short": 1.0}
    assert 0 < close < 1  # "the billing team" vs the JSON text: some words shared
    assert result.reward == pytest.approx(0.5 + 0.25 * close + 0.25)
    assert result.metadata.type == "multi" and result.metadata.name == "routing"
    assert result.metadata.execution_time > 0
    errors = result.metadata.errors.model_dump()
    assert not any(value is True for value in errors.values())


def test_cosine_compares_meaning_through_the_embedding_model(shared_client: OpenAI) -> None:
    graders = shared_client.fine_tuning.alpha.graders
    cosine = {**CLOSE, "name": "meaning", "evaluation_metric": "cosine"}
    item = {"reply": "Your parcel is on its way and will arrive tomorrow."}

    def score(sample: str) -> float:
        result = graders.run(grader=cosine, model_sample=sample, item=item)  # type: ignore[arg-type]
        assert not any(value is True for value in result.metadata.errors.model_dump().values())
        return result.reward

    same = score(item["reply"])
    paraphrase = score("The package has shipped and should be delivered tomorrow.")
    unrelated = score("Bananas are rich in potassium.")
    assert same == pytest.approx(1.0, abs=1e-5)
    assert paraphrase > 0.5 > unrelated, (paraphrase, unrelated)  # words barely shared, meaning kept


def test_run_reports_flags_instead_of_failing(shared_client: OpenAI) -> None:
    graders = shared_client.fine_tuning.alpha.graders
    not_json = graders.run(grader=EXACT, model_sample="billing", item=ITEM)  # type: ignore[arg-type]
    assert not_json.reward == 0.0 and not_json.metadata.errors.sample_parse_error
    missing = graders.run(grader=EXACT, model_sample='{"team": "x"}', item={})  # type: ignore[arg-type]
    assert missing.metadata.errors.invalid_variable_error
    looping = {
        "type": "python",
        "name": "loop",
        "source": "def grade(sample, item):\n    while True:\n        pass\n",
    }
    stuck = graders.run(grader=looping, model_sample="x", item={})  # type: ignore[arg-type]
    assert stuck.reward == 0.0 and stuck.metadata.errors.unresponsive_reward_error
    raising = {
        "type": "python",
        "name": "r",
        "source": "def grade(sample, item):\n    return item['score']\n",
    }
    failed = graders.run(grader=raising, model_sample="x", item={})  # type: ignore[arg-type]
    assert failed.metadata.errors.python_grader_runtime_error
    assert "KeyError: 'score'" in (failed.metadata.errors.python_grader_runtime_error_details or "")
    bad_formula = dict(MULTI, calculate_output="exact / (close - close)")
    divided = graders.run(grader=bad_formula, model_sample='{"team": "billing"}', item=ITEM)  # type: ignore[arg-type]
    assert divided.metadata.errors.formula_parse_error


@pytest.mark.parametrize(
    ("grader", "param"),
    [
        (dict(EXACT, operation="contains"), "grader.operation"),
        (dict(MULTI, calculate_output="exact + missing"), "grader.calculate_output"),
        (dict(MULTI, graders={"exact": dict(EXACT, input="{{answer}}")}), "grader.graders.exact.input"),
        ({"type": "python", "name": "p", "source": "print('no grade')"}, "grader.source"),
    ],
)
def test_bad_graders_are_400s_naming_the_field(
    shared_client: OpenAI, grader: dict[str, Any], param: str
) -> None:
    for call in (
        lambda: shared_client.fine_tuning.alpha.graders.validate(grader=grader),  # type: ignore[arg-type]
        lambda: shared_client.fine_tuning.alpha.graders.run(grader=grader, model_sample="x"),  # type: ignore[arg-type]
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.status_code == 400
        body: Any = caught.value.body
        assert body["param"] == param and body["code"] == "invalid_grader"
        assert body["message"].startswith("Invalid grader: ")
