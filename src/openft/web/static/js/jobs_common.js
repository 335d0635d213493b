// What the jobs list and a job's page share: the status groups and the cancel/pause/resume buttons.

import { enc, post } from "./api.js";
import { h } from "./ui.js";

export const STATUSES = ["validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"];
export const ACTIVE = new Set(["validating_files", "queued", "running", "paused"]);
const PAUSABLE = new Set(["queued", "running"]);

export function methodOf(job) {
  return job.method?.type || "supervised";
}

/** The hyperparameters training uses (resolved from "auto" once the files are validated). */
export function hyperparametersOf(job) {
  const type = methodOf(job);
  return job.method?.[type]?.hyperparameters || job.hyperparameters || {};
}

/** Cancel, pause and resume, as the job's status allows; `done(job)` gets the answer. */
export function jobActions(job, done, fail) {
  const act = (verb) => async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      done(await post(`/fine_tuning/jobs/${enc(job.id)}/${verb}`));
    } catch (error) {
      button.disabled = false;
      fail(error);
    }
  };
  const label = (verb) => `${verb[0].toUpperCase()}${verb.slice(1)} ${job.id}`;
  return h("div", { class: "actions" },
    PAUSABLE.has(job.status) && h("button", { type: "button", "aria-label": label("pause"), dataset: { action: "pause" }, onclick: act("pause") }, "Pause"),
    job.status === "paused" && h("button", { type: "button", "aria-label": label("resume"), dataset: { action: "resume" }, onclick: act("resume") }, "Resume"),
    ACTIVE.has(job.status) && h("button", { type: "button", class: "danger", "aria-label": label("cancel"), dataset: { action: "cancel" }, onclick: act("cancel") }, "Cancel"));
}
