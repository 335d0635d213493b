"""Request-scoped dependencies: what the routes reach of the server process, and the caller's project.

The composition root (openft.server) builds these parts and installs them on the app; routes never
make an engine, a worker or a context themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from openft.inference.types import Engine
from openft.services.auth import authenticate
from openft.services.context import Project, ServiceContext
from openft.services.eval_exec import EvalRunner
from openft.services.webhook_test_calls import EndpointTestSlots


@dataclass(frozen=True)
class AppServices:
    context: ServiceContext
    engine: Callable[[], Engine]  # the process's engine, made on first use
    eval_runner: EvalRunner
    wake_worker: Callable[[], None]  # the in-process worker looks for work now (a no-op without one)
    webhook_test_slots: EndpointTestSlots


def install_services(app: FastAPI, services: AppServices) -> None:
    app.state.services = services


def _services(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


def get_context(request: Request) -> ServiceContext:
    return _services(request).context


def current_project(request: Request, ctx: Annotated[ServiceContext, Depends(get_context)]) -> Project:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return authenticate(ctx, token.strip() if scheme.lower() == "bearer" else None)


def get_engine(request: Request) -> Engine:
    return _services(request).engine()


def get_eval_runner(request: Request) -> EvalRunner:
    return _services(request).eval_runner


def get_wake_worker(request: Request) -> Callable[[], None]:
    return _services(request).wake_worker


def get_webhook_test_slots(request: Request) -> EndpointTestSlots:
    return _services(request).webhook_test_slots


Context = Annotated[ServiceContext, Depends(get_context)]
CurrentProject = Annotated[Project, Depends(current_project)]
EngineDep = Annotated[Engine, Depends(get_engine)]
EvalRunnerDep = Annotated[EvalRunner, Depends(get_eval_runner)]
WakeWorker = Annotated[Callable[[], None], Depends(get_wake_worker)]
WebhookTestSlots = Annotated[EndpointTestSlots, Depends(get_webhook_test_slots)]
