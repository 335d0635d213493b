"""`openft jobs evaluation JOB`: the evaluation that ended a job with a validation file, from the server.

Prints the side-by-side table and the summary, as `openft eval` does, and saves the server's HTML
report with `--out`. The data comes from the openft extension `GET /v1/fine_tuning/jobs/{id}/evaluation`
through the official SDK's raw `get`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from openft.cli.client import DEFAULT_BASE_URL, ApiKey, AsJson, BaseUrl, connected


def evaluation(
    job_id: Annotated[str, typer.Argument(help="The job's id (ftjob-...).", show_default=False)],
    out: Annotated[Path | None, typer.Option(help="Save the HTML report here.")] = None,
    base_url: BaseUrl = DEFAULT_BASE_URL,
    api_key: ApiKey = "local",
    as_json: AsJson = False,
) -> None:
    """Show a job's evaluation: base against fine-tuned on its validation file."""
    import httpx  # with the SDK, only when the command runs

    from openft.cli.eval import console, print_comparison
    from openft.comparison.compare import ComparisonResult

    with connected(base_url, api_key) as client:
        data = client.get(f"/fine_tuning/jobs/{job_id}/evaluation", cast_to=dict[str, Any])
        report = (
            client.get(f"/fine_tuning/jobs/{job_id}/evaluation/report", cast_to=httpx.Response)
            if out
            else None
        )
    if as_json:
        typer.echo(json.dumps(data, indent=1))
    else:
        print_comparison(ComparisonResult.from_dict(data))
    if out is not None and report is not None:
        out.write_bytes(report.content)
        console.print(f"report: {out}")
