"""Serve the dashboard: one index.html at `/` (hash routing picks the page) and its assets under
/dashboard/. No route here needs a key: the pages hold no data, and every request for data goes to /v1
with the user's own key."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.staticfiles import PathLike
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PREFIX = "/dashboard"

# Everything the page loads comes from this server: a stray CDN link fails in the browser at once,
# offline or not, and injected markup cannot run scripts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class DashboardAssets(StaticFiles):
    """The assets, revalidated on every load so an upgraded server never runs yesterday's scripts."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(PAGE_HEADERS)
        return response


def install_dashboard(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        index = STATIC_DIR / "index.html"
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    app.mount(ASSETS_PREFIX, DashboardAssets(directory=STATIC_DIR), name="dashboard")
