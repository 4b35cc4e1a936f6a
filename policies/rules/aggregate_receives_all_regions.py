"""Data placement: every region's aggregate cluster receives every region's regional cluster."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import (
    GMK_CLUSTER,
    MSK_CLUSTER,
    MSK_REPLICATOR,
    arn_region,
    cluster_region,
    kafka_role,
    kafkas,
    mirror_makers,
    mm2_sources,
    mm2_target,
)
from policies.view import Resource, StackView, dig, items, safe, text


class AggregateReceivesAllRegions(Rule):
    id = "aggregate-receives-all-regions"
    category = "data placement"
    description = (
        "A stack with an aggregate Kafka cluster (Strimzi Kafka, MSK or Managed Kafka named "
        "aggregate, or labelled rtdi-kafka-role aggregate) mirrors into it from every region of "
        "the topology: the MirrorMaker 2s whose target bootstrap reaches it and the MSK "
        "Replicators whose target ARN is it read, between them, from every topology region (a "
        "mirror's source bootstrap, else its alias; a Replicator's source cluster ARN). An "
        "rtdi-source-region tag that disagrees is a violation."
    )
    why = (
        "All-active consumers read the aggregate cluster for the global view; a region missing "
        "from the mirrors silently drops that region's events from every global computation "
        "(surge pricing, ETAs, analytics)."
    )
    severity = "high"

    def check(self, ctx: Context) -> None:
        view = ctx.view
        # By name (what the bootstrap addresses, and so the mirrors, are derived from); a role
        # label adds a cluster to check, never removes one.
        aggregates = [
            k for k in kafkas(view) if kafka_role(k) == "aggregate" or k.k8s_name == "aggregate"
        ]
        aggregates += [
            c
            for c in view.of_type(MSK_CLUSTER, GMK_CLUSTER)
            if kafka_role(c) == "aggregate" or _managed_name(c).endswith("aggregate")
        ]
        if not aggregates:
            return
        topology = view.topology
        if topology is None:
            for agg in aggregates:
                ctx.report(
                    agg,
                    "cannot verify which regions feed this aggregate cluster: the global topology "
                    "is not available (check the regional stack together with its global stack's "
                    "plan or outputs)",
                )
            return
        region_ids = [f"{r.get('cloud')}-{r.get('name')}" for r in topology.get("regions") or []]
        for agg in aggregates:
            with ctx.guard(agg):
                mirrors = self._mirrors_into(view, agg)
                sources: set[str] = set()
                for m in mirrors:
                    if m.type == MSK_REPLICATOR:
                        found = _replicator_sources(view, m)
                        claimed = m.labels.get("rtdi-source-region")
                        if claimed and found and claimed not in found:
                            ctx.report(
                                m,
                                f"is tagged rtdi-source-region: {claimed!r}, but replicates "
                                f"from {', '.join(sorted(found))}; fix or drop the tag",
                            )
                        sources |= found
                    else:
                        # Where each mirror reads from: its source bootstrap's region, else
                        # (an address that names no region) its alias.
                        sources |= {
                            cluster_region(view, text(dig(conn, "bootstrapServers"))) or alias
                            for alias, conn in mm2_sources(m)
                            if alias
                        }
                missing = [r for r in region_ids if r not in sources]
                if missing:
                    where = mirrors[0] if mirrors else agg
                    ctx.report(
                        where,
                        f"aggregate cluster {agg.k8s_name or agg.name} receives nothing from "
                        f"{', '.join(missing)}; add a mirror whose source alias is each missing "
                        "region id (an empty topicsPattern is fine when no data class may flow)",
                    )

    @staticmethod
    def _mirrors_into(view, agg: Resource) -> list[Resource]:
        """MirrorMaker 2s whose target bootstrap reaches the aggregate, and the MSK Replicators
        whose target cluster is it (for a managed aggregate)."""
        out: list[Resource] = []
        name = _managed_name(agg)
        if agg.type == MSK_CLUSTER:
            out += [
                rep
                for rep in view.of_type(MSK_REPLICATOR)
                if any(
                    f"/{name}/" in (text(dig(info, "targetKafkaClusterArn")) or "")
                    for info in items(dig(rep.props, "replicationInfoList"))
                )
            ]
        for mm2 in mirror_makers(view):
            _, target = mm2_target(mm2)
            host = (text(dig(target, "bootstrapServers")) or "").split(",")[0]
            if (
                host.startswith(f"{agg.k8s_name}-kafka-bootstrap")
                if agg.package == "kubernetes"
                else f".{name}." in f".{host}"
            ):
                out.append(mm2)
        return out


def _managed_name(cluster: Resource) -> str:
    """An MSK cluster's clusterName or a Managed Kafka cluster's clusterId ("" for others)."""
    for key in ("clusterName", "clusterId"):
        value = text(safe(lambda k=key: cluster.props.get(k)))
        if value:
            return value
    return ""


def _replicator_sources(view: StackView, rep: Resource) -> set[str]:
    """Region ids of an MSK Replicator's sources: the region of each source cluster ARN (or the
    region id in its cluster name), else the source alias."""
    out: set[str] = set()
    for info in items(dig(rep.props, "replicationInfoList")):
        found = arn_region(view, text(dig(info, "sourceKafkaClusterArn")))
        alias = text(dig(info, "sourceKafkaClusterAlias"))
        if found:
            out.add(found)
        elif alias:
            out.add(alias)
    return out


RULE = AggregateReceivesAllRegions()
