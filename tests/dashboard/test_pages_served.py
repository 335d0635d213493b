"""What `openft serve` answers for the pages: the dashboard at `/` and its assets need no key, the data
does; unknown /v1 paths keep OpenAI's JSON 404; nothing a page loads comes from another host."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from openft.web.dashboard import STATIC_DIR
from tests.conftest import ServerFactory

EXTERNAL_URL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def test_pages_load_without_a_key_while_the_data_requires_one(server_factory: ServerFactory) -> None:
    server = server_factory()
    key = server.create_key("team")
    with httpx.Client(base_url=server.root_url, timeout=30) as http:
        page = http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text):
            assert http.get(asset).status_code == 200, asset
        script = http.get("/dashboard/js/main.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]

        no_key = http.get("/v1/models")
        assert no_key.status_code == 401 and "API key" in no_key.json()["error"]["message"]
        assert http.get("/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == 200

        # The API's own 404s stay JSON envelopes, for unknown routes and unknown assets alike.
        for path in ("/v1/no_such_route", "/dashboard/no_such_file.js", "/no_such_page"):
            missing = http.get(path)
            assert missing.status_code == 404, path
            assert missing.json()["error"]["type"] == "invalid_request_error", path


def test_api_reference_at_docs_loads_swagger_ui_from_this_server(server_factory: ServerFactory) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.root_url, timeout=30) as http:
        docs = http.get("/docs")
        assert docs.status_code == 200
        assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", docs.text)
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
        for asset in assets:
            assert asset.startswith("/"), f"{asset} is not served by openft"
            assert http.get(asset).status_code == 200, asset
        assert "/openapi.json" in docs.text and http.get("/openapi.json").status_code == 200
        assert http.get("/redoc").status_code == 404  # FastAPI's Redoc page loads from a CDN: not served


def test_no_dashboard_file_links_to_another_host() -> None:
    files = [p for p in STATIC_DIR.rglob("*") if p.suffix in (".html", ".js", ".css")]
    assert len(files) >= 10
    for path in files:
        text = path.read_text()
        assert not EXTERNAL_URL.search(text), path
        assert not re.search(r"""\bimport\b[^;]*["']https?:""", text), path
        assert "@import" not in text and "url(http" not in text, path


def test_every_module_the_dashboard_imports_is_shipped() -> None:
    """A missing or misnamed module would leave the page blank: every relative import resolves."""
    for path in (STATIC_DIR / "js").rglob("*.js"):
        for target in re.findall(r"""from\s+["'](\.{1,2}/[^"']+)["']""", path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}"
    assert Path(STATIC_DIR / "index.html").is_file()
