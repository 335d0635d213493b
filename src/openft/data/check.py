"""`check_file`: everything openft knows about a training file (and its validation file) before a job."""

from __future__ import annotations

from pathlib import Path

from openft.data.epochs import estimate_training
from openft.data.file_check import FileChecker
from openft.data.lines import DEFAULT_MAX_LINE_BYTES
from openft.data.render import Tokenizer
from openft.data.report import CheckReport
from openft.data.tokens import TokenCounter

# transformers' stand-in for "no limit" is a huge number; such a tokenizer needs an explicit context.
_UNLIMITED = 1_000_000_000


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
) -> CheckReport:
    """Check a training file (and optionally a validation file) and return the full report.

    `tokenizer` is the base model's (transformers) tokenizer with its chat template; without one the
    report has no token statistics. `context_length` defaults to the tokenizer's `model_max_length`.
    `n_epochs` overrides the "auto" epoch rule; `tokens_per_s`, a measured training throughput, adds
    an estimated training time. The report lists every error; lint findings are warnings.
    """
    counter = None
    if tokenizer is not None:
        counter = TokenCounter(tokenizer, context_length or _context_of(tokenizer))
    training_checker = FileChecker(Path(path), "training", counter, max_line_bytes)
    validation_checker = None
    if validation_path is not None:
        validation_checker = FileChecker(Path(validation_path), "validation", counter, max_line_bytes)
    try:
        training = training_checker.run()
        validation = validation_checker.run() if validation_checker is not None else None
        estimate = None
        if training.tokens is not None:
            estimate = estimate_training(
                training.n_valid_examples,
                training.tokens.n_capped_tokens,
                n_epochs=n_epochs,
                tokens_per_s=tokens_per_s,
            )
        findings = []
        if lint:
            from openft.data.lint import lint_files  # numpy: imported only when a check runs

            findings = lint_files(
                training_checker.table,
                training.format,
                validation_checker.table if validation_checker else None,
                validation.format if validation else None,
            )
    finally:  # the lint's spilled columns (temporary files), also when reading a file failed
        training_checker.table.close()
        if validation_checker is not None:
            validation_checker.table.close()
    return CheckReport(training, validation, estimate, tuple(findings))


def _context_of(tokenizer: Tokenizer) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    if not isinstance(limit, int) or limit >= _UNLIMITED:
        raise ValueError("the tokenizer does not say its context length: pass context_length")
    return limit
