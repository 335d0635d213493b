"""HTTP for /v1/fine_tuning/alpha/graders: `client.fine_tuning.alpha.graders.validate` and `.run`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from openft.api.deps import Context, CurrentProject, EngineDep
from openft.schemas.graders import (
    RunGraderRequest,
    RunGraderResponse,
    ValidateGraderRequest,
    ValidateGraderResponse,
)
from openft.services import graders

router = APIRouter(prefix="/fine_tuning/alpha/graders")


@router.post("/validate", response_model=ValidateGraderResponse)
def validate_grader(body: ValidateGraderRequest, project: CurrentProject) -> ValidateGraderResponse:
    return graders.validate(body.grader)


@router.post("/run", response_model=RunGraderResponse)
async def run_grader(
    body: RunGraderRequest, ctx: Context, project: CurrentProject, engine: EngineDep
) -> RunGraderResponse:
    loop = asyncio.get_running_loop()
    return await run_in_threadpool(graders.run, ctx, engine, project, body, loop)
