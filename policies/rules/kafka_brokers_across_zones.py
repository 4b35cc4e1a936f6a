"""Durability: brokers spread over at least three zones, with rack awareness."""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.rules._common import (
    MSK_CLUSTER,
    kafkas,
    node_pools,
    pool_roles,
    pool_zones,
    subnet_zones,
)
from policies.view import LABEL_ZONE, ZONE_KEY, as_int, dig

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
        "spec.kafka.rack.topologyKey is set (zones from the pools' required node affinity; an "
        "rtdi-zone label that disagrees is a violation); an MSK cluster's clientSubnets are in "
        "that many zones (each subnet's availabilityZone; a subnet no checked stack declares "
        "counts as one zone)."
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
                    pinned = pool_zones(pool)
                    zones |= pinned
                    claimed = pool.labels.get(LABEL_ZONE)
                    if claimed and pinned != {claimed}:
                        ctx.report(
                            pool,
                            f"is labelled {LABEL_ZONE}: {claimed!r}, but its pods are pinned to "
                            f"{', '.join(sorted(pinned)) or 'no zone'} (required node affinity on "
                            f"{ZONE_KEY}); fix or drop the label",
                        )
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
                subnets = dig(msk.props, "brokerNodeGroupInfo", "clientSubnets")
                found, unknown = subnet_zones(ctx.view, subnets)
                # A subnet no checked stack declares (an existing network): only AWS knows its
                # zone, so each distinct one counts as one.
                zones = found | {f"subnet {s}" for s in unknown}
                if len(zones) < need:
                    ctx.report(
                        msk,
                        f"MSK brokers' subnets span {len(zones)} zone(s) "
                        f"({', '.join(sorted(zones)) or 'none'}); give "
                        f"brokerNodeGroupInfo.clientSubnets one subnet in each of at least {need} "
                        "zones",
                    )


RULE = KafkaBrokersAcrossZones()
