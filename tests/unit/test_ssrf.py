"""The SSRF guard's pure checks: which addresses and URLs a webhook may name; and the retry
schedule as docs/webhooks.md states it."""

import ipaddress
import re
from pathlib import Path

import pytest

from app.services.deliveries import RETRY_SCHEDULE
from app.services.ssrf import RefusedUrl, address_problem, parse_url

PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.215.14"]
PRIVATE = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "::1",
    "fd12::1",
    "2002:7f00:1::1",
]
ALWAYS_REFUSED = [
    "169.254.169.254",
    "169.254.170.2",
    "fd00:ec2::254",
    "100.100.100.200",
    "192.0.0.192",
    "169.254.1.1",
    "fe80::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:a9fe:a9fe::1",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), allow_private=False) is None


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_only_with_allow_private(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_problem(ip, allow_private=False) is not None
    assert address_problem(ip, allow_private=True) is None


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
def test_metadata_link_local_and_reserved_are_refused_whatever_the_setting(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_problem(ip, allow_private=False) is not None
    assert address_problem(ip, allow_private=True) is not None


@pytest.mark.parametrize(
    ("url", "production", "why"),
    [
        ("file:///etc/passwd", False, "the URL must be http or https"),
        ("gopher://x.example.com/", False, "the URL must be http or https"),
        ("http://x.example.com/", True, "the URL must be https"),
        (
            "https://a:b@x.example.com/",
            False,
            "the URL must not carry credentials (user:password@)",
        ),
        ("https://a@x.example.com/", False, "the URL must not carry credentials (user:password@)"),
        ("https://x.example.com:99999/", False, "not a valid URL"),
        ("https:///path", False, "the URL has no host"),
    ],
)
def test_urls_no_receiver_may_have(url: str, production: bool, why: str) -> None:
    with pytest.raises(RefusedUrl) as refused:
        parse_url(url, production=production)
    assert str(refused.value) == why


def test_ports_default_by_scheme() -> None:
    assert parse_url("https://x.example.com/a", production=True).port == 443
    assert parse_url("http://x.example.com/a", production=False).port == 80
    assert parse_url("http://X.example.com:8080/a", production=False).host == "x.example.com"


def test_the_documented_schedule_is_the_one_used() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| after |"))
    units = {"s": 1, "min": 60, "h": 3600}
    waits = [int(n) * units[u] for n, u in re.findall(r"(\d+) (s|min|h)\b", row)]
    assert waits == [int(w.total_seconds()) for w in RETRY_SCHEDULE]
