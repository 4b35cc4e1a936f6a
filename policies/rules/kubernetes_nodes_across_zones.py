"""Durability: each Kubernetes cluster has nodes in at least three zones."""

from __future__ import annotations

import re

from policies.engine import Context, Rule
from policies.rules._common import EKS_CLUSTER, EKS_NODE_GROUP, GKE_CLUSTER, GKE_NODE_POOL
from policies.rules.kafka_brokers_across_zones import MIN_ZONES
from policies.view import ZONE_KEY, Resource, dig, items, references, safe, str_map, text

_GCP_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")


class KubernetesNodesAcrossZones(Rule):
    id = "kubernetes-nodes-across-zones"
    category = "durability"
    description = (
        "Every EKS cluster's managed node groups cover at least minZones zones (by their "
        "topology.kubernetes.io/zone label, else one zone per subnet); every GKE cluster and node "
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
                for g in mine:
                    zone = str_map(safe(lambda g=g: g.props.get("labels"))).get(ZONE_KEY)
                    zones |= (
                        {zone}
                        if zone
                        else {f"subnet {s}" for s in items(dig(g.props, "subnetIds"))}
                    )
                if len(zones) < need:
                    ctx.report(
                        cluster,
                        f"EKS node groups cover {len(zones)} zone(s); declare node groups in at "
                        f"least {need} zones (one per zone, labelled {ZONE_KEY})",
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
