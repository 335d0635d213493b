// #/jobs/{id}: one job live: metrics charts from its event stream (the method's own metrics), the
// end-of-job evaluation, the event log, hyperparameters, checkpoints (each with a link to try it), the
// result file and an ETA while it runs.

import { downloadFile, enc, get, listAll, readEvents } from "../api.js";
import { LineChart } from "../chart.js";
import { evaluationView } from "../evaluation.js";
import { chartsFor, checkpointColumnsFor } from "../job_metrics.js";
import { ACTIVE, hyperparametersOf, jobActions, methodOf } from "../jobs_common.js";
import { badge, count, duration, errorBox, every, facts, h, metric, note, replace, table, time } from "../ui.js";

const JOB_REFRESH_S = 5; // the job object (status, ETA, tokens) while it is active
const RECONNECT_S = 2; // after the event stream drops while the job is still active
const MAX_LOG_LINES = 500;
const EVALUATION_POLL_S = 3; // after the job succeeded, until its evaluation event is written

export async function render(main, { id, signal }) {
  const path = `/fine_tuning/jobs/${enc(id)}`;
  let job = await get(path, { signal });
  const problem = h("div");
  const head = h("div", { class: "page-head" });
  const summary = h("section", { "aria-labelledby": "summary-title" });
  const charts = chartsFor(methodOf(job)).map(([title, series]) => new LineChart(title, series));
  const checkpointColumns = checkpointColumnsFor(methodOf(job));
  const evaluationEvent = h("div", { id: "evaluation-event" });
  const evaluation = h("div", { id: "evaluation-box" });
  const checkpoints = h("div", { id: "checkpoints" });
  const log = h("ol", { id: "event-log", class: "event-log", reversed: true, "aria-live": "off" });
  replace(main, head, problem, evaluationEvent,
    h("section", { class: "charts", "aria-label": "Metrics" }, charts.map((c) => c.element)),
    evaluation,
    summary,
    h("section", {}, h("h2", {}, "Checkpoints"), checkpoints),
    h("section", {}, h("h2", {}, "Events"), log));

  const showError = (error) => replace(problem, errorBox(error));
  let headStatus = null; // the head (badge and buttons) is redrawn only when the status changes, so a
  // refresh never swaps a button out from under a click
  let drawnJob = null; // the details are redrawn only when the job object changed (a finished job's
  // page re-reads it when its evaluation arrives: nothing to redraw, nothing a reader loses)
  const drawJob = () => {
    if (job.status !== headStatus) {
      headStatus = job.status;
      replace(head,
        h("h1", {}, "Job ", h("span", { class: "mono" }, job.id)),
        badge(job.status),
        jobActions(job, (updated) => { job = updated; drawJob(); }, showError));
    }
    const shown = JSON.stringify(job);
    if (shown === drawnJob) return;
    drawnJob = shown;
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
  // Many events in a row (the history replayed when the page opens) make one or two reads, not many.
  let refreshing = null;
  let again = false;
  const refreshSoon = () => {
    if (refreshing) { again = true; return; }
    refreshing = refreshJob().catch(() => {}).finally(() => {
      refreshing = null;
      if (again) { again = false; refreshSoon(); }
    });
  };
  const refreshCheckpoints = async () => {
    const items = await listAll(`${path}/checkpoints`, { signal, max: 100 });
    replace(checkpoints, table(["Step", ...checkpointColumns.map(([heading]) => heading), "Model", ""],
      items.map((c) => [
        String(c.step_number), ...checkpointColumns.map(([, name]) => metric(c.metrics[name])),
        h("span", { class: "mono" }, c.fine_tuned_model_checkpoint),
        h("a", { href: `#/playground?model=${enc(c.fine_tuned_model_checkpoint)}` }, "Try it"),
      ]), { empty: "No checkpoints yet.", label: "Checkpoints" }));
  };
  const seen = new Set(); // evaluation events already handled
  let evaluationShown = false;
  let evaluationSettled = false; // its event seen (written, or failed: warn), or turned off on this server
  let evaluationLoading = null;
  const loadEvaluation = () => {
    evaluationLoading ||= fetchEvaluation().finally(() => { evaluationLoading = null; });
    return evaluationLoading;
  };
  const fetchEvaluation = async () => {
    if (evaluationShown) return;
    if (!job.validation_file) {
      return replace(evaluation, h("h2", {}, "Evaluation"),
        note("No evaluation: a job is compared with its base model on its validation file when it succeeds, and this one has none."));
    }
    if (job.status !== "succeeded") {
      return replace(evaluation, h("h2", {}, "Evaluation"), note(ACTIVE.has(job.status)
        ? "When the job succeeds, its base model and the fine-tuned model answer the validation file and are compared here."
        : `No evaluation: the job ${job.status.replaceAll("_", " ")} (only a job that succeeds is evaluated).`));
    }
    try {
      const result = await get(`${path}/evaluation`, { signal });
      // Shown; its event may still be on its way (the result is written just before the event), so
      // the page keeps looking for the event until it has seen it.
      evaluationShown = true;
      replace(evaluation, evaluationView(result, job.id));
    } catch (error) {
      if (error.status !== 404) throw error;
      if (error.code === "evaluation_disabled") evaluationSettled = true;
      replace(evaluation, h("h2", {}, "Evaluation"), note(error.message));
    }
  };
  drawJob();
  await Promise.all([refreshCheckpoints(), loadEvaluation().catch(showError)]);

  const onEvent = (event) => {
    if (event.type === "metrics" && event.data) {
      for (const chart of charts) for (const s of chart.series) chart.add(s.key, event.data.step, event.data[s.key]);
    }
    log.prepend(h("li", { class: `level-${event.level}` }, h("time", {}, time(event.created_at)), " ", event.message));
    while (log.children.length > MAX_LOG_LINES) log.lastElementChild.remove();
    if (event.message.startsWith("Checkpoint created")) refreshCheckpoints().catch(() => {});
    // A status change comes as a message event (started, paused, ...); a step while the page still shows
    // the job queued means it started: the job object (status, buttons) is re-read at once, not later.
    if (ACTIVE.has(job.status) && (event.type !== "metrics" || job.status !== "running")) refreshSoon();
    if (event.data?.kind === "evaluation") {
      seen.add(event.id);
      evaluationSettled = true;
      replace(evaluationEvent, h("p", { class: `evaluation-event level-${event.level}`, role: "status" },
        h("strong", {}, event.level === "warn" ? "Evaluation failed. " : "Evaluation. "), event.message,
        event.level === "warn" ? null : [" ", h("a", { href: "#evaluation-title", onclick: (e) => {
          e.preventDefault();
          document.getElementById("evaluation-title")?.scrollIntoView();
        } }, "See the answers")]));
      refreshJob().then(loadEvaluation).catch(() => {});
    }
  };
  every(JOB_REFRESH_S, signal, () => {
    if (ACTIVE.has(job.status)) refreshJob().catch(() => {});
  });
  followEvents(path, signal, onEvent, async () => {
    await refreshJob();
    await refreshCheckpoints();
    await loadEvaluation();
    if (job.status === "succeeded" && job.validation_file) waitForEvaluation();
  }).catch(showError);

  // The event stream ends with the job, and the evaluation comes after: look for its event until then.
  function waitForEvaluation() {
    const stop = new AbortController();
    signal.addEventListener("abort", () => stop.abort());
    const look = async () => {
      if (evaluationSettled) return stop.abort();
      const events = (await get(`${path}/events?limit=20`, { signal })).data;
      for (const event of events.reverse()) {
        if (event.data?.kind !== "evaluation" || seen.has(event.id)) continue;
        seen.add(event.id);
        onEvent(event);
      }
    };
    every(EVALUATION_POLL_S, stop.signal, () => look().catch(() => {}));
  }
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
