"""Lint findings about reinforcement prompts: repeats, answers the grader cannot compare with, prompts
that leave an answer no room, and written answers the job drops."""

from __future__ import annotations

from openft.data.issues import LintFinding
from openft.data.lint_features import LintTable
from openft.data.lint_repeats import first_lines, repeats_of_earlier
from openft.data.report import PromptStats
from openft.data.validate_prompt import DROPPED_ANSWER


def duplicate_prompts(table: LintTable, file: str) -> list[LintFinding]:
    repeated = repeats_of_earlier(table.prompt_hashes)
    if not repeated.any():
        return []
    n = int(repeated.sum())
    return [
        LintFinding(
            "duplicate_prompts",
            file,
            n,
            first_lines(table, repeated),
            f"{n} prompt(s) repeat an earlier prompt once case, spacing and punctuation are ignored.",
            "Remove the copies, or give them different grader fields on purpose: each copy is sampled and "
            "graded again every epoch, so it weighs more than the others.",
        )
    ]


def prompt_line_findings(stats: PromptStats, file: str) -> list[LintFinding]:
    findings = []
    if stats.empty_references.count:
        findings.append(
            LintFinding(
                "empty_grader_reference",
                file,
                stats.empty_references.count,
                tuple(stats.empty_references.lines),
                f"{stats.empty_references.count} line(s) have an empty field where the grader reads the "
                "reference it compares answers with.",
                "Fill in the reference or remove the line: against an empty reference every answer gets the "
                "same grade, and the prompt teaches nothing.",
            )
        )
    if stats.little_room.count and stats.answer_tokens is not None:
        findings.append(
            LintFinding(
                "prompt_leaves_little_room",
                file,
                stats.little_room.count,
                tuple(stats.little_room.lines),
                f"{stats.little_room.count} prompt(s) leave less than the {stats.answer_tokens}-token answer "
                "budget of the context (max_seq_length); longer prompts are cut from the start.",
                "Shorten these prompts, raise max_seq_length on a model with a longer context, or lower "
                "reasoning_effort: an answer past the context is written where the model was never trained.",
            )
        )
    if stats.final_answers.count:
        findings.append(
            LintFinding(
                "final_assistant_message",
                file,
                stats.final_answers.count,
                tuple(stats.final_answers.lines),
                f"{stats.final_answers.count} line(s) end with an assistant message, which the job drops "
                f"({DROPPED_ANSWER}).",
                "If it is the reference answer, move it into a field of the line (such as "
                '"reference_answer") and read it in the grader as {{item.reference_answer}}.',
            )
        )
    return findings
