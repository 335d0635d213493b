// #/new-job: pick the files (and see their data check), the base model, the method (supervised, DPO,
// or reinforcement with its grader) and its hyperparameters ("auto" unless set), then create the job.

import { enc, get, listAll, post } from "../api.js";
import { checkReport } from "../check_report.js";
import { modelKind } from "../models_common.js";
import { busy, errorBox, h, note, replace } from "../ui.js";

const METHODS = [
  ["supervised", "supervised (chat examples)"],
  ["dpo", "dpo (preference pairs)"],
  ["reinforcement", "reinforcement (prompts and a grader)"],
];
const ALL = ["supervised", "dpo", "reinforcement"];
const HYPERPARAMETERS = [
  { name: "n_epochs", label: "Epochs", parse: parseInt, methods: ALL },
  { name: "batch_size", label: "Batch size", parse: parseInt, methods: ALL },
  { name: "learning_rate_multiplier", label: "Learning rate multiplier", parse: parseFloat, methods: ALL },
  { name: "beta", label: "Beta", parse: parseFloat, methods: ["dpo"] },
  { name: "compute_multiplier", label: "Compute multiplier", parse: parseFloat, methods: ["reinforcement"] },
  { name: "eval_interval", label: "Eval interval (steps)", parse: parseInt, methods: ["reinforcement"] },
  { name: "eval_samples", label: "Eval samples", parse: parseInt, methods: ["reinforcement"] },
  { name: "reasoning_effort", label: "Reasoning effort", choices: ["low", "medium", "high"], methods: ["reinforcement"] },
];
const GRADER_EXAMPLE = JSON.stringify({
  type: "string_check", name: "answer", input: "{{sample.output_text}}", reference: "{{item.answer}}", operation: "eq",
}, null, 1);

export async function render(main, { params, signal }) {
  const [files, models] = await Promise.all([
    listAll("/files?purpose=fine-tune", { signal }),
    get("/models", { signal }).then((page) => page.data.filter((m) => modelKind(m) !== "checkpoint")),
  ]);
  const fileOptions = files.map((f) => h("option", { value: f.id }, `${f.filename} (${f.id})`));
  const training = h("select", { id: "training-file", name: "training_file", required: true },
    h("option", { value: "" }, "Choose a file…"), fileOptions.map((o) => o.cloneNode(true)));
  const validation = h("select", { id: "validation-file", name: "validation_file" },
    h("option", { value: "" }, "None"), fileOptions.map((o) => o.cloneNode(true)));
  const model = h("select", { id: "base-model", name: "model", required: true },
    models.map((m) => h("option", { value: m.id }, `${m.id} (${modelKind(m)})`)));
  if (params.model) model.value = params.model;
  if (params.training_file) training.value = params.training_file;
  const method = h("select", { id: "method", name: "method" }, METHODS.map(([value, text]) => h("option", { value }, text)));
  if (ALL.includes(params.method)) method.value = params.method;
  const suffix = h("input", { id: "suffix", name: "suffix", maxlength: "64", placeholder: "optional" });
  const inputs = Object.fromEntries(HYPERPARAMETERS.map((hp) => [hp.name, hp.choices
    ? h("select", { id: `hp-${hp.name}`, name: hp.name }, h("option", { value: "" }, "auto"), hp.choices.map((c) => h("option", { value: c }, c)))
    : h("input", { id: `hp-${hp.name}`, name: hp.name, inputmode: "decimal", placeholder: "auto", autocomplete: "off" })]));
  const grader = h("textarea", { id: "grader", name: "grader", rows: "7", spellcheck: "false", class: "mono",
    placeholder: `The grader as JSON, for example:\n${GRADER_EXAMPLE}` });
  const graderStatus = h("div", { id: "grader-status", "aria-live": "polite" });
  const validateButton = h("button", { type: "button", id: "validate-grader" }, "Validate grader");
  const graderField = h("div", { class: "field", id: "grader-field" },
    h("label", { for: "grader" }, "Grader (JSON, as OpenAI's graders)"), grader,
    h("p", { class: "note" }, "It scores each sampled answer from 0 to 1; templates read the answer as ",
      h("code", {}, "{{sample.output_text}}"), " and any field of the prompt's line as ", h("code", {}, "{{item.FIELD}}"), "."),
    h("div", { class: "actions" }, validateButton), graderStatus);
  const hpFields = HYPERPARAMETERS.map((hp) => h("div", { class: "field", dataset: { methods: hp.methods.join(" ") } },
    h("label", { for: `hp-${hp.name}` }, hp.label), inputs[hp.name]));
  const check = h("div", { id: "new-job-check", "aria-live": "polite" });
  const problem = h("div");
  const submit = h("button", { type: "submit", id: "create-job" }, "Create job");
  const form = h("form", { class: "job-form", "aria-label": "New fine-tuning job" },
    h("div", { class: "field" }, h("label", { for: "training-file" }, "Training file"), training),
    h("div", { class: "field" }, h("label", { for: "validation-file" }, "Validation file"), validation),
    h("div", { class: "field" }, h("label", { for: "base-model" }, "Base model"), model),
    h("div", { class: "field" }, h("label", { for: "method" }, "Method"), method),
    graderField,
    h("fieldset", {}, h("legend", {}, "Hyperparameters (empty = auto)"), hpFields),
    h("div", { class: "field" }, h("label", { for: "suffix" }, "Model name suffix"), suffix),
    submit, problem);
  replace(main, h("h1", {}, "New fine-tuning job"),
    files.length ? null : h("p", { class: "hint" }, "No training file yet: upload one on the ", h("a", { href: "#/files" }, "Files"), " page first."),
    h("div", { class: "two-columns" }, form, h("div", {}, h("h2", {}, "Data check"), check)));

  let reports = [];
  // The files are checked as the chosen method reads them (a reinforcement file as prompts); the grader's
  // {{item.*}} fields are checked by the job when it starts.
  const blocked = () => reports.some((r) => !r.ok);
  const showMethodFields = () => {
    for (const field of hpFields) field.hidden = !field.dataset.methods.split(" ").includes(method.value);
    graderField.hidden = method.value !== "reinforcement";
    submit.disabled = blocked();
  };
  let checked = 0; // the newest check wins when the user changes files quickly
  const runCheck = async () => {
    const ids = [training.value, validation.value].filter(Boolean);
    if (ids.length === 0) return replace(check, h("p", {}, "Choose a training file to check it."));
    const mine = ++checked;
    replace(check, h("p", { role: "status" }, "Checking…"));
    try {
      const query = `?method=${enc(method.value)}`;
      const found = await Promise.all(ids.map((id) => get(`/files/${enc(id)}/check${query}`, { signal })));
      if (mine !== checked) return;
      reports = found;
      replace(check, method.value === "reinforcement" && note("Checked as reinforcement prompts: the job also checks each line against the grader's {{item.*}} fields when it starts."),
        reports.map((report, i) => [h("h3", {}, i === 0 ? "Training file" : "Validation file"), checkReport(report)]));
      submit.disabled = blocked();
    } catch (error) {
      if (mine === checked) replace(check, errorBox(error));
    }
  };
  training.addEventListener("change", runCheck);
  validation.addEventListener("change", runCheck);
  method.addEventListener("change", () => {
    showMethodFields();
    runCheck();
  });
  validateButton.addEventListener("click", () => busy(validateButton, async () => {
    replace(graderStatus);
    try {
      await post("/fine_tuning/alpha/graders/validate", { grader: parseGrader() }, { signal });
      replace(graderStatus, h("p", { class: "ok-text", role: "status" }, "The grader is valid."));
    } catch (error) {
      replace(graderStatus, errorBox(error));
    }
  }));
  showMethodFields();
  runCheck();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(problem);
    let body;
    try {
      body = requestBody();
    } catch (error) {
      return replace(problem, errorBox(error));
    }
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      const job = await post("/fine_tuning/jobs", body, { signal });
      location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      replace(problem, errorBox(error));
      submit.disabled = blocked();
      submit.textContent = "Create job";
    }
  });

  function parseGrader() {
    const text = grader.value.trim();
    if (!text) throw new Error("Write the grader as JSON first (a reinforcement job needs one).");
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new Error(`The grader is not valid JSON: ${error.message}`);
    }
  }

  function requestBody() {
    const hyperparameters = {};
    for (const hp of HYPERPARAMETERS) {
      const text = inputs[hp.name].value.trim();
      if (!hp.methods.includes(method.value) || text === "" || text === "auto") continue;
      if (hp.choices) {
        hyperparameters[hp.name] = text;
        continue;
      }
      const value = hp.parse(text);
      if (!Number.isFinite(value) || String(value) !== String(Number(text))) throw new Error(`${hp.label} must be a number or empty (auto).`);
      hyperparameters[hp.name] = value;
    }
    return {
      model: model.value,
      training_file: training.value,
      validation_file: validation.value || undefined,
      suffix: suffix.value.trim() || undefined,
      method: { type: method.value, [method.value]: method.value === "reinforcement"
        ? { grader: parseGrader(), hyperparameters }
        : { hyperparameters } },
    };
  }
}
