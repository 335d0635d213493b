"""One problem found in one example, and the error classes the checker reports."""

from __future__ import annotations

from dataclasses import dataclass

# Error classes, in the order a report lists them. The first seven are the cookbook checker's.
ERROR_CODES = (
    "data_type",
    "missing_messages_list",
    "message_missing_key",
    "message_unrecognized_key",
    "unrecognized_role",
    "missing_content",
    "example_missing_assistant_message",
    "no_trained_assistant_message",
    "invalid_weight",
    "invalid_field_type",
    "invalid_content_part",
    "invalid_tool_call",
    "invalid_tool_call_arguments",
    "tool_call_id_mismatch",
    "invalid_tools",
    "invalid_prompt_completion",
    "invalid_preference",
    "invalid_prompt",
    "missing_grader_field",
    "unknown_format",
    "mixed_format",
    "invalid_json",
    "invalid_utf8",
    "line_too_long",
    "binary_file",
    "template_error",
    "invalid_n_examples",
)


@dataclass(frozen=True)
class Issue:
    """An error in one example: where it is (line, message, field) and what to do about it."""

    code: str
    line: int
    message: str
    message_index: int | None = None  # index into `messages` (0-based), when the error is in one message
    field: str | None = None  # JSON path inside the example, such as "messages[2].tool_calls[0].id"
    example: int | None = None  # 1-based position among the file's examples (blank lines are not examples)

    def location(self) -> str:
        where = f"line {self.line}"
        return f"{where}, field {self.field}" if self.field else where


@dataclass(frozen=True)
class LintFinding:
    """A data-quality warning: never blocks a job, always says what to do."""

    code: str
    file: str  # "training" or "validation"
    n_examples: int  # how many examples the finding is about
    lines: tuple[int, ...]  # a few of their line numbers
    message: str  # what was found
    advice: str  # what to do about it
