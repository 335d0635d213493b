"""`openft eval`: a fine-tuned model against its base on a held-out test set, side by side.

    openft eval --model runs/demo --baseline openft-tiny --test-file test.jsonl --out report.html
    openft eval --model ft:openft-tiny:personal::abc12345 --test-file test.jsonl --json results.json
    openft eval --model ft:... --baseline openft-tiny --test-file test.jsonl --base-url http://host:8000/v1
    OPENFT_BASELINE_API_KEY=sk-... openft eval --model ft:... --test-file test.jsonl \
        --baseline gpt-4o-mini --baseline-base-url https://api.openai.com/v1

Without --base-url the models run in this process, on the inference engine that serves
/v1/chat/completions (torch): base models by catalog name, `openft train` outputs and checkpoints by
directory, and `ft:` models through the data dir's database, so no server has to run. With --base-url
a server answers through the openai SDK (no reference loss then). With --baseline-base-url the baseline
alone is asked of another OpenAI-compatible endpoint. torch and the services are imported
only when the command runs. See docs/evaluation.md.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openft.cli.client import ApiKey, reported_errors
from openft.cli.options import DataDir
from openft.errors import OpenFTError
from openft.train.environment import set_model_process_environment

if TYPE_CHECKING:
    from openft.comparison.compare import ComparisonResult
    from openft.comparison.runners import ModelRunner
    from openft.comparison.testset import TestCase
    from openft.inference.types import Engine, ModelRef
    from openft.settings import Settings

console = Console(highlight=False)
SHOWN_ROWS = 30  # examples printed in the terminal; the HTML report has all
CELL_CHARS = 200


def eval_command(
    model: Annotated[
        str, typer.Option(help="The model to evaluate: ft:..., a base model name, or a model/checkpoint dir.")
    ],
    test_file: Annotated[
        Path, typer.Option(help="Chat (or prompt/completion) JSONL; last answer = reference.")
    ],
    baseline: Annotated[
        str | None, typer.Option(help="The model to compare with (default: the base MODEL was trained from).")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Metric names, comma-separated or repeated; regex:PATTERN and contains:TEXT too."),
    ] = None,
    primary_metric: Annotated[
        str | None, typer.Option(help="The metric that decides improved/regressed (default: the first).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    max_examples: Annotated[
        int | None, typer.Option(min=1, help="Evaluate only the first N examples.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(min=1, help="Longest answer (default: twice the reference, plus 16).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            envvar="OPENAI_BASE_URL", help="Evaluate through this running openft server instead of locally."
        ),
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Evaluate here even when OPENAI_BASE_URL names a server.")
    ] = False,
    api_key: ApiKey = "local",
    baseline_base_url: Annotated[
        str | None,
        typer.Option(
            help="Ask --baseline of this OpenAI-compatible endpoint instead (e.g. https://api.openai.com/v1)."
        ),
    ] = None,
    baseline_api_key: Annotated[
        str,
        typer.Option(envvar="OPENFT_BASELINE_API_KEY", help="API key of --baseline-base-url (from the env)."),
    ] = "local",
    data_dir: DataDir = None,
    device: Annotated[str, typer.Option(help="Local runs: auto, cpu, cuda, cuda:1, ...")] = "auto",
) -> None:
    """Compare a fine-tuned model with its base on a test set: scores, side-by-side answers, HTML report."""
    from openft.comparison.metrics import default_metric_names, split_metric_names
    from openft.comparison.testset import TestSetError, read_test_set
    from openft.settings import load_settings

    settings = load_settings(data_dir)
    if local:
        base_url = None
    try:
        cases = read_test_set(test_file, max_examples=max_examples)
        names = split_metric_names(metric) if metric else default_metric_names([c.reference for c in cases])
        if baseline_base_url is not None and baseline is None:
            raise ValueError(
                "--baseline-base-url needs --baseline: the model that endpoint should answer with"
            )
        baseline_name = baseline or _base_of(model, settings, remote=base_url is not None)
        with contextlib.ExitStack() as stack:
            if base_url is not None:
                candidate_runner, baseline_runner = _sdk_runners(base_url, api_key, model, baseline_name)
                # API errors (a model the server does not know, no server) become one line and exit 1.
                stack.enter_context(reported_errors(base_url))
            else:
                _quiet_local_runs()
                from openft.comparison.local_runner import local_engine

                # One engine for both models: an adapter and its base share the base's weights.
                engine = stack.enter_context(local_engine(device))
                candidate_runner = _local_runner(model, settings, engine)
                if baseline_base_url is None:
                    baseline_runner = _local_runner(baseline_name, settings, engine)
            if baseline_base_url is not None:
                baseline_runner = _remote_baseline(baseline_base_url, baseline_api_key, baseline_name)
                stack.enter_context(reported_errors(baseline_base_url))
            result = _compare(
                cases, candidate_runner, baseline_runner, names, primary_metric, max_tokens, test_file
            )
    except (TestSetError, OSError, ValueError, OpenFTError) as exc:
        message = exc.message if isinstance(exc, OpenFTError) else str(exc)
        console.print(f"[red]Error:[/red] {escape(message)}")
        raise typer.Exit(code=1) from None
    print_comparison(result)
    _write_outputs(result, out, json_path)


def _compare(
    cases: list[TestCase],
    candidate: ModelRunner,
    baseline: ModelRunner,
    names: list[str],
    primary_metric: str | None,
    max_tokens: int | None,
    test_file: Path,
) -> ComparisonResult:
    from openft.comparison.compare import compare

    with console.status(
        f"answering {len(cases)} examples with {escape(baseline.label)}, then {escape(candidate.label)}"
    ):
        return compare(
            cases,
            candidate,
            baseline,
            names,
            primary_metric=primary_metric,
            max_tokens=max_tokens,
            test_file=str(test_file),
        )


def _quiet_local_runs() -> None:
    set_model_process_environment()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # one status line instead of a bar per loaded model


def _local_runner(spec: str, settings: Settings, engine: Engine) -> ModelRunner:
    from openft.comparison.local_runner import LocalRunner, locate_model, model_ref

    model = (
        _fine_tuned_model(spec, settings)
        if spec.startswith("ft:")
        else model_ref(locate_model(spec, settings.models_dir), name=spec)
    )
    return LocalRunner(model, engine, label=spec)


def _fine_tuned_model(name: str, settings: Settings) -> ModelRef:
    """An `ft:` model as the server resolves it for chat (its project is named in the name)."""
    from openft.services.auth import find_project
    from openft.services.context import ServiceContext
    from openft.services.inference import resolve_model

    parts = name.split(":")
    if len(parts) < 5:
        raise ValueError(f"{name!r} is not a fine-tuned model name (ft:BASE:PROJECT:SUFFIX:ID)")
    ctx = ServiceContext.open(settings)
    try:
        project = find_project(ctx, parts[2])
        if project is None:
            raise ValueError(f"{name!r}: this server has no project {parts[2]!r}, so no such model")
        found = resolve_model(ctx, project, name)
    finally:
        ctx.close()
    return found


def _base_of(model: str, settings: Settings, *, remote: bool) -> str:
    """The base a fine-tuned model was trained from: the `ft:` name's base, or the dir's base_model.json."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    if not remote:
        from openft.comparison.local_runner import locate_model

        record = locate_model(model, settings.models_dir) / "base_model.json"
        if record.is_file():
            base = json.loads(record.read_text())
            return _catalog_name(base["name"], base["path"], settings) or str(base["path"])
    raise ValueError(f"--baseline is needed: {model} does not say which base model it was trained from")


def _catalog_name(name: str, path: str, settings: Settings) -> str | None:
    """`name` when the catalog knows it as `path` (a shorter label than the path)."""
    from openft.models.catalog import Catalog

    try:
        found = Catalog(settings.models_dir).get(name).path
    except (OpenFTError, KeyError):
        return None
    return name if found is not None and found.resolve() == Path(path).resolve() else None


def _sdk_runners(base_url: str, api_key: str, model: str, baseline: str) -> tuple[ModelRunner, ModelRunner]:
    from openft.cli.client import make_client
    from openft.comparison.sdk_runner import SdkRunner

    client = make_client(base_url, api_key)
    return SdkRunner(client, model), SdkRunner(client, baseline)


def _remote_baseline(base_url: str, api_key: str, model: str) -> ModelRunner:
    """The baseline answered by another OpenAI-compatible endpoint; its label says which."""
    from openft.cli.client import make_client
    from openft.comparison.sdk_runner import SdkRunner

    return SdkRunner(make_client(base_url, api_key), model, label=f"{model} @ {base_url}")


def print_comparison(result: ComparisonResult) -> None:
    """The side-by-side table (first SHOWN_ROWS examples), the summary and the headline."""
    table = Table(title="Base vs fine-tuned", show_lines=True, expand=True)
    for column, ratio in (
        ("line", 0),
        ("prompt", 3),
        ("reference", 2),
        ("base", 2),
        ("fine-tuned", 2),
        ("", 0),
    ):
        table.add_column(column, ratio=ratio or None, overflow="fold")
    marks = {"improved": "[green]+[/green]", "regressed": "[red]-[/red]", "same": "="}
    for row in result.rows[:SHOWN_ROWS]:
        table.add_row(
            str(row.case.line),
            _cell(row.case.prompt_preview()),
            _cell(row.case.reference),
            _cell(row.baseline.text),
            _cell(row.candidate.text),
            marks[row.verdict],
        )
    console.print(table)
    if len(result.rows) > SHOWN_ROWS:
        console.print(f"[dim]... {len(result.rows) - SHOWN_ROWS} more examples in the report[/dim]")
    console.print(_summary_table(result))
    verdict_counts = result.summary_lines()[-1]
    console.print(verdict_counts)
    console.print(f"[bold]{escape(result.headline)}[/bold]")


def _cell(text: str) -> str:
    """A text for one table cell: line breaks shown as ⏎, long texts cut, an empty answer said so."""
    if not text:
        return "[dim](empty)[/dim]"
    shown = text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"
    return escape(shown.replace("\n", "⏎"))


def _summary_table(result: ComparisonResult) -> Table:
    from openft.comparison.metrics import metric_label

    table = Table(title="Summary")
    for column in ("metric", f"base: {result.baseline.label}", f"fine-tuned: {result.candidate.label}"):
        table.add_column(escape(column), overflow="fold")
    for name in result.metric_names:
        table.add_row(
            escape(metric_label(name)),
            f"{result.baseline.means[name]:.3f}",
            f"{result.candidate.means[name]:.3f}",
        )
    rows = (
        ("reference loss", result.baseline.mean_reference_loss, result.candidate.mean_reference_loss),
        ("perplexity", result.baseline.perplexity, result.candidate.perplexity),
    )
    for label, before, after in rows:
        table.add_row(label, _number(before), _number(after))
    return table


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _write_outputs(result: ComparisonResult, out: Path | None, json_path: Path | None) -> None:
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(result.to_json())
        console.print(f"results: {json_path}")
    if out is not None:
        from openft.comparison.html_report import render_html

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(result))
        console.print(f"report: {out}")
