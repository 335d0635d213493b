"""`openft train`: fine-tune a model from the command line, without the server.

    openft train --model openft-tiny --training-file train.jsonl --output runs/demo
    openft train --resume-from runs/demo/checkpoints/step-40      (after Ctrl+C, which pauses)

It resolves the hyperparameters exactly as a fine-tuning job does and runs the same recipe in this
process, with a progress bar instead of job events. torch is imported only when the command runs.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from openft.cli.hyperparameters import auto_hyperparameters
from openft.train.environment import set_model_process_environment
from openft.train.reporting import TRAIN_LOSS, VALID_LOSS, Control

if TYPE_CHECKING:
    from openft.train.config import SFTConfig

console = Console()


def train(
    model: Annotated[
        str | None, typer.Option(help="Base model: a catalog name (openft-tiny) or a model directory.")
    ] = None,
    training_file: Annotated[
        Path | None, typer.Option(help="Chat examples, one JSON object per line.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Directory for checkpoints, final/ and results.csv.")
    ] = None,
    validation_file: Annotated[
        Path | None, typer.Option(help="Held-out chat examples for validation loss.")
    ] = None,
    n_epochs: Annotated[str, typer.Option(help="'auto' or an integer (1-50).")] = "auto",
    batch_size: Annotated[str, typer.Option(help="'auto' or an integer (1-256).")] = "auto",
    learning_rate_multiplier: Annotated[str, typer.Option(help="'auto' or a number > 0.")] = "auto",
    lora_rank: Annotated[int | None, typer.Option(help="Train a LoRA adapter of this rank.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Full fine-tuning instead of LoRA.")] = False,
    max_seq_length: Annotated[
        int | None, typer.Option(help="Truncate longer examples (default: context).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: a new one, printed).")] = None,
    precision: Annotated[
        str, typer.Option(help="'auto' (bf16 where the hardware multiplies bf16 fast), 'bf16' or 'fp32'.")
    ] = "auto",
    resume_from: Annotated[
        Path | None, typer.Option(help="Continue a paused run from its checkpoint.")
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Where models live (default: the data dir's).")
    ] = None,
) -> None:
    """Fine-tune a model on a chat JSONL file (LoRA or full), showing progress."""
    from openft.models.errors import UnknownModelError
    from openft.train.config import SFTConfig
    from openft.train.examples import DataError
    from openft.train.spec import CONFIG_FILE, ConfigError

    try:
        if resume_from is not None:
            if precision != "auto":
                raise ConfigError("--precision applies to a new run; a resumed run keeps its own")
            config = SFTConfig.load(resume_from / CONFIG_FILE)
        else:
            if model is None or training_file is None or output is None:
                raise ConfigError("--model, --training-file and --output are required (unless --resume-from)")
            config = _resolve(
                model,
                training_file,
                validation_file,
                output,
                models_dir,
                seed,
                full,
                lora_rank,
                max_seq_length,
                precision,
                n_epochs=n_epochs,
                batch_size=batch_size,
                learning_rate_multiplier=learning_rate_multiplier,
            )
        _run(config, resume_from)
    except (ConfigError, DataError, FileNotFoundError, ValueError, UnknownModelError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=1) from None


def _resolve(
    model: str,
    training_file: Path,
    validation_file: Path | None,
    output: Path,
    models_dir: Path | None,
    seed: int | None,
    full: bool,
    lora_rank: int | None,
    max_seq_length: int | None,
    precision: str,
    **auto_or_number: str,
) -> SFTConfig:
    from openft.train.spec import ConfigError, SupervisedHyperparameters, find_base_model, resolve_job

    if full and lora_rank is not None:
        raise ConfigError("--full and --lora-rank exclude each other")
    if models_dir is None:
        from openft.settings import Settings

        models_dir = Settings().models_dir
    base = find_base_model(models_dir, model, directory_ok=True)
    values: dict[str, Any] = auto_hyperparameters(**auto_or_number)
    hp = SupervisedHyperparameters(
        **values, lora_rank=lora_rank, full_finetune=True if full else None, max_seq_length=max_seq_length
    )
    if seed is None:
        seed = random.randrange(2**31)
        console.print(f"seed: {seed}")
    return resolve_job(
        "supervised",
        hp,
        base=base,
        training_file=training_file.resolve(),
        validation_file=validation_file.resolve() if validation_file else None,
        output_dir=output.resolve(),
        seed=seed,
        precision=precision,
    )


def _run(config: SFTConfig, resume_from: Path | None) -> None:
    set_model_process_environment(training=True)  # one progress bar: ours
    from openft.train.sft import train_sft

    console.print(
        f"[bold]{config.base_model_name}[/] {config.method}: {config.n_epochs} "
        f"epoch{'' if config.n_epochs == 1 else 's'}, "
        f"batch {config.batch_size}, lr {config.learning_rate:g}"
        + (f", LoRA rank {config.lora_rank}" if config.method == "lora" else "")
    )
    with ProgressReporter() as reporter:
        result = train_sft(config, reporter, resume_from=resume_from)
    if result.status == "paused":
        console.print(f"[yellow]paused.[/] Resume with: openft train --resume-from {result.final_path}")
    elif result.status == "succeeded":
        console.print(f"[green]done.[/] {result.trained_tokens} tokens trained; model in {result.final_path}")


class ProgressReporter:
    """A rich progress bar (step, epoch, loss, tokens/s, ETA); the first Ctrl+C pauses at the next step."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}  loss {task.fields[loss]}  {task.fields[rate]} tok/s"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.bar.add_task("train", total=None, epoch="-", loss="-", rate="-")
        self.started = time.perf_counter()
        self.first_tokens: int | None = None
        self.pause_requested = False
        self._previous_handler: Any = None

    def __enter__(self) -> ProgressReporter:
        self.bar.start()
        self._previous_handler = signal.signal(signal.SIGINT, self._on_interrupt)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self._previous_handler)
        self.bar.stop()

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        if self.pause_requested:  # a second Ctrl+C: stop now
            raise KeyboardInterrupt
        self.pause_requested = True
        console.print("[yellow]pausing after this step (Ctrl+C again to stop at once)[/]")

    def message(self, text: str, level: str = "info") -> None:
        style = {"warn": "yellow", "error": "red"}.get(level, "dim")
        console.print(f"[{style}]{text}[/]")

    def metrics(self, step: int, total_steps: int, values: dict[str, float]) -> None:
        loss = f"{values[TRAIN_LOSS]:.3f}"
        if VALID_LOSS in values:
            loss += f" (valid {values[VALID_LOSS]:.3f})"
        self.bar.update(self.task, total=total_steps, completed=step, loss=loss)

    def progress(self, step: int, total_steps: int, epoch: int, trained_tokens: int) -> None:
        if self.first_tokens is None:  # a resumed run counts its speed from here
            self.first_tokens, self.started = trained_tokens, time.perf_counter()
            return
        rate = (trained_tokens - self.first_tokens) / max(1e-9, time.perf_counter() - self.started)
        self.bar.update(self.task, epoch=epoch, rate=f"{rate:,.0f}")

    def checkpoint(self, step: int, epoch: int, path: str, metrics: dict[str, float]) -> None:
        console.print(f"checkpoint: epoch {epoch}, step {step} -> {path}")

    def control(self) -> Control:
        return "pause" if self.pause_requested else "continue"
