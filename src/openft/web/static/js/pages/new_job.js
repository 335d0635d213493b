// #/new-job: pick the files (and see their data check), the base model, the method and its
// hyperparameters ("auto" unless set), then create the job.

import { enc, get, listAll, post } from "../api.js";
import { checkReport } from "../check_report.js";
import { modelKind } from "../models_common.js";
import { errorBox, h, replace } from "../ui.js";

const HYPERPARAMETERS = [
  { name: "n_epochs", label: "Epochs", parse: parseInt, methods: ["supervised", "dpo"] },
  { name: "batch_size", label: "Batch size", parse: parseInt, methods: ["supervised", "dpo"] },
  { name: "learning_rate_multiplier", label: "Learning rate multiplier", parse: parseFloat, methods: ["supervised", "dpo"] },
  { name: "beta", label: "Beta (DPO)", parse: parseFloat, methods: ["dpo"] },
];

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
  const method = h("select", { id: "method", name: "method" }, h("option", { value: "supervised" }, "supervised"), h("option", { value: "dpo" }, "dpo"));
  const suffix = h("input", { id: "suffix", name: "suffix", maxlength: "64", placeholder: "optional" });
  const inputs = Object.fromEntries(HYPERPARAMETERS.map((hp) => [hp.name,
    h("input", { id: `hp-${hp.name}`, name: hp.name, inputmode: "decimal", placeholder: "auto", autocomplete: "off" })]));
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
    h("fieldset", {}, h("legend", {}, "Hyperparameters (empty = auto)"), hpFields),
    h("div", { class: "field" }, h("label", { for: "suffix" }, "Model name suffix"), suffix),
    submit, problem);
  replace(main, h("h1", {}, "New fine-tuning job"),
    files.length ? null : h("p", {}, "Upload a training file first on the ", h("a", { href: "#/files" }, "Files"), " page."),
    h("div", { class: "two-columns" }, form, h("div", {}, h("h2", {}, "Data check"), check)));

  const showMethodFields = () => {
    for (const field of hpFields) field.hidden = !field.dataset.methods.split(" ").includes(method.value);
  };
  let checked = 0; // the newest check wins when the user changes files quickly
  const runCheck = async () => {
    const ids = [training.value, validation.value].filter(Boolean);
    if (ids.length === 0) return replace(check, h("p", {}, "Choose a training file to check it."));
    const mine = ++checked;
    replace(check, h("p", { role: "status" }, "Checking…"));
    try {
      const reports = await Promise.all(ids.map((id) => get(`/files/${enc(id)}/check`, { signal })));
      if (mine !== checked) return;
      replace(check, reports.map((report, i) => [h("h3", {}, i === 0 ? "Training file" : "Validation file"), checkReport(report)]));
      submit.disabled = reports.some((r) => !r.ok);
    } catch (error) {
      if (mine === checked) replace(check, errorBox(error));
    }
  };
  training.addEventListener("change", runCheck);
  validation.addEventListener("change", runCheck);
  method.addEventListener("change", showMethodFields);
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
    try {
      const job = await post("/fine_tuning/jobs", body, { signal });
      location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      replace(problem, errorBox(error));
      submit.disabled = false;
    }
  });

  function requestBody() {
    const hyperparameters = {};
    for (const hp of HYPERPARAMETERS) {
      const text = inputs[hp.name].value.trim();
      if (!hp.methods.includes(method.value) || text === "" || text === "auto") continue;
      const value = hp.parse(text);
      if (!Number.isFinite(value) || String(value) !== String(Number(text))) throw new Error(`${hp.label} must be a number or empty (auto).`);
      hyperparameters[hp.name] = value;
    }
    return {
      model: model.value,
      training_file: training.value,
      validation_file: validation.value || undefined,
      suffix: suffix.value.trim() || undefined,
      method: { type: method.value, [method.value]: { hyperparameters } },
    };
  }
}
