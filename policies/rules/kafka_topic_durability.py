"""Durability: topics that override replication settings keep them safe."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import GMK_TOPIC, MSK_TOPIC, STRIMZI, cluster_of
from policies.rules._durability import MIN_ISR, MIN_RF, topic_problems
from policies.view import as_int, dig, json_object

_STRIMZI_WHERE = {"rf": "spec.replicas", "config": "spec.config."}
_CLOUD_WHERE = {"rf": "replicationFactor", "config": "configs "}


class KafkaTopicDurability(Rule):
    id = "kafka-topic-durability"
    category = "durability"
    description = (
        "Every topic that sets its own replication (Strimzi KafkaTopic spec.replicas/spec.config, "
        "MSK Topic, Managed Kafka Topic) has replication factor >= minReplicationFactor, "
        "min.insync.replicas >= minInsyncReplicas and below its replication factor, and no "
        "unclean leader election. A Strimzi topic's unset values come from its cluster's config."
    )
    why = (
        "A topic-level override beats the cluster's safe defaults: one topic created with "
        "replicas: 1 or min.insync.replicas equal to its replicas is one broker failure away from "
        "data loss or an outage."
    )
    severity = "high"
    params = (MIN_RF, MIN_ISR)

    def check(self, ctx: Context) -> None:
        for topic in ctx.view.of_kind(STRIMZI, "KafkaTopic"):
            with ctx.guard(topic):
                config = dig(topic.props, "spec", "config") or {}
                rf = as_int(dig(topic.props, "spec", "replicas"))
                rf = rf if rf is not None and rf > 0 else None  # -1 / unset: the cluster default
                isr = as_int(dig(config, "min.insync.replicas"))
                unclean = dig(config, "unclean.leader.election.enable")
                cluster = cluster_of(ctx.view, topic)
                cluster_config = dig(cluster.props, "spec", "kafka", "config") if cluster else None
                eff_rf = (
                    rf
                    if rf is not None
                    else as_int(dig(cluster_config, "default.replication.factor"))
                )
                eff_isr = (
                    isr if isr is not None else as_int(dig(cluster_config, "min.insync.replicas"))
                )
                for problem in topic_problems(
                    rf, isr, unclean, eff_rf, eff_isr, ctx.params, _STRIMZI_WHERE
                ):
                    ctx.report(
                        topic,
                        f"topic {dig(topic.props, 'spec', 'topicName') or topic.k8s_name}: "
                        f"{problem}",
                    )
        for topic in ctx.view.of_type(MSK_TOPIC, GMK_TOPIC):
            with ctx.guard(topic):
                configs = json_object(dig(topic.props, "configs"))
                rf = as_int(dig(topic.props, "replicationFactor"))
                isr = as_int(configs.get("min.insync.replicas"))
                for problem in topic_problems(
                    rf,
                    isr,
                    configs.get("unclean.leader.election.enable"),
                    rf,
                    isr,
                    ctx.params,
                    _CLOUD_WHERE,
                ):
                    ctx.report(topic, problem)


RULE = KafkaTopicDurability()
