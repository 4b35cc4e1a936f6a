"""Google Cloud Managed Service for Apache Kafka.

The service spreads every cluster over three zones of its region on its own. Clients outside
Google authenticate with SASL/PLAIN: the user is a Google service account's email and the password
its base64-encoded key; rtdi makes one such account for reading the regional cluster (`mirror`)
and one for writing the aggregate cluster (`mirror-maker`).
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra import versions
from infra.components.kafka.durability import as_strings, topic_config
from infra.components.kafka.flows import each_physical
from infra.targets.gcp import account_id
from infra.topology.model import Kafka, KafkaCluster, Topic

GIB = 1024**3
ZONES = 3  # the service's own spread


class ManagedKafkaCluster(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        role: str,
        spec: KafkaCluster,
        kafka: Kafka,
        target,
        user: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rtdi:kafka:GcpManagedKafkaCluster", name, None, opts)
        self.role = role
        self.name_prefix = name
        self.location = target.region.name
        self.provider = target.provider
        gcp_opts = pulumi.ResourceOptions(parent=self, provider=target.provider)
        vcpus = spec.broker_cpu * spec.brokers_per_zone * ZONES
        self.cluster = gcp.managedkafka.Cluster(
            name,
            gcp.managedkafka.ClusterArgs(
                cluster_id=f"{target.topology.name}-{role}",
                location=self.location,
                kafka_version=versions.GCP_MANAGED_KAFKA_VERSION,
                capacity_config=gcp.managedkafka.ClusterCapacityConfigArgs(
                    vcpu_count=str(vcpus),
                    memory_bytes=str(spec.broker_memory_gib * spec.brokers_per_zone * ZONES * GIB),
                ),
                broker_capacity_config=gcp.managedkafka.ClusterBrokerCapacityConfigArgs(
                    disk_size_gib=str(spec.storage_gib)
                ),
                gcp_config=gcp.managedkafka.ClusterGcpConfigArgs(
                    access_config=gcp.managedkafka.ClusterGcpConfigAccessConfigArgs(
                        network_configs=[
                            gcp.managedkafka.ClusterGcpConfigAccessConfigNetworkConfigArgs(
                                subnet=target.subnetwork
                            ),
                        ]
                    ),
                    kms_key=target.kms_key.id,
                ),
                rebalance_config=gcp.managedkafka.ClusterRebalanceConfigArgs(
                    mode="AUTO_REBALANCE_ON_SCALE_UP"
                ),
                labels={"rtdi-kafka-role": role},
                deletion_policy="PREVENT",
            ),
            opts=pulumi.ResourceOptions(
                parent=self, provider=target.provider, depends_on=target.kms_grants
            ),
        )
        self.account = gcp.serviceaccount.Account(
            f"{name}-{user}",
            gcp.serviceaccount.AccountArgs(
                account_id=account_id(f"kafka-{user}", target.region.name),
                display_name=f"rtdi Kafka {user} {target.region.id}",
            ),
            opts=gcp_opts,
        )
        gcp.projects.IAMMember(
            f"{name}-{user}",
            gcp.projects.IAMMemberArgs(
                project=target.project,
                role="roles/managedkafka.client",
                member=self.account.email.apply(lambda e: f"serviceAccount:{e}"),
            ),
            opts=gcp_opts,
        )
        key = gcp.serviceaccount.Key(
            f"{name}-{user}",
            gcp.serviceaccount.KeyArgs(service_account_id=self.account.name),
            opts=gcp_opts,
        )
        self.username = self.account.email
        self.password = pulumi.Output.secret(
            key.private_key
        )  # already base64 of the key JSON: what SASL/PLAIN wants
        self.bootstrap = self.cluster.bootstrap_address
        self.register_outputs({"bootstrap": self.bootstrap})

    def create_topics(self, kafka: Kafka, topics: list[Topic]) -> None:
        for topic, physical in each_physical(topics):
            gcp.managedkafka.Topic(
                f"{self.name_prefix}-topic-{physical}",
                gcp.managedkafka.TopicArgs(
                    cluster=self.cluster.cluster_id,
                    location=self.location,
                    topic_id=physical,
                    partition_count=topic.partitions,
                    replication_factor=kafka.replication_factor,
                    configs=as_strings(topic_config(kafka, topic, physical)),
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
