"""Google Cloud Managed Service for Apache Kafka.

The service spreads every cluster over three zones of its region on its own. Clients outside
Google authenticate with SASL/PLAIN: the user is a Google service account's email and the password
its base64-encoded key; rtdi makes one such account for reading the regional cluster (`mirror`)
and one for writing the aggregate cluster (`mirror-maker`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra import versions
from infra.components.kafka.access import (
    AccessContext,
    KafkaAccess,
    KafkaGrant,
    managed_kafka_acls,
)
from infra.components.kafka.durability import as_strings, topic_config
from infra.components.kafka.flows import each_physical
from infra.targets.gcp import account_id
from infra.topology.model import Kafka, KafkaCluster, Topic

GIB = 1024**3
ZONES = 3  # the service's own spread
# Google's OAUTHBEARER login for Managed Kafka from Application Default Credentials (GKE workload
# identity): `com.google.cloud.hosted.kafka:managed-kafka-auth-login-handler`, in the runner's jar.
LOGIN_HANDLER = "com.google.cloud.hosted.kafka.auth.GcpLoginCallbackHandler"
OAUTH_LOGIN_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
# What the cluster's own replication user does on a topic that gets ACLs (see workload_access).
REPLICATION_OPERATIONS = {
    "regional": ["DESCRIBE", "DESCRIBE_CONFIGS", "READ"],  # MirrorMaker 2's `mirror` reads
    "aggregate": ["ALL"],  # `mirror-maker` creates and writes the copies
}


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
        self.user = user
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

    def workload_access(
        self, role: str, grants: Sequence[KafkaGrant], ctx: AccessContext
    ) -> dict[str, KafkaAccess]:
        """Each workload's Google service account may use the service and is named on ACLs for
        exactly its grant; it signs in with OAUTHBEARER from its workload identity, no key.

        One `Acl` resource holds every entry of one resource pattern, so the grants sharing a
        topic are merged here. Once a topic has an ACL the service refuses every principal it
        does not name (absent ACLs, `roles/managedkafka.client` alone allows all): the
        cluster's replication user is named on each, and a client rtdi does not know (an
        application producing to the same topic) would need its own entry.
        """
        target: Any = ctx.target  # a GCP target: this engine runs only there
        gcp_opts = pulumi.ResourceOptions(
            parent=ctx.parent, provider=target.provider, depends_on=[self.cluster]
        )
        principals: dict[str, pulumi.Output[str]] = {}
        members: dict[str, pulumi.Resource] = {}
        entries: dict[str, list[tuple[pulumi.Output[str], str]]] = {}
        for grant in grants:
            if grant.identity.grantee is None:
                raise ValueError(f"{grant.principal}: Managed Kafka needs a Google service account")
            email = pulumi.Output.from_input(grant.identity.grantee)
            principals[grant.principal] = email
            members[grant.principal] = gcp.projects.IAMMember(
                f"{self.name_prefix}-{grant.principal}",
                gcp.projects.IAMMemberArgs(
                    project=target.project,
                    role="roles/managedkafka.client",
                    member=email.apply(lambda e: f"serviceAccount:{e}"),
                ),
                opts=gcp_opts,
            )
            for acl_id, operations in managed_kafka_acls(grant).items():
                entries.setdefault(acl_id, []).extend((email, op) for op in operations)
        acls: list[pulumi.Resource] = []
        for acl_id, listed in sorted(entries.items()):
            if acl_id.startswith("topic"):
                listed = listed + [(self.username, op) for op in REPLICATION_OPERATIONS[role]]
            acls.append(
                gcp.managedkafka.Acl(
                    f"{self.name_prefix}-acl-{acl_id.replace('/', '-')}",
                    gcp.managedkafka.AclArgs(
                        cluster=self.cluster.cluster_id,
                        location=self.location,
                        acl_id=acl_id,
                        acl_entries=[
                            gcp.managedkafka.AclAclEntryArgs(
                                principal=pulumi.Output.concat("User:", who),
                                operation=op,
                                permission_type="ALLOW",
                                host="*",
                            )
                            for who, op in listed
                        ],
                    ),
                    opts=gcp_opts,
                )
            )
        properties = self.bootstrap.apply(
            lambda b: {
                "bootstrap.servers": b,
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "OAUTHBEARER",
                "sasl.login.callback.handler.class": LOGIN_HANDLER,
                "sasl.jaas.config": f"{OAUTH_LOGIN_MODULE} required;",
            }
        )
        return {
            principal: KafkaAccess(
                principal=email, properties=properties, resources=[members[principal], *acls]
            )
            for principal, email in principals.items()
        }
