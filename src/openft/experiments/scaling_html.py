"""The data-quantity experiment as one self-contained HTML page: a table and an inline SVG plot.

The plot shows each metric against the number of training examples on a log2 axis (each doubling one
step to the right), the least-squares line whose slope is the expected gain from doubling, its value at
twice the data (dashed), and the untrained base model's score as a horizontal reference line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from openft.comparison.metrics import metric_label
from openft.experiments.scaling import ScalingResult

WIDTH, HEIGHT, MARGIN = 560, 300, 48
Scale = Callable[[float], float]  # data value -> SVG coordinate
COLOURS = ("#0b6bcb", "#cf5a00", "#1a7f37", "#8250df", "#cf222e")

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #1d232a; }
h1 { font-size: 20px; margin: 0 0 4px; } .meta { color: #5a6572; margin-bottom: 12px; }
table { border-collapse: collapse; margin-bottom: 16px; }
th, td { border: 1px solid #d8dde3; padding: 4px 8px; text-align: right; }
th { background: #f1f4f7; } td:first-child, th:first-child { text-align: left; }
.estimate { font-size: 16px; font-weight: 600; margin: 8px 0; }
svg text { font: 12px system-ui, sans-serif; fill: #1d232a; }
"""


def render_scaling_html(result: ScalingResult) -> str:
    largest = result.points[-1].n_examples
    estimates = "".join(
        f'<p class="estimate">{escape(result.estimate(name).sentence(largest))}</p>'
        for name in result.metric_names
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Data scaling: {escape(result.base_model)}</title><style>{STYLE}</style></head><body>"
        f"<h1>How much does more data help? {escape(result.base_model)}</h1>"
        f'<div class="meta">training file {escape(result.training_file)} · test file '
        f"{escape(result.test_file)} ({result.n_test_examples} examples)</div>"
        f"{estimates}{_table(result)}{_plot(result)}</body></html>"
    )


def _table(result: ScalingResult) -> str:
    headers = ["training examples", "fraction", "epochs", "steps"]
    headers += [metric_label(name) for name in result.metric_names] + ["reference loss"]
    rows = [
        ["base model (untrained)", "", "", ""]
        + [f"{result.baseline[name]:.3f}" for name in result.metric_names]
        + [_loss(result.baseline_reference_loss)]
    ]
    for point in result.points:
        rows.append(
            [str(point.n_examples), f"{point.fraction:g}", str(point.n_epochs), str(point.n_steps)]
            + [f"{point.scores[name]:.3f}" for name in result.metric_names]
            + [_loss(point.mean_reference_loss)]
        )
    head = "".join(f"<th>{escape(text)}</th>" for text in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="points"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _loss(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _plot(result: ScalingResult) -> str:
    """Metric (0..1) against log2(examples), one colour per metric, up to twice the largest subset."""
    low = math.log2(result.points[0].n_examples)
    high = math.log2(result.points[-1].n_examples) + 1
    span = high - low if high > low else 1.0

    def x(log_n: float) -> float:
        return MARGIN + (log_n - low) / span * (WIDTH - 2 * MARGIN)

    def y(score: float) -> float:
        return HEIGHT - MARGIN - score * (HEIGHT - 2 * MARGIN)

    parts = [_axes(result, x, y)]
    for colour, name in zip(COLOURS * 4, result.metric_names, strict=False):
        estimate = result.estimate(name)
        points = [(math.log2(p.n_examples), p.scores[name]) for p in result.points]
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [
            f'<circle class="point" cx="{x(a):.1f}" cy="{y(b):.1f}" r="4" fill="{colour}"/>'
            for a, b in points
        ]
        last_x, last_y = points[-1]
        parts.append(
            f'<line class="projection" x1="{x(last_x):.1f}" y1="{y(last_y):.1f}" x2="{x(high):.1f}" '
            f'y2="{y(estimate.predicted_at_double):.1f}" stroke="{colour}" stroke-dasharray="5,4"/>'
        )
        parts.append(
            f'<line class="baseline" x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(result.baseline[name]):.1f}" '
            f'y2="{y(result.baseline[name]):.1f}" stroke="{colour}" stroke-opacity="0.35"/>'
        )
        legend_y = MARGIN + 16 * result.metric_names.index(name)
        label = escape(metric_label(name))
        parts.append(f'<text x="{WIDTH - MARGIN + 6}" y="{legend_y}" fill="{colour}">{label}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH + 120}" height="{HEIGHT}" '
        f'role="img" aria-label="metric against training examples">{"".join(parts)}</svg>'
    )


def _axes(result: ScalingResult, x: Scale, y: Scale) -> str:
    bottom = HEIGHT - MARGIN
    ticks = [p.n_examples for p in result.points] + [2 * result.points[-1].n_examples]
    parts = [
        f'<line x1="{MARGIN}" y1="{bottom}" x2="{WIDTH - MARGIN}" y2="{bottom}" stroke="#555"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{bottom}" stroke="#555"/>',
        f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle">training examples (log scale; '
        f"dashed: expected at twice the data)</text>",
    ]
    for n in sorted(set(ticks)):
        parts.append(
            f'<text x="{x(math.log2(n)):.1f}" y="{HEIGHT - MARGIN + 16}" text-anchor="middle">{n}</text>'
        )
    for score in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{MARGIN - 6}" y="{y(score) + 4:.1f}" text-anchor="end">{score:g}</text>')
    return "".join(parts)
