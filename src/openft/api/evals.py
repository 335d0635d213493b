"""HTTP for /v1/evals: the SDK's `client.evals`, `client.evals.runs` and `client.evals.runs.output_items`.

Verbs that start or stop a run are coroutines: the run is an asyncio task of this server (eval_exec.py),
while the database work runs in a worker thread.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from openft.api.deps import Context, CurrentProject, EvalRunnerDep
from openft.api.openapi import one_of, page_limit
from openft.schemas.evals import (
    EVAL_RUN_STATUSES,
    OUTPUT_ITEM_STATUSES,
    CreateEvalRequest,
    CreateEvalRunRequest,
    DeletedEval,
    DeletedEvalRun,
    Eval,
    EvalList,
    EvalRun,
    EvalRunList,
    OutputItem,
    OutputItemList,
    UpdateEvalRequest,
)
from openft.services import eval_results, eval_runs
from openft.services import evals as eval_service

router = APIRouter(prefix="/evals")
Order = Literal["asc", "desc"]


@router.post("", response_model=Eval)
def create_eval(body: CreateEvalRequest, ctx: Context, project: CurrentProject) -> Eval:
    return eval_service.create_eval(ctx, project, body)


@router.get("", response_model=EvalList)
def list_evals(
    ctx: Context,
    project: CurrentProject,
    after: str | None = None,
    limit: int = page_limit(20, eval_service.MAX_LIST_LIMIT),
    order: Order = "asc",
    order_by: str = one_of("created_at", ("created_at",)),
) -> EvalList:
    return eval_service.list_evals(ctx, project, after=after, limit=limit, order=order, order_by=order_by)


@router.get("/{eval_id}", response_model=Eval)
def retrieve_eval(eval_id: str, ctx: Context, project: CurrentProject) -> Eval:
    return eval_service.retrieve_eval(ctx, project, eval_id)


@router.post("/{eval_id}", response_model=Eval)
def update_eval(eval_id: str, body: UpdateEvalRequest, ctx: Context, project: CurrentProject) -> Eval:
    return eval_service.update_eval(ctx, project, eval_id, body)


@router.delete("/{eval_id}", response_model=DeletedEval)
async def delete_eval(
    eval_id: str, ctx: Context, project: CurrentProject, runner: EvalRunnerDep
) -> DeletedEval:
    deleted, run_ids = await run_in_threadpool(eval_service.delete_eval, ctx, project, eval_id)
    for run_id in run_ids:
        runner.stop_run(run_id)
    return deleted


@router.post("/{eval_id}/runs", response_model=EvalRun)
async def create_run(
    eval_id: str, body: CreateEvalRunRequest, ctx: Context, project: CurrentProject, runner: EvalRunnerDep
) -> EvalRun:
    run = await run_in_threadpool(eval_runs.create_run, ctx, project, eval_id, body)
    runner.start(run.id)
    return run


@router.get("/{eval_id}/runs", response_model=EvalRunList)
def list_runs(
    eval_id: str,
    ctx: Context,
    project: CurrentProject,
    after: str | None = None,
    limit: int = page_limit(20, eval_service.MAX_LIST_LIMIT),
    order: Order = "asc",
    status: str | None = one_of(None, EVAL_RUN_STATUSES),
) -> EvalRunList:
    return eval_results.list_runs(ctx, project, eval_id, after=after, limit=limit, order=order, status=status)


@router.get("/{eval_id}/runs/{run_id}", response_model=EvalRun)
def retrieve_run(eval_id: str, run_id: str, ctx: Context, project: CurrentProject) -> EvalRun:
    return eval_results.retrieve_run(ctx, project, eval_id, run_id)


# OpenAI documents cancel as POST on the run; the SDK posts to .../cancel. Both are served.
@router.post("/{eval_id}/runs/{run_id}", response_model=EvalRun)
@router.post("/{eval_id}/runs/{run_id}/cancel", response_model=EvalRun)
async def cancel_run(
    eval_id: str, run_id: str, ctx: Context, project: CurrentProject, runner: EvalRunnerDep
) -> EvalRun:
    run = await run_in_threadpool(eval_results.cancel_run, ctx, project, eval_id, run_id)
    runner.stop_run(run_id)
    return run


@router.delete("/{eval_id}/runs/{run_id}", response_model=DeletedEvalRun)
async def delete_run(
    eval_id: str, run_id: str, ctx: Context, project: CurrentProject, runner: EvalRunnerDep
) -> DeletedEvalRun:
    runner.stop_run(run_id)
    return await run_in_threadpool(eval_results.delete_run, ctx, project, eval_id, run_id)


@router.get("/{eval_id}/runs/{run_id}/output_items", response_model=OutputItemList)
def list_output_items(
    eval_id: str,
    run_id: str,
    ctx: Context,
    project: CurrentProject,
    after: str | None = None,
    limit: int = page_limit(20, eval_service.MAX_LIST_LIMIT),
    order: Order = "asc",
    status: str | None = one_of(None, OUTPUT_ITEM_STATUSES),
) -> OutputItemList:
    return eval_results.list_output_items(
        ctx, project, eval_id, run_id, after=after, limit=limit, order=order, status=status
    )


@router.get("/{eval_id}/runs/{run_id}/output_items/{output_item_id}", response_model=OutputItem)
def retrieve_output_item(
    eval_id: str, run_id: str, output_item_id: str, ctx: Context, project: CurrentProject
) -> OutputItem:
    return eval_results.retrieve_output_item(ctx, project, eval_id, run_id, output_item_id)
