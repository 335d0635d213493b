"""One signed POST to a webhook receiver, to a checked address, within one total time limit.

Both the background sender and `POST /v1/webhook_endpoints/{id}/test` go through `post_webhook`. It
resolves the name once, checks every address (openft.services.webhook_addresses), and connects to the
checked address itself, with the Host header and the TLS server name of the URL, so a second
resolution cannot send it somewhere else. Redirects are not followed. It is async: a test call waits
on the event loop, not on a thread of the API's pool, and the limit covers resolving, connecting and
reading together.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

import anyio
import httpx

from openft.errors import InvalidRequest
from openft.services import webhook_addresses
from openft.services.webhook_addresses import AddressPolicy, AddressRefused

# Name lookups run in worker threads of their own (at most this many at once), never in the API's.
_RESOLVER_SLOTS = anyio.CapacityLimiter(4)


@dataclass
class DeliveryFailed(Exception):
    """No 2xx: `status_code` when the receiver answered, else None; `detail` is for the operator's log
    and the delivery record only, never for the API caller (it would say which ports are open)."""

    detail: str
    status_code: int | None = None

    def __str__(self) -> str:
        return self.detail


async def post_webhook(
    url: str, body: str, headers: dict[str, str], *, policy: AddressPolicy, timeout_s: float
) -> int:
    """POST `body` to `url`; the receiver's 2xx status, or DeliveryFailed."""
    try:
        with anyio.fail_after(timeout_s):
            return await _post_checked(url, body, headers, policy)
    except TimeoutError as exc:
        raise DeliveryFailed(f"no answer within {timeout_s:g} s") from exc


async def _post_checked(url: str, body: str, headers: dict[str, str], policy: AddressPolicy) -> int:
    try:
        parsed = webhook_addresses.parse_webhook_url(url)
    except InvalidRequest as exc:  # a URL stored before the checks existed
        raise DeliveryFailed(exc.message) from exc
    try:
        address = await anyio.to_thread.run_sync(
            webhook_addresses.checked_address, parsed, policy, limiter=_RESOLVER_SLOTS, abandon_on_cancel=True
        )
    except AddressRefused as exc:
        raise DeliveryFailed(f"refused by the address policy: {exc}") from exc
    except OSError as exc:
        raise DeliveryFailed(f"{parsed.host} did not resolve: {exc}") from exc
    pinned = parsed.copy_with(host=address)
    request_headers = {**headers, "host": _host_header(parsed)}
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    # trust_env=False: a proxy from the environment would do its own resolution of the name. The
    # trust store still comes from the environment (SSL_CERT_FILE / SSL_CERT_DIR, for a private CA).
    verify = _tls_context() if parsed.scheme == "https" else True
    async with httpx.AsyncClient(
        follow_redirects=False, trust_env=False, verify=verify, timeout=None
    ) as client:
        try:
            request = client.build_request(
                "POST", pinned, content=body.encode(), headers=request_headers, extensions=extensions
            )
            response = await client.send(request)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code}", status_code=response.status_code)
    return response.status_code


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the trust store takes long enough to stall the event loop on every send."""
    return httpx.create_ssl_context(trust_env=True)


def _host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port}" if url.port else host
