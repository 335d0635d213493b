"""Test sets: a JSONL file of examples, each split into a prompt and the reference answer.

Chat examples (`{"messages": [...]}`, the training format): the last message must be an assistant
message with text content; it is the reference and every message before it is the prompt. Prompt/
completion examples: `prompt` is the prompt (a raw text, no chat template) and `completion` the
reference. Preference (DPO) examples: `input.messages` is the prompt and the preferred output the
reference. Lines are checked with the same rules as training files (openft.data), so a bad line gives
the same message, naming the file, line and field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openft.data.formats import detect_format, json_type_name
from openft.data.issues import Issue
from openft.data.lines import BadLine, iter_json_lines
from openft.data.validate_chat import validate_chat
from openft.data.validate_other import preference_outputs, validate_preference, validate_prompt_completion
from openft.data.validate_prompt import prompt_messages, validate_prompt


class TestSetError(ValueError):
    """A test file that cannot be evaluated; the message names the file, line and field."""

    __test__ = False  # not a pytest test class, despite the name


@dataclass(frozen=True)
class TestCase:
    """One example: what the model is asked and the answer it should give."""

    __test__ = False

    line: int  # the line of the test file it came from (1-based)
    reference: str
    # Chat examples: the conversation before the reference answer (and the tools it may use).
    messages: tuple[Mapping[str, Any], ...] = ()
    tools: tuple[Mapping[str, Any], ...] | None = None
    # Prompt/completion examples: the raw text to continue.
    prompt_text: str | None = None
    # Reinforcement prompts: the whole line, which the job's grader reads as {{item.*}} (no reference).
    item: Mapping[str, Any] | None = None

    @property
    def is_chat(self) -> bool:
        return self.prompt_text is None

    def prompt_preview(self) -> str:
        """The prompt as one text: the raw prompt, or `role: content` lines."""
        if self.prompt_text is not None:
            return self.prompt_text
        return "\n".join(f"{m.get('role')}: {message_text(m.get('content'))}" for m in self.messages)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"line": self.line, "reference": self.reference}
        if self.prompt_text is not None:
            data["prompt_text"] = self.prompt_text
        else:
            data["messages"] = [dict(message) for message in self.messages]
            if self.tools:
                data["tools"] = [dict(tool) for tool in self.tools]
        if self.item is not None:
            data["item"] = dict(self.item)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestCase:
        tools = data.get("tools")
        return cls(
            line=int(data["line"]),
            reference=str(data["reference"]),
            messages=tuple(data.get("messages") or ()),
            tools=tuple(tools) if tools else None,
            prompt_text=data.get("prompt_text"),
            item=data.get("item"),
        )


def read_test_set(path: Path, *, max_examples: int | None = None) -> list[TestCase]:
    """The first `max_examples` (all if None) examples of a test file, in file order."""
    return _read_cases(path, max_examples, _test_case, "examples")


def read_prompt_set(path: Path, *, max_examples: int | None = None) -> list[TestCase]:
    """The first `max_examples` prompts of a reinforcement prompt file: each line's messages (a final
    assistant message dropped, as the job drops it) and the line itself as the grader's item."""
    return _read_cases(path, max_examples, _prompt_case, "prompts")


def _read_cases(
    path: Path, max_examples: int | None, case: Callable[[Path, int, Any], TestCase], what: str
) -> list[TestCase]:
    cases: list[TestCase] = []
    for line_no, value in iter_json_lines(path):
        if max_examples is not None and len(cases) >= max_examples:
            break
        if isinstance(value, BadLine):
            raise TestSetError(f"{path.name}: {value.message}")
        cases.append(case(path, line_no, value))
    if not cases:
        raise TestSetError(f"{path.name} has no {what}")
    return cases


def _prompt_case(path: Path, line_no: int, value: Any) -> TestCase:
    if not isinstance(value, dict):
        raise TestSetError(
            f"{path.name} line {line_no}: a prompt must be a JSON object, not a JSON {json_type_name(value)}"
        )
    _raise_first(path, validate_prompt(value, line_no))
    tools = value.get("tools")
    return TestCase(
        line=line_no,
        reference="",
        messages=tuple(prompt_messages(value["messages"])),
        tools=tuple(tools) if tools else None,
        item=value,
    )


def message_text(content: Any) -> str:
    """A message's text: a string, or its text parts joined (content may be a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _test_case(path: Path, line_no: int, value: Any) -> TestCase:
    if not isinstance(value, dict):
        raise TestSetError(
            f"{path.name} line {line_no}: an example must be a JSON object, not a JSON "
            f"{json_type_name(value)}"
        )
    file_format = detect_format(value)
    if file_format == "chat":
        _raise_first(path, validate_chat(value, line_no))
        return _chat_case(path, line_no, value)
    if file_format == "prompt_completion":
        _raise_first(path, validate_prompt_completion(value, line_no))
        return TestCase(line=line_no, reference=value["completion"], prompt_text=value["prompt"])
    if file_format == "preference":  # the preferred output is the reference answer
        _raise_first(path, validate_preference(value, line_no))
        prompt = value["input"]
        preferred = preference_outputs(value)[0][0]
        tools = prompt.get("tools")
        return TestCase(
            line=line_no,
            reference=message_text(preferred.get("content")),
            messages=tuple(prompt["messages"]),
            tools=tuple(tools) if tools else None,
        )
    what = "unknown format"
    raise TestSetError(
        f"{path.name} line {line_no}: {what}; a test example is either "
        '{"messages": [..., {"role": "assistant", "content": REFERENCE}]} '
        'or {"prompt": ..., "completion": ...}'
    )


def _chat_case(path: Path, line_no: int, example: dict[str, Any]) -> TestCase:
    *prompt, last = example["messages"]
    index = len(prompt)
    if last.get("role") != "assistant":
        raise TestSetError(
            f"{path.name} line {line_no}, field messages[{index}].role: the last message is from the "
            f"{last.get('role')}, but it must be the assistant's reference answer"
        )
    if not isinstance(last.get("content"), str | list) or last.get("tool_calls"):
        raise TestSetError(
            f"{path.name} line {line_no}, field messages[{index}].content: the reference answer must be "
            "text (answers that call tools cannot be scored yet)"
        )
    tools = example.get("tools")
    if not tools and example.get("functions"):
        tools = [{"type": "function", "function": function} for function in example["functions"]]
    return TestCase(
        line=line_no,
        reference=message_text(last["content"]),
        messages=tuple(prompt),
        tools=tuple(tools) if tools else None,
    )


def _raise_first(path: Path, issues: list[Issue]) -> None:
    if issues:
        issue = issues[0]
        raise TestSetError(f"{path.name} {issue.location()}: {issue.message}")
