"""The data checker's full report for an uploaded fine-tune file (a documented extension endpoint).

Without a model, the server checks the file itself: errors, statistics and lint, no token counts (the
server process never loads tokenizers or torch). With `model`, the check runs in a subprocess
(`openft data check --json`) with that base model's tokenizer and chat template, which adds exact token
counts, trained tokens, truncation and the epoch/cost estimate. Uploaded files never change, so that
report is kept beside the data (per stored file and base model) and served from there afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from openft.data import check_file
from openft.data.formats import METHODS
from openft.errors import InvalidRequest, Unavailable
from openft.services.base_models import resolve_base_model
from openft.services.context import Project, ServiceContext
from openft.services.files import get_file_row

# Tokenizer-backed checks running at once in this server (each is a process of a few hundred MB); a
# request beyond them is told to come back (503, which the SDK retries).
MAX_RUNNING_CHECKS = 2
_running = threading.BoundedSemaphore(MAX_RUNNING_CHECKS)
# One run per (file, model): a second request for the same report waits for the first one's result.
_report_locks: dict[Path, threading.Lock] = {}
_report_locks_guard = threading.Lock()


def check_uploaded_file(
    ctx: ServiceContext, project: Project, file_id: str, model: str | None = None, method: str | None = None
) -> dict[str, Any]:
    """Every error (line, message, field), statistics and lint findings; with `model`, token counts too.
    `method` (supervised, dpo, reinforcement) says what the file trains; None infers it from the file."""
    if method is not None and method not in METHODS:
        raise InvalidRequest(f"method must be one of {', '.join(METHODS)}; got {method!r}.", param="method")
    row = get_file_row(ctx, project, file_id)
    if row.purpose != "fine-tune":
        raise InvalidRequest(
            f"File {file_id} has purpose '{row.purpose}'; only fine-tune files can be checked.",
            param="file_id",
        )
    path = ctx.files.path(row.blob_name)
    if model is None:
        report = check_file(path, method=method).to_dict()  # type: ignore[arg-type]
    else:
        base = resolve_base_model(ctx, project.id, model)
        report = _tokenized_report(ctx, row.blob_name, base.name, method)
        report["model"] = model
    report["training"]["path"] = row.filename  # never the server's own blob path
    return {"object": "file.check", "file_id": row.id, **report}


def kept_report_path(ctx: ServiceContext, blob_name: str, base_model: str, method: str | None = None) -> Path:
    """Where the report of a stored file through a base model's tokenizer (for a method) is kept. The
    model's name is hashed: names may hold characters a file name cannot, and no two names may share a
    file."""
    key = base_model if method is None else f"{base_model}\n{method}"
    model_key = hashlib.sha256(key.encode()).hexdigest()[:32]
    return ctx.settings.file_checks_dir / f"{blob_name}.{model_key}.json"


def _tokenized_report(
    ctx: ServiceContext, blob_name: str, base_model: str, method: str | None
) -> dict[str, Any]:
    kept = kept_report_path(ctx, blob_name, base_model, method)
    with _report_locks_guard:
        lock = _report_locks.setdefault(kept, threading.Lock())
    with lock:
        if kept.exists():
            return dict(json.loads(kept.read_text()))
        if not _running.acquire(blocking=False):
            raise Unavailable(
                f"{MAX_RUNNING_CHECKS} files are being checked with a tokenizer right now; try again shortly."
            )
        try:
            report = _run_check(ctx, ctx.files.path(blob_name), base_model, method)
        finally:
            _running.release()
        kept.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=kept.parent, prefix=".partial-")
        with os.fdopen(handle, "w") as out:
            json.dump(report, out)
        os.replace(partial, kept)  # whole or not at all
        return report


def _run_check(ctx: ServiceContext, path: Path, base_model: str, method: str | None) -> dict[str, Any]:
    """`openft data check --json` on the stored file with the model's tokenizer, in a subprocess."""
    command = [sys.executable, "-m", "openft.cli.main", "data", "check", f"--model={base_model}"]
    command += [f"--method={method}"] if method else []
    command += ["--json", "--no-estimate-time", "--", str(path)]
    env = {**os.environ, "OPENFT_DATA_DIR": str(ctx.settings.data_dir), "PYTHONIOENCODING": "utf-8"}
    timeout_s = ctx.settings.file_check_timeout_s
    try:
        done = subprocess.run(
            command, capture_output=True, encoding="utf-8", errors="replace", env=env, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(
            f"Checking the file with the tokenizer of {base_model} took longer than {timeout_s:.0f} s; "
            f"run `openft data check FILE --model {base_model}` on a copy of it instead."
        ) from None
    try:
        # Exit status 1 with a report means the file has errors: a result like any other.
        report = json.loads(done.stdout) if done.returncode in (0, 1) else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise InvalidRequest(
            f"The file could not be checked: {last.replace(str(path), 'the file')}", param="model"
        )
    report.pop("calibration", None)
    return report
