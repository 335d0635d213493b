// #/jobs: every job of the project, filtered by status, with cancel/pause/resume.

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
  const problem = h("div");
  const list = h("div", { id: "jobs-list", "aria-live": "polite" });
  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Fine-tuning jobs"), h("a", { class: "button", href: "#/new-job" }, "New job")),
    h("div", { class: "toolbar" }, h("label", { for: "status-filter" }, "Status"), filter),
    problem, list);

  let jobs = [];
  const draw = () => {
    const shown = status ? jobs.filter((j) => j.status === status) : jobs;
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
      { empty: status ? `No ${status.replaceAll("_", " ")} jobs.` : "No jobs yet: start one from New job.", label: "Jobs" }));
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
  await load();
  every(REFRESH_S, signal, () => {
    if (jobs.some((j) => ACTIVE.has(j.status))) load().catch(() => {});
  });
}
