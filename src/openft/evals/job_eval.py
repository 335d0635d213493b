"""`python -m openft.evals.job_eval SPEC.json`: the evaluation that ends a job that has a validation file.

The worker runs it in a subprocess once the job has succeeded (torch stays out of the server): the job's
starting model and its fine-tuned model answer the first `max_examples` validation examples greedily,
both are scored, and the comparison is written to `out_dir` as `evaluation.json` (the full result) and
`evaluation.html` (the report). The last line on stdout is a JSON summary for the job's event.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from openft.train.environment import set_model_process_environment

RESULT_FILE = "evaluation.json"
REPORT_FILE = "evaluation.html"


@dataclass(frozen=True)
class JobEvalSpec:
    """What the subprocess needs; written by the service as JSON (no torch needed to make it)."""

    job_id: str
    candidate_label: str  # the job's fine-tuned model name
    candidate_path: str
    baseline_label: str  # the model the job started from (a base model, or the ft: model it continued)
    baseline_path: str | None  # None: resolve baseline_label in the catalog under models_dir
    models_dir: str
    test_file: str
    test_file_id: str
    max_examples: int
    out_dir: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> JobEvalSpec:
        return cls(**json.loads(text))


def run_job_eval(spec: JobEvalSpec) -> dict[str, Any]:
    """Compare the two models on the validation sample; write the result and report; return the summary."""
    from openft.evals.compare import compare
    from openft.evals.html_report import render_html
    from openft.evals.local import LocalRunner, locate_model
    from openft.evals.testset import read_test_set

    cases = read_test_set(Path(spec.test_file), max_examples=spec.max_examples)
    baseline_path = Path(spec.baseline_path or locate_model(spec.baseline_label, Path(spec.models_dir)))
    result = compare(
        cases,
        LocalRunner(Path(spec.candidate_path), label=spec.candidate_label),
        LocalRunner(baseline_path, label=spec.baseline_label),
        test_file=spec.test_file_id,
    )
    out_dir = Path(spec.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(out_dir / RESULT_FILE, result.to_json())
    _write_atomically(
        out_dir / REPORT_FILE,
        render_html(result, title=f"{spec.candidate_label} against {spec.baseline_label}"),
    )
    return {
        "n_examples": len(cases),
        "headline": result.headline,
        "summary_lines": result.summary_lines(),
        "primary_metric": result.primary_metric,
        "baseline": result.baseline.means,
        "fine_tuned": result.candidate.means,
    }


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def main(argv: list[str]) -> int:
    set_model_process_environment()
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        from openft.inference.config import shared_cpu_threads

        # Half the cores, as the server's engine: it shares them with the server's inference and with
        # training on the same machine (openft.inference.config.shared_cpu_threads says why).
        torch.set_num_threads(shared_cpu_threads())
    try:
        summary = run_job_eval(JobEvalSpec.from_json(Path(argv[0]).read_text()))
    except Exception as exc:  # reported as the job's warning event; the job itself has succeeded
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
