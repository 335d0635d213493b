"""`openft migrate`: bring fine-tune files and fine-tuning jobs from an OpenAI-compatible endpoint to this
openft server, mapping the source's models to open ones.

    export OPENFT_MIGRATE_FROM_API_KEY=sk-...
    openft migrate --from-base-url https://api.openai.com/v1 \\
        --model-map gpt-4o-mini=smollm2-135m-instruct --dry-run

The work itself is in openft.cli.migration; this module parses options and prints the plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openft.cli.client import DEFAULT_BASE_URL, ApiKey, fail, reported_errors

if TYPE_CHECKING:
    from openft.cli.migration import Plan

console = Console(highlight=False)
ACTION_WORDS = {
    False: {"copy": "copied", "reuse": "reused", "done": "already there", "skip": "skipped"},
    True: {"copy": "would copy", "reuse": "would reuse", "done": "already there", "skip": "would skip"},
}


def migrate(
    from_base_url: Annotated[
        str, typer.Option("--from-base-url", help="The source's API root, e.g. https://api.openai.com/v1.")
    ],
    model_map: Annotated[
        list[str],
        typer.Option(
            "--model-map",
            help="SOURCE=TARGET model pairs (repeat, or comma-separate); a source job whose model has no "
            "pair is skipped. A key also covers its dated snapshots (gpt-4o-mini: gpt-4o-mini-2024-07-18).",
        ),
    ],
    from_api_key: Annotated[
        str,
        typer.Option(
            "--from-api-key",
            envvar="OPENFT_MIGRATE_FROM_API_KEY",
            help="The source's API key (better from the environment variable, out of shell history).",
        ),
    ],
    base_url: Annotated[
        str, typer.Option("--base-url", envvar="OPENAI_BASE_URL", help="The target openft server's API root.")
    ] = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    state: Annotated[
        Path, typer.Option(help="JSON file of old ids to new ones; a re-run copies nothing twice.")
    ] = Path("migrate-state.json"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
) -> None:
    """Copy fine-tune files (once per content) and recreate fine-tuning jobs on this server."""
    from openft.cli.client import make_client
    from openft.cli.migration import MigrationState, StateMismatch, apply, parse_model_map
    from openft.cli.migration import plan as make_plan

    try:
        mapping = parse_model_map(model_map)
        ledger = MigrationState.load(state, source=from_base_url, target=base_url)
    except (ValueError, StateMismatch) as exc:
        fail(str(exc))
    import openai

    source, target = make_client(from_base_url, from_api_key), make_client(base_url, api_key)
    with reported_errors(base_url):
        try:
            planned = make_plan(source, target, ledger, mapping)
        except openai.APIConnectionError as exc:  # the source or the target: say which
            fail(f"could not reach {exc.request.url} ({exc.message})")
        try:
            if not dry_run:
                apply(planned, target, ledger, state)
            print_plan(planned, dry_run=dry_run)
        finally:
            planned.close()
    if not dry_run:
        console.print(f"State: {escape(str(state))}")


def print_plan(plan: Plan, *, dry_run: bool) -> None:
    words = ACTION_WORDS[dry_run]
    files = Table("source file", "name", "action", "target file", "note", title="Files")
    for f in plan.files:
        files.add_row(f.source_id, escape(f.filename), words[f.action], f.target_id or "", escape(f.note))
    jobs = Table("source job", "model", "action", "target job", "note", title="Jobs")
    for j in plan.jobs:
        model = j.source_model if j.target_model is None else f"{j.source_model} -> {j.target_model}"
        notes = [j.note] if j.note else []
        notes += [f"dropped {name}: {why}" for name, why in j.dropped.items()]
        jobs.add_row(j.source_id, escape(model), words[j.action], j.target_id or "", escape("; ".join(notes)))
    console.print(files)
    console.print(jobs)
    n_files = sum(f.action == "copy" for f in plan.files)
    n_jobs = sum(j.action == "copy" for j in plan.jobs)
    n_skipped = sum(j.action == "skip" for j in plan.jobs)
    verb = "Would copy" if dry_run else "Copied"
    console.print(f"{verb} {n_files} file(s) and {n_jobs} job(s); {n_skipped} job(s) skipped.")
