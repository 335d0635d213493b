"""The rows of an eval run as its execution moves them: claim, mark in progress, store outcomes, finish.

Each function is one transaction; eval_exec.py calls them from a worker thread.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update

from openft import ids
from openft.errors import OpenFTError
from openft.evals.items import Row
from openft.services.context import Project, ServiceContext, now
from openft.services.eval_runs import ACTIVE_STATUSES, DataSource, load_rows, parse_data_source
from openft.store.tables import EvalOutputItemRow, EvalRow, EvalRunRow, ProjectRow

STALE_S = 60.0  # a heartbeat older than this means nobody executes the run any more


class RunFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Plan:
    run_id: str
    eval_id: str
    project: Project
    source: DataSource
    sampling: dict[str, Any]
    criteria: list[dict[str, Any]]
    rows: list[Row]
    done: set[int]


@dataclass(frozen=True)
class Outcome:
    index: int
    item: dict[str, Any]
    status: str  # pass | fail | error
    results: list[dict[str, Any]]
    sample: dict[str, Any] | None
    usage: tuple[str, int, int] | None  # model, prompt tokens, completion tokens


def load_plan(ctx: ServiceContext, run_id: str) -> Plan | None:
    """The run made ready to execute (and marked in_progress), or None if it is no longer to be run."""
    with ctx.db.session() as session:
        run = session.scalar(select(EvalRunRow).where(EvalRunRow.id == run_id))
        if run is None or run.status not in ACTIVE_STATUSES:
            return None
        eval_row = session.scalar(select(EvalRow).where(EvalRow.id == run.eval_id))
        project_row = session.scalar(select(ProjectRow).where(ProjectRow.id == run.project_id))
        assert eval_row is not None and project_row is not None
        done = set(
            session.scalars(
                select(EvalOutputItemRow.datasource_item_id).where(EvalOutputItemRow.run_id == run_id)
            )
        )
        # A conditional update, not an assignment: a cancel committed since the read above must win.
        marked = session.execute(
            update(EvalRunRow)
            .where(EvalRunRow.id == run_id, EvalRunRow.status.in_(ACTIVE_STATUSES))
            .values(status="in_progress")
        )
        if getattr(marked, "rowcount", 0) != 1:
            return None
        project = Project(id=project_row.id, name=project_row.name)
        raw_source, criteria_json = json.loads(run.data_source_json), eval_row.testing_criteria_json
    source = parse_data_source(raw_source)
    try:
        rows = load_rows(ctx, project, source.source)
    except OpenFTError as exc:
        message = f"The run's data source can no longer be read: {exc.message}"
        raise RunFailed("invalid_data_source", message) from None
    return Plan(
        run_id=run_id,
        eval_id=eval_row.id,
        project=project,
        source=source,
        sampling=raw_source.get("sampling_params", {}),
        criteria=json.loads(criteria_json),
        rows=rows,
        done=done,
    )


def store_outcomes(ctx: ServiceContext, plan: Plan, outcomes: list[Outcome]) -> None:
    with ctx.db.session() as session:
        run = session.scalar(select(EvalRunRow).where(EvalRunRow.id == plan.run_id).with_for_update())
        if run is None:
            return  # deleted meanwhile
        counts: dict[str, list[int]] = json.loads(run.criteria_counts_json)
        usage: dict[str, list[int]] = json.loads(run.usage_json)
        for outcome in outcomes:
            session.add(
                EvalOutputItemRow(
                    id=ids.new_output_item_id(),
                    run_id=plan.run_id,
                    eval_id=plan.eval_id,
                    datasource_item_id=outcome.index,
                    status=outcome.status,
                    datasource_item_json=json.dumps(outcome.item),
                    results_json=json.dumps(outcome.results),
                    sample_json=json.dumps(outcome.sample) if outcome.sample is not None else None,
                    created_at=now(),
                )
            )
            run.n_total += 1
            run.n_passed += outcome.status == "pass"
            run.n_failed += outcome.status == "fail"
            run.n_errored += outcome.status == "error"
            for result in outcome.results:
                counts.setdefault(result["name"], [0, 0])[0 if result["passed"] else 1] += 1
            if outcome.usage is not None:
                model, prompt, completion = outcome.usage
                totals = usage.setdefault(model, [0, 0, 0])
                totals[0], totals[1], totals[2] = totals[0] + 1, totals[1] + prompt, totals[2] + completion
        run.criteria_counts_json, run.usage_json = json.dumps(counts), json.dumps(usage)
        run.heartbeat_at = time.time()


def is_active(ctx: ServiceContext, run_id: str) -> bool:
    with ctx.db.session() as session:
        status = session.scalar(select(EvalRunRow.status).where(EvalRunRow.id == run_id))
    return status in ACTIVE_STATUSES


def finish(ctx: ServiceContext, run_id: str, failure: RunFailed | None) -> None:
    """completed (or failed, with its error) unless it was canceled or deleted meanwhile."""
    values: dict[str, Any] = {"status": "failed" if failure else "completed", "heartbeat_at": None}
    if failure is not None:
        values |= {"error_code": failure.code, "error_message": failure.message}
    with ctx.db.session() as session:
        # Conditional, so that a cancel or delete committed meanwhile is never overwritten.
        session.execute(
            update(EvalRunRow)
            .where(EvalRunRow.id == run_id, EvalRunRow.status.in_(ACTIVE_STATUSES))
            .values(**values)
        )


def beat(ctx: ServiceContext, run_id: str) -> None:
    with ctx.db.session() as session:
        session.execute(update(EvalRunRow).where(EvalRunRow.id == run_id).values(heartbeat_at=time.time()))


def claim_abandoned(ctx: ServiceContext) -> list[str]:
    """Unfinished runs nobody executes (no heartbeat, or a stale one), now claimed by this server."""
    stale = or_(EvalRunRow.heartbeat_at.is_(None), EvalRunRow.heartbeat_at < time.time() - STALE_S)
    claimed = []
    with ctx.db.session() as session:
        candidates = session.scalars(
            select(EvalRunRow.id).where(EvalRunRow.status.in_(ACTIVE_STATUSES), stale)
        ).all()
        for run_id in candidates:
            result = session.execute(
                update(EvalRunRow).where(EvalRunRow.id == run_id, stale).values(heartbeat_at=time.time())
            )
            if getattr(result, "rowcount", 0) == 1:
                claimed.append(run_id)
    return claimed


def release(ctx: ServiceContext, run_ids: list[str]) -> None:
    if not run_ids:
        return
    with ctx.db.session() as session:
        session.execute(
            update(EvalRunRow)
            .where(EvalRunRow.id.in_(run_ids), EvalRunRow.status.in_(ACTIVE_STATUSES))
            .values(heartbeat_at=None)
        )
