"""Request-scoped dependencies: the service context and the caller's project."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from openft.services.auth import authenticate
from openft.services.context import Project, ServiceContext


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def current_project(request: Request, ctx: Annotated[ServiceContext, Depends(get_context)]) -> Project:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return authenticate(ctx, token.strip() if scheme.lower() == "bearer" else None)


Context = Annotated[ServiceContext, Depends(get_context)]
CurrentProject = Annotated[Project, Depends(current_project)]
