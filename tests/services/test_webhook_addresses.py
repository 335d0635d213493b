"""Where webhooks may go (services/webhook_addresses.py): public addresses only, in every spelling a
resolver reads, unless OPENFT_WEBHOOK_ALLOWED_HOSTS names the host or range. Names resolve through a stub;
nothing here connects anywhere."""

from __future__ import annotations

import ipaddress

import pytest

from openft.errors import InvalidRequest
from openft.schemas.webhooks import CreateWebhookEndpointRequest
from openft.services import webhook_addresses, webhooks
from openft.services.auth import ensure_project
from openft.services.context import ServiceContext
from openft.services.webhook_addresses import (
    AddressPolicy,
    AddressRefused,
    check_url_at_create,
    checked_address,
    parse_webhook_url,
)
from openft.settings import Settings

PUBLIC = "93.184.216.34"
NO_POLICY = AddressPolicy()

REFUSED: list[tuple[str, str]] = [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("127.8.9.10", "127.8.9.10 is a loopback address"),
    ("[::1]", "::1 is a loopback address"),
    ("2130706433", "127.0.0.1 is a loopback address"),  # one decimal integer
    ("0x7f000001", "127.0.0.1 is a loopback address"),
    ("017700000001", "127.0.0.1 is a loopback address"),
    ("127.1", "127.0.0.1 is a loopback address"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1 is a loopback address"),  # IPv4-mapped
    ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1 is a loopback address"),  # NAT64
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ("[fe80::1]", "fe80::1 is a link-local address"),
    ("10.1.2.3", "10.1.2.3 is a private address"),
    ("172.16.0.1", "172.16.0.1 is a private address"),
    ("192.168.0.1", "192.168.0.1 is a private address"),
    ("[fd00::1]", "fd00::1 is a private address"),
    ("224.0.0.1", "224.0.0.1 is a multicast address"),
    ("[ff02::1]", "ff02::1 is a multicast address"),
    ("0.0.0.0", "0.0.0.0 is a unspecified address"),
    ("[::]", ":: is a unspecified address"),
    ("0", "0.0.0.0 is a unspecified address"),
    ("100.64.0.1", "100.64.0.1 is a non-public address"),  # carrier-grade NAT
]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names resolve to what the test puts here; an absent name does not resolve. Returns the table."""
    answers: dict[str, list[str]] = {}

    def resolve(host: str, _port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"{host}: name does not resolve")
        return answers[host]

    monkeypatch.setattr(webhook_addresses, "resolve_host", resolve)
    return answers


def create_check(url: str, policy: AddressPolicy = NO_POLICY) -> str:
    return check_url_at_create(url, policy, resolve_timeout_s=2)


@pytest.mark.parametrize(("host", "reason"), REFUSED, ids=[host for host, _ in REFUSED])
def test_a_non_public_address_is_refused_at_create_and_at_send(host: str, reason: str) -> None:
    url = f"http://{host}:8080/hooks"

    with pytest.raises(InvalidRequest) as raised:
        create_check(url)
    assert raised.value.param == "url"
    assert f"is refused ({reason})" in raised.value.message
    assert "OPENFT_WEBHOOK_ALLOWED_HOSTS" in raised.value.message

    with pytest.raises(AddressRefused, match=reason):
        checked_address(parse_webhook_url(url), NO_POLICY)


@pytest.mark.parametrize("host", [PUBLIC, "[2606:4700:4700::1111]", "8.8.8.8"])
def test_a_public_address_is_accepted(host: str) -> None:
    url = f"https://{host}/in"
    assert create_check(url) == url
    assert checked_address(parse_webhook_url(url), NO_POLICY) == host.strip("[]")


def test_a_name_is_judged_by_every_address_it_resolves_to(resolver: dict[str, list[str]]) -> None:
    resolver["hooks.example.com"] = [PUBLIC, "2606:4700:4700::1111"]
    resolver["localhost"] = ["127.0.0.1"]
    resolver["split.example.com"] = [PUBLIC, "10.0.0.7"]

    assert create_check("https://hooks.example.com/in") == "https://hooks.example.com/in"
    assert checked_address(parse_webhook_url("https://hooks.example.com/in"), NO_POLICY) == PUBLIC
    for name, reason in (
        ("localhost", "127.0.0.1 is a loopback"),
        ("split.example.com", "10.0.0.7 is a private"),
    ):
        with pytest.raises(InvalidRequest) as raised:
            create_check(f"https://{name}/in")
        assert raised.value.param == "url" and reason in raised.value.message
        with pytest.raises(AddressRefused, match=reason):
            checked_address(parse_webhook_url(f"https://{name}/in"), NO_POLICY)


def test_a_name_that_changes_its_answer_after_create_is_refused_at_send(
    resolver: dict[str, list[str]],
) -> None:
    resolver["rebind.example.com"] = [PUBLIC]
    url = parse_webhook_url(create_check("http://rebind.example.com/in"))

    resolver["rebind.example.com"] = ["169.254.169.254"]

    with pytest.raises(AddressRefused, match="link-local"):
        checked_address(url, NO_POLICY)


def test_a_name_that_does_not_resolve_now_is_left_to_the_send_time_check(
    resolver: dict[str, list[str]],
) -> None:
    assert create_check("https://later.example.com/in") == "https://later.example.com/in"
    with pytest.raises(OSError, match="does not resolve"):
        checked_address(parse_webhook_url("https://later.example.com/in"), NO_POLICY)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/in", "file:///etc/passwd", "http:///no-host", "hooks.example.com/in", "http://[::1/"],
)
def test_only_absolute_http_urls_with_a_host_are_accepted(url: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        create_check(url)
    assert raised.value.param == "url"


def test_the_allowed_hosts_setting_admits_named_hosts_and_ranges(resolver: dict[str, list[str]]) -> None:
    settings = Settings(webhook_allowed_hosts="hooks.lan, 10.20.0.0/16 ,[fd00::5],127.0.0.1")
    policy = AddressPolicy.from_entries(settings.webhook_allowed_hosts)
    assert policy.allowed_names == frozenset({"hooks.lan"})
    assert policy.allowed_networks == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd00::5/128"),
        ipaddress.ip_network("127.0.0.1/32"),
    )
    resolver["hooks.lan"] = ["192.168.1.9"]

    for url in (
        "http://hooks.lan:9000/in",
        "http://HOOKS.LAN./in",
        "http://10.20.3.4/",
        "http://[fd00::5]/",
        "http://127.0.0.1/",
    ):
        assert create_check(url, policy) == url
    assert checked_address(parse_webhook_url("http://hooks.lan:9000/in"), policy) == "192.168.1.9"
    assert checked_address(parse_webhook_url("http://10.20.3.4/"), policy) == "10.20.3.4"
    # Only what is named: a neighbouring range, another address, another name stay refused.
    resolver["other.lan"] = ["192.168.1.9"]
    for url in ("http://10.21.0.1/", "http://[fd00::6]/", "http://127.0.0.2/", "http://other.lan/"):
        with pytest.raises(InvalidRequest):
            create_check(url, policy)


@pytest.mark.parametrize(
    "entry", ["10.0.0.5/8", "http://hooks.lan", "hooks.lan:8080", "*.lan", "hooks lan", "10.0.0.0/8/1"]
)
def test_an_allowed_hosts_entry_that_is_neither_a_name_nor_a_range_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="OPENFT_WEBHOOK_ALLOWED_HOSTS"):
        AddressPolicy.from_entries([entry])


def test_webhook_endpoints_follow_the_servers_allowed_hosts(tmp_path, database_url: str) -> None:
    settings = Settings(
        data_dir=tmp_path / "d", database_url=database_url, webhook_allowed_hosts="10.20.0.0/16"
    )
    ctx = ServiceContext.open(settings)
    try:
        project = ensure_project(ctx, "personal")

        def create(url: str) -> str:
            request = CreateWebhookEndpointRequest(
                event_types=["fine_tuning.job.succeeded"], name="n", url=url
            )
            return webhooks.create_endpoint(ctx, project, request).url

        assert create("http://10.20.0.9/in") == "http://10.20.0.9/in"
        with pytest.raises(InvalidRequest) as raised:
            create("http://10.30.0.9/in")
        assert raised.value.param == "url"
    finally:
        ctx.close()
