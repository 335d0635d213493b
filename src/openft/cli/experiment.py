"""`openft experiment data-scaling`: how much would more training data help?

    openft experiment data-scaling --model openft-tiny --training-file train.jsonl --test-file test.jsonl \\
        --fractions 0.25,0.5,1.0 --out scaling.html

Fine-tunes the base model on nested subsets of the training file (same settings and seed), evaluates
each on the test file, and prints the metric against the data size with the expected gain from doubling
the data. Runs in this process (torch is imported only when the command runs). See docs/evaluation.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openft.cli.hyperparameters import auto_hyperparameters
from openft.cli.options import DataDir
from openft.errors import OpenFTError
from openft.train.environment import set_model_process_environment

if TYPE_CHECKING:
    from openft.experiments.scaling import ScalingResult

console = Console(highlight=False)
experiment_app = typer.Typer(no_args_is_help=True)


@experiment_app.command("data-scaling")
def data_scaling(
    model: Annotated[
        str, typer.Option(help="Base model: a catalog name (openft-tiny) or a model directory.")
    ],
    training_file: Annotated[Path, typer.Option(help="Chat examples, one JSON object per line.")],
    test_file: Annotated[Path, typer.Option(help="Held-out examples; the last answer is the reference.")],
    fractions: Annotated[
        str, typer.Option(help="Subset sizes as fractions of the training file, comma-separated.")
    ] = "0.25,0.5,1.0",
    metric: Annotated[
        list[str] | None,
        typer.Option(help="Metric names, comma-separated or repeated (the first is the headline)."),
    ] = None,
    n_epochs: Annotated[str, typer.Option(help="'auto' (per subset, OpenAI's rule) or an integer.")] = "auto",
    batch_size: Annotated[str, typer.Option(help="'auto' or an integer.")] = "auto",
    learning_rate_multiplier: Annotated[str, typer.Option(help="'auto' or a number > 0.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for the subsets and for training.")] = 0,
    work_dir: Annotated[
        Path, typer.Option(help="Where each subset's file and trained model are kept.")
    ] = Path("openft-data-scaling"),
    out: Annotated[Path | None, typer.Option(help="Write the HTML report (with a plot) here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    max_test_examples: Annotated[int | None, typer.Option(min=1, help="Evaluate the first N only.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Fine-tune on growing subsets of the data and estimate what doubling the data would gain."""
    from openft.comparison.metrics import split_metric_names
    from openft.comparison.testset import TestSetError
    from openft.experiments.scaling import parse_fractions
    from openft.settings import load_settings
    from openft.train.config import ConfigError

    set_model_process_environment(training=True)
    try:
        from openft.experiments.data_scaling import run_data_scaling

        result = run_data_scaling(
            model,
            training_file,
            test_file,
            parse_fractions(fractions),
            work_dir=work_dir,
            models_dir=load_settings(data_dir).models_dir,
            hyperparameters=auto_hyperparameters(
                n_epochs=n_epochs, batch_size=batch_size, learning_rate_multiplier=learning_rate_multiplier
            ),
            metric_names=split_metric_names(metric) if metric else None,
            seed=seed,
            max_test_examples=max_test_examples,
            progress=lambda text: console.print(f"[dim]{escape(text)}[/]"),
        )
    except (ConfigError, TestSetError, FileNotFoundError, ValueError, RuntimeError, OpenFTError) as exc:
        message = exc.message if isinstance(exc, OpenFTError) else str(exc)
        console.print(f"[red]Error:[/red] {escape(message)}")
        raise typer.Exit(code=1) from None
    _print(result)
    _write_outputs(result, out, json_path)


def _print(result: ScalingResult) -> None:
    from openft.comparison.metrics import metric_label

    table = Table(title=f"Data scaling: {result.base_model} on {result.n_test_examples} test examples")
    for column in ("training examples", "epochs", "steps", *map(metric_label, result.metric_names)):
        table.add_column(column, justify="right")
    table.add_row("base (untrained)", "", "", *(f"{result.baseline[n]:.3f}" for n in result.metric_names))
    for point in result.points:
        scores = (f"{point.scores[n]:.3f}" for n in result.metric_names)
        table.add_row(str(point.n_examples), str(point.n_epochs), str(point.n_steps), *scores)
    console.print(table)
    largest = result.points[-1].n_examples
    for name in result.metric_names:
        console.print(escape(result.estimate(name).sentence(largest)))


def _write_outputs(result: ScalingResult, out: Path | None, json_path: Path | None) -> None:
    if out is not None:
        from openft.experiments.scaling_html import render_scaling_html

        out.write_text(render_scaling_html(result), encoding="utf-8")
        console.print(f"report: {out}")
    if json_path is not None:
        json_path.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
        console.print(f"results: {json_path}")
