"""The durable defaults every engine applies, in one place (paper 4.1: no loss on a zone loss)."""

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


def as_strings(config: dict[str, object]) -> dict[str, str]:
    """Kafka config as the strings a properties file or a managed service's API wants."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in config.items()}


LOCAL_RETENTION_HOURS = (
    6  # with tiered storage, what brokers keep on disk; the rest is in the bucket
)


def topic_config(
    kafka: Kafka, topic: Topic, physical: str, tiered: bool = False
) -> dict[str, object]:
    hours = topic.retention_hours * (
        DEAD_LETTER_RETENTION_FACTOR if physical.endswith(".dlq") else 1
    )
    config: dict[str, object] = {
        "retention.ms": hours * 3_600_000,
        "min.insync.replicas": kafka.min_insync_replicas,
        "unclean.leader.election.enable": False,
    }
    if tiered and hours > LOCAL_RETENTION_HOURS:
        config["remote.storage.enable"] = True
        config["local.retention.ms"] = LOCAL_RETENTION_HOURS * 3_600_000
    return config
