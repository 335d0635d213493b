"""The data checker's full report for an uploaded fine-tune file (a documented extension endpoint).

Without a model, the server checks the file itself: errors, statistics and lint, no token counts (the
server process never loads tokenizers or torch). With `model`, the check runs in a subprocess
(`openft data check --json`) with that base model's tokenizer and chat template, which adds exact token
counts, trained tokens, truncation and the epoch/cost estimate. Uploaded files never change, so that
report is kept beside the data (per stored file and base model) and served from there afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from openft.data import check_file
from openft.errors import InvalidRequest
from openft.services.base_models import resolve_base_model
from openft.services.context import Project, ServiceContext
from openft.services.files import get_file_row


class FileCheckFailed(InvalidRequest):
    """The tokenizer-backed check could not run (the model's tokenizer did not load, say)."""


def check_uploaded_file(
    ctx: ServiceContext, project: Project, file_id: str, model: str | None = None
) -> dict[str, Any]:
    """Every error (line, message, field), statistics and lint findings; with `model`, token counts too."""
    row = get_file_row(ctx, project, file_id)
    if row.purpose != "fine-tune":
        raise InvalidRequest(
            f"File {file_id} has purpose '{row.purpose}'; only fine-tune files can be checked.",
            param="file_id",
        )
    path = ctx.files.path(row.blob_name)
    if model is None:
        report = check_file(path).to_dict()
    else:
        base = resolve_base_model(ctx, project.id, model)
        report = _tokenized_report(ctx, row.blob_name, path, base.name)
        report["model"] = model
    report["training"]["path"] = row.filename  # never the server's own blob path
    return {"object": "file.check", "file_id": row.id, **report}


def _tokenized_report(ctx: ServiceContext, blob_name: str, path: Path, base_model: str) -> dict[str, Any]:
    kept = ctx.settings.file_checks_dir / f"{blob_name}.{_safe(base_model)}.json"
    if kept.exists():
        return dict(json.loads(kept.read_text()))
    command = [sys.executable, "-m", "openft.cli.main", "data", "check", str(path)]
    command += ["--model", base_model, "--json", "--no-estimate-time"]
    env = {**os.environ, "OPENFT_DATA_DIR": str(ctx.settings.data_dir)}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=ctx.settings.file_check_timeout_s
        )
    except subprocess.TimeoutExpired:
        raise FileCheckFailed(
            f"Checking the file with the tokenizer of {base_model} took longer than "
            f"{ctx.settings.file_check_timeout_s:.0f} s; run `openft data check FILE --model {base_model}` "
            "on a copy of it instead.",
            param="model",
        ) from None
    if done.returncode not in (0, 1):  # 1: the report has errors, which is a result like any other
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise FileCheckFailed(
            f"The file could not be checked with the tokenizer of {base_model}: {last}", param="model"
        )
    report = dict(json.loads(done.stdout))
    report.pop("calibration", None)
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_name(f".{kept.name}.{os.getpid()}")
    partial.write_text(json.dumps(report))
    os.replace(partial, kept)  # whole or not at all, if two requests race
    return report


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
