"""Durability: Kafka clusters default to RF >= 3, 2 <= min ISR < RF, no unclean leader election."""

from __future__ import annotations

from collections.abc import Mapping

from policies.engine import Context, Rule
from policies.rules._common import MSK_CONFIGURATION, kafkas
from policies.rules._durability import (
    KAFKA_DEFAULTS,
    MIN_ISR,
    MIN_RF,
    MSK_DEFAULTS,
    cluster_problems,
)
from policies.view import dig, parse_properties


class KafkaClusterDurability(Rule):
    id = "kafka-cluster-durability"
    category = "durability"
    description = (
        "Every Kafka cluster's broker settings (Strimzi Kafka spec.kafka.config, MSK "
        "Configuration serverProperties) give default.replication.factor >= minReplicationFactor, "
        "min.insync.replicas >= minInsyncReplicas and below the replication factor, "
        "unclean.leader.election.enable false, and replicate the offsets and transaction-state "
        "topics as much. Unset keys count at Kafka's defaults (replication factor 1, min ISR 1) "
        "for Strimzi and at MSK's (3 and 2) for MSK."
    )
    why = (
        "With one replica or one required in-sync replica, a single broker or disk failure loses "
        "acknowledged writes; unclean leader election trades those writes for availability."
    )
    severity = "critical"
    params = (MIN_RF, MIN_ISR)

    def check(self, ctx: Context) -> None:
        for kafka in kafkas(ctx.view):
            with ctx.guard(kafka):
                config = dig(kafka.props, "spec", "kafka", "config") or {}
                get = config.get if isinstance(config, Mapping) else (lambda key: None)
                for problem in cluster_problems(
                    get, KAFKA_DEFAULTS, ctx.params, "spec.kafka.config.", "Kafka"
                ):
                    ctx.report(kafka, f"Kafka {kafka.k8s_name}: {problem}")
        for conf in ctx.view.of_type(MSK_CONFIGURATION):
            with ctx.guard(conf):
                props = parse_properties(dig(conf.props, "serverProperties"))
                for problem in cluster_problems(
                    props.get, MSK_DEFAULTS, ctx.params, "serverProperties ", "MSK"
                ):
                    ctx.report(conf, problem)


RULE = KafkaClusterDurability()
