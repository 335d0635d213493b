// The data checker's report (GET /v1/files/{id}/check) as a readable block: verdict, errors, lint.

import { count, facts, h, note } from "./ui.js";

export function checkReport(report) {
  const training = report.training || {};
  const blocking = report.blocking_error;
  return h("section", { class: `check-report ${report.ok ? "ok" : "failed"}`, "aria-label": "Data check", dataset: { ok: String(report.ok) } },
    h("p", { class: "verdict", role: "status" }, report.ok
      ? `Ready to train: ${count(training.n_valid_examples)} valid examples (${training.format || "unknown"} format).`
      : `Not trainable as it is: ${blocking?.message || "the file has errors."}`),
    facts([
      ["Format", training.format || "—"],
      ["Examples", `${count(training.n_valid_examples)} valid of ${count(training.n_examples)}`],
      ["Tokens", tokenSummary(training.tokens)],
      ["Estimate", report.estimate ? primitives(report.estimate) : undefined],
    ]),
    errorList(training.errors || []),
    lintList(report.lint || []));
}

function errorList(groups) {
  if (groups.length === 0) return null;
  return h("div", {}, h("h3", {}, "Errors"), h("ul", { class: "issues errors" }, groups.map((group) =>
    h("li", {}, h("strong", {}, `${group.code} (${group.count})`), h("ul", {}, group.first.map((e) =>
      h("li", {}, e.line ? `line ${e.line}: ` : "", e.message)))))));
}

function lintList(findings) {
  if (findings.length === 0) return note("No style findings.");
  return h("div", {}, h("h3", {}, "Findings"), h("ul", { class: "issues lint" }, findings.map((f) =>
    h("li", {}, h("strong", {}, f.code), ` ${f.message} `, f.advice ? h("span", { class: "advice" }, f.advice) : null))));
}

function tokenSummary(tokens) {
  if (!tokens) return "counted when a base model is chosen";
  return primitives(tokens);
}

/** The numbers and strings of an object, one line each (nested parts are left to the JSON API). */
function primitives(object) {
  const entries = Object.entries(object).filter(([, v]) => v !== null && typeof v !== "object");
  if (entries.length === 0) return "—";
  return h("ul", { class: "inline-list" }, entries.map(([k, v]) => h("li", {}, `${k.replaceAll("_", " ")}: ${typeof v === "number" ? count(v) : v}`)));
}
