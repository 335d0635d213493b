"""`openft chat MODEL`: a terminal playground for a base, fine-tuned or checkpoint model on a server.

Answers stream token by token. `--compare BASE` asks BASE the same thing and shows both answers side by
side as they arrive (each model keeps its own side of the conversation). `--message` asks one question
and exits, for scripts. Everything goes through the official SDK, like any other client.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from openft.cli.client import DEFAULT_BASE_URL, ApiKey, BaseUrl, connected, reported_errors

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.chat import ChatCompletionMessageParam

console = Console(highlight=False)
EXIT_WORDS = ("/exit", "/quit")
REFRESH_PER_S = 12


@dataclass
class Side:
    """One model's half of the conversation."""

    model: str
    messages: list[dict[str, str]] = field(default_factory=list)
    answer: str = ""
    error: str | None = None


def chat(
    model: Annotated[
        str, typer.Argument(help="A base model, ft:... model or ft:...:ckpt-step-N checkpoint.")
    ],
    compare: Annotated[
        str | None, typer.Option("--compare", help="Also ask this model and show both answers side by side.")
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Ask this one question, print the answer, exit.")
    ] = None,
    system: Annotated[str | None, typer.Option(help="A system message to start the conversation.")] = None,
    temperature: Annotated[float, typer.Option(help="0 for the most likely answer.")] = 0.7,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 256,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
) -> None:
    """Chat with a model in the terminal (answers stream as they are generated)."""
    sides = [Side(model)] + ([Side(compare)] if compare else [])
    if system:
        for side in sides:
            side.messages.append({"role": "system", "content": system})
    options = {"temperature": temperature, "max_tokens": max_tokens}
    with connected(base_url, api_key) as client:
        if message is not None:
            _turn(client, sides, message, options, base_url)
            return
        console.print(f"[dim]Chatting with {escape(model)}. /reset starts over, /exit or Ctrl+D ends.[/dim]")
        while True:
            try:
                text = console.input("[bold]you>[/bold] ")
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if text.strip() in EXIT_WORDS:
                return
            if text.strip() == "/reset":
                for side in sides:
                    side.messages = [m for m in side.messages if m["role"] == "system"]
                continue
            if text.strip():
                _turn(client, sides, text, options, base_url)


def _turn(client: OpenAI, sides: list[Side], text: str, options: dict[str, Any], base_url: str) -> None:
    for side in sides:
        side.messages.append({"role": "user", "content": text})
        side.answer, side.error = "", None
    if len(sides) == 1:
        _stream_plain(client, sides[0], options, base_url)
    else:
        _stream_side_by_side(client, sides, options)
    for side in sides:
        side.messages.append({"role": "assistant", "content": side.answer})


def _stream_plain(client: OpenAI, side: Side, options: dict[str, Any], base_url: str) -> None:
    with reported_errors(base_url):
        for piece in _pieces(client, side, options):
            side.answer += piece
            console.out(piece, end="", highlight=False)
        console.out("")


def _stream_side_by_side(client: OpenAI, sides: list[Side], options: dict[str, Any]) -> None:
    def fill(side: Side) -> None:
        try:
            for piece in _pieces(client, side, options):
                side.answer += piece
        except Exception as exc:  # shown in that model's column; the other answer still counts
            from openft.cli.client import server_message

            side.error = server_message(exc)

    threads = [threading.Thread(target=fill, args=(side,), daemon=True) for side in sides]
    for thread in threads:
        thread.start()
    # Fine-tuned model on the left, the model it is compared with on the right.
    if not console.is_terminal:  # a pipe or a log: the finished table once, ending its line
        for thread in threads:
            thread.join()
        console.print(_table(sides))
        return
    with Live(_table(sides), console=console, refresh_per_second=REFRESH_PER_S) as live:
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=1 / REFRESH_PER_S)
            live.update(_table(sides))
        live.update(_table(sides))


def _table(sides: list[Side]) -> Table:
    table = Table(expand=True, show_lines=False)
    for side in sides:
        table.add_column(escape(side.model), ratio=1, overflow="fold")
    table.add_row(*(f"[red]{escape(s.error)}[/red]" if s.error else escape(s.answer) for s in sides))
    return table


def _pieces(client: OpenAI, side: Side, options: dict[str, Any]) -> Iterator[str]:
    stream = client.chat.completions.create(
        model=side.model,
        messages=cast("list[ChatCompletionMessageParam]", side.messages),
        temperature=options["temperature"],
        max_tokens=options["max_tokens"],
        stream=True,
    )
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                yield choice.delta.content
