"""Durability: each Kubernetes cluster has nodes in at least three zones."""

from __future__ import annotations

import re

from policies.engine import Context, Rule
from policies.rules._common import (
    EKS_CLUSTER,
    EKS_NODE_GROUP,
    GKE_CLUSTER,
    GKE_NODE_POOL,
    subnet_zones,
)
from policies.rules.kafka_brokers_across_zones import MIN_ZONES
from policies.view import ZONE_KEY, Resource, dig, items, references, safe, str_map, text

_GCP_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")


class KubernetesNodesAcrossZones(Rule):
    id = "kubernetes-nodes-across-zones"
    category = "durability"
    description = (
        "Every EKS cluster's managed node groups cover at least minZones zones (the "
        "availabilityZone of the subnets in their subnetIds; a subnet no checked stack declares "
        "counts as one zone; a zone label that disagrees is a violation); every GKE cluster and "
        "node "
        "pool runs in at least minZones nodeLocations (a regional cluster without nodeLocations "
        "gets three)."
    )
    why = (
        "Zonal stateful pods (brokers, Flink, Pinot) can only be rescheduled into a zone that has "
        "nodes; a cluster in fewer zones than the data's replicas cannot survive a zone outage."
    )
    severity = "high"
    params = (MIN_ZONES,)

    def check(self, ctx: Context) -> None:
        need = ctx["minZones"]
        groups = ctx.view.of_type(EKS_NODE_GROUP)
        for cluster in ctx.view.of_type(EKS_CLUSTER):
            with ctx.guard(cluster):
                mine = [g for g in groups if _same_eks(g, cluster)]
                zones: set[str] = set()
                unknown: list[str] = []
                for g in mine:
                    found, missing = subnet_zones(ctx.view, dig(g.props, "subnetIds"))
                    zones |= found
                    unknown += missing
                    claimed = str_map(safe(lambda g=g: g.props.get("labels"))).get(ZONE_KEY)
                    if claimed and found and found != {claimed}:
                        ctx.report(
                            g,
                            f"is labelled {ZONE_KEY}: {claimed!r}, but its subnets are in "
                            f"{', '.join(sorted(found))}; fix or drop the label",
                        )
                # Subnets no checked stack declares (an existing network): only AWS knows their
                # zone, so each distinct one counts as a zone; never the node group's label.
                zones |= {f"subnet {s}" for s in unknown}
                if len(zones) < need:
                    ctx.report(
                        cluster,
                        f"EKS node groups' subnets cover {len(zones)} zone(s) "
                        f"({', '.join(sorted(zones)) or 'none'}); place node groups in subnets "
                        f"of at least {need} zones",
                    )
        for cluster in ctx.view.of_type(GKE_CLUSTER):
            with ctx.guard(cluster):
                count = _gke_zones(cluster)
                if count < need:
                    ctx.report(
                        cluster,
                        f"GKE cluster runs in {count} zone(s); make it regional or set "
                        f"nodeLocations to at least {need} zones",
                    )
        for pool in ctx.view.of_type(GKE_NODE_POOL):
            with ctx.guard(pool):
                locations = items(dig(pool.props, "nodeLocations"))
                if locations and len(locations) < need:
                    ctx.report(
                        pool,
                        f"GKE node pool runs in {len(locations)} zone(s); set nodeLocations to at "
                        f"least {need} zones",
                    )


def _same_eks(group: Resource, cluster: Resource) -> bool:
    if references(group, "clusterName", cluster):
        return True
    return text(dig(group.props, "clusterName")) == text(dig(cluster.props, "name"))


def _gke_zones(cluster: Resource) -> int:
    """Zones of a GKE cluster's nodes: a zonal cluster's zone plus its nodeLocations; a regional
    cluster's nodeLocations, or the three zones GKE picks when there are none."""
    locations = {z for z in items(dig(cluster.props, "nodeLocations")) if isinstance(z, str)}
    where = (text(dig(cluster.props, "location")) or "").lower()
    if _GCP_ZONE.match(where):
        return len(locations | {where})
    return len(locations) if locations else 3


RULE = KubernetesNodesAcrossZones()
