"""A workload's own Kafka identity on one cluster: what it asks for, and what it gets back.

A workload (a Flink job; Pinot later) states what it needs as a `KafkaGrant` (its principal,
the physical topics it reads and writes as the federation registry resolved them, its consumer
group, its transactional-id prefix, an optional consumer byte-rate quota); the cluster's engine
(`Engine.workload_access`) turns that into the engine's own identity and rules (a Strimzi
`KafkaUser` with ACLs, an IAM policy on the workload's role for MSK, Managed Kafka ACLs for the
workload's Google service account) and answers with a `KafkaAccess`: the client properties, the
env, volumes and mounts the pod needs, and the resources it must wait for. No secret value is
ever in the properties: a password appears as a ``${env:NAME}`` placeholder the pod's env fills
from a Secret (the SQL runner substitutes it), so a ConfigMap holding them holds no secret.

Each grant is exactly what one workload needs, so two workloads never share an identity and a
compromised job reads nothing but its own topics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

if TYPE_CHECKING:
    import pulumi_random as random

    from infra.targets.base import Target, WorkloadIdentity

# Where a workload's pod finds the trust bundle of a cluster role (`ssl.truststore.location`).
TRUST_DIR = "/opt/rtdi/kafka"


@dataclass(frozen=True)
class KafkaGrant:
    """What one workload may do on one cluster.

    ``principal`` names the workload (`flink-<job>`), unique among workloads: engines derive the
    cluster's identity from it. ``identity`` is the workload's own service account with its cloud
    identity (IRSA role, Google service account), which IAM engines grant rights to.
    ``read_topics``/``write_topics`` are physical names, ``read_prefixes`` prefixes of physical
    names; ``groups`` literal consumer groups; ``transactional_id_prefix`` the prefix of every
    transactional id the workload's producers use. ``consumer_byte_rate`` throttles reads (bytes
    per second per broker) where the engine can enforce a quota (see each engine).
    """

    principal: str
    identity: WorkloadIdentity
    read_topics: tuple[str, ...] = ()
    read_prefixes: tuple[str, ...] = ()
    write_topics: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    transactional_id_prefix: str | None = None
    consumer_byte_rate: int | None = None

    @property
    def namespace(self) -> str:
        return self.identity.namespace

    @property
    def service_account(self) -> str:
        return self.identity.service_account


@dataclass(frozen=True)
class KafkaAccess:
    """What a workload's pod needs to reach one cluster as its own identity.

    ``properties`` are Kafka client properties: plain values, and ``${env:NAME}`` placeholders
    for secrets, which ``env`` fills from a Secret. ``resources`` are what the workload must wait
    for (its user, its Secrets, its policy). ``principal`` is the name the cluster knows it by.
    """

    principal: pulumi.Input[str]
    properties: pulumi.Output[dict[str, str]]
    env: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    volume_mounts: list[dict] = field(default_factory=list)
    resources: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class AccessContext:
    """What an engine needs besides the cluster to declare a workload's identity: the region's
    target, the asking component (every resource is its child, deleted with it), the mesh CA
    (Strimzi's cluster CA, which workloads trust) and the region's random provider (made on first
    call: only an engine that mints passwords needs it)."""

    target: Target
    parent: pulumi.Resource
    mesh_ca: pulumi.Output[str]
    random: Callable[[], random.Provider]
    depends_on: Sequence[pulumi.Resource] = ()


def env_name(role: str, what: str) -> str:
    """The env variable holding ``what`` (PASSWORD...) for the ``role`` cluster."""
    return f"KAFKA_{role.upper()}_{what}"


def placeholder(name: str) -> str:
    """A value the SQL runner replaces from its environment before running the script."""
    return f"${{env:{name}}}"


def strimzi_acls(grant: KafkaGrant) -> list[dict[str, Any]]:
    """The `KafkaUser` ACLs that allow exactly ``grant``: Read/Describe on what it reads, Read
    on its groups, Write/Describe on what it writes, Write/Describe on its transactional ids
    (prefix), and IdempotentWrite on the cluster, which a transactional producer needs."""
    acls: list[dict[str, Any]] = []

    def rule(kind: str, name: str, pattern: str, ops: list[str]) -> None:
        acls.append(
            {"resource": {"type": kind, "name": name, "patternType": pattern}, "operations": ops}
        )

    for topic in grant.read_topics:
        rule("topic", topic, "literal", ["Read", "Describe"])
    for prefix in grant.read_prefixes:
        rule("topic", prefix, "prefix", ["Read", "Describe"])
    for group in grant.groups:
        rule("group", group, "literal", ["Read"])
    for topic in grant.write_topics:
        rule("topic", topic, "literal", ["Write", "Describe"])
    if grant.transactional_id_prefix:
        rule("transactionalId", grant.transactional_id_prefix, "prefix", ["Write", "Describe"])
    if grant.write_topics:
        acls.append({"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"]})
    return acls


def msk_iam_statements(cluster_arn: str, grant: KafkaGrant) -> list[dict[str, Any]]:
    """The IAM statements (MSK IAM access control) that allow exactly ``grant`` on the cluster
    ``cluster_arn``: topic, group and transactional-id ARNs share the cluster's name and uuid."""
    head, _, rest = cluster_arn.partition(":cluster/")

    def arn(kind: str, name: str) -> str:
        return f"{head}:{kind}/{rest}/{name}"

    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
            "Resource": [cluster_arn],
        }
    ]
    reads = [arn("topic", t) for t in grant.read_topics]
    reads += [arn("topic", f"{p}*") for p in grant.read_prefixes]
    if reads:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                "Resource": reads,
            }
        )
    if grant.groups:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                "Resource": [arn("group", g) for g in grant.groups],
            }
        )
    if grant.write_topics:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                "Resource": [arn("topic", t) for t in grant.write_topics],
            }
        )
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kafka-cluster:WriteDataIdempotently"],
                "Resource": [cluster_arn],
            }
        )
    if grant.transactional_id_prefix:
        statements.append(
            {
                "Effect": "Allow",
                "Action": [
                    "kafka-cluster:DescribeTransactionalId",
                    "kafka-cluster:AlterTransactionalId",
                ],
                "Resource": [arn("transactional-id", f"{grant.transactional_id_prefix}*")],
            }
        )
    return statements


def managed_kafka_acls(grant: KafkaGrant) -> dict[str, list[str]]:
    """Google Managed Kafka ACLs for ``grant``: acl id (the resource pattern) -> operations.

    Same rules as `strimzi_acls`, in the service's acl-id syntax, but none on the cluster."""
    acls: dict[str, list[str]] = {}
    for topic in grant.read_topics:
        acls[f"topic/{topic}"] = ["READ", "DESCRIBE"]
    for prefix in grant.read_prefixes:
        acls[f"topicPrefixed/{prefix}"] = ["READ", "DESCRIBE"]
    for group in grant.groups:
        acls[f"consumerGroup/{group}"] = ["READ"]
    for topic in grant.write_topics:
        acls[f"topic/{topic}"] = [*acls.get(f"topic/{topic}", []), "WRITE", "DESCRIBE"]
    if grant.transactional_id_prefix:
        acls[f"transactionalIdPrefixed/{grant.transactional_id_prefix}"] = ["WRITE", "DESCRIBE"]
    # No cluster ACL: once a resource has any ACL, the service refuses every principal not
    # named on it, and the cluster resource is every client's. Write on a topic implies
    # IdempotentWrite (KIP-679).
    return {k: sorted(set(v)) for k, v in acls.items()}
