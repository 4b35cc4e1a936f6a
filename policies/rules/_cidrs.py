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
from dataclasses import dataclass
from itertools import pairwise
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


# --------------------------------------------------------------------------- ports

ALL_PORTS = (0, 65535)
PROTOCOL_NAMES = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


@dataclass(frozen=True)
class Grant:
    """One ingress permission: a protocol ("all" for any), a port range and its source CIDRs."""

    protocol: str
    low: int
    high: int
    cidrs: tuple[str, ...]
    source: str = ""  # what declared it (a resource name), for messages


def grant(protocol: Any, low: Any, high: Any, cidrs: Iterable[Any], source: str = "") -> Grant:
    """A Grant from cloud fields: "-1"/"all" is every protocol; absent or negative ports, and any
    port of an all-protocol rule, mean every port (AWS ignores ports for "-1")."""
    name = str(protocol if protocol is not None else "all").strip().lower()
    name = PROTOCOL_NAMES.get(name, name)
    lo, hi = _port(low), _port(high if high is not None else low)
    if name == "all" or lo is None or hi is None or lo < 0 or hi < 0:
        lo, hi = ALL_PORTS
    return Grant(name, lo, hi, tuple(strings(cidrs)), source)


def _port(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class Opening:
    """Where grants, taken together, admit the whole internet."""

    protocol: str
    low: int
    high: int
    cidrs: tuple[str, ...]  # the public ranges that add up
    sources: tuple[str, ...]  # the grants' sources that contribute

    @property
    def where(self) -> str:
        if self.protocol == "all":
            return "all traffic"
        if (self.low, self.high) == ALL_PORTS:
            return f"{self.protocol} all ports"
        if self.low == self.high:
            return f"{self.protocol} {self.low}"
        return f"{self.protocol} {self.low}-{self.high}"


def openings(grants: Iterable[Grant]) -> list[Opening]:
    """Every protocol and port range on which the grants' sources together cover the internet.

    Ports are split at every grant's bounds, so each piece has one set of grants applying to it;
    an all-protocol grant applies to every protocol's pieces (and alone to protocols no grant
    names). Adjacent open pieces with the same sources are merged."""
    grants = list(grants)
    named = sorted({g.protocol for g in grants} - {"all"})
    protocols = named + (["all"] if any(g.protocol == "all" for g in grants) else [])
    found: list[Opening] = []
    for protocol in protocols:
        applying = [g for g in grants if g.protocol in (protocol, "all")]
        bounds = sorted({g.low for g in applying} | {g.high + 1 for g in applying})
        for low, nxt in pairwise(bounds):
            here = [g for g in applying if g.low <= low <= g.high]
            cidrs = [c for g in here for c in g.cidrs]
            if not here or not covers_internet(cidrs):
                continue
            wide = tuple(dict.fromkeys(public_ranges(cidrs)))
            sources = tuple(dict.fromkeys(g.source for g in here if public_ranges(g.cidrs)))
            last = found[-1] if found else None
            if (
                last is not None
                and last.protocol == protocol
                and last.high + 1 == low
                and (last.cidrs, last.sources) == (wide, sources)
            ):
                found[-1] = Opening(protocol, last.low, nxt - 1, wide, sources)
            else:
                found.append(Opening(protocol, low, nxt - 1, wide, sources))
    return found
