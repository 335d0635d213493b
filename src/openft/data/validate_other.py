"""The rules for prompt/completion examples (legacy base models) and preference (DPO) examples."""

from __future__ import annotations

from typing import Any

from openft.data.formats import NON_PREFERRED_KEYS, PREFERRED_KEYS, json_type_name
from openft.data.issues import Issue
from openft.data.validate_chat import validate_chat


def validate_prompt_completion(example: dict[str, Any], line: int) -> list[Issue]:
    issues = []
    for key in ("prompt", "completion"):
        value = example.get(key)
        if not isinstance(value, str):
            what = "is missing" if key not in example else f"is a JSON {json_type_name(value)}"
            issues.append(
                Issue("invalid_prompt_completion", line, f'"{key}" {what}; it must be a string.', field=key)
            )
    if not issues and not example["completion"]:
        issues.append(
            Issue(
                "invalid_prompt_completion",
                line,
                '"completion" is empty; write the text the model should learn to produce.',
                field="completion",
            )
        )
    return issues


def preference_outputs(example: dict[str, Any]) -> tuple[Any, Any]:
    """The preferred and non-preferred outputs, under either spelling of their keys."""
    preferred = next((example[key] for key in PREFERRED_KEYS if key in example), None)
    rejected = next((example[key] for key in NON_PREFERRED_KEYS if key in example), None)
    return preferred, rejected


def validate_preference(example: dict[str, Any], line: int) -> list[Issue]:
    prompt = example.get("input")
    if not isinstance(prompt, dict):
        issues = [
            Issue(
                "invalid_preference",
                line,
                '"input" must be an object with the prompt\'s "messages".',
                field="input",
            )
        ]
    else:
        issues = validate_chat(prompt, line, prefix="input.", needs_answer=False)
    for key_names, output in zip(
        (PREFERRED_KEYS, NON_PREFERRED_KEYS), preference_outputs(example), strict=True
    ):
        problem = _output_problem(output)
        if problem:
            field = next((key for key in key_names if key in example), key_names[0])
            issues.append(Issue("invalid_preference", line, f'"{field}" {problem}', field=field))
    return issues


def _output_problem(output: Any) -> str | None:
    if output is None:
        return 'is missing; add a list with one assistant message, such as [{"role": "assistant", ...}].'
    if not isinstance(output, list) or len(output) != 1 or not isinstance(output[0], dict):
        return "must be a list with exactly one assistant message."
    message = output[0]
    if message.get("role") != "assistant":
        return 'must hold an assistant message ("role": "assistant").'
    if not isinstance(message.get("content"), str) or not message["content"]:
        return 'must hold an assistant message with text "content".'
    return None
