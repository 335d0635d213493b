"""Webhooks cannot probe the server's own network, and test calls to slow receivers hold nothing up.

Nothing here sends traffic off this machine: refused addresses are refused before any connection,
names resolve through a stub (the process boundary), and receivers listen on loopback, which the
servers that reach them allow with OPENFT_WEBHOOK_ALLOWED_HOSTS.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import httpx
import openai
import pytest
from sqlalchemy import select

from openft.services import webhook_addresses
from openft.services.webhooks import enqueue_event
from openft.settings import Settings
from openft.store.tables import WebhookDeliveryRow
from tests.jobs.webhook_receiver import ALLOW_LOOPBACK_RECEIVERS, WebhookReceiver

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import LiveServer, ServerFactory

EVENTS = ["fine_tuning.job.succeeded"]
T = TypeVar("T")
PUBLIC_ADDRESS = "93.184.216.34"  # only ever returned by the stub resolver; never connected to

INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://127.0.0.1:22/",
    "http://localhost:8000/hooks",  # a name that resolves to loopback
    "http://[::1]:8000/",
    "http://0.0.0.0:8000/",
    "http://2130706433/",  # 127.0.0.1 as one integer
    "http://017700000001/",  # ... in octal
    "http://0x7f000001/",  # ... in hex
    "http://0x7f.1/",  # ... as a short hex form
    "http://127.1/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:a9fe:a9fe]/",  # 169.254.169.254, mapped
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[ff02::1]/",
]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def stub_resolver(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> list[str]:
    """Names resolve to `answers[0]`, then `answers[1]`, ... (the last one repeats); returns the
    names asked for, in order."""
    asked: list[str] = []

    def resolve(host: str, _port: int) -> list[str]:
        asked.append(host)
        return answers[min(len(asked), len(answers)) - 1]

    monkeypatch.setattr(webhook_addresses, "resolve_host", resolve)
    return asked


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_an_internal_address_is_refused_at_create(shared_server: LiveServer, url: str) -> None:
    client = shared_server.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.webhooks.create(event_types=EVENTS, name="probe", url=url)
    assert caught.value.param == "url"
    assert "public address" in caught.value.message and "OPENFT_WEBHOOK_ALLOWED_HOSTS" in caught.value.message


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hooks", "file:///etc/passwd", "gopher://example.com/", "http://0177.0.0.1/"]
)
def test_only_http_urls_are_accepted(shared_server: LiveServer, url: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        shared_server.client().webhooks.create(event_types=EVENTS, name="x", url=url)
    assert caught.value.param == "url"


def test_updating_to_an_internal_address_is_refused(
    shared_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_resolver(monkeypatch, [PUBLIC_ADDRESS])
    client = shared_server.client()
    endpoint = client.webhooks.create(event_types=EVENTS, name="ok", url="https://hooks.example.com/in")
    with pytest.raises(openai.BadRequestError) as caught:
        client.webhooks.update(endpoint.id, url="http://169.254.169.254/")
    assert caught.value.param == "url"
    assert client.webhooks.retrieve(endpoint.id).url == "https://hooks.example.com/in"


def test_a_hanging_name_lookup_does_not_hold_up_create(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()

    def hanging_resolver(_host: str, _port: int) -> list[str]:
        released.wait(timeout=120)
        raise OSError("no answer")

    monkeypatch.setattr(webhook_addresses, "resolve_host", hanging_resolver)
    server = server_factory(webhook_timeout_s=1)
    try:
        # The create-time check gives up on the name (the send-time check still applies).
        endpoint = server.client(timeout=30).webhooks.create(
            event_types=EVENTS, name="slow-dns", url="https://slow.example.com/hooks"
        )
        assert endpoint.url == "https://slow.example.com/hooks" and not released.is_set()
    finally:
        released.set()


def test_many_hanging_name_lookups_hold_no_request_thread_for_long(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()

    def hanging_resolver(_host: str, _port: int) -> list[str]:
        released.wait(timeout=120)
        raise OSError("no answer")

    monkeypatch.setattr(webhook_addresses, "resolve_host", hanging_resolver)
    server = server_factory()  # the default 10 s webhook timeout
    url = "https://slow.example.com/hooks"
    try:
        # 40 creates (the API's whole thread pool) with names that never resolve: each one answers
        # within the clients' 6 s limit, since no create waits on a resolver for long or queues for one.
        with ThreadPoolExecutor(max_workers=40) as pool:
            calls = [
                pool.submit(
                    server.client(timeout=6).webhooks.create,
                    event_types=EVENTS,
                    name="s",
                    url=url,
                )
                for _ in range(40)
            ]
            assert all(call.result().url == url for call in calls)
        assert not released.is_set()
    finally:
        released.set()


def test_a_name_that_rebinds_to_loopback_is_refused_at_send(
    shared_server: LiveServer, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Public when the endpoint is created, loopback (where a receiver listens) when it is sent to.
    asked = stub_resolver(monkeypatch, [PUBLIC_ADDRESS], ["127.0.0.1"])
    client = shared_server.client()
    endpoint = client.webhooks.create(
        event_types=EVENTS, name="rebinding", url=f"http://rebind.example.com:{receiver.port}/hooks"
    )

    with pytest.raises(openai.BadRequestError) as caught:
        client.webhooks.test(endpoint.id, event_type="fine_tuning.job.succeeded")
    assert caught.value.param == "webhook_endpoint_id"
    assert "127.0.0.1" not in caught.value.message and "refused" not in caught.value.message.lower()
    assert asked == ["rebind.example.com", "rebind.example.com"]  # once at create, once at send
    assert receiver.requests == []


def test_the_background_sender_checks_the_address_it_connects_to(
    shared_server: LiveServer, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_resolver(monkeypatch, [PUBLIC_ADDRESS], ["127.0.0.1"])
    client = shared_server.client()
    endpoint = client.webhooks.create(
        event_types=EVENTS, name="rebinding", url=f"http://rebind.example.com:{receiver.port}/hooks"
    )
    with shared_server.ctx.db.session() as session:
        enqueue_event(session, _project_id_of(shared_server, endpoint.id), EVENTS[0], "ftjob-x")

    error = _wait_for(lambda: _last_error(shared_server, endpoint.id))
    assert "refused by the address policy" in error and "127.0.0.1 is a loopback address" in error
    assert receiver.requests == []


def test_an_allowed_name_is_sent_to_the_address_it_was_checked_at(
    server_factory: ServerFactory, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = stub_resolver(monkeypatch, ["127.0.0.1"])
    server = server_factory(**ALLOW_LOOPBACK_RECEIVERS)
    client = server.client()
    url = f"http://receiver.internal.test:{receiver.port}/hooks"
    endpoint = client.webhooks.create(event_types=EVENTS, name="lan", url=url)

    result = client.webhooks.test(endpoint.id, event_type="fine_tuning.job.succeeded")

    assert result.status_code == 200 and result.success is True
    # The stub alone knows this name: the request reached the address it gave, with the URL's host.
    assert receiver.requests[0].headers["host"] == f"receiver.internal.test:{receiver.port}"
    assert asked == ["receiver.internal.test", "receiver.internal.test"]


def test_https_to_a_checked_address_keeps_the_urls_server_name(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.test",
         "-addext", "subjectAltName=DNS:hooks.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    tls.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    receiver = WebhookReceiver(tls=tls).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the receiver's certificate is the trusted CA
    stub_resolver(monkeypatch, ["127.0.0.1"])
    server = server_factory(webhook_timeout_s=2, **ALLOW_LOOPBACK_RECEIVERS)
    client = server.client()
    try:
        endpoint = client.webhooks.create(
            event_types=EVENTS, name="tls", url=f"https://hooks.test:{receiver.port}/hooks"
        )
        assert client.webhooks.test(endpoint.id, event_type=EVENTS[0]).status_code == 200
        assert server_names == ["hooks.test"]
        assert receiver.requests[0].headers["host"] == f"hooks.test:{receiver.port}"

        # The certificate is checked against the URL's name, not the address connected to.
        other = client.webhooks.create(
            event_types=EVENTS, name="tls", url=f"https://other.test:{receiver.port}/hooks"
        )
        with pytest.raises(openai.BadRequestError):
            client.webhooks.test(other.id, event_type=EVENTS[0])
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()


def test_an_allowed_host_name_may_resolve_to_loopback(
    server_factory: ServerFactory, receiver: WebhookReceiver
) -> None:
    server = server_factory(webhook_allowed_hosts=["localhost"])
    client = server.client()
    endpoint = client.webhooks.create(
        event_types=EVENTS, name="lan", url=f"http://localhost:{receiver.port}/hooks"
    )
    assert client.webhooks.test(endpoint.id, event_type="fine_tuning.job.failed").status_code == 200
    with pytest.raises(openai.BadRequestError):  # the allowance names a host, not all of loopback
        client.webhooks.create(event_types=EVENTS, name="other", url=f"http://127.0.0.1:{receiver.port}/")


def test_failed_test_calls_say_only_delivery_failed(
    server_factory: ServerFactory, receiver: WebhookReceiver
) -> None:
    server = server_factory(webhook_timeout_s=1, **ALLOW_LOOPBACK_RECEIVERS)
    http = server.http()
    closed_port = _closed_port()
    with _silent_listener() as filtered_port:  # accepts connections, never answers
        bodies = {}
        for name, port in (("closed", closed_port), ("filtered", filtered_port)):
            endpoint = _create(http, f"http://127.0.0.1:{port}/hooks")
            answer = http.post(f"webhook_endpoints/{endpoint}/test", json={"event_type": EVENTS[0]})
            assert answer.status_code == 400
            bodies[name] = answer.json()
    assert bodies["closed"] == bodies["filtered"]
    assert bodies["closed"]["error"]["param"] == "webhook_endpoint_id"
    assert str(closed_port) not in str(bodies["closed"]) and "refused" not in str(bodies["closed"]).lower()

    receiver.n_failures = 1  # the receiver answers 500 once
    endpoint = _create(http, receiver.url)
    answer = http.post(f"webhook_endpoints/{endpoint}/test", json={"event_type": EVENTS[0]})
    assert answer.status_code == 400 and "HTTP 500" in answer.json()["error"]["message"]


def test_redirects_are_not_followed(server_factory: ServerFactory) -> None:
    server = server_factory(**ALLOW_LOOPBACK_RECEIVERS)
    http = server.http()
    # The server's own /v1/files/ answers a 307 to /v1/files (the router's trailing-slash redirect).
    endpoint = _create(http, f"{server.base_url}/files/")
    answer = http.post(f"webhook_endpoints/{endpoint}/test", json={"event_type": EVENTS[0]})
    assert answer.status_code == 400 and "HTTP 307" in answer.json()["error"]["message"]


def test_slow_test_calls_are_capped_per_project_and_hold_up_no_one(server_factory: ServerFactory) -> None:
    server = server_factory(webhook_timeout_s=120, **ALLOW_LOOPBACK_RECEIVERS)
    hanging = WebhookReceiver(hang=True).start()
    try:
        alpha, beta = server.http(server.create_key("alpha")), server.http(server.create_key("beta"))
        endpoint = _create(alpha, hanging.url)
        with ThreadPoolExecutor(max_workers=60) as pool:
            calls: list[Future[httpx.Response]] = [
                pool.submit(
                    alpha.post,
                    f"webhook_endpoints/{endpoint}/test",
                    json={"event_type": EVENTS[0]},
                    timeout=180,
                )
                for _ in range(60)
            ]
            hanging.wait_for(4)
            limited = _wait_for(lambda: [c for c in calls if c.done()] if _n_done(calls) >= 56 else None)
            assert sorted(c.result().status_code for c in limited) == [429] * 56
            error = limited[0].result().json()["error"]
            assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"

            # Four calls wait on the receiver; another project's requests are served meanwhile, not
            # after them (a generous 5 s bound: such a request takes milliseconds when nothing stalls it).
            assert beta.get("files", params={"limit": 1}, timeout=5).status_code == 200
            assert alpha.get("files", params={"limit": 1}, timeout=5).status_code == 200
            assert _n_done(calls) == 56 and len(hanging.requests) == 4

            hanging.released.set()
            assert sorted(c.result(timeout=60).status_code for c in calls) == [200] * 4 + [429] * 56
    finally:
        hanging.stop()


def _create(http: httpx.Client, url: str) -> str:
    answer = http.post("webhook_endpoints", json={"event_types": EVENTS, "name": "t", "url": url})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _n_done(calls: list[Future[httpx.Response]]) -> int:
    return sum(c.done() for c in calls)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _silent_listener() -> Iterator[int]:
    """A loopback port whose connections are accepted by the kernel and never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def _project_id_of(server: LiveServer, endpoint_id: str) -> str:
    from openft.store.tables import WebhookEndpointRow

    with server.ctx.db.session() as session:
        row = session.scalar(select(WebhookEndpointRow).where(WebhookEndpointRow.id == endpoint_id))
        assert row is not None
        return row.project_id


def _last_error(server: LiveServer, endpoint_id: str) -> str | None:
    with server.ctx.db.session() as session:
        row = session.scalar(select(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id))
        return None if row is None else row.last_error


def _wait_for(probe: Callable[[], T | None], timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None:
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return value


def test_the_allow_setting_reads_names_addresses_and_ranges_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENFT_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1, hooks.lan ,10.20.0.0/16,[::1]")
    policy = webhook_addresses.AddressPolicy.from_entries(Settings().webhook_allowed_hosts)

    for allowed in ("127.0.0.1", "10.20.3.4", "::1"):
        policy.check(ipaddress.ip_address(allowed))
    for refused in ("127.0.0.2", "10.21.0.1", "::ffff:10.21.0.1"):
        with pytest.raises(webhook_addresses.AddressRefused):
            policy.check(ipaddress.ip_address(refused))
    assert policy.name_allowed("HOOKS.lan.") and not policy.name_allowed("lan")


@pytest.mark.parametrize("url", ["http://xn--/", "http://a..b/", "http://.com/", f"http://{'a' * 64}.com/"])
def test_a_host_name_that_cannot_be_looked_up_is_a_400(shared_server: LiveServer, url: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        shared_server.client().webhooks.create(event_types=EVENTS, name="x", url=url)
    assert caught.value.param == "url"


def test_a_stored_url_that_cannot_be_looked_up_is_a_failed_delivery_not_a_stuck_one(
    shared_server: LiveServer,
) -> None:
    from openft.store.tables import WebhookEndpointRow

    # No resolver stub: the real one refuses "a..b" before any query leaves the process.
    client = shared_server.client()
    endpoint = client.webhooks.create(event_types=EVENTS, name="old", url=f"https://{PUBLIC_ADDRESS}/in")
    with shared_server.ctx.db.session() as session:  # as stored before create checked host names
        row = session.scalar(select(WebhookEndpointRow).where(WebhookEndpointRow.id == endpoint.id))
        assert row is not None
        row.url = "http://a..b/hooks"
        enqueue_event(session, row.project_id, EVENTS[0], "ftjob-x")

    error = _wait_for(lambda: _last_error(shared_server, endpoint.id))
    assert "a..b" in error


@pytest.mark.parametrize("entry", ["10.0.0.5/8", "hooks.lan:8080", "*.lan", "http://hooks.lan/"])
def test_an_allow_entry_that_would_silently_mean_something_else_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="OPENFT_WEBHOOK_ALLOWED_HOSTS"):
        webhook_addresses.AddressPolicy.from_entries([entry])
