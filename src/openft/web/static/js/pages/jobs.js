// #/jobs: every job of the project, filtered by status and by a metadata pair, with cancel/pause/resume.

import { listAll } from "../api.js";
import { ACTIVE, STATUSES, jobActions, methodOf } from "../jobs_common.js";
import { badge, count, errorBox, every, h, replace, table, time } from "../ui.js";

const REFRESH_S = 5; // only while some job is still active

export async function render(main, { params, signal }) {
  let status = params.status || "";
  const filter = h("select", { id: "status-filter", name: "status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s }, s.replaceAll("_", " "))));
  filter.value = status;
  // "key=value": the jobs whose metadata holds that pair (as the API's metadata[key]=value filter).
  const metadataFilter = h("input", { id: "metadata-filter", name: "metadata", type: "search",
    placeholder: "key=value", autocomplete: "off", spellcheck: "false" });
  const problem = h("div");
  const list = h("div", { id: "jobs-list", "aria-live": "polite" });
  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Fine-tuning jobs"), h("a", { class: "button", href: "#/new-job" }, "New job")),
    h("div", { class: "toolbar" }, h("label", { for: "status-filter" }, "Status"), filter,
      h("label", { for: "metadata-filter" }, "Metadata"), metadataFilter),
    problem, list);

  let jobs = [];
  const draw = () => {
    const [key, ...rest] = metadataFilter.value.split("=");
    const value = rest.join("=").trim();
    const shown = jobs.filter((j) => (!status || j.status === status)
      && (!key.trim() || (j.metadata ?? {})[key.trim()] === value));
    replace(list, table(
      ["Job", "Status", "Model", "Method", "Created", "Finished", "Trained tokens", "Actions"],
      shown.map((job) => [
        h("a", { href: `#/jobs/${job.id}` }, job.id),
        badge(job.status),
        h("span", { class: "model-name" }, job.fine_tuned_model || job.model),
        methodOf(job),
        time(job.created_at),
        time(job.finished_at),
        count(job.trained_tokens),
        jobActions(job, load, (error) => replace(problem, errorBox(error))),
      ]),
      { empty: jobs.length ? "No job matches the filters." : "No jobs yet: start one from New job.", label: "Jobs" }));
  };
  async function load() {
    jobs = await listAll("/fine_tuning/jobs", { signal });
    replace(problem);
    draw();
  }
  filter.addEventListener("change", () => {
    status = filter.value;
    history.replaceState(null, "", status ? `#/jobs?status=${status}` : "#/jobs");
    draw();
  });
  metadataFilter.addEventListener("input", draw);
  await load();
  every(REFRESH_S, signal, () => {
    if (jobs.some((j) => ACTIVE.has(j.status))) load().catch(() => {});
  });
}
