"""`openft serve`: the API server on the embedded default (SQLite + local data dir)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from openft.cli.options import DataDir
from openft.settings import Settings, load_settings

console = Console()


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        if host == "localhost":
            return True
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (OPENFT_HOST; default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (OPENFT_PORT; default 8000).")] = None,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    worker: Annotated[bool, typer.Option(help="Run a training worker inside the server process.")] = True,
    local_mode: Annotated[
        bool,
        typer.Option(
            "--local-mode",
            help="On loopback, serve requests without a key while no key is active, even if keys "
            "existed before (OPENFT_LOCAL_MODE).",
        ),
    ] = False,
) -> None:
    """Run the OpenAI-compatible API server."""
    import uvicorn

    from openft.server import build_server
    from openft.services.auth import count_active_keys, local_mode_active

    # Options given on the command line override the environment; those not given leave it alone.
    given = {"host": host, "port": port, "local_mode": True if local_mode else None}
    settings = load_settings(data_dir, **{name: value for name, value in given.items() if value is not None})
    host, port = settings.host, settings.port
    loopback = is_loopback(host)
    server = build_server(settings, local_mode_allowed=loopback, run_worker=worker)
    n_keys, in_local_mode = count_active_keys(server.context), local_mode_active(server.context)
    if not loopback and n_keys == 0:
        server.context.close()
        console.print(
            f"[red]Refusing to listen on {host}: other machines can reach it and no API key exists.[/]\n"
            "Create one first:  openft keys create --project NAME   (then pass it as OPENAI_API_KEY)"
        )
        raise typer.Exit(code=2)
    _print_banner(settings, local_mode=in_local_mode)
    uvicorn.run(server.app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)


def _print_banner(settings: Settings, *, local_mode: bool) -> None:
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    root_url = f"http://{shown_host}:{settings.port}"
    base_url = f"{root_url}/v1"
    key_line = 'api_key="local"' if local_mode else 'api_key="sk-openft-..."'
    snippet = f'from openai import OpenAI\nclient = OpenAI(base_url="{base_url}", {key_line})'
    auth = (
        "[yellow]Local mode:[/] no API key is active and the server listens on loopback only, so any "
        "bearer token is accepted. Run `openft keys create --project NAME` to require keys."
        if local_mode
        else "API keys are required (openft keys create --project NAME)."
    )
    console.print(
        Panel.fit(
            f"[bold]openft[/] listening on [cyan]{base_url}[/]\n"
            f"dashboard: [cyan]{root_url}/[/]\n"
            f"API reference: [cyan]{root_url}/docs[/]\n"
            f"data dir: {settings.data_dir}\n"
            f"database: {_safe_url(settings.resolved_database_url)}\n{auth}\n\n"
            f"[dim]{snippet}[/]",
            title="openft serve",
        )
    )


def _safe_url(url: str) -> str:
    """Hide a password in a database URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url
