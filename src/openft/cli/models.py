"""`openft models ...`: list, register, remove and pre-build base models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from openft.cli.options import DataDir
from openft.errors import OpenFTError
from openft.models.builtin import BUILTIN_MODELS, ensure_builtin_model, is_built
from openft.models.catalog import Catalog, InvalidModelError, ModelEntry
from openft.models.gguf_import import is_converted
from openft.settings import load_settings

models_app = typer.Typer(
    help="Base models: packaged pretrained ones, the built-in ones, and local models you register."
)
console = Console()


def _catalog(data_dir: Path | None) -> Catalog:
    return Catalog(load_settings(data_dir).models_dir)


def _fail(error: Exception) -> typer.Exit:
    message = error.message if isinstance(error, OpenFTError) else str(error)
    console.print(f"[red]Error:[/red] {message}", highlight=False)
    return typer.Exit(code=1)


def _location(entry: ModelEntry) -> str:
    if entry.unavailable_reason is not None:
        return "not installed"
    if entry.kind == "package":
        assert entry.path is not None
        return str(entry.path) if is_converted(entry.path) else "(converted on first use)"
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
    table.add_column("Description", overflow="fold")
    entries = _catalog(data_dir).list()
    for entry in entries:
        table.add_row(
            entry.name,
            entry.kind,
            f"{entry.n_parameters / 1e6:.1f}M" if entry.n_parameters else "",
            str(entry.context_length or "?"),
            {True: "yes", False: "no", None: "?"}[entry.has_chat_template],
            entry.defaults.method,
            _location(entry),
            entry.description,
        )
    console.print(table)
    for entry in entries:
        if entry.unavailable_reason is not None:
            console.print(f"[yellow]{entry.name}[/yellow]: {entry.unavailable_reason}", highlight=False)


@models_app.command("add")
def add_model(
    name: str = typer.Argument(..., help="Name to use as `model` in fine-tuning jobs."),
    path: Path = typer.Argument(
        ...,
        help="A transformers model directory (config.json, tokenizer, weights), or a GGUF file "
        "(converted once into a cached checkpoint).",
    ),
    data_dir: DataDir = None,
) -> None:
    """Register a local model directory or GGUF file as a base model."""
    try:
        with console.status(f"Registering {name}...") as status:

            def show(step: str) -> None:
                status.update(f"Converting {path.name}: {step}...")

            entry = _catalog(data_dir).add_local(name, path, progress=show)
    except InvalidModelError as error:
        failed = _fail(error)
        # A path that is not a usable model is bad input (2), like `openft data check`'s unreadable files.
        raise typer.Exit(code=2 if error.param == "path" else failed.exit_code) from None
    except OpenFTError as error:
        raise _fail(error) from None
    context = entry.context_length or "unknown"
    source = f"converted from {entry.gguf_path}, " if entry.gguf_path else ""
    console.print(
        f"Registered [bold]{entry.name}[/bold] -> {entry.path} ({source}context {context})", highlight=False
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
