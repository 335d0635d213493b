// #/jobs/{id}: one job live: metrics charts from its event stream, the event log, hyperparameters,
// checkpoints (each with a link to try it), the result file and an ETA while it runs.

import { downloadFile, enc, get, listAll, readEvents } from "../api.js";
import { LineChart } from "../chart.js";
import { ACTIVE, hyperparametersOf, jobActions, methodOf } from "../jobs_common.js";
import { badge, count, duration, errorBox, every, facts, h, metric, note, replace, table, time } from "../ui.js";

const JOB_REFRESH_S = 5; // the job object (status, ETA, tokens) while it is active
const RECONNECT_S = 2; // after the event stream drops while the job is still active
const MAX_LOG_LINES = 500;

const LOSSES = [
  { key: "train_loss", label: "train loss" },
  { key: "valid_loss", label: "valid loss" },
  { key: "full_valid_loss", label: "full valid loss" },
];
const ACCURACIES = [
  { key: "train_mean_token_accuracy", label: "train token accuracy" },
  { key: "valid_mean_token_accuracy", label: "valid token accuracy" },
  { key: "full_valid_mean_token_accuracy", label: "full valid token accuracy" },
];
const REWARDS = [
  { key: "train_reward_accuracy", label: "train reward accuracy" },
  { key: "valid_reward_accuracy", label: "valid reward accuracy" },
  { key: "full_valid_reward_accuracy", label: "full valid reward accuracy" },
];

export async function render(main, { id, signal }) {
  const path = `/fine_tuning/jobs/${enc(id)}`;
  let job = await get(path, { signal });
  const problem = h("div");
  const head = h("div", { class: "page-head" });
  const summary = h("section", { "aria-labelledby": "summary-title" });
  const charts = [new LineChart("Loss", LOSSES), new LineChart("Token accuracy", ACCURACIES)];
  if (methodOf(job) === "dpo") charts.push(new LineChart("Reward accuracy", REWARDS));
  const checkpoints = h("div", { id: "checkpoints" });
  const log = h("ol", { id: "event-log", class: "event-log", reversed: true, "aria-live": "off" });
  replace(main, head, problem,
    h("section", { class: "charts", "aria-label": "Metrics" }, charts.map((c) => c.element)),
    summary,
    h("section", {}, h("h2", {}, "Checkpoints"), checkpoints),
    h("section", {}, h("h2", {}, "Events"), log));

  const showError = (error) => replace(problem, errorBox(error));
  const drawJob = () => {
    replace(head,
      h("h1", {}, "Job ", h("span", { class: "mono" }, job.id)),
      badge(job.status),
      jobActions(job, (updated) => { job = updated; drawJob(); }, showError));
    replace(summary, h("h2", { id: "summary-title" }, "Details"), facts([
      ["Base model", job.model],
      ["Fine-tuned model", job.fine_tuned_model
        ? h("span", {}, h("span", { class: "mono" }, job.fine_tuned_model), " ", h("a", { href: `#/playground?model=${enc(job.fine_tuned_model)}` }, "Try it"))
        : "—"],
      ["Method", methodOf(job)],
      ["Hyperparameters", hyperparameterList(hyperparametersOf(job))],
      ["Training file", job.training_file],
      ["Validation file", job.validation_file || "—"],
      ["Created", time(job.created_at)],
      ["Finished", time(job.finished_at)],
      ["Estimated finish", eta(job)],
      ["Trained tokens", count(job.trained_tokens)],
      ["Seed", String(job.seed)],
      ["Suffix", job.user_provided_suffix || "—"],
      ["Error", job.error?.message ? h("span", { class: "error-text" }, `${job.error.code || "error"}: ${job.error.message}`) : undefined],
      ["Result file", job.result_files.length ? job.result_files.map((fileId) =>
        h("button", { type: "button", class: "link", onclick: () => downloadFile(fileId, `${job.id}-results.csv`, { base64: true }).catch(showError) }, "Download results CSV"))
        : "—"],
    ]));
  };
  const refreshJob = async () => {
    job = await get(path, { signal });
    drawJob();
  };
  const refreshCheckpoints = async () => {
    const items = await listAll(`${path}/checkpoints`, { signal, max: 100 });
    replace(checkpoints, table(["Step", "Train loss", "Valid loss", "Full valid loss", "Token accuracy", "Model", ""],
      items.map((c) => [
        String(c.step_number), metric(c.metrics.train_loss), metric(c.metrics.valid_loss),
        metric(c.metrics.full_valid_loss), metric(c.metrics.train_mean_token_accuracy),
        h("span", { class: "mono" }, c.fine_tuned_model_checkpoint),
        h("a", { href: `#/playground?model=${enc(c.fine_tuned_model_checkpoint)}` }, "Try it"),
      ]), { empty: "No checkpoints yet.", label: "Checkpoints" }));
  };
  drawJob();
  await refreshCheckpoints();

  const onEvent = (event) => {
    if (event.type === "metrics" && event.data) {
      for (const chart of charts) for (const s of chart.series) chart.add(s.key, event.data.step, event.data[s.key]);
    }
    log.prepend(h("li", { class: `level-${event.level}` }, h("time", {}, time(event.created_at)), " ", event.message));
    while (log.children.length > MAX_LOG_LINES) log.lastElementChild.remove();
    if (event.message.startsWith("Checkpoint created")) refreshCheckpoints().catch(() => {});
  };
  every(JOB_REFRESH_S, signal, () => {
    if (ACTIVE.has(job.status)) refreshJob().catch(() => {});
  });
  followEvents(path, signal, onEvent, async () => {
    await refreshJob();
    await refreshCheckpoints();
  }).catch(showError);
}

/**
 * The job's events, oldest first, from its Server-Sent Events stream: one connection that replays the
 * log and then waits for more (no polling). A dropped stream reconnects after the last event seen.
 */
async function followEvents(path, signal, onEvent, onEnd) {
  let lastId = null;
  for (;;) {
    let ended = false;
    try {
      await readEvents("GET", `${path}/events?stream=true${lastId ? `&after=${enc(lastId)}` : ""}`, {
        signal,
        onEvent: ({ event, id, data }) => {
          if (event === "end") {
            ended = true;
            return;
          }
          if (id) lastId = id;
          onEvent(JSON.parse(data));
        },
      });
    } catch (error) {
      if (signal.aborted || error.status) throw error;
    }
    if (ended) return onEnd();
    if (signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_S * 1000));
  }
}

function hyperparameterList(values) {
  const entries = Object.entries(values).filter(([, v]) => v !== null && v !== undefined);
  if (entries.length === 0) return "—";
  return h("ul", { class: "inline-list", id: "hyperparameters" }, entries.map(([k, v]) => h("li", {}, h("span", { class: "mono" }, k), ` ${v}`)));
}

function eta(job) {
  if (!ACTIVE.has(job.status)) return undefined;
  if (!job.estimated_finish) return note(job.status === "running" ? "estimating…" : "—");
  const left = job.estimated_finish - Date.now() / 1000;
  return `${time(job.estimated_finish)} (about ${duration(Math.max(0, left))} left)`;
}
