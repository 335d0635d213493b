"""`openft graders validate|run`: check a grader JSON file, or score one sample with it, on a server
(the alpha graders endpoints, so python graders run in the server's sandbox and model graders judge with
the server's models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from openft.cli.client import DEFAULT_BASE_URL, ApiKey, AsJson, BaseUrl, CliError, connected

graders_app = typer.Typer(no_args_is_help=True)
console = Console(highlight=False)

GraderFile = Annotated[Path, typer.Argument(help="The grader as JSON, as OpenAI's API takes it.")]


@graders_app.command("validate")
def validate(
    grader: GraderFile,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    as_json: AsJson = False,
) -> None:
    """Check a grader; prints it as the server understood it, or the field that is wrong."""
    with connected(base_url, api_key) as client:
        # As JSON, not the SDK's model: its union of grader types misreads a multi grader.
        checked: Any = client.post(
            "/fine_tuning/alpha/graders/validate",
            body={"grader": _read_json(grader, "the grader")},
            cast_to=object,
        )
    payload = checked["grader"]
    if as_json:
        console.print_json(data=payload)
        return
    console.print(f"[green]valid[/green] {escape(payload['type'])} grader {escape(repr(payload['name']))}")


@graders_app.command("run")
def run(
    grader: GraderFile,
    sample: Annotated[str, typer.Option("--sample", help="The model's answer to score.")],
    item: Annotated[
        str | None, typer.Option("--item", help="The dataset line as JSON, or @FILE to read it from a file.")
    ] = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    as_json: AsJson = False,
) -> None:
    """Score one sample (and its dataset line) with a grader: the reward, each sub-grader's and any error."""
    with connected(base_url, api_key) as client:
        item_value = _item(item) if item is not None else None
        result = client.fine_tuning.alpha.graders.run(
            grader=_read_json(grader, "the grader"),  # type: ignore[arg-type]
            model_sample=sample,
            item=item_value if item_value is not None else {},
        )
    if as_json:
        console.print_json(data=result.model_dump(by_alias=True))
        return
    console.print(
        f"reward [bold]{result.reward:.4g}[/bold]  ({result.metadata.type} grader {result.metadata.name!r})"
    )
    for name, reward in result.sub_rewards.items():
        console.print(f"  {escape(name)}: {reward}")
    errors = result.metadata.errors.model_dump(by_alias=True)
    for flag, value in errors.items():
        if value is True:
            details = errors.get(f"{flag}_details") or errors.get(f"{flag}_type")
            console.print(f"  [yellow]{flag}[/yellow]" + (f": {escape(str(details))}" if details else ""))


def _item(text: str) -> Any:
    if text.startswith("@"):
        return _read_json(Path(text[1:]), "the item")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"--item is not JSON: {exc.msg} (column {exc.colno}); pass a JSON object or @FILE"
        ) from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{path}: no such file ({what})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{path} is not JSON ({what}): {exc}") from None
