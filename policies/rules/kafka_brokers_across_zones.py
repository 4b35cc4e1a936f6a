"""Durability: brokers spread over at least three zones, with rack awareness."""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.rules._common import MSK_CLUSTER, kafkas, node_pools, pool_roles, pool_zones
from policies.view import as_int, dig, items

MIN_ZONES = Param(
    "minZones",
    3,
    "Fewest distinct zones the brokers (or nodes) must span.",
    {"type": "integer", "minimum": 1},
)


class KafkaBrokersAcrossZones(Rule):
    id = "kafka-brokers-across-zones"
    category = "durability"
    description = (
        "Every Kafka cluster's brokers span at least minZones zones with rack awareness: a "
        "Strimzi Kafka's broker KafkaNodePools are pinned to that many distinct zones and "
        "spec.kafka.rack.topologyKey is set; an MSK cluster's clientSubnets are in that many zones."
    )
    why = (
        "Kafka places a partition's replicas on distinct racks only when it knows the racks; "
        "without zones spread and rack awareness, one zone outage can take every replica of a "
        "partition, losing acknowledged writes."
    )
    severity = "high"
    params = (MIN_ZONES,)

    def check(self, ctx: Context) -> None:
        need = ctx["minZones"]
        for kafka in kafkas(ctx.view):
            with ctx.guard(kafka):
                name = kafka.k8s_name
                if not dig(kafka.props, "spec", "kafka", "rack", "topologyKey"):
                    ctx.report(
                        kafka,
                        f"Kafka {name} has no rack awareness; set spec.kafka.rack.topologyKey: "
                        f"topology.kubernetes.io/zone",
                    )
                zones: set[str] = set()
                pools = [
                    p
                    for p in node_pools(ctx.view, kafka)
                    if "broker" in pool_roles(p)
                    and (as_int(dig(p.props, "spec", "replicas")) or 0) > 0
                ]
                for pool in pools:
                    zones |= pool_zones(pool)
                if not pools:
                    ctx.report(
                        kafka,
                        f"Kafka {name} has no broker KafkaNodePool; declare one broker pool per "
                        "zone, pinned to it with node affinity on topology.kubernetes.io/zone, in "
                        f"at least {need} zones",
                    )
                elif len(zones) < need:
                    ctx.report(
                        kafka,
                        f"Kafka {name} brokers are pinned to {len(zones)} zone(s) "
                        f"({', '.join(sorted(zones)) or 'none'}); spread broker node pools over at "
                        f"least {need} zones",
                    )
        for msk in ctx.view.of_type(MSK_CLUSTER):
            with ctx.guard(msk):
                subnets = items(dig(msk.props, "brokerNodeGroupInfo", "clientSubnets"))
                if len(subnets) < need:
                    ctx.report(
                        msk,
                        f"MSK brokers span {len(subnets)} subnet(s); give "
                        f"brokerNodeGroupInfo.clientSubnets one subnet in each of at least {need} "
                        "zones",
                    )


RULE = KafkaBrokersAcrossZones()
