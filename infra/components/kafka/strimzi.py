"""Kafka on Kubernetes with Strimzi: the operator, clusters, users and topics.

Cross-region trust: every region's Strimzi clusters share one cluster CA, minted in the global
stack, so a MirrorMaker 2 in any region verifies any region's brokers.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import versions
from infra.components.kafka.access import (
    TRUST_DIR,
    AccessContext,
    KafkaAccess,
    KafkaGrant,
    env_name,
    placeholder,
    strimzi_acls,
)
from infra.components.kafka.durability import broker_config, topic_config
from infra.components.kafka.endpoints import (
    MESH_CA_SECRET,
    MIRROR_MAKER_USER,
    MIRROR_USER,
    mirror_secret,
)
from infra.components.kafka.flows import (
    CLIENT_PORT,
    CROSS_REGION_PORT,
    NAMESPACE,
    WORKLOAD_PORT,
    cross_region_host,
    each_physical,
    in_cluster_bootstrap,
)
from infra.components.operator import operator_release
from infra.targets.base import ZONE_LABEL, Target
from infra.topology.model import Kafka, KafkaCluster, Topic

API = "kafka.strimzi.io/v1"
LABEL_ROLE = "rtdi-kafka-role"
LABEL_ZONE = "rtdi-zone"
CONTROLLER_STORAGE_GIB = 20
# The operator's CPU limit, stated so the plan shows it (the chart's default is the same 1 CPU).
OPERATOR_CPU_LIMIT = "1"
AIVEN_RSM = "io.aiven.kafka.tieredstorage.RemoteStorageManager"
S3_STORAGE = "io.aiven.kafka.tieredstorage.storage.s3.S3Storage"
GCS_STORAGE = "io.aiven.kafka.tieredstorage.storage.gcs.GcsStorage"
TIERED_PLUGIN_PATH = "/opt/kafka/plugins/tiered-storage/*"
TIERED_CHUNK_BYTES = 4 * 1024 * 1024


def b64(text: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.from_input(text).apply(
        lambda t: base64.b64encode((t or "").encode()).decode()
    )


class StrimziOperator(pulumi.ComponentResource):
    """The Strimzi cluster operator from its Helm chart, watching the Kafka namespace."""

    def __init__(
        self,
        name: str,
        target: Target,
        watch: k8s.core.v1.Namespace,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rtdi:kafka:StrimziOperator", name, None, opts)
        values = {
            **target.sources.strimzi_values(),
            "watchNamespaces": [NAMESPACE],
            "replicas": 2,
            "leaderElection": {"enable": True},
            # Every value stated: left out, the chart's CPU limit of 1 applies unseen. One CPU
            # bounds a reconcile storm; the operator idles far below it.
            "resources": {
                "requests": {"cpu": "200m", "memory": "384Mi"},
                "limits": {"cpu": OPERATOR_CPU_LIMIT, "memory": "384Mi"},
            },
        }
        ns, self.release = operator_release(
            self, name, target, "strimzi", "strimzi", versions.STRIMZI_CHART_NAME, values, watch
        )
        self.register_outputs(
            {"namespace": ns.metadata.name, "chartVersion": versions.STRIMZI_VERSION}
        )


class StrimziCluster(pulumi.ComponentResource):
    """One Kafka cluster: a controller and a broker node pool per zone, rack aware, TLS only."""

    def __init__(
        self,
        name: str,
        role: str,
        spec: KafkaCluster,
        kafka: Kafka,
        target: Target,
        depends_on: list,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rtdi:kafka:StrimziCluster", name, None, opts)
        self.role = role
        self.name_prefix = name
        self.target = target
        k8s_opts = target.k8s_opts(self, depends_on=depends_on)
        listeners: list[dict[str, Any]] = [
            {
                "name": "tls",
                "port": CLIENT_PORT,
                "type": "internal",
                "tls": True,
                "authentication": {"type": "tls"},
            },
            # Workloads in other namespaces (Flink...) sign in with their own SCRAM user: the
            # mTLS listener's client certificates are Secrets only namespace `kafka` can mount.
            {
                "name": "workloads",
                "port": WORKLOAD_PORT,
                "type": "internal",
                "tls": True,
                "authentication": {"type": "scram-sha-512"},
            },
        ]
        if role == "regional":
            listeners.append(
                {
                    "name": "replication",
                    "port": CROSS_REGION_PORT,
                    "type": "loadbalancer",
                    "tls": True,
                    "authentication": {"type": "scram-sha-512"},
                    "configuration": {
                        "bootstrap": {
                            "alternativeNames": [cross_region_host(kafka, target.region.id)]
                        }
                    },
                }
            )
        lb = target.internal_load_balancer_annotations
        self.tiered = bool(spec.tiered_storage_image)
        kafka_spec: dict[str, Any] = {
            "version": versions.KAFKA_VERSION,
            "metadataVersion": versions.KAFKA_METADATA_VERSION,
            "listeners": listeners,
            "authorization": {"type": "simple"},
            "rack": {"type": "topology-label", "topologyKey": ZONE_LABEL},
            "config": broker_config(kafka),
            "template": {
                "podDisruptionBudget": {"maxUnavailable": 1},
                "externalBootstrapService": {
                    "metadata": {
                        "annotations": {
                            **lb,
                            "external-dns.alpha.kubernetes.io/hostname": cross_region_host(
                                kafka, target.region.id, role
                            ),
                        }
                    }
                },
                "perPodService": {"metadata": {"annotations": dict(lb)}},
            },
        }
        if self.tiered:
            self._tier(kafka_spec, spec, kafka, depends_on)
        self.kafka = k8s.apiextensions.CustomResource(
            name,
            api_version=API,
            kind="Kafka",
            metadata={
                "name": role,
                "namespace": NAMESPACE,
                "labels": {**target.labels, LABEL_ROLE: role},
            },
            spec={
                "kafka": kafka_spec,
                # Every region shares the CA (see module doc), so Strimzi must not mint its own.
                "clusterCa": {"generateCertificateAuthority": False},
                "entityOperator": {"topicOperator": {}, "userOperator": {}},
                "cruiseControl": {},
            },
            opts=k8s_opts,
        )
        controllers = target.zones if len(target.zones) % 2 else target.zones[:-1]
        self.pools = []
        for zone in target.zones:
            self.pools.append(
                self._pool(
                    f"{role}-{zone}",
                    zone,
                    ["broker"],
                    spec.brokers_per_zone,
                    spec.storage_gib,
                    spec,
                    k8s_opts,
                )
            )
            if zone in controllers:
                self.pools.append(
                    self._pool(
                        f"{role}-controllers-{zone}",
                        zone,
                        ["controller"],
                        1,
                        CONTROLLER_STORAGE_GIB,
                        spec,
                        k8s_opts,
                    )
                )
        self.bootstrap = in_cluster_bootstrap(role)
        self.register_outputs({"name": role, "bootstrap": self.bootstrap})

    def _tier(self, kafka_spec: dict, spec: KafkaCluster, kafka: Kafka, depends_on: list) -> None:
        """Tier closed segments to the region's `kafka-tiered` bucket with the Aiven RSM plugin.

        The brokers' service account (`<cluster>-kafka`, made by Strimzi) gets the target's
        workload identity, so no key is stored for AWS or GCP.
        """
        bucket = self.target.bucket("kafka-tiered")
        identity = self.target.workload_identity(
            f"{self.name_prefix}-tiered",
            NAMESPACE,
            f"{self.role}-kafka",
            [bucket],
            parent=self,
            depends_on=depends_on,
        )
        config: dict[str, Any] = {"chunk.size": str(TIERED_CHUNK_BYTES)}
        if bucket.scheme == "gs":
            config.update(
                {
                    "storage.backend.class": GCS_STORAGE,
                    "storage.gcs.bucket.name": bucket.name,
                    "storage.gcs.credentials.default": "true",
                }
            )
        else:
            config.update(
                {
                    "storage.backend.class": S3_STORAGE,
                    "storage.s3.bucket.name": bucket.name,
                    "storage.s3.region": bucket.cloud_region or "",
                }
            )
            if bucket.endpoint:
                config.update(
                    {
                        "storage.s3.endpoint.url": bucket.endpoint,
                        "storage.s3.path.style.access.enabled": "true",
                    }
                )
        if bucket.prefix:
            config["storage.key.prefix"] = bucket.prefix
        kafka_spec["image"] = self.target.sources.image(str(spec.tiered_storage_image))
        kafka_spec["tieredStorage"] = {
            "type": "custom",
            "remoteStorageManager": {
                "className": AIVEN_RSM,
                "classPath": TIERED_PLUGIN_PATH,
                "config": config,
            },
        }
        kafka_spec["config"]["rlmm.config.remote.log.metadata.topic.replication.factor"] = (
            kafka.replication_factor
        )
        template = kafka_spec["template"]
        if identity.annotations:
            template["serviceAccount"] = {"metadata": {"annotations": identity.annotations}}
        if identity.env:
            template["kafkaContainer"] = {"env": identity.env}

    def _pool(
        self,
        pool: str,
        zone: str,
        roles: list[str],
        replicas: int,
        storage_gib: int,
        spec: KafkaCluster,
        opts,
    ):
        broker = "broker" in roles
        memory = f"{spec.broker_memory_gib}Gi" if broker else "2Gi"
        return k8s.apiextensions.CustomResource(
            f"{self.name_prefix}-pool-{pool.removeprefix(self.role + '-')}",
            api_version=API,
            kind="KafkaNodePool",
            metadata={
                "name": pool,
                "namespace": NAMESPACE,
                "labels": {**self.target.labels, "strimzi.io/cluster": self.role, LABEL_ZONE: zone},
            },
            spec={
                "replicas": replicas,
                "roles": roles,
                "storage": {
                    "type": "jbod",
                    "volumes": [
                        {
                            "id": 0,
                            "type": "persistent-claim",
                            "size": f"{storage_gib}Gi",
                            "class": self.target.storage_class,
                            "deleteClaim": False,
                            "kraftMetadata": "shared",
                        }
                    ],
                },
                "resources": {
                    "requests": {
                        "cpu": str(spec.broker_cpu) if broker else "500m",
                        "memory": memory,
                    },
                    "limits": {"memory": memory},
                },
                "template": {
                    "pod": {
                        "affinity": {
                            "nodeAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": {
                                    "nodeSelectorTerms": [
                                        {
                                            "matchExpressions": [
                                                {
                                                    "key": ZONE_LABEL,
                                                    "operator": "In",
                                                    "values": [zone],
                                                }
                                            ]
                                        }
                                    ],
                                }
                            }
                        }
                    }
                },
            },
            opts=opts,
        )

    def create_users(self) -> list[pulumi.Resource]:
        """`mirror` reads a regional cluster (SCRAM); `mirror-maker` writes an aggregate (mTLS)."""
        opts = self.target.k8s_opts(self, depends_on=[self.kafka])
        labels = {**self.target.labels, "strimzi.io/cluster": self.role}
        if self.role == "regional":
            spec = {
                "authentication": {
                    "type": "scram-sha-512",
                    "password": {
                        "valueFrom": {
                            "secretKeyRef": {
                                "name": mirror_secret(self.target.region.id),
                                "key": "password",
                            }
                        }
                    },
                },
                "authorization": {
                    "type": "simple",
                    "acls": [
                        {
                            "resource": {"type": "topic", "name": "*", "patternType": "literal"},
                            "operations": ["Read", "Describe", "DescribeConfigs"],
                        },
                        {
                            "resource": {"type": "group", "name": "*", "patternType": "literal"},
                            "operations": ["Describe", "Read"],
                        },
                        {
                            "resource": {"type": "cluster"},
                            "operations": ["Describe", "DescribeConfigs"],
                        },
                    ],
                },
            }
            user = MIRROR_USER
        else:
            spec = {
                "authentication": {"type": "tls"},
                "authorization": {
                    "type": "simple",
                    "acls": [
                        {
                            "resource": {"type": "topic", "name": "*", "patternType": "literal"},
                            "operations": ["All"],
                        },
                        {
                            "resource": {"type": "group", "name": "*", "patternType": "literal"},
                            "operations": ["All"],
                        },
                        {
                            "resource": {"type": "cluster"},
                            "operations": ["Describe", "DescribeConfigs", "Create"],
                        },
                    ],
                },
            }
            user = MIRROR_MAKER_USER
        return [
            k8s.apiextensions.CustomResource(
                f"{self.name_prefix}-user-{user}",
                api_version=API,
                kind="KafkaUser",
                metadata={"name": user, "namespace": NAMESPACE, "labels": labels},
                spec=spec,
                opts=opts,
            )
        ]

    def workload_user(self, grant: KafkaGrant, ctx: AccessContext) -> KafkaAccess:
        """``grant``'s own `KafkaUser` on this cluster: SCRAM-SHA-512 on the workloads listener,
        ACLs for exactly its grant, and its consumer quota when it has one.

        The password is rtdi's (a random password, as the mirror users'): the `KafkaUser` reads
        it from a Secret in namespace `kafka`, the workload from its copy in its own namespace,
        next to the cluster CA it trusts (the mesh CA; a PEM trust store).
        """
        user = f"{grant.principal}-{self.role}"
        name = f"{self.name_prefix}-user-{user}"
        password = random.RandomPassword(
            name,
            random.RandomPasswordArgs(length=40, special=False),
            opts=pulumi.ResourceOptions(parent=ctx.parent, provider=ctx.random()),
        )
        value: pulumi.Output[str] = pulumi.Output.secret(password.result)
        held = password_secret(
            f"{name}-password", self.target, f"kafka-user-{user}", value, ctx.parent, [self.kafka]
        )
        spec: dict[str, Any] = {
            "authentication": {
                "type": "scram-sha-512",
                "password": {
                    "valueFrom": {"secretKeyRef": {"name": f"kafka-user-{user}", "key": "password"}}
                },
            },
            "authorization": {"type": "simple", "acls": strimzi_acls(grant)},
        }
        if grant.consumer_byte_rate is not None:
            spec["quotas"] = {"consumerByteRate": grant.consumer_byte_rate}
        kafka_user = k8s.apiextensions.CustomResource(
            name,
            api_version=API,
            kind="KafkaUser",
            metadata={
                "name": user,
                "namespace": NAMESPACE,
                "labels": {**self.target.labels, "strimzi.io/cluster": self.role},
            },
            spec=spec,
            opts=self.target.k8s_opts(ctx.parent, depends_on=[self.kafka, held]),
        )
        secret_name = f"{user}-kafka"
        copy = k8s.core.v1.Secret(
            f"{name}-workload",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=grant.namespace, labels=self.target.labels
            ),
            type="Opaque",
            data={"password": b64(value), "ca.crt": b64(ctx.mesh_ca)},
            opts=self.target.k8s_opts(ctx.parent, depends_on=list(ctx.depends_on)),
        )
        variable = env_name(self.role, "PASSWORD")
        volume, trust = f"kafka-{self.role}", f"{TRUST_DIR}/{self.role}"
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{placeholder(variable)}";'
        )
        return KafkaAccess(
            principal=user,
            properties=pulumi.Output.from_input(
                {
                    "bootstrap.servers": in_cluster_bootstrap(self.role, WORKLOAD_PORT),
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.jaas.config": jaas,
                    "ssl.truststore.type": "PEM",
                    "ssl.truststore.location": f"{trust}/ca.crt",
                }
            ),
            env=[
                {
                    "name": variable,
                    "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "password"}},
                }
            ],
            volumes=[
                {
                    "name": volume,
                    "secret": {
                        "secretName": secret_name,
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    },
                }
            ],
            volume_mounts=[{"name": volume, "mountPath": trust, "readOnly": True}],
            resources=[held, kafka_user, copy],
        )

    def create_topics(self, kafka: Kafka, topics: list[Topic]) -> None:
        for topic, physical in each_physical(topics):
            k8s.apiextensions.CustomResource(
                f"{self.name_prefix}-topic-{physical}",
                api_version=API,
                kind="KafkaTopic",
                metadata={
                    "name": k8s_name(physical),
                    "namespace": NAMESPACE,
                    "labels": {
                        **self.target.labels,
                        "strimzi.io/cluster": self.role,
                        "rtdi-data-class": topic.data_class,
                    },
                },
                spec={
                    "topicName": physical,
                    "partitions": topic.partitions,
                    "replicas": kafka.replication_factor,
                    "config": topic_config(kafka, topic, physical, tiered=self.tiered),
                },
                opts=self.target.k8s_opts(self, depends_on=[self.kafka]),
            )


def mesh_ca_secrets(
    name: str, target: Target, mesh: pulumi.Output, clusters: list[str], parent, depends_on: list
) -> list[pulumi.Resource]:
    """The shared CA: as Strimzi wants a user-provided cluster CA, and as a trust bundle for MM2."""
    cert = mesh.apply(lambda m: m["caCert"])
    key = mesh.apply(lambda m: m["caKey"])
    opts = target.k8s_opts(parent, depends_on=depends_on)
    out: list[pulumi.Resource] = []
    for cluster in clusters:
        for suffix, data_key, value, generation in (
            ("cluster-ca-cert", "ca.crt", cert, "strimzi.io/ca-cert-generation"),
            ("cluster-ca", "ca.key", key, "strimzi.io/ca-key-generation"),
        ):
            out.append(
                k8s.core.v1.Secret(
                    f"{name}-{cluster}-{suffix}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=f"{cluster}-{suffix}",
                        namespace=NAMESPACE,
                        labels={
                            **target.labels,
                            "strimzi.io/kind": "Kafka",
                            "strimzi.io/cluster": cluster,
                        },
                        annotations={generation: "0"},
                    ),
                    type="Opaque",
                    data={data_key: b64(value)},
                    opts=opts,
                )
            )
    out.append(
        k8s.core.v1.Secret(
            f"{name}-mesh-ca",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=MESH_CA_SECRET, namespace=NAMESPACE, labels=target.labels
            ),
            type="Opaque",
            data={"ca.crt": b64(cert)},
            opts=opts,
        )
    )
    return out


def password_secret(
    resource_name: str,
    target: Target,
    secret_name: str,
    password: pulumi.Input[str],
    parent,
    depends_on: list,
):
    """A Secret in namespace `kafka` holding ``password`` under key `password`."""
    return k8s.core.v1.Secret(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=secret_name, namespace=NAMESPACE, labels=target.labels
        ),
        type="Opaque",
        data={"password": b64(pulumi.Output.secret(password))},
        opts=target.k8s_opts(parent, depends_on=depends_on),
    )


def k8s_name(topic: str) -> str:
    """A Kubernetes object name for a Kafka topic name (which may hold `_` or capitals)."""
    clean = re.sub(r"[^a-z0-9.-]", "-", topic.lower()).strip(".-")
    if clean == topic and len(clean) <= 63:
        return clean
    return f"{clean[:54].strip('.-')}-{hashlib.sha256(topic.encode()).hexdigest()[:8]}"
