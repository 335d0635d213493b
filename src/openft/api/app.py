"""The FastAPI application: routers under /v1, OpenAI error envelopes, request ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from openft import __version__
from openft.api import chat, evals, files, graders, jobs, models, uploads, webhooks
from openft.api.errors import install_error_handlers
from openft.api.middleware import RejectLoneSurrogatesMiddleware, RejectNulMiddleware, RequestIdMiddleware
from openft.api.openapi import DEFAULT_ERRORS, install_openapi
from openft.services.context import ServiceContext
from openft.services.eval_exec import EvalRunner
from openft.services.files import sweep_storage
from openft.services.webhook_addresses import AddressPolicy
from openft.services.webhook_test_calls import EndpointTestSlots
from openft.settings import Settings
from openft.worker.loop import Worker
from openft.worker.webhook_sender import WebhookSender, webhook_policy


def create_app(
    settings: Settings | None = None, *, local_mode_allowed: bool = True, run_worker: bool = True
) -> FastAPI:
    settings = settings or Settings()
    # A mistyped OPENFT_WEBHOOK_ALLOWED_HOSTS fails the start, not every webhook request later.
    AddressPolicy.from_entries(settings.webhook_allowed_hosts)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = ServiceContext.open(settings, local_mode_allowed=local_mode_allowed)
        sweep_storage(ctx)
        app.state.ctx = ctx
        worker = Worker(ctx) if run_worker else None
        if worker is not None:
            worker.start_in_thread()
            app.state.wake_worker = worker.wake
        sender = WebhookSender(ctx, webhook_policy(settings))
        sender.start_in_thread()
        # Eval runs execute in this process; unfinished ones left by an earlier server are taken over.
        eval_runner = EvalRunner(ctx, lambda: chat.app_engine(app, settings))
        app.state.eval_runner = eval_runner
        eval_runner.start_sweeping()
        try:
            yield
        finally:
            await eval_runner.close()
            sender.stop()
            if worker is not None:
                worker.stop()
            chat.close_engine(app)
            ctx.close()

    app = FastAPI(title="openft", version=__version__, lifespan=lifespan)
    app.state.webhook_test_slots = EndpointTestSlots(settings.webhook_test_max_in_flight)
    install_error_handlers(app)
    app.add_middleware(RejectNulMiddleware)
    app.add_middleware(RejectLoneSurrogatesMiddleware)
    app.add_middleware(RequestIdMiddleware)
    for module in (files, uploads, jobs, models, webhooks, chat, evals, graders):
        app.include_router(module.router, prefix="/v1", responses=DEFAULT_ERRORS)
    install_openapi(app)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
