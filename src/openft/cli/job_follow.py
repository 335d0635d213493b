"""`openft jobs follow` (and `create --follow`): a job's events live, under a progress bar, until it ends.

Messages scroll above a bar that metrics events move (step, losses, accuracy, the worker's ETA); the last
line names the model, or the error. `--json` prints one event per line, then the final job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

from openft.cli.client import EventFeed, err_console
from openft.schemas.jobs import EVALUATION_EVENT_KIND

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent

console = Console(highlight=False)

ETA_REFRESH_S = 5.0  # how often `follow` re-reads the job for its estimated_finish
# A job with a validation file is evaluated after it succeeds (about a minute on a small model); the
# server stops an evaluation after OPENFT_JOB_EVAL_TIMEOUT_S (10 minutes by default).
EVALUATION_WAIT_S = 15 * 60
LEVEL_STYLES = {"info": "", "warn": "yellow", "error": "red"}


def when(timestamp: int | None) -> str:
    """A unix time as local date and time; empty for none."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S") if timestamp else ""


def follow_job(
    client: OpenAI, job_id: str, *, as_json: bool, poll: bool, wait_evaluation: bool = True
) -> int:
    """Show the job's events until it ends (and, by default, until the evaluation that follows the success
    of a job with a validation file has reported); the exit status `openft jobs follow` ends with."""
    job = client.fine_tuning.jobs.retrieve(job_id)  # an unknown id fails here, before any output
    feed = EventFeed(client, job_id, stream=not poll)
    events = _with_evaluation(client, feed) if wait_evaluation else feed
    try:
        if as_json:
            for event in events:
                typer.echo(event.to_json(indent=None))
        else:
            with _Watch(client, job) as watch:
                for event in events:
                    watch.show(event)
                job = client.fine_tuning.jobs.retrieve(job_id)
                watch.progress.update(watch.task, description=job.status, estimated_finish=None)
    except KeyboardInterrupt:
        err_console.print(f"Stopped following; {job_id} goes on (openft jobs cancel {job_id} stops it).")
        return 130
    if as_json:
        job = client.fine_tuning.jobs.retrieve(job_id)
        typer.echo(job.to_json(indent=None))
    return _conclude(job, err_console if as_json else console)


def _with_evaluation(client: OpenAI, feed: EventFeed) -> Iterator[FineTuningJobEvent]:
    """The feed's events, then, for a job that succeeded with a validation file, those up to its
    evaluation's event: it is written after the job's status is final, so the feed alone ends before it."""
    evaluated = False
    for event in feed:
        evaluated = evaluated or _is_evaluation(event)
        yield event
    job = client.fine_tuning.jobs.retrieve(feed.job_id)
    if evaluated or job.status != "succeeded" or not job.validation_file:
        return
    deadline = time.monotonic() + EVALUATION_WAIT_S
    while time.monotonic() < deadline:
        for event in feed.poll_once():
            yield event
            if _is_evaluation(event):
                return
        if not _evaluation_expected(client, feed.job_id):
            return
        time.sleep(feed.poll_interval_s)
    err_console.print(f"Stopped waiting for the evaluation of {feed.job_id}; see `openft jobs events`.")


def _is_evaluation(event: FineTuningJobEvent) -> bool:
    data = event.data
    return isinstance(data, dict) and data.get("kind") == EVALUATION_EVENT_KIND


def _evaluation_expected(client: OpenAI, job_id: str) -> bool:
    """False when the server says it will not evaluate this job (evaluations turned off there)."""
    import openai

    try:
        client.get(f"/fine_tuning/jobs/{job_id}/evaluation", cast_to=object)
    except openai.NotFoundError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return body.get("code") != "evaluation_disabled"
    return True  # stored already: its event is being written


class _EtaColumn(ProgressColumn):
    """Time left until the job's `estimated_finish` (the worker's estimate), counting down between reads."""

    def render(self, task: Task) -> Text:
        if task.total and task.completed >= task.total:
            return Text("finishing", style="progress.remaining")  # an estimate read earlier may lag
        finish = task.fields.get("estimated_finish")
        if not finish:
            return Text("ETA -:--", style="progress.remaining")
        left_s = max(0, int(finish - time.time()))
        return Text(f"ETA {left_s // 60}:{left_s % 60:02d}", style="progress.remaining")


class _Watch:
    """The live view of a job: messages scroll above a progress bar that metrics events move."""

    def __init__(self, client: OpenAI, job: FineTuningJob) -> None:
        self.client, self.job_id = client, job.id
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[scores]}"),
            _EtaColumn(),
            console=console,
        )
        self.task = self.progress.add_task(
            job.status, total=None, scores="", estimated_finish=job.estimated_finish
        )
        self.scores: dict[str, float] = {}
        self.job_read_at = time.monotonic()

    def __enter__(self) -> _Watch:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def show(self, event: FineTuningJobEvent) -> None:
        if event.type == "metrics" and isinstance(event.data, dict):
            self._step(event.data)
            if console.is_terminal:
                return  # the bar says it; logs and pipes get the line as well
        style = LEVEL_STYLES.get(event.level, "")
        text = escape(event.message)
        # Whole lines, however long (paths, data warnings): they are read, grepped and copied.
        self.progress.console.print(
            f"[dim]{when(event.created_at)}[/] " + (f"[{style}]{text}[/]" if style else text), soft_wrap=True
        )

    def _step(self, data: dict[str, Any]) -> None:
        # Validation figures come only every few steps: keep the last ones shown until new ones arrive.
        for label, keys in SCORE_KEYS.items():
            value = next((data[k] for k in keys if isinstance(data.get(k), int | float)), None)
            if value is not None:
                self.scores[label] = float(value)
        shown = (f"{label} {self.scores[label]:.3f}" for label in SCORE_KEYS if label in self.scores)
        fields: dict[str, Any] = {"scores": "  ".join(shown)}
        if time.monotonic() - self.job_read_at > ETA_REFRESH_S:
            job = self.client.fine_tuning.jobs.retrieve(self.job_id)
            fields |= {"estimated_finish": job.estimated_finish, "description": job.status}
            self.job_read_at = time.monotonic()
        self.progress.update(
            self.task,
            completed=int(data.get("step", 0)),
            total=int(data.get("total_steps", 0)) or None,
            **fields,
        )


SCORE_KEYS = {
    "loss": ("train_loss",),
    "valid loss": ("full_valid_loss", "valid_loss"),
    "acc": ("train_mean_token_accuracy",),
}


def _conclude(job: FineTuningJob, out: Console) -> int:
    """The last line of `follow` (stderr under --json, so stdout stays JSON) and the exit status."""
    if job.status == "succeeded":
        tokens = f" ({job.trained_tokens} tokens trained)" if job.trained_tokens else ""
        out.print(f"[green]Succeeded[/]: {job.id} -> [bold]{job.fine_tuned_model}[/]{tokens}")
        return 0
    if job.status == "failed":
        error = job.error
        where = f" [{error.code}{', ' + error.param if error.param else ''}]" if error and error.code else ""
        message = error.message if error and error.message else "no error message"
        out.print(f"[red]Failed[/]: {job.id}: {escape(message)}{escape(where)}")
        return 1
    out.print(f"[yellow]{job.status.capitalize()}[/]: {job.id}")
    return 1
