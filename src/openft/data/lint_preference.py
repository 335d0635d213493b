"""Lint findings about preference (DPO) pairs: what makes a pair teach nothing or the wrong thing."""

from __future__ import annotations

import numpy as np

from openft.data.issues import LintFinding
from openft.data.lint_columns import column_mask, partitions
from openft.data.lint_features import PAIR_IDENTICAL, PAIR_TRAILING_SPACE_ONLY, LintTable
from openft.data.lint_repeats import first_lines

# A length bias is reported when the preferred answers are on average this much longer than the
# non-preferred ones, and longer in at least this share of the pairs: DPO then learns "be longer".
LENGTH_BIAS_RATIO = 1.5
LENGTH_BIAS_SHARE = 0.75
LENGTH_BIAS_MIN_PAIRS = 5


def preference_findings(table: LintTable, file: str) -> list[LintFinding]:
    return (
        same_answers(table, file)
        + trailing_space_pairs(table, file)
        + contradicting_preferences(table, file)
        + length_bias(table, file)
    )


def same_answers(table: LintTable, file: str) -> list[LintFinding]:
    same = column_mask(table.pair_kinds, lambda kinds: kinds == PAIR_IDENTICAL)
    if not same.any():
        return []
    n = int(same.sum())
    return [
        LintFinding(
            "identical_preference_outputs",
            file,
            n,
            first_lines(table, same),
            f"{n} example(s) have the same preferred and non-preferred output.",
            "Remove them or write a worse non-preferred output: a pair of equal answers teaches nothing "
            "and only dilutes the others.",
        )
    ]


def trailing_space_pairs(table: LintTable, file: str) -> list[LintFinding]:
    spaced = column_mask(table.pair_kinds, lambda kinds: kinds == PAIR_TRAILING_SPACE_ONLY)
    if not spaced.any():
        return []
    n = int(spaced.sum())
    return [
        LintFinding(
            "whitespace_only_preference",
            file,
            n,
            first_lines(table, spaced),
            f"{n} example(s) have preferred and non-preferred outputs that differ only in trailing "
            "whitespace.",
            "Make the outputs differ in content: otherwise the model learns to prefer or avoid trailing "
            "spaces and newlines.",
        )
    ]


def contradicting_preferences(table: LintTable, file: str) -> list[LintFinding]:
    """Pairs whose reverse (the same prompt, the answers swapped) is also in the file."""
    involved = np.zeros(len(table), dtype=bool)
    for prompts, indices, (preferred, rejected) in partitions(
        table.prompt_hashes, table.answer_hashes, table.rejected_hashes
    ):
        forward = _pair_keys(prompts, preferred, rejected)
        reverse = _pair_keys(prompts, rejected, preferred)
        involved[indices[np.isin(reverse, forward) & (preferred != rejected)]] = True
    if not involved.any():
        return []
    n = int(involved.sum())
    return [
        LintFinding(
            "contradicting_preferences",
            file,
            n,
            first_lines(table, involved),
            f"{n} example(s) prefer one output for a prompt where another example prefers the other.",
            "Decide which output is better for each prompt and keep only that pair: contradicting pairs "
            "cancel each other out.",
        )
    ]


def length_bias(table: LintTable, file: str) -> list[LintFinding]:
    preferred = table.answer_chars.values().astype(np.float64)
    rejected = table.rejected_chars.values().astype(np.float64)
    if len(preferred) < LENGTH_BIAS_MIN_PAIRS or not rejected.sum():
        return []
    ratio = preferred.mean() / rejected.mean()
    longer = preferred > rejected
    if ratio < LENGTH_BIAS_RATIO or longer.mean() < LENGTH_BIAS_SHARE:
        return []
    return [
        LintFinding(
            "preference_length_bias",
            file,
            int(longer.sum()),
            first_lines(table, longer),
            f"Preferred outputs are {ratio:.1f}× as long as non-preferred ones on average "
            f"({preferred.mean():.0f} vs {rejected.mean():.0f} characters), and longer in "
            f"{longer.mean():.0%} of pairs.",
            "Add pairs where the shorter output is the preferred one: otherwise the model may learn to "
            "answer at length rather than what you prefer.",
        )
    ]


def _pair_keys(prompts: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """One int64 per (prompt, first answer, second answer), equal for equal triples."""
    mixed = prompts * np.int64(1_000_003) ^ first * np.int64(998_244_353) ^ second * np.int64(7_919)
    return mixed.astype(np.int64)
