"""Availability: a region's Pinot servers run in at least minZones zones.

Zones are read from how the server pods are scheduled, per Pinot Helm release with servers
(``server.replicaCount`` > 0): a required node selector or required node affinity on
topology.kubernetes.io/zone pins them to those zones; without one, a required pod
anti-affinity on the zone puts each of its servers in its own zone (so up to replicaCount
zones); otherwise they may all land in one zone, which counts as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.engine import Context, Param, Rule
from policies.rules import _pinot
from policies.view import ZONE_KEY, dig, items, text


def pinned_zones(server: Mapping[str, Any]) -> set[str]:
    zone = text(dig(server, "nodeSelector", ZONE_KEY))
    if zone:
        return {zone}
    terms = items(
        dig(
            server,
            "affinity",
            "nodeAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
            "nodeSelectorTerms",
        )
    )
    found: set[str] = set()
    for term in terms:
        for expr in items(dig(term, "matchExpressions")):
            if dig(expr, "key") == ZONE_KEY and dig(expr, "operator") == "In":
                found |= {v for v in items(dig(expr, "values")) if isinstance(v, str)}
    return found


def spread_by_anti_affinity(server: Mapping[str, Any]) -> bool:
    terms = items(
        dig(server, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
    )
    return any(dig(t, "topologyKey") == ZONE_KEY for t in terms)


class PinotServersAcrossZones(Rule):
    id = "pinot-servers-across-zones"
    category = "availability"
    description = (
        "A stack's Pinot servers (server.replicaCount > 0 in releases of the apache/pinot chart) "
        "run in at least minZones zones: zones a release pins its servers to (server.nodeSelector "
        "or required node affinity on topology.kubernetes.io/zone), or, for a release with a "
        "required pod anti-affinity on the zone, as many zones as its servers; a release with "
        "neither counts as one zone."
    )
    why = (
        "Pinot assigns a segment's replicas to servers of different replica groups: when all "
        "servers share a zone, one zone outage takes every replica and the tables stop "
        "answering; servers pinned per zone let replica groups follow zones."
    )
    severity = "high"
    params = (
        Param(
            "minZones",
            2,
            "Fewest distinct zones a region's Pinot servers must run in.",
            {"type": "integer", "minimum": 1},
        ),
    )

    def check(self, ctx: Context) -> None:
        zones: set[str] = set()
        unpinned = 0
        first = None
        for release in _pinot.releases(ctx.view):
            with ctx.guard(release):
                count = _pinot.replicas(release, "server")
                if count <= 0:
                    continue
                first = first or release
                server = dig(_pinot.values(release), "server")
                server = server if isinstance(server, Mapping) else {}
                pinned = pinned_zones(server)
                if pinned:
                    zones |= pinned
                elif spread_by_anti_affinity(server):
                    unpinned += count
                else:
                    unpinned += 1
        if first is None:
            return
        reached = len(zones) + unpinned
        if reached < ctx["minZones"]:
            ctx.report(
                first,
                f"Pinot servers run in at most {reached} zone(s) "
                f"({', '.join(sorted(zones)) or 'unpinned'}); pin server releases to at least "
                f"{ctx['minZones']} zones (server.nodeSelector on {ZONE_KEY})",
            )


RULE = PinotServersAcrossZones()
