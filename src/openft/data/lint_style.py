"""Lint findings about consistency: system prompts, answer formats and scripts, odd-sized answers."""

from __future__ import annotations

import numpy as np

from openft.data.issues import LintFinding
from openft.data.lint_columns import column_mask
from openft.data.lint_features import SCRIPTS, STYLE_EMPTY, STYLE_JSON, STYLE_TRAILING_SPACE, LintTable
from openft.data.lint_repeats import first_lines, value_counts

OUTLIER_FACTOR = 10  # an answer 10× shorter or longer than the median one is an outlier
MIN_EXAMPLES_FOR_OUTLIERS = 10
LONG_ANSWER_MIN_CHARS = 100  # an answer of a sentence is never "long", however short the median


def system_prompts(table: LintTable, file: str) -> list[LintFinding]:
    has_system = column_mask(table.system_hashes, lambda chunk: chunk != 0)
    findings = []
    n_without = int((~has_system).sum())
    if has_system.any() and n_without:
        findings.append(
            LintFinding(
                "missing_system_prompt",
                file,
                n_without,
                first_lines(table, ~has_system),
                f"{n_without} example(s) have no system message while {int(has_system.sum())} have one.",
                "Give every example the same system message (the one you will use in production), or none.",
            )
        )
    systems = value_counts(table.system_hashes, skip_key=0)  # 0: no system prompt
    if systems.n_distinct > 1:
        shown = "; ".join(
            f'"{table.previews.get(value, "…")}" ({count})' for count, _, value in systems.most_common
        )
        findings.append(
            LintFinding(
                "several_system_prompts",
                file,
                int(has_system.sum()),
                first_lines(table, systems.first_rows),
                f"{systems.n_distinct} different system prompts are used: {shown}.",
                "Use one system prompt throughout, the one you will deploy with; the lines shown are the "
                "first use of each.",
            )
        )
    return findings


def answer_formats(table: LintTable, file: str) -> list[LintFinding]:
    styles = table.answer_styles.values()
    empty = (styles & STYLE_EMPTY) != 0
    is_json = (styles & STYLE_JSON) != 0
    prose = ~is_json & ~empty
    trailing = (styles & STYLE_TRAILING_SPACE) != 0
    findings = []
    if empty.any():
        findings.append(
            LintFinding(
                "empty_answers",
                file,
                int(empty.sum()),
                first_lines(table, empty),
                f"{int(empty.sum())} assistant answer(s) are empty or whitespace only.",
                'Write the answer, or set "weight": 0 on that message if it should not be learned.',
            )
        )
    if is_json.any() and prose.any():
        minority = is_json if is_json.sum() <= prose.sum() else prose
        findings.append(
            LintFinding(
                "mixed_answer_formats",
                file,
                int(minority.sum()),
                first_lines(table, minority),
                f"{int(is_json.sum())} answer(s) are JSON and {int(prose.sum())} are prose; the lines shown "
                f"are {'JSON' if minority is is_json else 'prose'}.",
                "Answer in one format throughout, so the model knows which one to produce.",
            )
        )
    if trailing.any():
        findings.append(
            LintFinding(
                "trailing_whitespace",
                file,
                int(trailing.sum()),
                first_lines(table, trailing),
                f"{int(trailing.sum())} answer(s) end with spaces or newlines.",
                "Strip the answers: the model learns to emit the whitespace too.",
            )
        )
    return findings + _mixed_scripts(table, file)


def _mixed_scripts(table: LintTable, file: str) -> list[LintFinding]:
    scripts = table.answer_scripts.values()
    values, counts = np.unique(scripts[scripts >= 0], return_counts=True)
    if len(values) < 2:
        return []
    main = values[np.argmax(counts)]
    others = (scripts >= 0) & (scripts != main)
    shown = ", ".join(
        f"{SCRIPTS[int(v)]} {int(c)}"
        for v, c in sorted(zip(values, counts, strict=True), key=lambda vc: -vc[1])
    )
    return [
        LintFinding(
            "mixed_scripts",
            file,
            int(others.sum()),
            first_lines(table, others),
            f"Answers are written in several scripts ({shown}); the lines shown are not in "
            f"{SCRIPTS[int(main)]}.",
            "If the model should answer in one language, translate or remove the others; if languages should "
            "follow the user, make sure each is well represented.",
        )
    ]


def answer_length_outliers(table: LintTable, file: str) -> list[LintFinding]:
    summary = table.answer_lengths.distribution()  # answers that are not empty
    if summary is None or summary.n < MIN_EXAMPLES_FOR_OUTLIERS:
        return []
    median = summary.median
    present = (table.answer_styles.values() & STYLE_EMPTY) == 0
    lengths = table.answer_chars
    findings = []
    short = present & column_mask(lengths, lambda chunk: chunk.astype(np.int64) * OUTLIER_FACTOR < median)
    long = present & column_mask(
        lengths, lambda chunk: (chunk > OUTLIER_FACTOR * median) & (chunk > LONG_ANSWER_MIN_CHARS)
    )
    for code, mask, word in (("short_answers", short, "shorter"), ("long_answers", long, "longer")):
        if mask.any():
            findings.append(
                LintFinding(
                    code,
                    file,
                    int(mask.sum()),
                    first_lines(table, mask),
                    f"{int(mask.sum())} answer(s) are over {OUTLIER_FACTOR}× {word} than the median answer "
                    f"({median:.0f} characters).",
                    "Check that they are complete and intended; outliers often come from a broken export.",
                )
            )
    return findings
