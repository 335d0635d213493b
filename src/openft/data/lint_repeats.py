"""Lint findings about repeated content: copies, leaks into validation, conflicts, imbalance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openft.data.issues import LintFinding
from openft.data.lint_columns import SpilledColumn, column_mask, n_partitions, partitions
from openft.data.lint_features import LintTable

N_LINES_SHOWN = 5
Mask = npt.NDArray[np.bool_]
Int64s = npt.NDArray[np.int64]


def first_lines(table: LintTable, mask: Mask) -> tuple[int, ...]:
    indices = np.flatnonzero(mask)[:N_LINES_SHOWN]
    return tuple(int(line) for line in table.lines.take(indices))


@dataclass
class ValueCounts:
    """The distinct values of a column: how many, where each first occurs, and the most common."""

    n_distinct: int
    first_rows: Mask  # True at the first row of each distinct value
    most_common: list[tuple[int, int, int]]  # (count, first row, value); most common first, ties by first use


def value_counts(column: SpilledColumn, *, skip_key: int | None = None, top: int = 3) -> ValueCounts:
    """Count `column`'s values one hash partition at a time (rows holding `skip_key` left out)."""
    first_rows = np.zeros(len(column), dtype=bool)
    n_distinct = 0
    # The `top` most common of each partition: the `top` most common overall are among them.
    candidates: list[tuple[int, int, int]] = []
    for keys, indices, _ in partitions(column, skip_key=skip_key):
        values, first_index, counts = np.unique(keys, return_index=True, return_counts=True)
        firsts = indices[first_index]
        first_rows[firsts] = True
        n_distinct += len(values)
        for i in np.lexsort((firsts, -counts))[:top]:
            candidates.append((int(counts[i]), int(firsts[i]), int(values[i])))
    candidates.sort(key=lambda candidate: (-candidate[0], candidate[1]))
    return ValueCounts(n_distinct, first_rows, candidates[:top])


def repeats_of_earlier(hashes: SpilledColumn) -> Mask:
    """True for every example whose hash already occurred earlier in the file."""
    return ~value_counts(hashes).first_rows


def duplicates(table: LintTable, file: str) -> list[LintFinding]:
    exact = repeats_of_earlier(table.example_hashes)
    near = repeats_of_earlier(table.normalized_hashes) & ~exact
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
    leaked = np.zeros(len(validation), dtype=bool)
    count = n_partitions(len(training) + len(validation))  # the same split of hash values for both
    for (seen, _, _), (keys, indices, _) in zip(
        partitions(training.normalized_hashes, count=count),
        partitions(validation.normalized_hashes, count=count),
        strict=True,
    ):
        leaked[indices[np.isin(keys, seen)]] = True
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
    involved = np.zeros(len(table), dtype=bool)
    n_prompts = total = majority = 0
    for prompts, indices, (answers,) in partitions(table.prompt_hashes, table.answer_hashes):
        if len(prompts) == 0:
            continue
        pair_prompts, pair_counts = _distinct_pairs(prompts, answers)
        group_prompts, group_starts, n_answers = np.unique(
            pair_prompts, return_index=True, return_counts=True
        )
        conflicting = n_answers > 1
        if not conflicting.any():
            continue
        n_prompts += int(conflicting.sum())
        total += int(np.add.reduceat(pair_counts, group_starts)[conflicting].sum())
        majority += int(np.maximum.reduceat(pair_counts, group_starts)[conflicting].sum())
        involved[indices[np.isin(prompts, group_prompts[conflicting])]] = True
    if not n_prompts:
        return []
    agreement = majority / total
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
    candidates = value_counts(table.answer_hashes).most_common
    if not candidates:
        return []
    top = candidates[0][0]
    second = candidates[1][0] if len(candidates) > 1 else 0
    n = len(table)
    if top < 3 or top < 0.1 * n or top < 2 * second:
        return []
    shares = ", ".join(
        f"{_quoted(table, value)} {count} ({count / n:.0%})" for count, _, value in candidates[:3]
    )
    most_common_answer = candidates[0][2]
    most_common = column_mask(table.answer_hashes, lambda chunk: chunk == most_common_answer)
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
