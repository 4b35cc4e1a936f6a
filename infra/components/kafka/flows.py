"""Which topics live where and which flows carry them: pure functions of the global settings.

Kept free of Pulumi so that the replication graph and the federation registry can be reasoned
about and tested on their own, and so that the global stack and every regional stack compute the
same answer from the same published topology.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from infra.topology.model import Kafka, Region, Topic, Topology

CROSS_REGION_PORT = 9095
CLIENT_PORT = 9093
# Strimzi's listener for workloads in other namespaces (Flink, Pinot): SCRAM over TLS, since the
# mTLS listener's client certificates live in Secrets of namespace `kafka` no other pod can mount.
WORKLOAD_PORT = 9094
NAMESPACE = "kafka"
ROLES = ("regional", "aggregate")


@dataclass(frozen=True)
class Flow:
    """The aggregate cluster of ``target`` pulls ``topics`` from ``source``'s regional cluster."""

    source: str
    target: str
    topics: tuple[str, ...]
    data_classes: tuple[str, ...]


def topic_allowed(kafka: Kafka, topic: Topic, region: Region) -> bool:
    data_class = kafka.data_classes.get(topic.data_class)
    return data_class is not None and region.jurisdiction in data_class.jurisdictions


def physical_topics(topic: Topic) -> list[str]:
    """The topic and its per-group retry and dead-letter topics (paper 4.1.2)."""
    names = [topic.name]
    for group in topic.consumer_groups:
        if group.retry:
            names.append(f"{topic.name}.{group.name}.retry")
        if group.dead_letter:
            names.append(f"{topic.name}.{group.name}.dlq")
    return names


def each_physical(topics: list[Topic]) -> Iterator[tuple[Topic, str]]:
    """Every (topic, physical name) to create: each topic and its retry and dead-letter topics."""
    for topic in topics:
        for physical in physical_topics(topic):
            yield topic, physical


def regional_topics(kafka: Kafka, region: Region) -> list[Topic]:
    return [t for t in kafka.topics if topic_allowed(kafka, t, region)]


def flows_into(topology: Topology, kafka: Kafka, target: Region) -> list[Flow]:
    """Every region's regional cluster into ``target``'s aggregate, carrying what both may hold."""
    out = []
    for source in topology.regions:
        topics = [t for t in regional_topics(kafka, source) if topic_allowed(kafka, t, target)]
        names = tuple(n for t in topics for n in physical_topics(t))
        out.append(Flow(source.id, target.id, names, tuple(sorted({t.data_class for t in topics}))))
    return out


def replication_graph(topology: Topology, kafka: Kafka) -> dict[str, list[Flow]]:
    return {r.id: flows_into(topology, kafka, r) for r in topology.regions}


def topics_pattern(names: tuple[str, ...]) -> str:
    """A MirrorMaker 2 topic filter that matches exactly these names (an empty set matches none)."""
    if not names:
        return "(?!)"
    return "|".join(re.escape(n) for n in names)


def cross_region_host(kafka: Kafka, region_id: str, cluster: str = "regional") -> str:
    return f"{cluster}.{region_id}.{kafka.dns_domain}"


def cross_region_bootstrap(kafka: Kafka, region_id: str) -> str:
    """Where other regions reach a Strimzi regional cluster: its internal load balancer's name."""
    return f"{cross_region_host(kafka, region_id)}:{CROSS_REGION_PORT}"


def in_cluster_bootstrap(cluster: str, port: int = CLIENT_PORT) -> str:
    return f"{cluster}-kafka-bootstrap.{NAMESPACE}.svc:{port}"


def federation_registry(topology: Topology, kafka: Kafka) -> dict:
    """Logical topic -> per region: where to produce, where to consume the global view.

    Clients look a topic up here instead of naming a physical cluster (paper 4.1.1): producers
    write to their region's regional cluster; all-active consumers read their region's aggregate,
    where each source region's copy is named ``<source region>.<topic>``.
    """
    from infra.components.kafka.engines import engine_of  # engines build on this module

    topics = {}
    for topic in kafka.topics:
        regions = {}
        for region in topology.regions:
            if not topic_allowed(kafka, topic, region):
                continue
            sources = [
                f.source for f in flows_into(topology, kafka, region) if topic.name in f.topics
            ]
            regional, aggregate = (
                engine_of(region.kafka.regional),
                engine_of(region.kafka.aggregate),
            )
            regions[region.id] = {
                "produce": {
                    "cluster": "regional",
                    "engine": region.kafka.regional.engine,
                    # A managed engine's address is known once it exists: its stack fills it in.
                    "bootstrap": regional.static_bootstrap("regional"),
                    "crossRegionBootstrap": regional.static_cross_region(kafka, region.id),
                    "topic": topic.name,
                },
                "consume": {
                    "cluster": "aggregate",
                    "engine": region.kafka.aggregate.engine,
                    "bootstrap": aggregate.static_bootstrap("aggregate"),
                    "topics": [f"{s}.{topic.name}" for s in sources],
                },
                "retryTopics": [n for n in physical_topics(topic) if n.endswith(".retry")],
                "deadLetterTopics": [n for n in physical_topics(topic) if n.endswith(".dlq")],
            }
        topics[topic.name] = {
            "dataClass": topic.data_class,
            "partitions": topic.partitions,
            "regions": regions,
        }
    return {"version": 1, "primary": topology.primary, "topics": topics}
