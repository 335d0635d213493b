"""`openft worker`: a standalone worker sharing the server's queue (same database URL and data dir)."""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer

from openft.cli.options import DataDir
from openft.settings import load_settings


def worker(
    data_dir: DataDir = None,
    name: Annotated[str | None, typer.Option(help="Worker name in job records (default host-pid).")] = None,
    heartbeat_s: Annotated[float, typer.Option(help="Seconds between heartbeats of a running job.")] = 2.0,
    stale_after_s: Annotated[
        float, typer.Option(help="A running job with no heartbeat for this long is requeued.")
    ] = 30.0,
    max_attempts: Annotated[int, typer.Option(help="Runs a job gets before it fails for good.")] = 3,
) -> None:
    """Claim and run fine-tuning jobs from the shared queue until stopped (SIGINT/SIGTERM)."""
    from openft.server import WorkerOptions, build_worker_process

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = WorkerOptions(
        name=name, heartbeat_s=heartbeat_s, stale_after_s=stale_after_s, max_attempts=max_attempts
    )
    process = build_worker_process(load_settings(data_dir), options)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: process.stop())
    process.run()
