"""`openft export MODEL --format peft|merged|gguf --out PATH`: a fine-tuned model as files to take away.

Runs on the server's machine, on its data dir: the model resolves as the server resolves it for chat
(the project is the one its `ft:` name says). After writing, the export is loaded with plain
transformers (PEFT for `peft`) and its greedy answers to a few prompts are compared with the served
model's; `--no-check` skips that. A client elsewhere downloads the same files from
GET /v1/models/{model}/export (docs/export.md). torch loads only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openft.cli.options import DataDir
from openft.errors import OpenFTError
from openft.export import DEFAULT_GGUF_TYPE, FORMATS, GGUF_TYPES, MERGED_DTYPES

if TYPE_CHECKING:
    from openft.export.check import CheckResult
    from openft.export.source import ExportSource

console = Console(highlight=False)
CELL_CHARS = 60


def export_command(
    model: Annotated[
        str, typer.Argument(help="A fine-tuned model ft:... or a checkpoint ft:...:ckpt-step-N.")
    ],
    format: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write (must not exist, or be empty).")],
    gguf_type: Annotated[
        str, typer.Option("--gguf-type", help=f"gguf weights: {', '.join(GGUF_TYPES)}.")
    ] = DEFAULT_GGUF_TYPE,
    dtype: Annotated[
        str, typer.Option("--dtype", help=f"merged weights: {', '.join(MERGED_DTYPES)} (auto: the base's).")
    ] = "auto",
    check: Annotated[
        bool,
        typer.Option("--check/--no-check", help="Compare the export's greedy answers with the model's."),
    ] = True,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", help="A check prompt (repeatable; default: three built in)."),
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest check answer, in tokens.")] = 32,
    data_dir: DataDir = None,
) -> None:
    """Export a fine-tuned model: a PEFT adapter, merged safetensors, or GGUF for llama.cpp/Ollama."""
    from openft.export.source import checked_request
    from openft.train.environment import set_model_process_environment

    set_model_process_environment()
    try:
        request = checked_request(format, gguf_type, dtype)
        source, description = _resolve(model, data_dir)
        from openft.export.run import export_model

        with console.status(f"exporting {escape(model)} as {format}"):
            result = export_model(source, request, out, base_description=description)
    except (OpenFTError, OSError) as exc:
        message = exc.message if isinstance(exc, OpenFTError) else str(exc)
        console.print(f"[red]Error:[/red] {escape(message)}")
        raise typer.Exit(code=1) from None
    console.print(f"Exported [bold]{escape(model)}[/bold] as {format} in {result.seconds:.1f} s to {out}:")
    for path in result.files:
        console.print(f"  {path.name}  ({path.stat().st_size / 1e6:.1f} MB)")
    for note in result.notes:
        console.print(f"[yellow]Note:[/yellow] {escape(note)}")
    if not check:
        console.print("[yellow]Not checked[/yellow] (--no-check).")
        return
    from openft.export.check import DEFAULT_PROMPTS, check_export

    with console.status("checking: greedy answers of the served model and of the export"):
        outcome = check_export(
            source, format, out, prompts=tuple(prompt or DEFAULT_PROMPTS), max_tokens=max_tokens
        )
    print_check(outcome)
    if not outcome.passed:
        raise typer.Exit(code=1)


def _resolve(model: str, data_dir: Path | None) -> tuple[ExportSource, str]:
    from openft.services.context import ServiceContext
    from openft.services.exports import base_description, source_by_name
    from openft.settings import load_settings

    ctx = ServiceContext.open(load_settings(data_dir))
    try:
        source = source_by_name(ctx, model)
        return source, base_description(ctx, source.base_name)
    finally:
        ctx.close()


def print_check(outcome: CheckResult) -> None:
    table = Table(title=f"Check: {outcome.loaded_with}", show_lines=True)
    for column in ("prompt", "served", "exported", "tokens agree", ""):
        table.add_column(column, overflow="fold")
    for row in outcome.rows:
        table.add_row(
            _cell(row.prompt),
            _cell(row.served),
            _cell(row.exported),
            f"{row.token_agreement:.0%}",
            "[green]agree[/green]" if row.agree else "[red]disagree[/red]",
        )
    console.print(table)
    summary = (
        f"{outcome.n_agree}/{len(outcome.rows)} answers agree, {outcome.token_agreement:.1%} of answer tokens"
    )
    if outcome.passed:
        console.print(f"[green]Check passed:[/green] {summary}.")
    else:
        console.print(f"[red]Check failed:[/red] {summary}; the export differs from the served model.")


def _cell(text: str) -> str:
    shown = text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"
    return escape(shown.replace("\n", "⏎")) or "[dim](empty)[/dim]"
