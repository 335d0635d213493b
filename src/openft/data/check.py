"""`check_file`: everything openft knows about a training file (and its validation file) before a job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openft.data.epochs import estimate_reinforcement, estimate_training
from openft.data.file_check import FileChecker
from openft.data.formats import Method, method_of
from openft.data.issues import LintFinding
from openft.data.lines import DEFAULT_MAX_LINE_BYTES
from openft.data.render import Tokenizer
from openft.data.report import CheckReport, FileReport
from openft.data.tokens import TokenCounter
from openft.data.validate_prompt import GraderFields

# transformers' stand-in for "no limit" is a huge number; such a tokenizer needs an explicit context.
_UNLIMITED = 1_000_000_000


@dataclass(frozen=True)
class ReinforcementPlan:
    """What a reinforcement job would do with the prompts (the caller resolves it from the job spec)."""

    batch_size: int  # the model's default, or the one asked for
    samples_per_prompt: int  # 4 × compute_multiplier, bounded
    answer_tokens: int  # the reasoning_effort's answer budget


def check_file(
    path: Path,
    *,
    tokenizer: Tokenizer | None = None,
    context_length: int | None = None,
    validation_path: Path | None = None,
    n_epochs: int | None = None,
    tokens_per_s: float | None = None,
    lint: bool = True,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    method: Method | None = None,
    grader_fields: GraderFields | None = None,
    reinforcement: ReinforcementPlan | None = None,
) -> CheckReport:
    """Check a training file (and optionally a validation file) and return the full report.

    `tokenizer` is the base model's (transformers) tokenizer with its chat template; without one the
    report has no token statistics. `context_length` defaults to the tokenizer's `model_max_length`.
    `n_epochs` overrides the "auto" epoch rule; `tokens_per_s`, a measured training throughput, adds
    an estimated training time. The report lists every error; lint findings are warnings.

    `method` names what the files train; None infers it from the file: a chat file none of whose lines
    has an assistant message is a reinforcement prompt file. For reinforcement, `grader_fields` checks
    the fields the grader reads in every line, and `reinforcement` adds the job's steps to the report.
    """
    counter = None
    if tokenizer is not None:
        counter = TokenCounter(tokenizer, context_length or _context_of(tokenizer))

    def checker(method: Method) -> Callable[[Path, str], FileChecker]:
        prompts = method == "reinforcement"
        return lambda file, purpose: FileChecker(
            Path(file),
            purpose,
            counter,
            max_line_bytes,
            method=method,
            grader_fields=grader_fields if prompts else None,
            answer_tokens=reinforcement.answer_tokens if prompts and reinforcement else None,
        )

    checked: Method = method or "supervised"
    report = _check(path, validation_path, checker(checked), lint)
    if method is None and _only_prompts(report[0]):
        checked = "reinforcement"
        report = _check(path, validation_path, checker(checked), lint)
    elif method is None:
        checked = method_of(report[0].format)
    training, validation, findings = report
    estimate = None
    rl_estimate = None
    if checked == "reinforcement":
        if reinforcement is not None and training.n_valid_examples:
            rl_estimate = estimate_reinforcement(
                training.n_valid_examples,
                batch_size=reinforcement.batch_size,
                samples_per_prompt=reinforcement.samples_per_prompt,
                answer_tokens=reinforcement.answer_tokens,
                n_epochs=n_epochs,
            )
    elif training.tokens is not None:
        estimate = estimate_training(
            training.n_valid_examples,
            training.tokens.n_capped_tokens,
            n_epochs=n_epochs,
            tokens_per_s=tokens_per_s,
        )
    return CheckReport(training, validation, estimate, findings, checked, rl_estimate)


def _check(
    path: Path, validation_path: Path | None, checker: Callable[[Path, str], FileChecker], lint: bool
) -> tuple[FileReport, FileReport | None, tuple[LintFinding, ...]]:
    training_checker = checker(path, "training")
    validation_checker = checker(validation_path, "validation") if validation_path is not None else None
    try:
        training = training_checker.run()
        validation = validation_checker.run() if validation_checker is not None else None
        findings: list[LintFinding] = []
        if lint:
            from openft.data.lint import lint_files  # numpy: imported only when a check runs
            from openft.data.lint_prompt import prompt_line_findings

            findings = lint_files(
                training_checker.table,
                training.format,
                validation_checker.table if validation_checker else None,
                validation.format if validation else None,
            )
            for report in (training, validation):
                if report is not None and report.prompts is not None:
                    findings += prompt_line_findings(report.prompts, report.purpose)
    finally:  # the lint's spilled columns (temporary files), also when reading a file failed
        training_checker.table.close()
        if validation_checker is not None:
            validation_checker.table.close()
    return training, validation, tuple(findings)


def _only_prompts(training: FileReport) -> bool:
    """A chat file whose every line lacks an answer, and has no other error: prompts, not examples."""
    codes = {error.code: error.count for error in training.errors}
    return (
        training.format == "chat"
        and training.n_examples > 0
        and codes == {"example_missing_assistant_message": training.n_examples}
    )


def _context_of(tokenizer: Tokenizer) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    if not isinstance(limit, int) or limit >= _UNLIMITED:
        raise ValueError("the tokenizer does not say its context length: pass context_length")
    return limit
