"""The checker's report, as typed objects: per-file errors and statistics, the lint, the estimate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from openft.data.epochs import ReinforcementEstimate, TrainingEstimate
from openft.data.formats import UNEXPECTED_FORMAT, FileFormat, Method
from openft.data.issues import ERROR_CODES, Issue, LintFinding
from openft.data.stats import Distribution

MIN_TRAINING_EXAMPLES = 10
MIN_TRAINING_PROMPTS = 1  # a reinforcement job's file check asks only for one prompt
N_ISSUES_KEPT = 5  # the first occurrences of each error class that a report shows


@dataclass(frozen=True)
class ErrorClass:
    code: str
    count: int
    first: tuple[Issue, ...]  # the first few occurrences, in file order


@dataclass(frozen=True)
class TokenStats:
    context_length: int
    total_tokens: Distribution  # per example, before truncation
    trained_tokens: Distribution  # per example: tokens that carry loss, after truncation
    n_tokens: int  # the whole file, before truncation
    n_capped_tokens: int  # the whole file after truncation: the tokens one epoch trains on
    n_trained_tokens: int  # the whole file: tokens that carry loss, after truncation
    n_over_context: int  # examples longer than the context, truncated from the end
    over_context_lines: tuple[int, ...]


@dataclass(frozen=True)
class MaskSpan:
    text: str
    trained: bool
    n_tokens: int


@dataclass(frozen=True)
class MaskPreview:
    """One example as training sees it: runs of tokens that carry loss (trained) or do not."""

    line: int
    spans: tuple[MaskSpan, ...]


@dataclass
class LineSet:
    """Lines that share a trait: how many, and the first few."""

    count: int = 0
    lines: list[int] = dataclasses.field(default_factory=list)

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.lines) < N_ISSUES_KEPT:
            self.lines.append(line)


@dataclass(frozen=True)
class PromptStats:
    """What a reinforcement prompt file's lines carry beyond their prompt."""

    final_answers: LineSet  # lines ending with an assistant message (dropped: the grader judges answers)
    empty_references: LineSet  # lines where a field the grader compares answers with is empty
    little_room: LineSet  # prompts that leave less than the answer budget of the context
    answer_tokens: int | None  # the answer budget (the reasoning_effort's), when known


@dataclass(frozen=True)
class FileReport:
    path: str
    purpose: str  # "training" or "validation"
    format: FileFormat | None
    n_examples: int  # non-blank lines
    n_valid_examples: int
    errors: tuple[ErrorClass, ...]
    messages_per_example: Distribution | None
    n_missing_system: int
    n_missing_user: int
    tokens: TokenStats | None  # None without a tokenizer or without a valid example
    preview: MaskPreview | None
    prompts: PromptStats | None = None  # reinforcement prompt files only

    @property
    def n_errors(self) -> int:
        return sum(error.count for error in self.errors)


@dataclass(frozen=True)
class BlockingError:
    """Why a job using these files fails, in OpenAI's words: `error.code`, `.message`, `.param`."""

    code: str  # invalid_training_file | invalid_validation_file | invalid_n_examples
    message: str
    param: str  # training_file | validation_file
    line: int | None


@dataclass(frozen=True)
class CheckReport:
    training: FileReport
    validation: FileReport | None
    estimate: TrainingEstimate | None  # None without a tokenizer or without a valid training example
    lint: tuple[LintFinding, ...]
    method: Method = "supervised"  # the method the files were checked for (named, or from the file)
    # A reinforcement job's steps and sampled answers (`estimate` is None then: it trains no tokens).
    reinforcement: ReinforcementEstimate | None = None

    @property
    def ok(self) -> bool:
        return self.blocking_error() is None

    def blocking_error(self) -> BlockingError | None:
        """The first error that fails a job, or None. Lint findings never block."""
        training = self.training
        if training.errors:
            return _file_error(training)
        least = MIN_TRAINING_PROMPTS if self.method == "reinforcement" else MIN_TRAINING_EXAMPLES
        if training.n_examples < least:
            message = (
                f"Training file has {training.n_examples} example(s), but must have at least {least} examples"
            )
            return BlockingError("invalid_n_examples", message, "training_file", None)
        if self.validation is not None and self.validation.errors:
            return _file_error(self.validation)
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what `openft data check --json` prints)."""
        data = dataclasses.asdict(self)
        error = self.blocking_error()
        data["ok"] = error is None
        data["blocking_error"] = dataclasses.asdict(error) if error else None
        return data


def _file_error(report: FileReport) -> BlockingError:
    first = min((error.first[0] for error in report.errors), key=lambda issue: issue.line)
    return BlockingError(
        f"invalid_{report.purpose}_file",
        f"The job failed due to an invalid {report.purpose} file. {openai_detail(first)}",
        f"{report.purpose}_file",
        first.line,
    )


def openai_detail(issue: Issue) -> str:
    """OpenAI's wording for one error ("Invalid file format. Example 3, message 1 ..."), then ours."""
    if issue.code in ("unknown_format", "data_type"):
        return f"{UNEXPECTED_FORMAT} Line {issue.line}: {issue.message}"
    if issue.example is None:  # the line could not be read as an example at all
        return f"Invalid file format. {issue.message[0].upper()}{issue.message[1:]}"
    where = f"Example {issue.example}"
    if issue.message_index is not None:
        where += f", message {issue.message_index + 1}"
    field = f", field {issue.field}" if issue.field else ""
    return f"Invalid file format. {where} {issue.message} (line {issue.line}{field})"


def error_classes(counts: dict[str, int], first: dict[str, list[Issue]]) -> tuple[ErrorClass, ...]:
    order = {code: index for index, code in enumerate(ERROR_CODES)}
    codes = sorted(counts, key=lambda code: order.get(code, len(order)))
    return tuple(ErrorClass(code, counts[code], tuple(first[code])) for code in codes)
