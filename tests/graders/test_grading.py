"""Each grader type scores samples, and every failure is a flag on one sample, never an exception."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from openft.graders.model_graders import JudgeAnswer, JudgeError
from openft.graders.python_sandbox import SandboxLimits
from openft.graders.run import grade_samples, run_grader
from openft.graders.validate import validate_grader

ITEM = {"answer": "Paris", "order": {"id": 7}}


def check(**fields: Any) -> dict[str, Any]:
    return validate_grader(
        {
            "type": "string_check",
            "name": "s",
            "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}",
            "operation": "eq",
        }
        | fields
    )


@pytest.mark.parametrize(
    ("operation", "sample", "reward"),
    [
        ("eq", "Paris", 1.0),
        ("eq", "paris", 0.0),
        ("ne", "Rome", 1.0),
        ("like", "It is Paris.", 1.0),
        ("like", "It is paris.", 0.0),
        ("ilike", "It is PARIS.", 1.0),
    ],
)
def test_string_check(operation: str, sample: str, reward: float) -> None:
    assert grade_samples(check(operation=operation), [(sample, ITEM)])[0].reward == reward


def test_templates_read_item_fields_and_the_samples_json() -> None:
    grader = check(input="{{sample.output_json.id}}", reference="{{item.order.id}}")
    good, not_json, missing = grade_samples(grader, [('{"id": 7}', ITEM), ("seven", ITEM), ('{"id": 7}', {})])
    assert good.reward == 1.0 and not good.errors.any()
    assert not_json.reward == 0.0 and not_json.errors.sample_parse_error
    assert missing.reward == 0.0 and missing.errors.invalid_variable_error


def test_text_similarity() -> None:
    grader = validate_grader(
        {
            "type": "text_similarity",
            "name": "t",
            "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}",
            "evaluation_metric": "fuzzy_match",
        }
    )
    same, near, far = grade_samples(grader, [("Paris", ITEM), ("Pari", ITEM), ("xyz", ITEM)])
    assert same.reward == 1.0 > near.reward > far.reward


PYTHON_SOURCE = """
import json
def grade(sample, item):
    mode = item.get("mode")
    if mode == "loop":
        while True:
            pass
    if mode == "memory":
        hoard = bytearray(8 * 1024**3)
    if mode == "network":
        import socket
        socket.create_connection(("127.0.0.1", 5432), timeout=1)
    if mode == "file":
        return len(open(item["path"]).read())
    if mode == "text":
        return "high"
    if mode == "raise":
        raise KeyError("missing")
    return 1.0 if sample["output_text"].strip() == item["answer"] else 0.25
"""


def test_python_grader_scores_and_every_misbehaving_sample_is_stopped_alone(tmp_path: Any) -> None:
    secret = tmp_path / "data" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("tenant data")
    grader = validate_grader({"type": "python", "name": "p", "source": PYTHON_SOURCE})
    items = [
        ("Paris", ITEM),
        ("x", {"mode": "loop"}),
        ("x", {"mode": "memory"}),
        ("x", {"mode": "network"}),
        ("x", {"mode": "file", "path": str(secret)}),
        ("x", {"mode": "text"}),
        ("x", {"mode": "raise"}),
        ("Rome", ITEM),
    ]
    outcomes = grade_samples(grader, items, limits=SandboxLimits(per_sample_s=2, memory_mb=512))
    assert [o.reward for o in outcomes] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25]
    assert not outcomes[0].errors.any() and not outcomes[-1].errors.any()
    loop, memory, network, file, text, raised = (o.errors for o in outcomes[1:7])
    assert loop.unresponsive_reward_error
    assert "MemoryError" in (memory.python_grader_runtime_error_details or "")
    assert "socket" in (network.python_grader_runtime_error_details or "")
    assert "does not allow access" in (file.python_grader_runtime_error_details or "")
    assert "returned str" in (text.python_grader_runtime_error_details or "")
    assert (raised.python_grader_runtime_error_details or "").startswith("KeyError: 'missing'")
    assert all(e.python_grader_runtime_error for e in (loop, memory, network, file, text, raised))


class ScriptedJudge:
    """A judge that answers from a script (the real judge is the serving engine: tests/e2e)."""

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.seen: list[list[Mapping[str, str]]] = []

    def __call__(
        self, model: str, messages: Sequence[Mapping[str, str]], params: Mapping[str, Any]
    ) -> JudgeAnswer:
        self.seen.append(list(messages))
        answer = self.answers.pop(0)
        if answer == "DOWN":
            raise JudgeError(f"model {model!r} is not served here")
        return JudgeAnswer(answer, total_tokens=12)


def test_score_model_reads_a_number_and_clamps_it_to_the_range() -> None:
    grader = validate_grader(
        {
            "type": "score_model",
            "name": "j",
            "model": "judge",
            "range": [0, 10],
            "input": [{"role": "user", "content": "Score {{sample.output_text}} for {{item.answer}}"}],
        }
    )
    judge = ScriptedJudge(["Score: 7", "12", "I cannot rate this.", "no idea", "DOWN"])
    outcomes = grade_samples(grader, [("Paris", ITEM)] * 5, judge=judge)
    assert [o.reward for o in outcomes] == [7.0, 10.0, 0.0, 0.0, 0.0]
    assert judge.seen[0][0]["content"] == "Score Paris for Paris"
    assert outcomes[2].errors.model_grader_refusal_error and outcomes[3].errors.model_grader_parse_error
    assert outcomes[4].errors.model_grader_server_error
    assert outcomes[0].token_usage == {"judge": 12}


def test_label_model_passes_on_a_passing_label() -> None:
    grader = validate_grader(
        {
            "type": "label_model",
            "name": "l",
            "model": "judge",
            "labels": ["correct", "incorrect"],
            "passing_labels": ["correct"],
            "input": [{"role": "user", "content": "{{sample.output_text}}"}],
        }
    )
    outcomes = grade_samples(
        grader, [("a", ITEM)] * 3, judge=ScriptedJudge(["Correct.", "incorrect", "maybe"])
    )
    assert [o.reward for o in outcomes] == [1.0, 0.0, 0.0]
    assert outcomes[2].errors.model_grader_parse_error


def test_multi_combines_named_rewards_and_reports_them() -> None:
    grader = validate_grader(
        {
            "type": "multi",
            "name": "m",
            "calculate_output": "0.75 * exact + 0.25 * py",
            "graders": {
                "exact": {
                    "type": "string_check",
                    "name": "exact",
                    "input": "{{sample.output_text}}",
                    "reference": "{{item.answer}}",
                    "operation": "eq",
                },
                "py": {"type": "python", "name": "py", "source": PYTHON_SOURCE},
            },
        }
    )
    response = run_grader(grader, "Paris", ITEM)
    assert response["reward"] == pytest.approx(1.0)
    assert response["sub_rewards"] == {"exact": 1.0, "py": 1.0}
    assert response["metadata"]["type"] == "multi" and response["metadata"]["name"] == "m"
    assert not any(v is True for v in response["metadata"]["errors"].values())
    assert run_grader(grader, "Rome", ITEM)["reward"] == pytest.approx(0.25 * 0.25)
