// A small SVG line chart for training metrics: a few series against the step, redrawn as points arrive.

import { h, metric, svg } from "./ui.js";

const WIDTH = 640;
const HEIGHT = 240;
const PAD = { left: 52, right: 12, top: 12, bottom: 28 };
const Y_TICKS = 4;

export class LineChart {
  /** `series`: [{key, label}], drawn in that order (their colours come from app.css). */
  constructor(title, series) {
    this.title = title;
    this.series = series.map((s, i) => ({ ...s, index: i, points: [] }));
    this.plot = svg("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": title,
      dataset: { points: "0" },
    });
    this.legend = h("ul", { class: "legend" });
    this.element = h("figure", { class: "chart-box" }, h("figcaption", {}, title), this.plot, this.legend);
    this.pending = false;
    this.draw();
  }

  /** Add a point; steps already seen for a series replace their value (a replayed event). */
  add(key, step, value) {
    const series = this.series.find((s) => s.key === key);
    if (!series || typeof value !== "number" || !Number.isFinite(value)) return;
    const at = series.points.findIndex((p) => p[0] === step);
    if (at >= 0) series.points[at] = [step, value];
    else series.points.push([step, value]);
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.draw();
      });
    }
  }

  get nPoints() {
    return this.series.reduce((n, s) => n + s.points.length, 0);
  }

  draw() {
    const shown = this.series.filter((s) => s.points.length > 0);
    const all = shown.flatMap((s) => s.points);
    this.plot.dataset.points = String(all.length);
    const children = [];
    if (all.length === 0) {
      children.push(svg("text", { x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "chart-empty" }, "No points yet"));
    } else {
      const xs = all.map((p) => p[0]);
      const ys = all.map((p) => p[1]);
      const [x0, x1] = span(Math.min(...xs), Math.max(...xs));
      const [y0, y1] = span(Math.min(...ys), Math.max(...ys));
      const px = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (WIDTH - PAD.left - PAD.right);
      const py = (y) => HEIGHT - PAD.bottom - ((y - y0) / (y1 - y0)) * (HEIGHT - PAD.top - PAD.bottom);
      for (let i = 0; i <= Y_TICKS; i++) {
        const y = y0 + ((y1 - y0) * i) / Y_TICKS;
        children.push(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: py(y), y2: py(y), class: "grid" }));
        children.push(svg("text", { x: PAD.left - 6, y: py(y) + 4, "text-anchor": "end", class: "tick" }, metric(y)));
      }
      children.push(svg("text", { x: PAD.left, y: HEIGHT - 8, class: "tick" }, `step ${x0}`));
      children.push(svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 8, "text-anchor": "end", class: "tick" }, `step ${x1}`));
      for (const s of shown) {
        const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
        const d = sorted.map(([x, y], i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join("");
        children.push(svg("path", { d, class: `line series-${s.index}`, dataset: { key: s.key, points: String(sorted.length) } }));
        if (sorted.length <= 60) {
          for (const [x, y] of sorted) children.push(svg("circle", { cx: px(x), cy: py(y), r: 2.5, class: `dot series-${s.index}` }));
        }
      }
    }
    this.plot.replaceChildren(...children);
    this.legend.replaceChildren(...shown.map((s) => {
      const last = s.points.reduce((a, b) => (b[0] > a[0] ? b : a));
      return h("li", {}, h("span", { class: `swatch series-${s.index}`, "aria-hidden": "true" }), `${s.label}: ${metric(last[1])} (step ${last[0]})`);
    }));
  }
}

/** A range that is never empty, so one point (or a flat line) still has somewhere to go. */
function span(low, high) {
  if (high > low) return [low, high];
  const pad = Math.abs(low) * 0.05 || 1;
  return [low - pad, high + pad];
}
