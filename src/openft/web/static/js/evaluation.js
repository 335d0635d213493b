// A job's end-of-job evaluation (GET /v1/fine_tuning/jobs/{id}/evaluation, an openft extension): the
// scores of the model it started from against the fine-tuned one, and their answers side by side.

import { downloadFile, enc } from "./api.js";
import { errorBox, h, metric, replace, table } from "./ui.js";

const VERDICTS = ["all", "improved", "regressed", "same"];

function label(name) {
  return name.replaceAll("_", " ");
}

function change(before, after) {
  if (typeof before !== "number" || typeof after !== "number") return "—";
  const delta = after - before;
  return `${delta > 0 ? "+" : ""}${metric(delta)}`;
}

/** The prompt a row answered: its last user message (or the plain prompt of a completion case). */
function promptOf(testCase) {
  if (typeof testCase.prompt_text === "string") return testCase.prompt_text;
  const users = (testCase.messages || []).filter((m) => m.role === "user");
  const last = users[users.length - 1];
  if (!last) return "—";
  return typeof last.content === "string" ? last.content : JSON.stringify(last.content);
}

export function evaluationView(result, jobId) {
  const base = result.baseline;
  const tuned = result.candidate;
  const summaryRows = result.metric_names.map((name) => [
    name === result.primary_metric ? h("strong", {}, label(name)) : label(name),
    metric(base.means[name]), metric(tuned.means[name]), change(base.means[name], tuned.means[name]),
  ]);
  if (typeof base.mean_reference_loss === "number" && typeof tuned.mean_reference_loss === "number") {
    summaryRows.push(["reference loss (lower is better)", metric(base.mean_reference_loss), metric(tuned.mean_reference_loss),
      change(base.mean_reference_loss, tuned.mean_reference_loss)]);
  }
  summaryRows.push(["answers cut at the token limit", String(base.n_truncated), String(tuned.n_truncated), ""]);

  const examples = h("div", { id: "evaluation-examples" });
  const problem = h("div");
  let shown = "all";
  const filterButtons = VERDICTS.map((verdict) => {
    const n = verdict === "all" ? result.rows.length : result[`n_${verdict}`];
    return h("button", { type: "button", class: "toggle", dataset: { verdict }, "aria-pressed": String(verdict === shown),
      onclick: () => { shown = verdict; drawExamples(); } }, `${verdict} (${n ?? 0})`);
  });
  const drawExamples = () => {
    for (const button of filterButtons) button.setAttribute("aria-pressed", String(button.dataset.verdict === shown));
    const rows = result.rows.filter((row) => shown === "all" || row.verdict === shown);
    // A reinforcement job's prompts have no reference: the grader reads the line's other fields.
    const graded = result.rows.some((row) => row.case.item);
    replace(examples, table(
      ["Line", "Prompt", graded ? "Item (what the grader reads)" : "Reference",
        `Base: ${base.label}`, `Fine-tuned: ${tuned.label}`, "Verdict"],
      rows.map((row) => [
        String(row.case.line ?? "—"),
        h("div", { class: "answer-text" }, promptOf(row.case)),
        h("div", { class: "answer-text" }, graded ? itemFields(row.case.item) : row.case.reference ?? "—"),
        answerCell(row.baseline, result.primary_metric),
        answerCell(row.candidate, result.primary_metric),
        h("span", { class: `verdict-${row.verdict}` }, row.verdict),
      ]), { empty: `No ${shown} examples.`, label: "Evaluation examples" }));
  };
  drawExamples();

  return h("section", { id: "evaluation", "aria-labelledby": "evaluation-title" },
    h("h2", { id: "evaluation-title" }, "Evaluation: base against fine-tuned"),
    h("p", { class: "headline", role: "status" }, `${result.headline} on ${result.n_examples} validation examples: `,
      `${result.n_improved} improved, ${result.n_regressed} regressed, ${result.n_same} the same.`),
    table(["Metric", `Base (${base.label})`, "Fine-tuned", "Change"], summaryRows, { label: "Evaluation scores" }),
    h("div", { class: "actions spaced" },
      h("span", { class: "dim" }, "Show:"), filterButtons,
      h("button", { type: "button", class: "link", onclick: () =>
        downloadFile(null, `${jobId}-evaluation.html`, { path: `/fine_tuning/jobs/${enc(jobId)}/evaluation/report` })
          .catch((error) => replace(problem, errorBox(error))) }, "Download the HTML report")),
    problem, examples);
}

function answerCell(answer, primary) {
  const score = answer.scores?.[primary];
  return h("div", {},
    h("div", { class: "answer-text" }, answer.text || h("span", { class: "dim" }, "(empty)")),
    h("div", { class: "dim small" }, `${label(primary)} ${metric(score)}${answer.truncated ? " · cut" : ""}`));
}

function itemFields(item) {
  const { messages, tools, ...fields } = item ?? {};
  return JSON.stringify(fields);
}
