"""`openft data ...`: check a training file before a job, and split a file into train and test parts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from openft.cli.options import DataDir
from openft.data import CheckReport, FileReport, MaskPreview, check_file, split_file
from openft.data.check import ReinforcementPlan
from openft.data.formats import METHODS, Method
from openft.settings import Settings, load_settings

if TYPE_CHECKING:
    from openft.data.report import TokenStats
    from openft.graders.item_fields import ItemFields

data_app = typer.Typer(
    help="Check training data (errors, tokens, cost, lint) and split files.", no_args_is_help=True
)
console = Console(highlight=False, soft_wrap=True)  # long lines stay whole, for grep and copy
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

CALIBRATION_S = 2.0  # how long the training-speed measurement runs, after one warm-up step


def load_tokenizer(model: str, models_dir: Path) -> Any:
    """The tokenizer (with its chat template) of a base model from the catalog; built-ins are built."""
    return load_tokenizer_and_context(model, models_dir)[0]


def load_tokenizer_and_context(model: str, models_dir: Path) -> tuple[Any, int]:
    """The tokenizer of a base model (a catalog name or a model directory) and the model's context
    length as the catalog knows it: from the model's config, which many tokenizers do not repeat."""
    tokenizer, context_length, _ = _load_model_facts(model, models_dir)
    return tokenizer, context_length


def _load_model_facts(model: str, models_dir: Path) -> tuple[Any, int, int]:
    """The tokenizer, the context length and the default batch size of a base model."""
    from transformers import AutoTokenizer

    from openft.models.catalog import Catalog
    from openft.models.defaults import PRETRAINED_DEFAULTS

    resolved = Catalog(models_dir).resolve_spec(model)
    batch_size = (resolved.defaults or PRETRAINED_DEFAULTS).batch_size
    return AutoTokenizer.from_pretrained(str(resolved.path)), resolved.context_length, batch_size


def measure_tokens_per_s(
    model: str, batch_size: int, sequence_tokens: int, settings: Settings
) -> tuple[float, str]:
    """Training throughput of `model` here: full fine-tuning steps (forward, backward, AdamW) on random
    tokens, timed after one warm-up step. Returns tokens/s and a sentence that says how it was measured."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    from openft.models.catalog import Catalog

    model_dir = Catalog(settings.models_dir).resolve_path(model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    network: Any = AutoModelForCausalLM.from_pretrained(str(model_dir))
    network = network.to(device)
    network.train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-5)
    vocab_size = network.get_input_embeddings().weight.shape[0]
    batch = torch.randint(0, vocab_size, (batch_size, sequence_tokens), device=device)

    from openft.train.precision import autocast_for, resolve_precision

    precision = resolve_precision(settings.train_precision, torch.device(device))  # as a job here would
    autocast = autocast_for(torch.device(device), precision)

    def step() -> None:
        with autocast():
            loss = network(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up: allocations and kernel selection
    n_steps, start = 0, time.perf_counter()
    while n_steps < 2 or time.perf_counter() - start < CALIBRATION_S:
        step()
        n_steps += 1
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed_s = time.perf_counter() - start
    tokens_per_s = n_steps * batch_size * sequence_tokens / elapsed_s
    how = (
        f"measured: {n_steps} full fine-tuning steps of {model} on {device} ({precision}), "
        f"batch {batch_size} × {sequence_tokens} tokens, {elapsed_s:.1f} s after a warm-up step"
    )
    return tokens_per_s, how


@data_app.command("check")
def check(
    train: Path = typer.Argument(..., exists=True, dir_okay=False, help="Training file (JSONL)."),
    validation: Path | None = typer.Option(None, "--validation", exists=True, dir_okay=False),
    model: str = typer.Option("openft-tiny", "--model", help="Base model whose tokenizer counts tokens."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    n_epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs instead of the auto rule."),
    estimate_time: bool | None = typer.Option(
        None,
        "--estimate-time/--no-estimate-time",
        help="Measure training speed here for a time estimate (default: on for built-in models).",
    ),
    lint: bool = typer.Option(True, "--lint/--no-lint", help="Run the data-quality lint."),
    method: str | None = typer.Option(
        None,
        "--method",
        help="supervised, dpo or reinforcement (default: from the file; lines without answers are prompts).",
    ),
    grader: Path | None = typer.Option(
        None,
        "--grader",
        exists=True,
        dir_okay=False,
        help="Reinforcement: the job's grader (JSON); every {{item.*}} field it reads must be in every line.",
    ),
    reasoning_effort: str = typer.Option(
        "default", "--reasoning-effort", help="Reinforcement: the answer budget (low, medium, high, default)."
    ),
    compute_multiplier: float = typer.Option(
        1.0, "--compute-multiplier", min=1e-5, max=10, help="Reinforcement: answers sampled per prompt / 4."
    ),
    data_dir: DataDir = None,
) -> None:
    """Check a training file like a job would, and show tokens, cost and data-quality warnings."""
    settings = load_settings(data_dir)
    checked_method, grader_fields = _method_and_grader(method, grader, reasoning_effort)
    try:
        tokenizer, context_length, batch_size = _load_model_facts(model, settings.models_dir)
    except Exception as exc:  # whatever stops it loading: one line that names the model and the reason
        reason = " ".join(str(exc).split()) or type(exc).__name__
        err_console.print(f"cannot load the tokenizer of {model}: {reason}", markup=False)
        raise typer.Exit(code=2) from None
    from openft.train.spec import ANSWER_TOKENS, group_size

    report = check_file(
        train,
        tokenizer=tokenizer,
        context_length=context_length,
        validation_path=validation,
        n_epochs=n_epochs,
        lint=lint,
        method=checked_method,
        grader_fields=grader_fields,
        reinforcement=ReinforcementPlan(
            batch_size, group_size(compute_multiplier), ANSWER_TOKENS[reasoning_effort]
        ),
    )
    calibration = None
    if report.method != "reinforcement" and _wants_timing(estimate_time, model) and report.training.tokens:
        from openft.models import BUILTIN_MODELS

        batch_size = BUILTIN_MODELS[model].defaults.batch_size if model in BUILTIN_MODELS else 1
        sequence = max(
            16, min(report.training.tokens.context_length, round(report.training.tokens.total_tokens.mean))
        )
        tokens_per_s, calibration = measure_tokens_per_s(model, batch_size, sequence, settings)
        report = _with_speed(report, tokens_per_s, n_epochs)
    if as_json:
        data = report.to_dict()
        data["model"], data["calibration"] = model, calibration
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_report(report, model, calibration, n_epochs)
    raise typer.Exit(code=0 if report.ok else 1)


@data_app.command("split")
def split(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL file to split."),
    test_fraction: float = typer.Option(0.1, "--test-fraction", min=0.0, max=0.99),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Write FILE_train.jsonl and FILE_test.jsonl beside FILE, a random test_fraction in the test file."""
    result = split_file(file, test_fraction=test_fraction, seed=seed)
    console.print(f"{result.n_train} examples -> {result.train_path}")
    console.print(f"{result.n_test} examples -> {result.test_path}")


def _method_and_grader(
    method: str | None, grader: Path | None, reasoning_effort: str
) -> tuple[Method | None, ItemFields | None]:
    """The method asked for and the grader's field check; a bad option exits 2 with one line."""
    from openft.graders.item_fields import ItemFields
    from openft.train.spec import REASONING_EFFORTS

    if method is not None and method not in METHODS:
        _usage_error(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if reasoning_effort not in REASONING_EFFORTS:
        _usage_error(f"--reasoning-effort must be one of {', '.join(REASONING_EFFORTS)}")
    if grader is None:
        return method, None  # type: ignore[return-value]
    if method not in (None, "reinforcement"):
        _usage_error("--grader is for --method reinforcement: only reinforcement jobs have a grader")
    try:
        value = json.loads(grader.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _usage_error(f"cannot read the grader {grader}: {exc}")
    if not isinstance(value, dict):
        _usage_error(f"the grader {grader} must hold one JSON object (the job's method.reinforcement.grader)")
    return "reinforcement", ItemFields(value)


def _usage_error(message: str) -> NoReturn:
    err_console.print(message, markup=False)
    raise typer.Exit(code=2)


def _wants_timing(estimate_time: bool | None, model: str) -> bool:
    if estimate_time is not None:
        return estimate_time
    from openft.models import BUILTIN_MODELS

    return model in BUILTIN_MODELS


def _with_speed(report: CheckReport, tokens_per_s: float, n_epochs: int | None) -> CheckReport:
    import dataclasses

    from openft.data import estimate_training

    if report.estimate is None:
        return report
    estimate = estimate_training(
        report.training.n_valid_examples,
        report.estimate.tokens_per_epoch,
        n_epochs=n_epochs,
        tokens_per_s=tokens_per_s,
    )
    return dataclasses.replace(report, estimate=estimate)


def _print_report(report: CheckReport, model: str, calibration: str | None, n_epochs: int | None) -> None:
    _print_file(report.training)
    if report.validation is not None:
        _print_file(report.validation)
    if report.reinforcement is not None:
        _print_reinforcement(report, n_epochs)
    estimate = report.estimate
    if estimate is not None:
        console.print("\n[bold]Estimate[/bold]")
        rule = (
            "given" if n_epochs else "auto: aim for 3, seeing 100 to 25,000 examples in all, 1 to 25 epochs"
        )
        console.print(f"  epochs: {estimate.n_epochs} ({rule})")
        console.print(
            f"  tokens per epoch (each example capped at the context): {estimate.tokens_per_epoch:,}"
        )
        console.print(f"  trained tokens (epochs × tokens per epoch): {estimate.trained_tokens:,}")
        if estimate.estimated_training_s is not None and estimate.tokens_per_s is not None:
            console.print(
                f"  training time here: about {_duration(estimate.estimated_training_s)} "
                f"at {estimate.tokens_per_s:,.0f} tokens/s ({escape(calibration or '')})"
            )
    if report.lint:
        console.print(f"\n[bold]Data-quality warnings[/bold] ({len(report.lint)}; they never block a job)")
        for finding in report.lint:
            lines = ", ".join(str(line) for line in finding.lines)
            where = f"{finding.file}, lines {lines}"
            console.print(f"  [yellow]{finding.code}[/yellow] ({where}): {escape(finding.message)}")
            console.print(f"    → {escape(finding.advice)}")
    error = report.blocking_error()
    if error is None:
        job = "a reinforcement job" if report.method == "reinforcement" else "a job"
        console.print(f"\n[green]OK[/green]: {job} on {model} would accept these files.")
    else:
        console.print(f"\n[red]A job would fail[/red] ({error.code}, {error.param}): {escape(error.message)}")


def _print_file(file: FileReport) -> None:
    console.print(
        f"[bold]{file.purpose.capitalize()} file[/bold] {escape(file.path)}: "
        f"{file.format or 'unknown format'}, {file.n_examples} examples ({file.n_valid_examples} valid)"
    )
    if file.errors:
        console.print(f"  [red]{file.n_errors} error(s)[/red]")
        for error in file.errors:
            console.print(f"  {error.code}: {error.count}")
            for issue in error.first:
                console.print(f"    {escape(issue.location())}: {escape(issue.message)}")
    if file.messages_per_example is not None:
        console.print(f"  messages per example: {file.messages_per_example.to_text()}")
        console.print(
            f"  examples without a system message: {file.n_missing_system}; "
            f"without a user message: {file.n_missing_user}"
        )
    tokens = file.tokens
    if file.prompts is not None:
        _print_prompts(file)
    elif tokens is not None:
        console.print(f"  tokens per example: {tokens.total_tokens.to_text()}")
        console.print(f"  trained tokens per example: {tokens.trained_tokens.to_text()}")
        console.print(f"  total: {tokens.n_tokens:,} tokens, {tokens.n_trained_tokens:,} trained")
        _print_over_context(tokens, "example(s)", "truncated from the end")
    if file.preview is not None:
        _print_preview(file.preview)


def _print_prompts(file: FileReport) -> None:
    from openft.data.validate_prompt import DROPPED_ANSWER

    assert file.prompts is not None
    final = file.prompts.final_answers
    if final.count:
        console.print(f"  final assistant messages: {final.count} ({DROPPED_ANSWER})")
    tokens = file.tokens
    if tokens is None:
        return
    console.print(f"  prompt tokens per line: {tokens.total_tokens.to_text()}")
    console.print(f"  total: {tokens.n_tokens:,} prompt tokens (answers are sampled, not written)")
    _print_over_context(tokens, "prompt(s)", "cut from the start")


def _print_over_context(tokens: TokenStats, what: str, cut: str) -> None:
    """The lines longer than the context, and which end of them training drops."""
    if tokens.n_over_context:
        lines = ", ".join(str(line) for line in tokens.over_context_lines)
        console.print(
            f"  [yellow]{tokens.n_over_context} {what} exceed the {tokens.context_length}-token "
            f"context and will be {cut}[/yellow] (lines {lines})"
        )


def _print_reinforcement(report: CheckReport, n_epochs: int | None) -> None:
    estimate = report.reinforcement
    assert estimate is not None
    rule = "given" if n_epochs else "auto: aim for 3, seeing 100 to 25,000 prompts in all, 1 to 25 epochs"
    console.print("\n[bold]Estimate (reinforcement)[/bold]")
    console.print(f"  epochs: {estimate.n_epochs} ({rule})")
    console.print(
        f"  steps: {estimate.n_steps:,} ({estimate.steps_per_epoch:,} per epoch of "
        f"{estimate.batch_size} prompts)"
    )
    console.print(
        f"  answers sampled per prompt: {estimate.samples_per_prompt} (4 × compute_multiplier); "
        f"{estimate.n_sampled_answers:,} answers sampled and graded in all, each at most "
        f"{estimate.answer_tokens} tokens"
    )
    console.print("  training time: not estimated (sampling and grading, not tokens, decide it)")


def _print_preview(preview: MaskPreview) -> None:
    console.print(f"  mask preview, line {preview.line} ([green]trained[/green], [dim]not trained[/dim]):")
    text = Text("  ")
    for span in preview.spans:
        text.append(span.text, style="green" if span.trained else "dim")
    console.print(text)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
