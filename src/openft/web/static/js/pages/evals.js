// #/evals: the project's evals and, for each, its runs with their scores; "Compare answers" puts the
// runs' answers to each item side by side (the newest MAX_COMPARED runs), with each criterion's verdict.

import { enc, get, listAll } from "../api.js";
import { badge, errorBox, h, note, replace, table, time } from "../ui.js";

const MAX_COMPARED = 3;
const MAX_ITEMS = 500;

export async function render(main, { signal }) {
  const evals = await listAll("/evals?order=desc", { signal });
  const sections = await Promise.all(evals.map(async (ev) => {
    const runs = await listAll(`/evals/${enc(ev.id)}/runs?order=desc`, { signal, max: 100 });
    const answers = h("div", { class: "eval-answers", "aria-live": "polite" });
    const compare = h("button", { type: "button", "data-eval": ev.id }, "Compare answers");
    compare.addEventListener("click", async () => {
      compare.disabled = true;
      replace(answers, h("p", { role: "status" }, "Loading answers…"));
      try {
        replace(answers, await answersTable(ev, runs.slice(0, MAX_COMPARED), signal));
      } catch (error) {
        replace(answers, errorBox(error));
      } finally {
        compare.disabled = false;
      }
    });
    return h("section", { class: "eval" },
      h("h2", {}, ev.name || ev.id, " ", h("span", { class: "mono dim" }, ev.id)),
      h("p", { class: "dim" }, `Created ${time(ev.created_at)} · ${ev.testing_criteria?.length || 0} testing criteria`),
      table(["Run", "Model", "Status", "Passed", "Failed", "Errored", "Score by criterion", "Created"],
        runs.map((run) => [
          run.name || run.id,
          h("span", { class: "mono" }, run.model || "—"),
          badge(run.status),
          String(run.result_counts.passed), String(run.result_counts.failed), String(run.result_counts.errored),
          h("ul", { class: "inline-list" }, run.per_testing_criteria_results.map((c) =>
            h("li", {}, `${c.testing_criteria}: ${score(c)}`))),
          time(run.created_at),
        ]), { empty: "No runs yet.", label: `Runs of ${ev.name || ev.id}` }),
      runs.length ? [compare, answers] : null);
  }));
  replace(main, h("h1", {}, "Evals"),
    evals.length ? sections : h("p", {}, "No evals yet. Create one through the Evals API (client.evals.create) or ", h("code", {}, "openft eval"), "."));
}

/** One row per dataset item: the item, then each run's answer and its verdicts. */
async function answersTable(ev, runs, signal) {
  const perRun = await Promise.all(runs.map((run) =>
    listAll(`/evals/${enc(ev.id)}/runs/${enc(run.id)}/output_items`, { signal, max: MAX_ITEMS })));
  const byItem = new Map();
  perRun.forEach((items, column) => {
    for (const item of items) {
      if (!byItem.has(item.datasource_item_id)) byItem.set(item.datasource_item_id, { item: item.datasource_item, cells: [] });
      byItem.get(item.datasource_item_id).cells[column] = item;
    }
  });
  if (byItem.size === 0) return note("No answers yet: the runs have no output items.");
  const rows = [...byItem.entries()].sort(([a], [b]) => a - b).map(([, { item, cells }]) => [
    h("code", { class: "item" }, JSON.stringify(item)),
    ...runs.map((_, column) => answerCell(cells[column])),
  ]);
  return table(["Item", ...runs.map((run) => run.name || run.id)], rows, { label: `Answers of ${ev.name || ev.id}` });
}

function answerCell(outputItem) {
  if (!outputItem) return "—";
  // A run over a jsonl source grades the answers its file holds: no sample of its own to show.
  const sample = outputItem.sample;
  const error = sample?.error?.message;
  const text = sample ? sample.output.map((m) => m.content).join("\n") || "(empty)" : "(the file's own answer)";
  return h("div", { class: `answer verdict-${outputItem.status}` },
    h("p", { class: "answer-text" }, error ? h("span", { class: "error-text" }, error) : text),
    h("ul", { class: "inline-list" }, outputItem.results.map((r) =>
      h("li", {}, `${r.passed ? "✓" : "✗"} ${r.name} (${Number(r.score).toFixed(2)})`))));
}

function score(criterion) {
  const total = criterion.passed + criterion.failed;
  return total ? `${Math.round((100 * criterion.passed) / total)}% (${criterion.passed}/${total})` : "—";
}
