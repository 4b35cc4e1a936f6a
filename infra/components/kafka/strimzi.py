"""Kafka on Kubernetes with Strimzi: the operator, the regional and aggregate clusters, users,
topics and the MirrorMaker 2 that fills the aggregate cluster.

Cross-region trust: every region's clusters share one cluster CA, created in the global stack, so
a MirrorMaker 2 in any region verifies any region's brokers. Each region's `mirror` user has a
SCRAM password also minted in the global stack, so the regions that read from it know it too.
"""
from __future__ import annotations

import json
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.components.kafka.flows import (
    CLIENT_PORT,
    CROSS_REGION_PORT,
    NAMESPACE,
    Flow,
    cross_region_host,
    physical_topics,
    topics_pattern,
)
from infra.targets.base import ZONE_LABEL, Target
from infra.topology.model import Kafka, KafkaCluster, Topic

API = "kafka.strimzi.io/v1"
RACK_AWARE_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
MIRROR_USER = "mirror"
MIRROR_MAKER_USER = "mirror-maker"
MESH_CA_SECRET = "rtdi-kafka-mesh-ca"
LABEL_ROLE = "rtdi-kafka-role"
LABEL_ZONE = "rtdi-zone"
ANNOTATION_DATA_CLASSES = "rtdi-data-classes"
CONTROLLER_STORAGE_GIB = 20


def _b64(text: pulumi.Input[str]) -> pulumi.Output[str]:
    import base64

    return pulumi.Output.from_input(text).apply(lambda t: base64.b64encode((t or "").encode()).decode())


class StrimziOperator(pulumi.ComponentResource):
    """The Strimzi cluster operator from its Helm chart, watching the Kafka namespace."""

    def __init__(self, name: str, target: Target, watch: k8s.core.v1.Namespace, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("rtdi:kafka:StrimziOperator", name, None, opts)
        ns = k8s.core.v1.Namespace(f"{name}-ns", metadata=k8s.meta.v1.ObjectMetaArgs(name="strimzi", labels=target.labels),
                                   opts=target.k8s_opts(self))
        self.release = k8s.helm.v3.Release(
            name,
            k8s.helm.v3.ReleaseArgs(
                name="strimzi",
                chart=versions.STRIMZI_CHART,
                version=versions.STRIMZI_VERSION,
                namespace=ns.metadata.name,
                atomic=True,
                values={
                    "watchNamespaces": [NAMESPACE],
                    "replicas": 2,
                    "leaderElection": {"enable": True},
                    "resources": {"requests": {"cpu": "200m", "memory": "384Mi"}, "limits": {"memory": "384Mi"}},
                },
            ),
            opts=target.k8s_opts(self, depends_on=[watch]),
        )
        self.register_outputs({"namespace": ns.metadata.name, "chartVersion": versions.STRIMZI_VERSION})


class StrimziCluster(pulumi.ComponentResource):
    """One Kafka cluster: a controller and a broker node pool per zone, rack aware, TLS only."""

    def __init__(
        self,
        name: str,
        role: str,
        spec: KafkaCluster,
        kafka: Kafka,
        target: Target,
        depends_on: list[pulumi.Resource],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("rtdi:kafka:StrimziCluster", name, None, opts)
        self.role = role
        labels = {**target.labels, LABEL_ROLE: role}
        k8s_opts = target.k8s_opts(self, depends_on=depends_on)
        listeners: list[dict[str, Any]] = [
            {"name": "tls", "port": CLIENT_PORT, "type": "internal", "tls": True, "authentication": {"type": "tls"}},
        ]
        if role == "regional":
            host = cross_region_host(kafka, target.region.id)
            listeners.append({
                "name": "replication", "port": CROSS_REGION_PORT, "type": "loadbalancer", "tls": True,
                "authentication": {"type": "scram-sha-512"},
                "configuration": {"bootstrap": {"alternativeNames": [host]}},
            })
        rf, min_isr = kafka.replication_factor, kafka.min_insync_replicas
        lb_annotations = target.internal_load_balancer_annotations
        self.kafka = k8s.apiextensions.CustomResource(
            name,
            api_version=API,
            kind="Kafka",
            metadata={"name": role, "namespace": NAMESPACE, "labels": labels},
            spec={
                "kafka": {
                    "version": versions.KAFKA_VERSION,
                    "metadataVersion": versions.KAFKA_METADATA_VERSION,
                    "listeners": listeners,
                    "authorization": {"type": "simple"},
                    "rack": {"type": "topology-label", "topologyKey": ZONE_LABEL},
                    "config": {
                        "default.replication.factor": rf,
                        "min.insync.replicas": min_isr,
                        "unclean.leader.election.enable": False,
                        "offsets.topic.replication.factor": rf,
                        "transaction.state.log.replication.factor": rf,
                        "transaction.state.log.min.isr": min_isr,
                        "auto.create.topics.enable": False,
                        "replica.selector.class": RACK_AWARE_SELECTOR,
                    },
                    "template": {
                        "podDisruptionBudget": {"maxUnavailable": 1},
                        "externalBootstrapService": {"metadata": {"annotations": {
                            **lb_annotations, "external-dns.alpha.kubernetes.io/hostname": cross_region_host(kafka, target.region.id, role),
                        }}},
                        "perPodService": {"metadata": {"annotations": dict(lb_annotations)}},
                    },
                },
                # The CA is shared by every region (see module doc), so Strimzi must not mint its own.
                "clusterCa": {"generateCertificateAuthority": False},
                "entityOperator": {"topicOperator": {}, "userOperator": {}},
                "cruiseControl": {},
            },
            opts=k8s_opts,
        )
        self.pools = []
        controllers = target.zones if len(target.zones) % 2 else target.zones[:-1]
        for zone in target.zones:
            self.pools.append(self._pool(f"{name}-{zone}", role, zone, ["broker"], spec.brokers_per_zone, spec.storage_gib, spec, target, k8s_opts))
            if zone in controllers:
                self.pools.append(self._pool(f"{name}-controllers-{zone}", role, zone, ["controller"], 1, CONTROLLER_STORAGE_GIB, spec, target, k8s_opts))
        self.register_outputs({"name": role, "bootstrap": f"{role}-kafka-bootstrap.{NAMESPACE}.svc:{CLIENT_PORT}"})

    def _pool(self, resource_name: str, cluster: str, zone: str, roles: list[str], replicas: int, storage_gib: int,
              spec: KafkaCluster, target: Target, opts: pulumi.ResourceOptions):
        pool_name = resource_name.removeprefix(f"{target.region.id}-kafka-")
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=API,
            kind="KafkaNodePool",
            metadata={"name": pool_name, "namespace": NAMESPACE,
                      "labels": {**target.labels, "strimzi.io/cluster": cluster, LABEL_ZONE: zone}},
            spec={
                "replicas": replicas,
                "roles": roles,
                "storage": {"type": "jbod", "volumes": [{
                    "id": 0, "type": "persistent-claim", "size": f"{storage_gib}Gi", "class": target.storage_class,
                    "deleteClaim": False, "kraftMetadata": "shared",
                }]},
                "resources": {
                    "requests": {"cpu": str(spec.broker_cpu), "memory": f"{spec.broker_memory_gib}Gi"},
                    "limits": {"memory": f"{spec.broker_memory_gib}Gi"},
                } if "broker" in roles else {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
                "template": {"pod": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": [zone]}]}],
                }}}}},
            },
            opts=opts,
        )


def mesh_ca_secrets(name: str, target: Target, mesh: pulumi.Output, parent: pulumi.Resource, depends_on: list) -> list[pulumi.Resource]:
    """The shared CA, as the Secrets Strimzi expects for a user-provided cluster CA."""
    out = []
    cert = mesh.apply(lambda m: m["caCert"])
    key = mesh.apply(lambda m: m["caKey"])
    opts = target.k8s_opts(parent, depends_on=depends_on)
    for cluster in ("regional", "aggregate"):
        for suffix, data_key, value, generation in (("cluster-ca-cert", "ca.crt", cert, "strimzi.io/ca-cert-generation"),
                                                    ("cluster-ca", "ca.key", key, "strimzi.io/ca-key-generation")):
            out.append(k8s.core.v1.Secret(
                f"{name}-{cluster}-{suffix}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{cluster}-{suffix}", namespace=NAMESPACE,
                    labels={**target.labels, "strimzi.io/kind": "Kafka", "strimzi.io/cluster": cluster},
                    annotations={generation: "0"},
                ),
                type="Opaque",
                data={data_key: _b64(value)},
                opts=opts,
            ))
    out.append(k8s.core.v1.Secret(
        f"{name}-mesh-ca",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=MESH_CA_SECRET, namespace=NAMESPACE, labels=target.labels),
        type="Opaque",
        data={"ca.crt": _b64(cert)},
        opts=opts,
    ))
    return out


def mirror_users(name: str, target: Target, mesh: pulumi.Output, region_ids: list[str], parent, depends_on: list) -> list[pulumi.Resource]:
    """SCRAM credentials: this region's `mirror` user, and the passwords to read every other region."""
    opts = target.k8s_opts(parent, depends_on=depends_on)
    out: list[pulumi.Resource] = []
    for region_id in region_ids:
        out.append(k8s.core.v1.Secret(
            f"{name}-mirror-{region_id}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"kafka-mirror-{region_id}", namespace=NAMESPACE, labels=target.labels),
            type="Opaque",
            data={"password": _b64(mesh.apply(lambda m, r=region_id: m["mirrorPasswords"][r]))},
            opts=opts,
        ))
    own_password = f"kafka-mirror-{target.region.id}"
    out.append(k8s.apiextensions.CustomResource(
        f"{name}-user-mirror",
        api_version=API,
        kind="KafkaUser",
        metadata={"name": MIRROR_USER, "namespace": NAMESPACE, "labels": {**target.labels, "strimzi.io/cluster": "regional"}},
        spec={
            "authentication": {"type": "scram-sha-512", "password": {"valueFrom": {"secretKeyRef": {"name": own_password, "key": "password"}}}},
            "authorization": {"type": "simple", "acls": [
                {"resource": {"type": "topic", "name": "*", "patternType": "literal"}, "operations": ["Read", "Describe", "DescribeConfigs"]},
                {"resource": {"type": "group", "name": "*", "patternType": "literal"}, "operations": ["Describe", "Read"]},
                {"resource": {"type": "cluster"}, "operations": ["Describe", "DescribeConfigs"]},
            ]},
        },
        opts=target.k8s_opts(parent, depends_on=depends_on + out),
    ))
    out.append(k8s.apiextensions.CustomResource(
        f"{name}-user-mirror-maker",
        api_version=API,
        kind="KafkaUser",
        metadata={"name": MIRROR_MAKER_USER, "namespace": NAMESPACE, "labels": {**target.labels, "strimzi.io/cluster": "aggregate"}},
        spec={
            "authentication": {"type": "tls"},
            "authorization": {"type": "simple", "acls": [
                {"resource": {"type": "topic", "name": "*", "patternType": "literal"}, "operations": ["All"]},
                {"resource": {"type": "group", "name": "*", "patternType": "literal"}, "operations": ["All"]},
                {"resource": {"type": "cluster"}, "operations": ["Describe", "DescribeConfigs", "Create"]},
            ]},
        },
        opts=opts,
    ))
    return out


def kafka_topics(name: str, target: Target, kafka: Kafka, topics: list[Topic], parent, depends_on: list) -> list[pulumi.Resource]:
    """Topics as code on the regional cluster, with their retry and dead-letter topics."""
    out = []
    for topic in topics:
        for physical in physical_topics(topic):
            dead_letter = physical.endswith(".dlq")
            hours = topic.retention_hours * (4 if dead_letter else 1)  # dead letters wait for a human
            out.append(k8s.apiextensions.CustomResource(
                f"{name}-topic-{physical}",
                api_version=API,
                kind="KafkaTopic",
                metadata={"name": _k8s_name(physical), "namespace": NAMESPACE,
                          "labels": {**target.labels, "strimzi.io/cluster": "regional", "rtdi-data-class": topic.data_class}},
                spec={
                    "topicName": physical,
                    "partitions": topic.partitions,
                    "replicas": kafka.replication_factor,
                    "config": {"retention.ms": hours * 3_600_000, "min.insync.replicas": kafka.min_insync_replicas},
                },
                opts=target.k8s_opts(parent, depends_on=depends_on),
            ))
    return out


def _k8s_name(topic: str) -> str:
    import hashlib
    import re

    clean = re.sub(r"[^a-z0-9.-]", "-", topic.lower()).strip(".-")
    if clean == topic and len(clean) <= 63:
        return clean
    return f"{clean[:54].strip('.-')}-{hashlib.sha256(topic.encode()).hexdigest()[:8]}"


class MirrorMaker2(pulumi.ComponentResource):
    """Fills this region's aggregate cluster from every region's regional cluster, with offset sync."""

    def __init__(self, name: str, target: Target, kafka: Kafka, flows: list[Flow], depends_on: list,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("rtdi:kafka:MirrorMaker2", name, None, opts)
        rf = kafka.replication_factor
        region = target.region.id
        trust = {"trustedCertificates": [{"secretName": MESH_CA_SECRET, "certificate": "ca.crt"}]}
        mirrors = []
        for flow in flows:
            local = flow.source == region
            bootstrap = (f"regional-kafka-replication-bootstrap.{NAMESPACE}.svc:{CROSS_REGION_PORT}" if local
                         else f"{cross_region_host(kafka, flow.source)}:{CROSS_REGION_PORT}")
            mirrors.append({
                "source": {
                    "alias": flow.source,
                    "bootstrapServers": bootstrap,
                    "tls": trust,
                    "authentication": {"type": "scram-sha-512", "username": MIRROR_USER,
                                       "passwordSecret": {"secretName": f"kafka-mirror-{flow.source}", "password": "password"}},
                },
                "topicsPattern": topics_pattern(flow.topics),
                "groupsPattern": ".*",
                "sourceConnector": {"tasksMax": max(1, len(flow.topics)), "config": {
                    "replication.factor": rf,
                    "offset-syncs.topic.replication.factor": rf,
                    "offset-syncs.topic.location": "target",
                    "sync.topic.configs.enabled": True,
                    "sync.topic.acls.enabled": False,
                    "refresh.topics.interval.seconds": 60,
                    "producer.override.acks": "all",
                    "producer.override.enable.idempotence": True,
                }},
                "checkpointConnector": {"tasksMax": 1, "config": {
                    "checkpoints.topic.replication.factor": rf,
                    "offset-syncs.topic.location": "target",
                    "emit.checkpoints.enabled": True,
                    "emit.checkpoints.interval.seconds": 30,
                    "sync.group.offsets.enabled": True,
                    "sync.group.offsets.interval.seconds": 30,
                }},
            })
        classes = sorted({c for f in flows for c in f.data_classes})
        self.mirror = k8s.apiextensions.CustomResource(
            name,
            api_version=API,
            kind="KafkaMirrorMaker2",
            metadata={"name": "aggregate-mirror", "namespace": NAMESPACE,
                      "labels": {**target.labels, LABEL_ROLE: "mirror"},
                      "annotations": {ANNOTATION_DATA_CLASSES: ",".join(classes)}},
            spec={
                "version": versions.KAFKA_VERSION,
                "replicas": max(2, len(target.zones)),
                "rack": {"type": "topology-label", "topologyKey": ZONE_LABEL},
                "target": {
                    "alias": region,
                    "bootstrapServers": f"aggregate-kafka-bootstrap.{NAMESPACE}.svc:{CLIENT_PORT}",
                    "groupId": f"rtdi-mirror-{region}",
                    "configStorageTopic": "rtdi-mirror.configs",
                    "offsetStorageTopic": "rtdi-mirror.offsets",
                    "statusStorageTopic": "rtdi-mirror.status",
                    "tls": trust,
                    "authentication": {"type": "tls", "certificateAndKey": {"secretName": MIRROR_MAKER_USER, "certificate": "user.crt", "key": "user.key"}},
                    "config": {
                        "config.storage.replication.factor": rf,
                        "offset.storage.replication.factor": rf,
                        "status.storage.replication.factor": rf,
                    },
                },
                "mirrors": mirrors,
                "template": {"podDisruptionBudget": {"maxUnavailable": 1}},
            },
            opts=target.k8s_opts(self, depends_on=depends_on),
        )
        self.register_outputs({"sources": [f.source for f in flows]})


def federation_config_map(name: str, target: Target, registry: dict, parent, depends_on: list) -> k8s.core.v1.ConfigMap:
    return k8s.core.v1.ConfigMap(
        f"{name}-federation",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="kafka-federation", namespace=NAMESPACE, labels=target.labels),
        data={"registry.json": json.dumps(registry, indent=1, sort_keys=True)},
        opts=target.k8s_opts(parent, depends_on=depends_on),
    )
