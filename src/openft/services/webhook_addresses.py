"""Where webhooks may go: public addresses only, unless the operator allows a host or range.

A webhook URL is chosen by any API user, and the server then connects to it: without a policy that
makes the server a probe into its own network (cloud metadata at 169.254.169.254, databases on
loopback, the office LAN). So every address is checked, at create for literal addresses and names
that resolve, and again at send time on the addresses the name resolves to then (a name can change
its answer between the two: DNS rebinding). The sender connects to an address that passed the check.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from openft.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Python's ipaddress reads only dotted-quad decimal IPv4; resolvers also read the older spellings
# (2130706433, 0x7f.1, 0177.0.0.1, 127.1), so those are read here the way a resolver would.
_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")
# Look-ups for the create-time check wait here, with a time limit, not in the API's request threads.
_CREATE_RESOLVERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="openft-webhook-resolve")
# Lookups at create are advisory (every send checks again), so they never queue: with every resolver
# busy (names that hang) create skips the lookup, and one waits at most this long, so hanging names
# cannot pile request threads up behind the pool.
_CREATE_SLOTS = threading.BoundedSemaphore(4)
CREATE_LOOKUP_MAX_S = 2.0


class UnresolvableName(OSError):
    """A host name the resolver refuses to look up at all (empty or over-long labels)."""


class AddressRefused(Exception):
    """An address the policy does not allow; the message names the address and why."""


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses pass; these host names and networks pass too (OPENFT_WEBHOOK_ALLOWED_HOSTS)."""

    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: list[str]) -> AddressPolicy:
        names, networks = set(), []
        for entry in (e.strip().lower() for e in entries):
            if not entry:
                continue
            try:
                # strict: "10.0.0.5/8" is a typo to refuse, not all of 10.0.0.0/8
                networks.append(ipaddress.ip_network(entry.strip("[]")))
                continue
            except ValueError:
                pass
            if "/" in entry or not _HOST_NAME.fullmatch(entry.rstrip(".")):
                raise ValueError(
                    f"OPENFT_WEBHOOK_ALLOWED_HOSTS: {entry!r} is neither a host name (hooks.lan) nor an "
                    "address or CIDR range (10.20.0.0/16); ports, schemes and wildcards are not accepted"
                )
            names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def name_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allowed_names

    def check(self, address: IPAddress) -> None:
        """Raises AddressRefused unless `address` is public or in an allowed network."""
        if any(address in network for network in self.allowed_networks):
            return
        reason = refused_kind(address)
        if reason is not None:
            raise AddressRefused(f"{address} is a {reason} address")


def refused_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refused_kind(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
    )
    for kind, applies in checks:
        if applies:
            return kind
    return None if address.is_global else "non-public"


def literal_address(host: str) -> IPAddress | None:
    """The address `host` spells, in any spelling a resolver accepts, or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the one resolution a send uses; tests replace this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_webhook_url(url: str) -> httpx.URL:
    """The URL as the sender will read it; only absolute http(s) URLs with a host."""
    try:
        parsed = httpx.URL(url)
        host = parsed.host  # decoded lazily: a malformed IDNA label raises only here
    except (httpx.InvalidURL, TypeError, ValueError) as exc:  # ValueError: IDNA errors in the host
        raise InvalidRequest(f"url is not a valid URL: {exc}.", param="url") from exc
    # Self-hosted receivers often live on a private network without TLS, so http is allowed too.
    if parsed.scheme not in ("http", "https") or not host:
        raise InvalidRequest(f"url must be an http(s) URL with a host; got {url!r}.", param="url")
    return parsed


def default_port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def check_url_at_create(url: str, policy: AddressPolicy, *, resolve_timeout_s: float) -> str:
    """400 (param `url`) for a URL whose literal address, or a resolved address, the policy refuses."""
    parsed = parse_webhook_url(url)
    if policy.name_allowed(parsed.host):
        return url
    literal = literal_address(parsed.host)
    try:
        if literal is not None:
            addresses = [literal]
        else:
            addresses = _lookup_at_create(parsed, min(resolve_timeout_s, CREATE_LOOKUP_MAX_S))
    except UnresolvableName as exc:
        raise InvalidRequest(f"url has a host name that cannot be looked up: {exc}.", param="url") from exc
    except (OSError, TimeoutError):
        return url  # not resolvable now; the send-time check decides when it is
    try:
        for address in addresses:
            policy.check(address)
    except AddressRefused as exc:
        raise InvalidRequest(
            f"url must point at a public address: {parsed.host} is refused ({exc}). An operator can "
            "allow private hosts or ranges with OPENFT_WEBHOOK_ALLOWED_HOSTS.",
            param="url",
        ) from exc
    return url


def _lookup_at_create(url: httpx.URL, timeout_s: float) -> list[IPAddress]:
    if not _CREATE_SLOTS.acquire(blocking=False):
        raise TimeoutError("every create-time resolver is busy")
    future = _CREATE_RESOLVERS.submit(_resolved, url)
    future.add_done_callback(lambda _: _CREATE_SLOTS.release())
    return future.result(timeout=timeout_s)


def _resolved(url: httpx.URL) -> list[IPAddress]:
    try:
        resolved = resolve_host(url.host, default_port(url))
    except UnicodeError as exc:  # getaddrinfo's IDNA step: not an OSError, but the same "cannot resolve"
        raise UnresolvableName(f"{url.host!r} is not a name that can be resolved") from exc
    return [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]


def checked_address(url: httpx.URL, policy: AddressPolicy) -> str:
    """Resolve once, check every address, and return the one to connect to (send time).

    Raises AddressRefused if any resolved address is refused (a name that answers with both a public
    and an internal address is refused as a whole), OSError if the name does not resolve.
    """
    literal = literal_address(url.host)
    if literal is not None:
        if not policy.name_allowed(url.host):
            policy.check(literal)
        return str(literal)
    addresses = _resolved(url)
    if not addresses:
        raise OSError(f"{url.host} resolved to no address")
    if not policy.name_allowed(url.host):
        for address in addresses:
            policy.check(address)
    return str(addresses[0])
