"""`openft jobs ...`: create, inspect, follow and control fine-tuning jobs on a server, via the official SDK.

Human output is rich tables on stdout, notes and errors on stderr; `--json` prints the API's own objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openft.cli.client import (
    DEFAULT_BASE_URL,
    ApiKey,
    AsJson,
    BaseUrl,
    CliError,
    connected,
    err_console,
)
from openft.cli.hyperparameters import auto_hyperparameters
from openft.cli.job_evaluation import evaluation
from openft.cli.job_follow import LEVEL_STYLES, follow_job, when
from openft.cli.job_method import MethodOptions, method_request
from openft.cli.tables import print_table
from openft.schemas.jobs import JobStatus

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob

jobs_app = typer.Typer(
    help="Create, list, follow and control fine-tuning jobs on an openft server.", no_args_is_help=True
)
console = Console(highlight=False)


JobId = Annotated[str, typer.Argument(help="The job's id (ftjob-...).", show_default=False)]
Limit = Annotated[int, typer.Option(help="How many objects to fetch.")]
After = Annotated[str | None, typer.Option(help="Start after this id (pagination).")]
Metadata = Annotated[list[str] | None, typer.Option("--metadata", help="KEY=VALUE; repeatable.")]
Auto = Annotated[str, typer.Option(help='"auto" or a number.')]
# --help lists each method's own options under their own heading.
DPO, RFT = "With --method dpo", "With --method reinforcement"
WaitEvaluation = Annotated[
    bool,
    typer.Option(
        "--wait-evaluation/--no-wait-evaluation",
        help="For a job with a validation file, wait for the evaluation event that follows its success.",
    ),
]


@jobs_app.command("create")
def create(
    model: Annotated[str, typer.Option(help="A base model, or an ft: model to train further.")],
    training_file: Annotated[str, typer.Option(help="A file id, or a local JSONL file to upload first.")],
    validation_file: Annotated[str | None, typer.Option(help="A file id or a local JSONL file.")] = None,
    suffix: Annotated[str | None, typer.Option(help="Up to 64 characters in the model's name.")] = None,
    n_epochs: Auto = "auto",
    batch_size: Auto = "auto",
    learning_rate_multiplier: Auto = "auto",
    lora_rank: Annotated[int | None, typer.Option(help="LoRA rank (default: the model's).")] = None,
    full: Annotated[
        bool | None, typer.Option("--full/--lora", help="Full fine-tuning or LoRA (default: the model's).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for a reproducible run.")] = None,
    metadata: Metadata = None,
    method: Annotated[
        str, typer.Option(help="What the training file trains: supervised, dpo or reinforcement.")
    ] = "supervised",
    beta: Annotated[
        str | None, typer.Option(help='"auto" (0.1) or a number in (0, 2].', rich_help_panel=DPO)
    ] = None,
    sft_weight: Annotated[
        float | None,
        typer.Option(
            help="Weight of a supervised loss on the preferred outputs, 0 to 10.", rich_help_panel=DPO
        ),
    ] = None,
    grader: Annotated[
        Path | None, typer.Option(help="A JSON file with the grader (required).", rich_help_panel=RFT)
    ] = None,
    response_format: Annotated[
        Path | None,
        typer.Option(help="A JSON file with the response_format every answer follows.", rich_help_panel=RFT),
    ] = None,
    compute_multiplier: Annotated[
        str | None, typer.Option(help='"auto" or a number in (0, 10].', rich_help_panel=RFT)
    ] = None,
    eval_interval: Annotated[
        str | None, typer.Option(help='"auto" or steps between evaluations.', rich_help_panel=RFT)
    ] = None,
    eval_samples: Annotated[
        str | None,
        typer.Option(help='"auto" or a number of answers per validation prompt.', rich_help_panel=RFT),
    ] = None,
    reasoning_effort: Annotated[
        str | None,
        typer.Option(help="low, medium, high or default: how long answers may be.", rich_help_panel=RFT),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", help="Then follow it until it ends.")] = False,
    wait_evaluation: WaitEvaluation = True,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    as_json: AsJson = False,
) -> None:
    """Create a fine-tuning job; local training or validation files are uploaded first."""
    hyperparameters: dict[str, Any] = auto_hyperparameters(
        n_epochs=n_epochs, batch_size=batch_size, learning_rate_multiplier=learning_rate_multiplier
    )
    if lora_rank is not None:
        hyperparameters["lora_rank"] = lora_rank
    if full is not None:
        hyperparameters["full_finetune"] = full
    # openft's extensions (lora_rank, full_finetune, sft_weight) ride along in the method's hyperparameters.
    method_object: Any = method_request(
        method,
        hyperparameters,
        MethodOptions(
            beta=beta,
            sft_weight=sft_weight,
            grader=grader,
            response_format=response_format,
            compute_multiplier=compute_multiplier,
            eval_interval=eval_interval,
            eval_samples=eval_samples,
            reasoning_effort=reasoning_effort,
        ),
    )
    with connected(base_url, api_key) as client:
        if any(Path(name).expanduser().is_file() for name in (training_file, validation_file) if name):
            client.models.retrieve(model)  # a mistyped model fails now, not after a long upload
        job = client.fine_tuning.jobs.create(
            model=model,
            training_file=_file_id(client, training_file, "--training-file"),
            validation_file=_file_id(client, validation_file, "--validation-file")
            if validation_file
            else _omit(),
            suffix=_given(suffix),
            seed=_given(seed),
            metadata=_pairs(metadata) if metadata else _omit(),
            method=method_object,
        )
        if as_json:  # one line when events follow, so that stdout is JSON lines throughout
            typer.echo(job.to_json(indent=None if follow else 2))
        else:
            console.print(_job_table(job, title=f"Created {job.id}"))
        if not follow:
            if not as_json:
                err_console.print(f"Follow it with: openft jobs follow {job.id}")
            return
        code = follow_job(client, job.id, as_json=as_json, poll=False, wait_evaluation=wait_evaluation)
    raise typer.Exit(code)


@jobs_app.command("list")
def list_(
    limit: Limit = 20,
    after: After = None,
    metadata: Metadata = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first (optionally those whose metadata match)."""
    with connected(base_url, api_key) as client:
        page = client.fine_tuning.jobs.list(
            limit=limit, after=_given(after), metadata=_pairs(metadata) if metadata else _omit()
        )
    if as_json:
        _print_json(page.data)
        return
    table = Table(
        "ID", "Status", "Model", "Fine-tuned model", "Created", "Finished", title="Fine-tuning jobs"
    )
    for job in page.data:
        table.add_row(
            job.id,
            _status(job.status),
            job.model,
            job.fine_tuned_model or "",
            when(job.created_at),
            when(job.finished_at),
        )
    _no_wrap(table, 0, 3)
    print_table(console, table)
    if page.has_more and page.data:
        err_console.print(f"More: openft jobs list --after {page.data[-1].id}")


@jobs_app.command("get")
def get(
    job_id: JobId, base_url: BaseUrl = DEFAULT_BASE_URL, api_key: ApiKey = "local", as_json: AsJson = False
) -> None:
    """Show one job: status, files, hyperparameters, model, error."""
    with connected(base_url, api_key) as client:
        job = client.fine_tuning.jobs.retrieve(job_id)
    typer.echo(job.to_json()) if as_json else console.print(_job_table(job))


@jobs_app.command("cancel")
def cancel(
    job_id: JobId, base_url: BaseUrl = DEFAULT_BASE_URL, api_key: ApiKey = "local", as_json: AsJson = False
) -> None:
    """Cancel a job that has not finished; a running one stops at its next step."""
    with connected(base_url, api_key) as client:
        _print_change(client.fine_tuning.jobs.cancel(job_id), as_json)


@jobs_app.command("pause")
def pause(
    job_id: JobId, base_url: BaseUrl = DEFAULT_BASE_URL, api_key: ApiKey = "local", as_json: AsJson = False
) -> None:
    """Pause a queued or running job; it saves a checkpoint and waits for `resume`."""
    with connected(base_url, api_key) as client:
        _print_change(client.fine_tuning.jobs.pause(job_id), as_json)


@jobs_app.command("resume")
def resume(
    job_id: JobId, base_url: BaseUrl = DEFAULT_BASE_URL, api_key: ApiKey = "local", as_json: AsJson = False
) -> None:
    """Put a paused job back in the queue; it continues from its last checkpoint."""
    with connected(base_url, api_key) as client:
        _print_change(client.fine_tuning.jobs.resume(job_id), as_json)


@jobs_app.command("events")
def events(
    job_id: JobId,
    limit: Limit = 20,
    after: After = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    as_json: AsJson = False,
) -> None:
    """A job's latest events (JSON: newest first, as the API sends them; the table reads oldest first)."""
    with connected(base_url, api_key) as client:
        page = client.fine_tuning.jobs.list_events(job_id, limit=limit, after=_given(after))
    if as_json:
        _print_json(page.data)
        return
    table = Table("ID", "Time", "Level", "Message", title=f"Events of {job_id}")
    for event in reversed(page.data):
        table.add_row(event.id, when(event.created_at), _level(event.level), escape(event.message))
    _no_wrap(table, 0, 1)
    print_table(console, table)
    if page.has_more and page.data:
        err_console.print(f"Older: openft jobs events {job_id} --after {page.data[-1].id}")


@jobs_app.command("checkpoints")
def checkpoints(
    job_id: JobId,
    limit: Limit = 10,
    after: After = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    as_json: AsJson = False,
) -> None:
    """A job's checkpoints, newest first; each is a model you can chat with or train further."""
    with connected(base_url, api_key) as client:
        page = client.fine_tuning.jobs.checkpoints.list(job_id, limit=limit, after=_given(after))
    if as_json:
        _print_json(page.data)
        return
    table = Table(
        "ID",
        "Step",
        "Model",
        "Train loss",
        "Train acc",
        "Valid loss",
        "Valid acc",
        "Created",
        title=f"Checkpoints of {job_id}",
    )
    for checkpoint in page.data:
        metrics = checkpoint.metrics
        table.add_row(
            checkpoint.id,
            str(checkpoint.step_number),
            checkpoint.fine_tuned_model_checkpoint,
            _number(metrics.train_loss),
            _number(metrics.train_mean_token_accuracy),
            # The whole validation set's figures when the checkpoint has them (epoch ends), else a batch's.
            _number(_first(metrics.full_valid_loss, metrics.valid_loss)),
            _number(_first(metrics.full_valid_mean_token_accuracy, metrics.valid_mean_token_accuracy)),
            when(checkpoint.created_at),
        )
    _no_wrap(table, 0, 2)
    print_table(console, table)


@jobs_app.command("follow")
def follow(
    job_id: JobId,
    poll: Annotated[bool, typer.Option("--poll", help="Poll the events list instead of streaming.")] = False,
    wait_evaluation: WaitEvaluation = True,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    as_json: AsJson = False,
) -> None:
    """Watch a job until it ends: messages, a progress bar with losses and ETA, then the model name.

    Exit status 0 when it succeeded, 1 when it failed or was cancelled. `--json` prints one event per
    line, then the final job.
    """
    with connected(base_url, api_key) as client:
        code = follow_job(client, job_id, as_json=as_json, poll=poll, wait_evaluation=wait_evaluation)
    raise typer.Exit(code)


def _file_id(client: OpenAI, value: str, option: str) -> str:
    """A local file is uploaded (purpose fine-tune) and processed first; anything else must be an id."""
    path = Path(value).expanduser()
    if path.is_file():
        with err_console.status(f"Uploading {path.name}..."):
            uploaded = client.files.create(file=path, purpose="fine-tune")
            uploaded = client.files.wait_for_processing(uploaded.id, poll_interval=0.5)
        if uploaded.status == "error":
            raise CliError(f"{path}: {uploaded.status_details or 'the server could not read it'}")
        err_console.print(f"Uploaded {path} as {uploaded.id}")
        return uploaded.id
    if value.startswith("file-"):
        return value
    raise CliError(f"{option} {value}: no such local file, and not a file id (file-...)")


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"KEY=VALUE, not {item!r}", param_hint="--metadata")
        pairs[key] = value
    return pairs


def _omit() -> Any:
    from openai import omit

    return omit


def _given(value: Any) -> Any:
    """The value, or the SDK's marker for a parameter left out of the request."""
    return _omit() if value is None else value


def _job_table(job: FineTuningJob, title: str | None = None) -> Table:
    method = _method_parts(job)
    table = Table(show_header=False, title=title or job.id, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows = {
        "status": _status(job.status),
        "model": job.model,
        "fine_tuned_model": job.fine_tuned_model or "",
        "training_file": job.training_file,
        "validation_file": job.validation_file or "",
        "method": method.get("type", "supervised"),
        "hyperparameters": _compact(method.get("hyperparameters") or {}),
        "grader": _grader_name(method.get("grader")),
        "suffix": getattr(job, "user_provided_suffix", None) or "",  # sent by the API, not in the SDK type
        "seed": str(job.seed),
        "metadata": _compact(job.metadata or {}),
        "trained_tokens": str(job.trained_tokens or ""),
        "created_at": when(job.created_at),
        "estimated_finish": when(job.estimated_finish),
        "finished_at": when(job.finished_at),
        "result_files": ", ".join(job.result_files),
        "error": escape(job.error.message) if job.error and job.error.message else "",
    }
    for key, value in rows.items():
        if value:
            table.add_row(key, value)
    return table


def _method_parts(job: FineTuningJob) -> dict[str, Any]:
    """The job's method as plain JSON: its type, hyperparameters and (reinforcement) grader.
    A server that sends no method (OpenAI's older jobs) trained supervised, with the top-level values."""
    sent = cast(dict[str, Any], job.to_dict().get("method") or {})
    kind = sent.get("type", "supervised")
    parts = {"type": kind, **(sent.get(kind) or {})}
    if not parts.get("hyperparameters") and job.hyperparameters is not None:
        parts["hyperparameters"] = job.hyperparameters.to_dict()
    return parts


def _grader_name(grader: dict[str, Any] | None) -> str:
    return escape(f"{grader.get('type')} grader {grader.get('name')!r}") if grader else ""


def _print_change(job: FineTuningJob, as_json: bool) -> None:
    if as_json:
        typer.echo(job.to_json())
    else:
        console.print(f"{job.id} is now {_status(job.status)}.")


def _print_json(objects: Iterable[Any]) -> None:
    typer.echo(json.dumps([o.to_dict(mode="json") for o in objects], indent=2))


def _no_wrap(table: Table, *columns: int) -> None:
    """Ids and model names stay whole (for copying); the other columns give way on narrow terminals."""
    for index in columns:
        table.columns[index].no_wrap = True
        table.columns[index].min_width = 0


def _compact(values: dict[str, Any]) -> str:
    return escape(", ".join(f"{k}={v}" for k, v in values.items()))


STATUS_STYLES: dict[JobStatus, str] = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
}


def _status(status: str) -> str:
    style = STATUS_STYLES.get(cast(JobStatus, status))
    return f"[{style}]{status}[/]" if style else status


def _level(level: str) -> str:
    style = LEVEL_STYLES.get(level)
    return f"[{style}]{level}[/]" if style else level


def _first(*values: float | None) -> float | None:
    return next((value for value in values if value is not None), None)


def _number(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else ""


jobs_app.command("evaluation")(evaluation)
