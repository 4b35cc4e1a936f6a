"""MirrorMaker 2 (Strimzi `KafkaMirrorMaker2`): fills a region's aggregate cluster from every
region's regional cluster, with checkpoints and consumer-group offset sync so that an
active/passive consumer can resume in another region (paper section 6)."""

from __future__ import annotations

import functools

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.components.kafka.endpoints import Endpoint
from infra.components.kafka.flows import NAMESPACE, Flow, topics_pattern
from infra.components.kafka.strimzi import API, LABEL_ROLE
from infra.targets.base import ZONE_LABEL, Target
from infra.topology.model import Kafka

ANNOTATION_DATA_CLASSES = "rtdi-data-classes"
SYNC_INTERVAL_SECONDS = 30
REFRESH_SECONDS = 60
# Topic configs MirrorMaker 2 must not copy onto the aggregate's copy of a topic. Setting the key
# replaces Kafka's default list, so that list comes first; the tiered-storage keys follow, because
# a tiered regional topic copied to an aggregate without tiered storage is refused by the broker
# (and, with auto.create.topics.enable off, never mirrored). Durability settings are the
# aggregate's own (its broker defaults), not the source's.
CONFIG_PROPERTIES_EXCLUDE = ", ".join(
    [
        "follower.replication.throttled.replicas",
        "leader.replication.throttled.replicas",
        "message.timestamp.difference.max.ms",
        "log.message.timestamp.before.max.ms",
        "log.message.timestamp.after.max.ms",
        "message.timestamp.type",
        "unclean.leader.election.enable",
        "min.insync.replicas",
        "remote.storage.enable",
        "local.retention.ms",
        "local.retention.bytes",
    ]
)


def source_connector(rf: int, topics: int) -> dict:
    return {
        "tasksMax": max(1, topics),
        "config": {
            "replication.factor": rf,
            "offset-syncs.topic.replication.factor": rf,
            "offset-syncs.topic.location": "target",
            "sync.topic.configs.enabled": True,
            "sync.topic.acls.enabled": False,
            "config.properties.exclude": CONFIG_PROPERTIES_EXCLUDE,
            "refresh.topics.interval.seconds": REFRESH_SECONDS,
            "producer.override.acks": "all",
            "producer.override.enable.idempotence": True,
        },
    }


def checkpoint_connector(rf: int) -> dict:
    return {
        "tasksMax": 1,
        "config": {
            "checkpoints.topic.replication.factor": rf,
            "offset-syncs.topic.location": "target",
            "emit.checkpoints.enabled": True,
            "emit.checkpoints.interval.seconds": SYNC_INTERVAL_SECONDS,
            "sync.group.offsets.enabled": True,
            "sync.group.offsets.interval.seconds": SYNC_INTERVAL_SECONDS,
            # A new consumer group is checkpointed within a minute, not Kafka's default ten.
            "refresh.groups.interval.seconds": REFRESH_SECONDS,
        },
    }


class MirrorMaker2(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        target: Target,
        kafka: Kafka,
        aggregate: Endpoint,
        sources: list[tuple[Flow, Endpoint]],
        depends_on: list,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rtdi:kafka:MirrorMaker2", name, None, opts)
        rf = kafka.replication_factor
        region = target.region.id
        mirrors = pulumi.Output.all(
            *[
                endpoint.block(flow.source).apply(functools.partial(_mirror, flow, rf))
                for flow, endpoint in sources
            ]
        )
        target_block = aggregate.block(region).apply(
            lambda b: {
                **{k: v for k, v in b.items()},
                "groupId": f"rtdi-mirror-{region}",
                "configStorageTopic": "rtdi-mirror.configs",
                "offsetStorageTopic": "rtdi-mirror.offsets",
                "statusStorageTopic": "rtdi-mirror.status",
                "config": {
                    "config.storage.replication.factor": rf,
                    "offset.storage.replication.factor": rf,
                    "status.storage.replication.factor": rf,
                },
            }
        )
        classes = sorted({c for flow, _ in sources for c in flow.data_classes})
        self.mirror = k8s.apiextensions.CustomResource(
            name,
            api_version=API,
            kind="KafkaMirrorMaker2",
            metadata={
                "name": "aggregate-mirror",
                "namespace": NAMESPACE,
                "labels": {**target.labels, LABEL_ROLE: "mirror"},
                "annotations": {ANNOTATION_DATA_CLASSES: ",".join(classes)},
            },
            spec={
                "version": versions.KAFKA_VERSION,
                "replicas": max(2, len(target.zones)),
                "rack": {"type": "topology-label", "topologyKey": ZONE_LABEL},
                "target": target_block,
                "mirrors": mirrors,
                "template": {"podDisruptionBudget": {"maxUnavailable": 1}},
            },
            opts=target.k8s_opts(self, depends_on=depends_on),
        )
        self.register_outputs({"sources": [f.source for f, _ in sources]})


def _mirror(flow: Flow, rf: int, source: dict) -> dict:
    """One entry of `spec.mirrors`: a source region's regional cluster and what to copy from it."""
    return {
        "source": source,
        "topicsPattern": topics_pattern(flow.topics),
        "groupsPattern": ".*",
        "sourceConnector": source_connector(rf, len(flow.topics)),
        "checkpointConnector": checkpoint_connector(rf),
    }
