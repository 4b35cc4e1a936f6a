"""The durable defaults every engine applies, in one place (paper 4.1: no data loss on a zone loss)."""
from __future__ import annotations

from infra.topology.model import Kafka, Topic

RACK_AWARE_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
DEAD_LETTER_RETENTION_FACTOR = 4  # dead letters wait for a person, so they are kept longer


def broker_config(kafka: Kafka) -> dict[str, object]:
    rf, min_isr = kafka.replication_factor, kafka.min_insync_replicas
    return {
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "unclean.leader.election.enable": False,
        "offsets.topic.replication.factor": rf,
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "auto.create.topics.enable": False,
        "replica.selector.class": RACK_AWARE_SELECTOR,
    }


def topic_config(kafka: Kafka, topic: Topic, physical: str) -> dict[str, object]:
    hours = topic.retention_hours * (DEAD_LETTER_RETENTION_FACTOR if physical.endswith(".dlq") else 1)
    return {
        "retention.ms": hours * 3_600_000,
        "min.insync.replicas": kafka.min_insync_replicas,
        "unclean.leader.election.enable": False,
    }
