"""The data-quality lint: warnings about a file's content that never block a job."""

from __future__ import annotations

from openft.data.formats import FileFormat
from openft.data.issues import LintFinding
from openft.data.lint_features import LintTable
from openft.data.lint_preference import preference_findings
from openft.data.lint_prompt import duplicate_prompts
from openft.data.lint_repeats import conflicting_answers, duplicates, imbalanced_answers, leakage
from openft.data.lint_style import answer_formats, answer_length_outliers, system_prompts


def lint_table(table: LintTable, file: str, file_format: FileFormat | None) -> list[LintFinding]:
    """Every finding about one file (`file` is "training" or "validation")."""
    if not len(table):
        return []
    if file_format == "prompt":  # answers are sampled and graded: only the prompts can be judged here
        return duplicate_prompts(table, file) + system_prompts(table, file)
    findings = duplicates(table, file)
    if file_format == "preference":  # several pairs per prompt are normal; their contradictions are not
        findings += preference_findings(table, file)
    else:
        findings += conflicting_answers(table, file)
        findings += imbalanced_answers(table, file)
    findings += system_prompts(table, file)
    findings += answer_formats(table, file)
    findings += answer_length_outliers(table, file)
    return findings


def lint_files(
    training: LintTable,
    training_format: FileFormat | None,
    validation: LintTable | None = None,
    validation_format: FileFormat | None = None,
) -> list[LintFinding]:
    findings = lint_table(training, "training", training_format)
    if validation is not None:
        findings += lint_table(validation, "validation", validation_format)
        findings += leakage(training, validation) if len(training) and len(validation) else []
    return findings
