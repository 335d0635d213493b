// #/evals: the project's evals and, for each, its runs with their scores.

import { enc, get, listAll } from "../api.js";
import { badge, h, replace, table, time } from "../ui.js";

export async function render(main, { signal }) {
  const evals = await listAll("/evals?order=desc", { signal });
  const sections = await Promise.all(evals.map(async (ev) => {
    const runs = await listAll(`/evals/${enc(ev.id)}/runs?order=desc`, { signal, max: 100 });
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
        ]), { empty: "No runs yet.", label: `Runs of ${ev.name || ev.id}` }));
  }));
  replace(main, h("h1", {}, "Evals"),
    evals.length ? sections : h("p", {}, "No evals yet. Create one through the Evals API (client.evals.create) or ", h("code", {}, "openft eval"), "."));
}

function score(criterion) {
  const total = criterion.passed + criterion.failed;
  return total ? `${Math.round((100 * criterion.passed) / total)}% (${criterion.passed}/${total})` : "—";
}
