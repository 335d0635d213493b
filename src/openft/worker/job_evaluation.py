"""After a job with a validation file succeeds: its evaluation, base against fine-tuned, in the worker.

The job has already succeeded (its model is served at once); the evaluation only adds an event and a
report, within a time limit, and never changes the job's status. Its answers come from the inference
engine that serves /v1/chat/completions (openft.comparison.local_runner), so the report shows what
the server answers at temperature 0. By default the evaluation makes an engine of its own, which loads
the models on demand and releases them when the evaluation ends; `engine_lease` lets the process that
owns a shared engine lend it instead (a lease that does not close it).
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from openft.comparison.compare import ComparisonResult, ModelResults, ScoredAnswer, compare, compare_results
from openft.comparison.html_report import render_html
from openft.comparison.local_runner import LocalRunner, locate_model, model_ref
from openft.comparison.testset import TestCase, read_prompt_set, read_test_set
from openft.graders.run import grade_samples
from openft.inference.embeddings import shared_embedder
from openft.inference.local import LocalEngine
from openft.inference.types import Engine
from openft.services import job_evaluations
from openft.services.context import ServiceContext
from openft.services.inference import engine_config
from openft.settings import Settings
from openft.worker.public_text import python_roots, without_server_paths

log = logging.getLogger("openft.worker")

# A reinforcement job's evaluation compares the grader's reward (the metric its training maximised).
REWARD = "reward"

# An engine for the length of one evaluation: entered before it starts, exited when it ends.
EngineLease = Callable[[], AbstractContextManager[Engine]]


def evaluate_finished_job(
    ctx: ServiceContext, job_id: str, *, engine_lease: EngineLease | None = None
) -> None:
    """Run the job's evaluation if it has one due, and record its outcome as a job event."""
    spec = job_evaluations.evaluation_spec(ctx, job_id)
    if spec is None:
        return
    timeout_s = ctx.settings.job_eval_timeout_s
    lease = engine_lease or (lambda: own_engine(ctx.settings))
    try:
        with lease() as engine:
            summary = run_job_evaluation(spec, engine, deadline=time.monotonic() + timeout_s)
    except TimeoutError:
        problem = f"it took longer than {timeout_s:g} s (OPENFT_JOB_EVAL_TIMEOUT_S) and was stopped"
    except Exception as exc:  # reported as the job's warning event; the job itself has succeeded
        log.exception("evaluation of %s failed", job_id)
        roots = [Path(spec.out_dir), ctx.settings.data_dir, ctx.settings.models_dir, *python_roots()]
        problem = without_server_paths(f"{type(exc).__name__}: {exc}", roots)
    else:
        job_evaluations.record_evaluation(ctx, job_id, summary)
        return
    log.warning("evaluation of %s failed: %s", job_id, problem)
    job_evaluations.record_evaluation_failure(ctx, job_id, problem)


@contextmanager
def own_engine(settings: Settings) -> Iterator[Engine]:
    """An engine configured as the server's built-in one, closed (its models released) afterwards."""
    engine = LocalEngine(engine_config(settings))
    try:
        yield engine
    finally:
        engine.close()
        gc.collect()  # the models, now unreferenced, leave the worker's process before the next job


def run_job_evaluation(
    spec: job_evaluations.JobEvaluationSpec, engine: Engine, *, deadline: float | None = None
) -> dict[str, Any]:
    """Compare the two models on the validation sample; write the result and report; return the summary
    for the job's event. Raises TimeoutError once `deadline` (time.monotonic()) has passed."""
    baseline_path = Path(spec.baseline_path or locate_model(spec.baseline_label, Path(spec.models_dir)))
    candidate = LocalRunner(
        model_ref(Path(spec.candidate_path), name=spec.candidate_label), engine, deadline=deadline
    )
    baseline = LocalRunner(model_ref(baseline_path, name=spec.baseline_label), engine, deadline=deadline)
    if spec.grader is not None:
        cases = read_prompt_set(Path(spec.test_file), max_examples=spec.max_examples)
        result = _graded_comparison(spec, cases, candidate, baseline)
    else:
        cases = read_test_set(Path(spec.test_file), max_examples=spec.max_examples)
        result = compare(cases, candidate, baseline, test_file=spec.test_file_id)
    out_dir = Path(spec.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(out_dir / job_evaluations.RESULT_FILE, result.to_json())
    _write_atomically(
        out_dir / job_evaluations.REPORT_FILE,
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


def _graded_comparison(
    spec: job_evaluations.JobEvaluationSpec,
    cases: list[TestCase],
    candidate: LocalRunner,
    baseline: LocalRunner,
) -> ComparisonResult:
    """A reinforcement job's evaluation: both models' greedy answers to the validation prompts, each
    scored by the job's own grader (its judges asked as in training), compared by reward."""
    assert spec.grader is not None
    # torch: imported only when an evaluation runs, so the server process starts without it.
    from openft.train.judging import RecipeJudge

    judge = RecipeJudge(spec.judges) if spec.judges else None
    try:
        results = [_graded(spec, cases, runner, judge) for runner in (baseline, candidate)]
    finally:
        if judge is not None:
            judge.close()
    return compare_results(cases, results[1], results[0], [REWARD], test_file=spec.test_file_id)


def _graded(
    spec: job_evaluations.JobEvaluationSpec, cases: list[TestCase], runner: LocalRunner, judge: Any
) -> ModelResults:
    try:
        answers = runner.answer(cases, max_tokens=spec.answer_tokens)
    finally:
        runner.close()
    outcomes = grade_samples(
        spec.grader or {},
        [(answer.text, case.item) for case, answer in zip(cases, answers, strict=True)],
        judge=judge,
        embed=shared_embedder,
    )
    scored = [
        ScoredAnswer(answer.text, {REWARD: outcome.reward}, None, answer.truncated)
        for answer, outcome in zip(answers, outcomes, strict=True)
    ]
    return ModelResults(runner.label, scored)


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
