"""After a job with a validation file succeeds: evaluate base against fine-tuned in a subprocess.

The job has already succeeded (its model is served at once); the evaluation only adds an event and a
report. It runs in a subprocess for the same reasons training does (torch stays out of the server; a
crash costs nothing but the report), with a time limit, and it never changes the job's status.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from openft.services import job_evaluations
from openft.services.context import ServiceContext
from openft.worker.public_text import python_roots, without_server_paths
from openft.worker.recipe_process import start_recipe_process

log = logging.getLogger("openft.worker")


def evaluate_finished_job(ctx: ServiceContext, job_id: str) -> None:
    """Run the job's evaluation if it has one due, and record its outcome as a job event."""
    spec = job_evaluations.evaluation_spec(ctx, job_id)
    if spec is None:
        return
    out_dir = Path(spec.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / "spec.json"
    spec_path.write_text(spec.to_json())
    summary = _run(spec_path, out_dir / "stderr.log", ctx.settings.job_eval_timeout_s)
    if "error" in summary:
        roots = [out_dir, ctx.settings.data_dir, ctx.settings.models_dir, *python_roots()]
        problem = str(summary["error"])
        log.warning("evaluation of %s failed: %s", job_id, problem)
        job_evaluations.record_evaluation_failure(ctx, job_id, without_server_paths(problem, roots))
    else:
        job_evaluations.record_evaluation(ctx, job_id, summary)


def _run(spec_path: Path, stderr_path: Path, timeout_s: float) -> dict[str, Any]:
    """The subprocess's summary line, or {"error": ...} saying why there is none."""
    command = [sys.executable, "-m", "openft.evals.job_eval", str(spec_path)]
    with open(stderr_path, "ab") as stderr:
        process = start_recipe_process(command, stderr)
        try:
            stdout, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return {
                "error": f"it took longer than {timeout_s:g} s (OPENFT_JOB_EVAL_TIMEOUT_S) and was stopped"
            }
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    try:
        summary: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        log.warning(
            "evaluation of %s: no summary (exit %s), see %s", spec_path, process.returncode, stderr_path
        )
        return {
            "error": f"the evaluation process ended with exit code {process.returncode} (its log is in "
            "the job's directory on the server)"
        }
    return summary
