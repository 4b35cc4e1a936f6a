"""Data placement: every region's aggregate cluster receives every region's regional cluster."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import (
    GMK_CLUSTER,
    MSK_CLUSTER,
    MSK_REPLICATOR,
    kafka_role,
    kafkas,
    mirror_makers,
    mm2_sources,
    mm2_target,
)
from policies.view import Resource, dig, items, text


class AggregateReceivesAllRegions(Rule):
    id = "aggregate-receives-all-regions"
    category = "data placement"
    description = (
        "A stack with an aggregate Kafka cluster (Strimzi Kafka named or labelled rtdi-kafka-role "
        "aggregate, or MSK/Managed Kafka tagged so) mirrors into it from every region of the "
        "topology: the source aliases of its MirrorMaker 2 mirrors (and MSK Replicator sources) "
        "cover every topology region id."
    )
    why = (
        "All-active consumers read the aggregate cluster for the global view; a region missing "
        "from the mirrors silently drops that region's events from every global computation "
        "(surge pricing, ETAs, analytics)."
    )
    severity = "high"

    def check(self, ctx: Context) -> None:
        view = ctx.view
        aggregates = [
            k for k in kafkas(view) if kafka_role(k) == "aggregate" or k.k8s_name == "aggregate"
        ]
        aggregates += [
            c for c in view.of_type(MSK_CLUSTER, GMK_CLUSTER) if kafka_role(c) == "aggregate"
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
                        sources |= _replicator_sources(m)
                    else:
                        sources |= {alias for alias, _ in mm2_sources(m) if alias}
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
        """MirrorMaker 2s writing into the aggregate (by target bootstrap, or role mirror), and for
        a managed aggregate also the MSK Replicators."""
        out = list(view.of_type(MSK_REPLICATOR)) if agg.type in (MSK_CLUSTER, GMK_CLUSTER) else []
        for mm2 in mirror_makers(view):
            _, target = mm2_target(mm2)
            bootstrap = text(dig(target, "bootstrapServers")) or ""
            if (
                bootstrap.startswith(f"{agg.k8s_name}-kafka-bootstrap")
                or kafka_role(mm2) == "mirror"
            ):
                out.append(mm2)
        return out


def _replicator_sources(rep: Resource) -> set[str]:
    """Region ids of an MSK Replicator's sources: its rtdi-source-region tag, else each source's
    alias, else ``aws-<region>`` from the source cluster ARN."""
    if rep.labels.get("rtdi-source-region"):
        return {rep.labels["rtdi-source-region"]}
    out: set[str] = set()
    for info in items(dig(rep.props, "replicationInfoList")):
        alias = text(dig(info, "sourceKafkaClusterAlias"))
        parts = (text(dig(info, "sourceKafkaClusterArn")) or "").split(":")
        if alias:
            out.add(alias)
        elif len(parts) > 3 and parts[3]:
            out.add(f"aws-{parts[3]}")
    return out


RULE = AggregateReceivesAllRegions()
