"""A comparison as one self-contained HTML page: no external assets, inline CSS and a little inline JS.

The summary shows every metric (and the reference loss) for both models; the table shows every example
with its prompt, reference and both answers, each answer's word-level differences from the reference
highlighted. Columns sort on a click; buttons filter the rows to improved / regressed / same. Every text
from the test set or a model is escaped.
"""

from __future__ import annotations

import difflib
import re
import time
from html import escape

from openft.comparison.compare import ComparisonResult, ExampleRow, ScoredAnswer, Verdict
from openft.comparison.metrics import metric_label

VERDICTS: tuple[Verdict, ...] = ("improved", "regressed", "same")
_WORDS = re.compile(r"\s+|\w+|[^\w\s]")

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d232a; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 20px 0 8px; }
.meta { color: #5a6572; margin-bottom: 12px; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d8dde3; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f1f4f7; }
#examples th { cursor: pointer; user-select: none; }
#examples th.asc::after { content: " ▲"; } #examples th.desc::after { content: " ▼"; }
#examples td.text { white-space: pre-wrap; max-width: 28em; overflow-wrap: anywhere; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
mark.diff { background: #ffd7d5; } del.missing { color: #1a7f37; background: #dafbe1; }
tr.improved td.verdict { color: #1a7f37; } tr.regressed td.verdict { color: #cf222e; }
.filters button { margin-right: 6px; padding: 3px 10px; border: 1px solid #aab4be; background: #fff; }
.filters button.active { background: #1d232a; color: #fff; }
.headline { font-size: 18px; font-weight: 600; }
"""

SCRIPT = """
const table = document.getElementById("examples");
const body = table.tBodies[0];
for (const button of document.querySelectorAll(".filters button")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".filters button")) other.classList.remove("active");
    button.classList.add("active");
    const wanted = button.dataset.filter;
    for (const row of body.rows) row.hidden = wanted !== "all" && row.dataset.verdict !== wanted;
  });
}
table.tHead.querySelectorAll("th").forEach((header, column) => {
  header.addEventListener("click", () => {
    const ascending = !header.classList.contains("asc");
    table.tHead.querySelectorAll("th").forEach(h => h.classList.remove("asc", "desc"));
    header.classList.add(ascending ? "asc" : "desc");
    const numeric = header.dataset.sort === "number";
    const key = row => {
      const cell = row.cells[column];
      const value = cell.dataset.value ?? cell.textContent;
      return numeric ? (value === "" ? -Infinity : parseFloat(value)) : value.toLowerCase();
    };
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    });
    for (const row of rows) body.appendChild(row);
  });
});
"""


def render_html(result: ComparisonResult, *, title: str = "openft evaluation") -> str:
    """The report page for `result`."""
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(result.created_at))
    source = f" on {escape(result.test_file)}" if result.test_file else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<div class="meta">{len(result.rows)} examples{source}, {escape(created)}. '
        f"Base: <b>{escape(result.baseline.label)}</b>; "
        f"fine-tuned: <b>{escape(result.candidate.label)}</b>.</div>",
        f'<div class="headline" id="headline">{escape(result.headline)}</div>',
        _summary_table(result),
        "<h2>Examples</h2>",
        _filters(result),
        _examples_table(result),
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary_table(result: ComparisonResult) -> str:
    base, tuned = result.baseline, result.candidate
    rows = [
        _summary_row(metric_label(name), base.means[name], tuned.means[name]) for name in result.metric_names
    ]
    rows.append(
        _summary_row(
            "reference loss", base.mean_reference_loss, tuned.mean_reference_loss, lower_is_better=True
        )
    )
    rows.append(_summary_row("perplexity", base.perplexity, tuned.perplexity, lower_is_better=True))
    rows.append(
        "<tr><td>answers cut at max tokens</td>"
        f"{_num(base.n_truncated, 0)}{_num(tuned.n_truncated, 0)}<td></td></tr>"
    )
    return (
        '<h2>Summary</h2><table id="summary"><thead><tr><th>metric</th><th>base</th><th>fine-tuned</th>'
        f"<th>change</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _summary_row(
    label: str, before: float | None, after: float | None, *, lower_is_better: bool = False
) -> str:
    if before is None or after is None:
        change = "<td>n/a</td>" if before is None and after is None else "<td></td>"
        return f"<tr><td>{escape(label)}</td>{_num(before)}{_num(after)}{change}</tr>"
    return f"<tr><td>{escape(label)}</td>{_num(before)}{_num(after)}{_num(after - before, sign=True)}</tr>"


def _filters(result: ComparisonResult) -> str:
    buttons = [f'<button type="button" class="active" data-filter="all">all ({len(result.rows)})</button>']
    buttons += [
        f'<button type="button" data-filter="{verdict}">{verdict} ({result.count(verdict)})</button>'
        for verdict in VERDICTS
    ]
    return f'<div class="filters">{"".join(buttons)}</div>'


def _examples_table(result: ComparisonResult) -> str:
    primary = escape(metric_label(result.primary_metric))
    headers = [
        ("line", "number"),
        ("prompt", "text"),
        ("reference", "text"),
        ("base answer", "text"),
        ("fine-tuned answer", "text"),
        (f"base {primary}", "number"),
        (f"fine-tuned {primary}", "number"),
        ("base loss", "number"),
        ("fine-tuned loss", "number"),
        ("verdict", "text"),
    ]
    head = "".join(f'<th data-sort="{kind}">{label}</th>' for label, kind in headers)
    body = "".join(_example_row(row, result.primary_metric) for row in result.rows)
    return f'<table id="examples"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _example_row(row: ExampleRow, primary: str) -> str:
    reference = row.case.reference
    cells = [
        _num(row.case.line, 0),
        f'<td class="text prompt">{escape(row.case.prompt_preview())}</td>',
        f'<td class="text reference">{escape(reference)}</td>',
        _answer_cell(row.baseline, reference, "base"),
        _answer_cell(row.candidate, reference, "fine-tuned"),
        _num(row.baseline.scores[primary]),
        _num(row.candidate.scores[primary]),
        _num(row.baseline.reference_loss),
        _num(row.candidate.reference_loss),
        f'<td class="verdict">{row.verdict}</td>',
    ]
    attributes = f'class="{row.verdict}" data-verdict="{row.verdict}" data-line="{row.case.line}"'
    return f"<tr {attributes}>{''.join(cells)}</tr>"


def _answer_cell(answer: ScoredAnswer, reference: str, role: str) -> str:
    cut = ' <i title="hit the token budget">[cut]</i>' if answer.truncated else ""
    attributes = f'class="text answer {role}" data-value="{escape(answer.text)}"'
    return f"<td {attributes}>{word_diff(reference, answer.text)}{cut}</td>"


def word_diff(reference: str, answer: str) -> str:
    """The answer as HTML: words the reference lacks in <mark class="diff">, reference words the answer
    lacks in <del class="missing">, everything escaped."""
    expected, found = _WORDS.findall(reference), _WORDS.findall(answer)
    matcher = difflib.SequenceMatcher(None, expected, found, autojunk=False)
    out = []
    for operation, ref_start, ref_end, start, end in matcher.get_opcodes():
        if operation in ("delete", "replace"):
            missing = "".join(expected[ref_start:ref_end])
            if missing.strip():
                out.append(f'<del class="missing">{escape(missing)}</del>')
        text = escape("".join(found[start:end]))
        if operation == "equal":
            out.append(text)
        elif text:
            out.append(f'<mark class="diff">{text}</mark>')
    return "".join(out)


def _num(value: float | None, digits: int = 3, *, sign: bool = False) -> str:
    if value is None:
        return '<td class="num" data-value="">n/a</td>'
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return f'<td class="num" data-value="{value!r}">{text}</td>'
