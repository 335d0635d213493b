"""Lint findings about repeated content: copies, leaks into validation, conflicts, imbalance."""

from __future__ import annotations

from array import array

import numpy as np
import numpy.typing as npt

from openft.data.issues import LintFinding
from openft.data.lint_features import LintTable

N_LINES_SHOWN = 5
Int64s = npt.NDArray[np.int64]


def int64s(values: array[int]) -> Int64s:
    """A numpy view of a compact array of hashes ("q") or of small numbers ("i"), widened to int64."""
    if not len(values):
        return np.zeros(0, np.int64)
    view = np.frombuffer(values, dtype=np.dtype(values.typecode))
    return view if view.dtype == np.int64 else view.astype(np.int64)


def first_lines(table: LintTable, mask: npt.NDArray[np.bool_]) -> tuple[int, ...]:
    return tuple(int(line) for line in int64s(table.lines)[mask][:N_LINES_SHOWN])


def repeats_of_earlier(hashes: Int64s) -> npt.NDArray[np.bool_]:
    """True for every example whose hash already occurred earlier in the file."""
    repeated = np.ones(len(hashes), dtype=bool)
    repeated[np.unique(hashes, return_index=True)[1]] = False
    return repeated


def duplicates(table: LintTable, file: str) -> list[LintFinding]:
    exact = repeats_of_earlier(int64s(table.example_hashes))
    near = repeats_of_earlier(int64s(table.normalized_hashes)) & ~exact
    findings = []
    if exact.any():
        findings.append(
            LintFinding(
                "duplicate_examples",
                file,
                int(exact.sum()),
                first_lines(table, exact),
                f"{int(exact.sum())} example(s) are exact copies of an earlier line.",
                "Remove the copies: each one is trained on again every epoch and pulls the model towards it.",
            )
        )
    if near.any():
        findings.append(
            LintFinding(
                "near_duplicate_examples",
                file,
                int(near.sum()),
                first_lines(table, near),
                f"{int(near.sum())} example(s) repeat an earlier example once case, spacing and punctuation "
                "are ignored.",
                "Remove the near-copies, or vary them if they are meant to teach different things.",
            )
        )
    return findings


def leakage(training: LintTable, validation: LintTable) -> list[LintFinding]:
    leaked = np.isin(int64s(validation.normalized_hashes), int64s(training.normalized_hashes))
    if not leaked.any():
        return []
    return [
        LintFinding(
            "validation_leakage",
            "validation",
            int(leaked.sum()),
            first_lines(validation, leaked),
            f"{int(leaked.sum())} validation example(s) also appear in the training file (compared ignoring "
            "case, spacing and punctuation).",
            "Remove them from the validation file: the model has seen them, so the validation loss would "
            "look better than the model really is.",
        )
    ]


def conflicting_answers(table: LintTable, file: str) -> list[LintFinding]:
    prompts, answers = int64s(table.prompt_hashes), int64s(table.answer_hashes)
    if len(prompts) == 0:
        return []
    pair_prompts, pair_counts = _distinct_pairs(prompts, answers)
    group_prompts, group_starts, n_answers = np.unique(pair_prompts, return_index=True, return_counts=True)
    conflicting = n_answers > 1
    if not conflicting.any():
        return []
    totals = np.add.reduceat(pair_counts, group_starts)[conflicting]
    majorities = np.maximum.reduceat(pair_counts, group_starts)[conflicting]
    involved = np.isin(prompts, group_prompts[conflicting])
    agreement = float(majorities.sum() / totals.sum())
    n_prompts = int(conflicting.sum())
    return [
        LintFinding(
            "conflicting_answers",
            file,
            int(involved.sum()),
            first_lines(table, involved),
            f"{n_prompts} prompt(s) get different answers in different examples ({int(involved.sum())} "
            f"examples); their answers agree with the most common one {agreement:.0%} of the time.",
            "Make the answers to the same prompt consistent, or add to the prompt whatever decides "
            "between them.",
        )
    ]


def _distinct_pairs(prompts: Int64s, answers: Int64s) -> tuple[Int64s, Int64s]:
    """The prompt of each distinct (prompt, answer) pair and how often the pair occurs, sorted by prompt
    then answer: one sort order and two gathered copies, where a 2-column unique would copy far more."""
    order = np.lexsort((answers, prompts))
    sorted_prompts, sorted_answers = prompts[order], answers[order]
    starts = np.flatnonzero(
        np.concatenate(
            (
                [True],
                (sorted_prompts[1:] != sorted_prompts[:-1]) | (sorted_answers[1:] != sorted_answers[:-1]),
            )
        )
    )
    return sorted_prompts[starts], np.diff(np.append(starts, len(sorted_prompts)))


def imbalanced_answers(table: LintTable, file: str) -> list[LintFinding]:
    answers = int64s(table.answer_hashes)
    values, first_index, counts = np.unique(answers, return_index=True, return_counts=True)
    if len(values) == 0:
        return []
    order = np.lexsort((first_index, -counts))  # most common first; ties in order of first use
    top = int(counts[order[0]])
    second = int(counts[order[1]]) if len(order) > 1 else 0
    n = len(answers)
    if top < 3 or top < 0.1 * n or top < 2 * second:
        return []
    shares = ", ".join(
        f"{_quoted(table, int(values[i]))} {int(counts[i])} ({int(counts[i]) / n:.0%})" for i in order[:3]
    )
    most_common = answers == values[order[0]]
    return [
        LintFinding(
            "imbalanced_answers",
            file,
            top,
            first_lines(table, most_common),
            f"One answer dominates: {shares} of {n} examples.",
            "Balance the answers (fewer of the common one, more of the others), or the model may learn to "
            "give the common answer whatever the prompt.",
        )
    ]


def _quoted(table: LintTable, text_hash: int) -> str:
    preview = table.previews.get(text_hash)
    return f'"{preview}"' if preview is not None else "(an answer)"
