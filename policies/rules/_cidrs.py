"""CIDR sets taken together: does a list of source ranges let the whole internet in?

A firewall is open to the world when the addresses it admits, together, include every public
address, not only when one entry reads ``0.0.0.0/0``: ``0.0.0.0/1`` + ``128.0.0.0/1`` admits the
same, and so does "everything but 10.0.0.0/8". So the question asked here is whether the ranges,
joined with the address space that is not routable on the internet (private, loopback, link-local,
carrier-grade NAT, documentation, multicast, reserved), cover the whole address family.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# IANA special-purpose IPv4 blocks that no internet host can source traffic from.
NOT_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
# IPv6 global unicast is 2000::/3; everything else is not the internet.
NOT_PUBLIC_V6 = tuple(ipaddress.IPv6Network(n) for n in ("::/3", "4000::/2", "8000::/1"))
WORLD_V4 = ipaddress.IPv4Network("0.0.0.0/0")
WORLD_V6 = ipaddress.IPv6Network("::/0")


def parse(value: Any) -> Network | None:
    """A CIDR (host bits allowed, as the clouds normalize them) or a bare address; else None."""
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def covers_internet(cidrs: Iterable[Any]) -> bool:
    """Do the ranges, taken together, admit every public IPv4 or every public IPv6 address?"""
    nets = [n for n in (parse(c) for c in cidrs) if n is not None]
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    if v4 and list(ipaddress.collapse_addresses([*v4, *NOT_PUBLIC_V4])) == [WORLD_V4]:
        return True
    return bool(v6) and list(ipaddress.collapse_addresses([*v6, *NOT_PUBLIC_V6])) == [WORLD_V6]


def public_ranges(cidrs: Iterable[Any]) -> list[str]:
    """The entries that admit any public address (what a message should name), in given order."""
    out = []
    for value in cidrs:
        net = parse(value)
        if isinstance(net, ipaddress.IPv4Network):
            public = not any(net.subnet_of(p) for p in NOT_PUBLIC_V4)
        elif isinstance(net, ipaddress.IPv6Network):
            public = not any(net.subnet_of(p) for p in NOT_PUBLIC_V6)
        else:
            continue
        if public:
            out.append(str(value))
    return out


def strings(values: Iterable[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]
