"""`/docs`: FastAPI's Swagger UI, with its script and stylesheet served from the swagger-ui-bundle
package instead of a CDN, so the API reference works on a machine without internet access."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"


def install_api_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs; the app must be made with `docs_url=None, redoc_url=None`."""
    assert app.docs_url is None, "FastAPI's own /docs would load Swagger UI from a CDN"

    @app.get(DOCS_URL, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )

    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="api-docs-assets")
