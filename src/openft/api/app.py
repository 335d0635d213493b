"""The FastAPI application: routers under /v1, OpenAI error envelopes, request ids, and the pages
(dashboard at `/`, API reference at /docs) served from the package.

Routes and middleware only: what runs beside them (worker, webhook sender, eval runner, engine) is
built and started by the composition root, openft.server, which passes its start/stop as `lifespan`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from openft import __version__
from openft.api import (
    chat,
    checkpoint_permissions,
    evals,
    exports,
    files,
    graders,
    jobs,
    models,
    uploads,
    webhooks,
)
from openft.api.errors import install_error_handlers
from openft.api.middleware import RejectLoneSurrogatesMiddleware, RejectNulMiddleware, RequestIdMiddleware
from openft.api.openapi import DEFAULT_ERRORS, install_openapi
from openft.web.api_docs import install_api_docs
from openft.web.dashboard import install_dashboard

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(*, lifespan: Lifespan | None = None) -> FastAPI:
    # /docs is served from the package (web/api_docs.py); FastAPI's own loads its assets from a CDN.
    app = FastAPI(title="openft", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.add_middleware(RejectNulMiddleware)
    app.add_middleware(RejectLoneSurrogatesMiddleware)
    app.add_middleware(RequestIdMiddleware)
    # exports before models: /models/{model:path} would take .../export as a model name.
    for module in (
        files,
        uploads,
        jobs,
        checkpoint_permissions,
        exports,
        models,
        webhooks,
        chat,
        evals,
        graders,
    ):
        app.include_router(module.router, prefix="/v1", responses=DEFAULT_ERRORS)
    install_openapi(app)
    install_api_docs(app)
    install_dashboard(app)  # `/` and /dashboard/: pages only; their data comes from /v1 with the user's key

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
