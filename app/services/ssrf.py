"""Which webhook URLs the service may call: a guard against server-side request forgery.

A receiver must be reachable on the public internet: a URL whose host resolves to a loopback,
private, link-local, unique-local, shared (CGNAT), multicast, unspecified or otherwise
non-global address is refused, at registration and again before every delivery, against the
addresses the host resolves to then (so a name re-pointed at an internal address after
registration, DNS rebinding, is caught; the delivery connects to the address checked).
NPS_WEBHOOKS_ALLOW_PRIVATE=true admits loopback, private, unique-local and shared addresses for
development and tests; cloud metadata services, link-local, multicast and reserved addresses
stay refused whatever the setting. Production (NPS_ENV=production) requires https, and no URL
may carry credentials.

The checks are pure; `RESOLVE` is the seam the tests replace to play DNS.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Instance metadata services (AWS, also over IPv6 and for ECS tasks; GCP, Azure, DigitalOcean,
# OpenStack and Oracle share 169.254.169.254; Alibaba; Oracle's legacy address; Tencent): a
# request there can hand out the machine's cloud credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.169.253",
        "fd00:ec2::254",
        "fd00:ec2::253",
        "100.100.100.200",
        "192.0.0.192",
        "169.254.0.23",
    )
)
# What NPS_WEBHOOKS_ALLOW_PRIVATE admits: addresses of the machine or its own networks.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
)
# IPv6 addresses that carry an IPv4 one are checked as that address: mapped, 6to4 and NAT64.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedUrl(ValueError):
    """A webhook URL the service will not call; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL's parts the delivery needs: where to connect and what to name in Host and SNI."""

    scheme: str
    host: str
    port: int
    parts: SplitResult


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why the service must not connect to `address`, or None when it may."""
    address = embedded_ipv4(address)
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_global and not address.is_multicast:
        return None
    if allow_private and any(address in network for network in _PRIVATE_NETWORKS):
        return None
    return f"{address} is not a public address"


def parse_url(url: str, *, production: bool) -> Target:
    """The URL's scheme, host and port, or RefusedUrl for a URL no receiver may have."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl("not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RefusedUrl("the URL must be http or https")
    if production and scheme != "https":
        raise RefusedUrl("the URL must be https")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("the URL must not carry credentials (user:password@)")
    host = parts.hostname
    if not host:
        raise RefusedUrl("the URL has no host")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), parts)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def system_resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system's resolver gives `host`."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # The scope of a link-local IPv6 address (fe80::1%eth0) is dropped: refused anyway.
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


RESOLVE: Resolver = system_resolve


async def checked_addresses(target: Target, *, allow_private: bool) -> list[IPAddress]:
    """The addresses `target`'s host resolves to, all of them allowed, or RefusedUrl. One
    refused address refuses the URL: a connection could reach any of them."""
    literal = literal_address(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await RESOLVE(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise RefusedUrl(f"the host {target.host!r} does not resolve") from exc
        if not addresses:
            raise RefusedUrl(f"the host {target.host!r} does not resolve")
    for address in addresses:
        problem = address_problem(address, allow_private=allow_private)
        if problem is not None:
            raise RefusedUrl(f"the host {target.host!r} resolves to {problem}")
    return addresses
