"""`openft models ...`: list, register, remove and pre-build base models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from openft.cli.options import DataDir
from openft.errors import OpenFTError
from openft.models.builtin import BUILTIN_MODELS, ensure_builtin_model, is_built
from openft.models.catalog import Catalog, ModelEntry
from openft.settings import load_settings

models_app = typer.Typer(help="Base models: the built-in ones and local directories you register.")
console = Console()


def _catalog(data_dir: Path | None) -> Catalog:
    return Catalog(load_settings(data_dir).models_dir)


def _fail(error: Exception) -> typer.Exit:
    message = error.message if isinstance(error, OpenFTError) else str(error)
    console.print(f"[red]Error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


def _location(entry: ModelEntry) -> str:
    if entry.kind == "builtin":
        assert entry.path is not None
        return str(entry.path) if is_built(entry.path) else "(built on first use)"
    return str(entry.path or entry.hub_id)


@models_app.command("list")
def list_models(data_dir: DataDir = None) -> None:
    """Show every base model that jobs can use."""
    table = Table(title="Base models")
    for column in ("Name", "Kind", "Params", "Context", "Chat", "Method"):
        table.add_column(column, no_wrap=True)
    table.add_column("Location", overflow="fold")
    for entry in _catalog(data_dir).list():
        spec = BUILTIN_MODELS.get(entry.name) if entry.kind == "builtin" else None
        table.add_row(
            entry.name,
            entry.kind,
            f"{spec.n_parameters / 1e6:.1f}M" if spec else "",
            str(entry.context_length or "?"),
            {True: "yes", False: "no", None: "?"}[entry.has_chat_template],
            entry.defaults.method,
            _location(entry),
        )
    console.print(table)


@models_app.command("add")
def add_model(
    name: str = typer.Argument(..., help="Name to use as `model` in fine-tuning jobs."),
    path: Path = typer.Argument(
        ..., help="A transformers model directory (config.json, tokenizer, weights)."
    ),
    data_dir: DataDir = None,
) -> None:
    """Register a local model directory as a base model."""
    try:
        entry = _catalog(data_dir).add_local(name, path)
    except OpenFTError as error:
        raise _fail(error) from None
    context = entry.context_length or "unknown"
    console.print(
        f"Registered [bold]{entry.name}[/bold] -> {entry.path} (context {context})", highlight=False
    )
    if not entry.has_chat_template:
        console.print("[yellow]Note:[/yellow] it has no chat template; chat fine-tuning needs one.")


@models_app.command("remove")
def remove_model(
    name: str = typer.Argument(..., help="A registered model (its files are kept)."), data_dir: DataDir = None
) -> None:
    """Forget a registered model; its directory is left untouched."""
    try:
        _catalog(data_dir).remove(name)
    except OpenFTError as error:
        raise _fail(error) from None
    console.print(f"Removed [bold]{name}[/bold] from the catalog.", highlight=False)


@models_app.command("build")
def build_model(
    name: str = typer.Argument(..., help=f"One of: {', '.join(BUILTIN_MODELS)}."), data_dir: DataDir = None
) -> None:
    """Build a built-in model now instead of on first use (needs no network)."""
    if name not in BUILTIN_MODELS:
        raise _fail(
            ValueError(f"'{name}' is not a built-in model; built-in models: {', '.join(BUILTIN_MODELS)}")
        )
    models_dir = load_settings(data_dir).models_dir
    with console.status(f"Building {name}..."):
        try:
            model_dir = ensure_builtin_model(name, models_dir)
        except OSError as error:
            raise _fail(error) from None
    console.print(f"[bold]{name}[/bold] is ready at {model_dir}", highlight=False)
