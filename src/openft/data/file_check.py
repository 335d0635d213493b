"""Check one JSONL file in a single streaming pass: errors, statistics, token counts, lint features."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openft.data.formats import UNEXPECTED_FORMAT, FileFormat, Method, detect_format, json_type_name
from openft.data.issues import Issue
from openft.data.lines import BadLine, iter_lines, parse_json_line
from openft.data.lint_features import LintTable
from openft.data.render import RenderedChat
from openft.data.report import (
    N_ISSUES_KEPT,
    FileReport,
    LineSet,
    MaskPreview,
    MaskSpan,
    PromptStats,
    TokenStats,
    error_classes,
)
from openft.data.scan import mixed_formats_message
from openft.data.stats import Histogram
from openft.data.tokens import ExampleTokens, TokenCounter
from openft.data.validate_chat import validate_chat
from openft.data.validate_other import validate_preference, validate_prompt_completion
from openft.data.validate_prompt import GraderFields, has_final_answer, validate_prompt

BATCH_EXAMPLES = 512  # examples tokenized per call: enough to amortise the call, small enough to stay flat
N_LINES_SHOWN = 5

_VALIDATORS: dict[FileFormat, Callable[[dict[str, Any], int], list[Issue]]] = {
    "chat": lambda example, line: validate_chat(example, line),
    "prompt_completion": validate_prompt_completion,
    "preference": validate_preference,
    "prompt": validate_prompt,
}


class FileChecker:
    """Accumulates one file's report while its lines stream past."""

    def __init__(
        self,
        path: Path,
        purpose: str,
        counter: TokenCounter | None,
        max_line_bytes: int,
        *,
        method: Method | None = None,
        grader_fields: GraderFields | None = None,
        answer_tokens: int | None = None,
    ) -> None:
        self.path, self.purpose, self.counter, self.max_line_bytes = path, purpose, counter, max_line_bytes
        # A reinforcement file is read as prompts: every object line is one, whatever its keys.
        self.prompts = method == "reinforcement"
        self.grader_fields, self.answer_tokens = grader_fields, answer_tokens
        self.final_answers, self.empty_references, self.little_room = LineSet(), LineSet(), LineSet()
        self.format: FileFormat | None = None
        self.first_line_of_format = 0
        self.n_examples = self.n_valid = self.n_missing_system = self.n_missing_user = 0
        self.error_counts: dict[str, int] = {}
        self.first_errors: dict[str, list[Issue]] = {}
        self.messages_per_example = Histogram()
        self.total_tokens = Histogram()
        self.trained_tokens = Histogram()
        self.n_capped_tokens = self.n_trained_total = self.n_over_context = 0
        self.over_context_lines: list[int] = []
        self.preview: MaskPreview | None = None
        self.table = LintTable()
        self._pending: list[tuple[int, str, dict[str, Any]]] = []

    def run(self) -> FileReport:
        for line_no, text in iter_lines(self.path, max_line_bytes=self.max_line_bytes):
            self.n_examples += 1
            if isinstance(text, BadLine):
                self._add(Issue(text.code, line_no, text.message))
                if text.fatal:
                    break
                continue
            self._take(line_no, text)
        self._flush()
        return self._report()

    def _take(self, line_no: int, text: str) -> None:
        value = parse_json_line(line_no, text)
        file_format = self._format_of(line_no, value)
        if file_format is None:
            return
        issues = _VALIDATORS[file_format](value, line_no)
        if not issues and self.grader_fields is not None:
            issues = self.grader_fields.issues(value, line_no)
        for issue in issues:
            self._add(dataclasses.replace(issue, example=self.n_examples))
        if not issues:
            self._pending.append((line_no, text, value))
            if len(self._pending) >= BATCH_EXAMPLES:
                self._flush()

    def _format_of(self, line_no: int, value: Any) -> FileFormat | None:
        """The format to validate this line as (the file's), or None after reporting why there is none.

        The file's format is the one of its first recognisable line; a line of another format is an
        error, and a line of no format is checked as the file's format (to name what it lacks).
        """
        problem: Issue | None = None
        if self.prompts and isinstance(value, dict):
            self.format = "prompt"
            return self.format
        example_format = detect_format(value) if isinstance(value, dict) else None
        if self.format is None and example_format is not None:
            self.format, self.first_line_of_format = example_format, line_no
        if isinstance(value, BadLine):
            problem = Issue(value.code, line_no, value.message, field=value.field)
        elif not isinstance(value, dict):
            message = f"the line is a JSON {json_type_name(value)}, not an object."
            problem = Issue("data_type", line_no, message, example=self.n_examples)
        elif self.format is None:
            keys = ", ".join(f'"{key}"' for key in list(value)[:8]) or "no keys"
            message = f"{UNEXPECTED_FORMAT} The object has {keys}."
            problem = Issue("unknown_format", line_no, message, example=self.n_examples)
        elif example_format is not None and example_format != self.format:
            message = mixed_formats_message(self.format, self.first_line_of_format, example_format, line_no)
            problem = Issue("mixed_format", line_no, message, example=self.n_examples)
        if problem is not None:
            self._add(problem)
            return None
        return self.format

    def _add(self, issue: Issue) -> None:
        count = self.error_counts.get(issue.code, 0)
        self.error_counts[issue.code] = count + 1
        if count < N_ISSUES_KEPT:
            self.first_errors.setdefault(issue.code, []).append(issue)

    def _flush(self) -> None:
        """Tokenize the pending valid examples in one batch and record them."""
        pending, self._pending = self._pending, []
        if not pending or self.format is None:
            return
        examples = [example for _, _, example in pending]
        counts = self.counter.count(self.format, examples) if self.counter else None
        for index, (line_no, text, example) in enumerate(pending):
            if counts is not None:
                tokens = counts[index]
                if isinstance(tokens, ValueError):
                    message = f"line {line_no}: the chat template cannot render this example: {tokens}"
                    self._add(Issue("template_error", line_no, message))
                    continue
                self._record_tokens(line_no, tokens, example)
            self.n_valid += 1
            self._record_messages(example)
            if self.format == "prompt":
                self._record_prompt(line_no, example, counts[index] if counts is not None else None)
            self.table.add(line_no, text, self.format, example)

    def _record_tokens(self, line_no: int, tokens: ExampleTokens, example: dict[str, Any]) -> None:
        assert self.counter is not None and self.format is not None
        self.total_tokens.add(tokens.n_tokens)
        self.trained_tokens.add(tokens.n_trained_tokens)
        self.n_capped_tokens += tokens.n_capped_tokens
        self.n_trained_total += tokens.n_trained_tokens
        if tokens.over_context:
            self.n_over_context += 1
            if len(self.over_context_lines) < N_LINES_SHOWN:
                self.over_context_lines.append(line_no)
        if self.preview is None and self.format != "prompt":  # a prompt trains no token of its own
            rendered = self.counter.render(self.format, example)
            if isinstance(rendered, RenderedChat):
                self.preview = mask_preview(self.counter.tokenizer, line_no, rendered)

    def _record_prompt(self, line_no: int, example: dict[str, Any], tokens: Any) -> None:
        if has_final_answer(example):
            self.final_answers.add(line_no)
        if self.grader_fields is not None and self.grader_fields.empty_reference(example):
            self.empty_references.add(line_no)
        if self.counter is None or self.answer_tokens is None or not isinstance(tokens, ExampleTokens):
            return
        if tokens.n_tokens > self.counter.context_length - self.answer_tokens:
            self.little_room.add(line_no)

    def _record_messages(self, example: dict[str, Any]) -> None:
        if self.format == "prompt_completion":
            return
        if self.format == "preference":
            messages = example["input"]["messages"]
            self.messages_per_example.add(len(messages) + 1)
        else:
            messages = example["messages"]
            self.messages_per_example.add(len(messages))
        roles = {message["role"] for message in messages}
        self.n_missing_system += "system" not in roles and "developer" not in roles
        self.n_missing_user += "user" not in roles

    def _report(self) -> FileReport:
        tokens = None
        if self.counter is not None and self.total_tokens:
            total, trained = self.total_tokens.distribution(), self.trained_tokens.distribution()
            assert total is not None and trained is not None
            tokens = TokenStats(
                context_length=self.counter.context_length,
                total_tokens=total,
                trained_tokens=trained,
                n_tokens=self.total_tokens.total,
                n_capped_tokens=self.n_capped_tokens,
                n_trained_tokens=self.n_trained_total,
                n_over_context=self.n_over_context,
                over_context_lines=tuple(self.over_context_lines),
            )
        return FileReport(
            path=str(self.path),
            purpose=self.purpose,
            format=self.format,
            n_examples=self.n_examples,
            n_valid_examples=self.n_valid,
            errors=error_classes(self.error_counts, self.first_errors),
            messages_per_example=self.messages_per_example.distribution(),
            n_missing_system=self.n_missing_system if self.format != "prompt_completion" else 0,
            n_missing_user=self.n_missing_user if self.format != "prompt_completion" else 0,
            tokens=tokens,
            preview=self.preview,
            prompts=self._prompt_stats() if self.format == "prompt" else None,
        )

    def _prompt_stats(self) -> PromptStats:
        return PromptStats(
            final_answers=self.final_answers,
            empty_references=self.empty_references,
            little_room=self.little_room,
            answer_tokens=self.answer_tokens,
        )


def mask_preview(tokenizer: Any, line_no: int, rendered: RenderedChat) -> MaskPreview:
    """Split one rendered example into runs of trained and untrained tokens, decoded to text."""
    spans: list[MaskSpan] = []
    start = 0
    ids, mask = rendered.input_ids, rendered.loss_mask
    for end in range(1, len(ids) + 1):
        if end == len(ids) or mask[end] != mask[start]:
            text = tokenizer.decode(
                ids[start:end], skip_special_tokens=False, clean_up_tokenization_spaces=False
            )
            spans.append(MaskSpan(text, bool(mask[start]), end - start))
            start = end
    return MaskPreview(line_no, tuple(spans))
