"""`openft keys create|list|revoke`: API keys belong to a project and are shown once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from openft.cli.options import DataDir
from openft.errors import OpenFTError
from openft.settings import load_settings

if TYPE_CHECKING:
    from openft.services.context import ServiceContext

keys_app = typer.Typer(no_args_is_help=True)
console = Console()


def _context(data_dir: Path | None) -> ServiceContext:
    from openft.services.context import ServiceContext

    return ServiceContext.open(load_settings(data_dir))


@keys_app.command("create")
def create(
    project: Annotated[str, typer.Option(help="Project the key belongs to (created if new).")],
    data_dir: DataDir = None,
) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from openft.services.auth import create_key

    ctx = _context(data_dir)
    try:
        key, info = create_key(ctx, project)
    except OpenFTError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(code=1) from exc
    finally:
        ctx.close()
    console.print(
        f"Created key [bold]{info.id}[/] for project [bold]{info.project}[/]. "
        "Store it now; it is not shown again:"
    )
    typer.echo(key)


@keys_app.command("list")
def list_(data_dir: DataDir = None) -> None:
    """List API keys (redacted)."""
    from openft.services.auth import list_keys

    ctx = _context(data_dir)
    try:
        keys = list_keys(ctx)
    finally:
        ctx.close()
    table = Table("id", "project", "key", "created_at", "revoked_at")
    for key in keys:
        table.add_row(key.id, key.project, key.redacted, str(key.created_at), str(key.revoked_at or ""))
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke an API key by id (see `openft keys list`)."""
    from openft.services.auth import revoke_key

    ctx = _context(data_dir)
    try:
        n_active_left = revoke_key(ctx, key_id)
    except OpenFTError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(code=1) from exc
    finally:
        ctx.close()
    console.print(f"Revoked {key_id}.")
    if n_active_left == 0:
        console.print(
            "[yellow]That was the last active key: the server still requires a key, so no request is "
            "accepted until you create one (openft keys create --project NAME).[/] To serve loopback "
            "requests without a key again, start it with `openft serve --local-mode` "
            "(or OPENFT_LOCAL_MODE=on)."
        )
