"""The Kafka engines (Strimzi, Amazon MSK, GCP Managed Kafka): one class each, one registry.

The Kafka layer, the flows and the federation registry ask an engine object what they need (how
to build a cluster, how MirrorMaker 2 reaches it, what its region exports for other regions,
where clients find it) instead of comparing engine names, so a new engine is one new class here.
Only this module names engines (tests/test_kafka_engines.py enforces it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pulumi

from infra.components.kafka import endpoints as ep
from infra.components.kafka.access import (
    AccessContext,
    KafkaAccess,
    KafkaGrant,
    msk_iam_statements,
)
from infra.components.kafka.flows import (
    CROSS_REGION_PORT,
    NAMESPACE,
    cross_region_bootstrap,
    in_cluster_bootstrap,
)
from infra.topology.model import Kafka

if TYPE_CHECKING:
    from infra.targets.base import Target
    from infra.topology.model import KafkaCluster


# What a regional stack exports for its peers: its regional cluster's address (plain) and the
# credentials to read it (secret).
EXPORT = "kafkaRegional"
SECRETS_EXPORT = "kafkaRegionalSecrets"


@dataclass(frozen=True)
class KafkaClient:
    """How a workload in a region (Flink, Pinot...) reaches one of its region's Kafka clusters.

    Later layers ask `KafkaLayer.client(role)` for this instead of knowing the engine: the
    bootstrap address, which certificates to trust (``trust_secret`` names the Secret in namespace
    `kafka` holding ``ca.crt``; None means the JVM's public trust store) and how to authenticate
    (``mechanism``: `tls` for a Strimzi KafkaUser's client certificate, `scram-sha-512` for a
    SCRAM user, `plain` for a Google service account's key): the cluster's address and how it
    is reached in general. A workload's own identity, rights and ready-to-use client properties
    come from `KafkaLayer.access` (`Engine.workload_access`), so one workload's credentials never
    serve another.
    """

    engine: str
    role: str
    bootstrap: pulumi.Input[str]
    trust_secret: str | None
    mechanism: str

    def properties(self) -> pulumi.Output[dict[str, str]]:
        """Kafka client properties a workload starts from (its own credentials go on top)."""
        sasl = {"scram-sha-512": "SCRAM-SHA-512", "plain": "PLAIN"}
        return pulumi.Output.from_input(self.bootstrap).apply(
            lambda b: {
                "bootstrap.servers": b,
                "security.protocol": "SSL" if self.mechanism == "tls" else "SASL_SSL",
                **({"sasl.mechanism": sasl[self.mechanism]} if self.mechanism in sasl else {}),
            }
        )


@dataclass(frozen=True)
class Published:
    """What a peer region's stack exported about its regional cluster: `kafkaRegional` (plain, so
    addresses stay readable in plans and previews) and `kafkaRegionalSecrets` (its credentials)."""

    public: pulumi.Output
    secrets: pulumi.Output

    def get(self, key: str) -> pulumi.Output:
        return self.public.apply(lambda r: r[key])

    def secret(self, key: str) -> pulumi.Output:
        return pulumi.Output.secret(self.secrets.apply(lambda r: r[key]))


class Engine:
    """What the Kafka layer asks of an engine. Subclasses answer for one engine each."""

    name: ClassVar[str]
    # Runs on the region's Kubernetes under the Strimzi operator, trusting the shared mesh CA.
    on_kubernetes: ClassVar[bool] = False
    # Its address is known only once it exists: other regions read its stack's `kafkaRegional`.
    published: ClassVar[bool] = True
    # The peer stack's outputs a flow from this engine's regional cluster needs.
    peer_outputs: ClassVar[tuple[str, ...]] = (EXPORT,)
    # Whether a grant's `consumer_byte_rate` becomes a quota the brokers enforce.
    enforces_quotas: ClassVar[bool] = False

    def build(
        self,
        name: str,
        role: str,
        spec: KafkaCluster,
        kafka: Kafka,
        target: Target,
        password: pulumi.Output,
        ready: list,
        opts: pulumi.ResourceOptions,
    ) -> Any:
        raise NotImplementedError

    def users(self, cluster: Any) -> list[pulumi.Resource]:
        """Kafka users the layer declares as custom resources (Strimzi only)."""
        return []

    def export(self, cluster: Any, kafka: Kafka, region_id: str) -> pulumi.Output:
        """What other regions need to read this regional cluster (its stack's `kafkaRegional`).

        It depends only on this region's own resources, never on what was read from peers, so
        regional stacks never wait on each other in a cycle.
        """
        raise NotImplementedError

    def export_secrets(self, cluster: Any) -> pulumi.Output:
        """The credentials other regions need (its stack's `kafkaRegionalSecrets`, a secret)."""
        return pulumi.Output.secret({})

    def source(
        self, kafka: Kafka, region_id: str, local: Any, remote: Published | None
    ) -> ep.Endpoint:
        """MirrorMaker 2's `source` for ``region_id``'s regional cluster.

        ``local`` is this region's own regional cluster when the source is this region (else
        None); ``remote`` is what the source's stack exports (None when not read).
        """
        raise NotImplementedError

    def source_password(
        self,
        region_id: str,
        local: Any,
        remote: Published | None,
        mesh_passwords: pulumi.Output,
    ) -> pulumi.Output:
        """The `mirror` user's password for ``region_id``'s regional cluster."""
        return mesh_passwords.apply(lambda p: p[region_id])

    def target(self, aggregate: Any) -> ep.Endpoint:
        """MirrorMaker 2's `target`: this region's aggregate cluster."""
        raise NotImplementedError

    def writer_password(self, aggregate: Any, mesh_password: pulumi.Output) -> pulumi.Output | None:
        """The `mirror-maker` user's password, or None when it authenticates otherwise."""
        return None

    def replicates_from(self, source: Engine) -> bool:
        """Whether a flow from a ``source`` regional cluster into this aggregate uses the cloud's
        replicator (the MSK Replicator) rather than MirrorMaker 2."""
        return False

    def static_bootstrap(self, role: str) -> str | None:
        """Where in-region clients reach the cluster, when the topology alone says it."""
        return None

    def static_cross_region(self, kafka: Kafka, region_id: str) -> str | None:
        """Where other regions reach the regional cluster, when the topology alone says it."""
        return None

    def live_bootstrap(self, cluster: Any) -> pulumi.Output | None:
        """The address the cloud gives the cluster, for the registry (None if static)."""
        return None

    def client(self, cluster: Any, role: str) -> KafkaClient:
        raise NotImplementedError

    def workload_access(
        self, cluster: Any, role: str, grants: Sequence[KafkaGrant], ctx: AccessContext
    ) -> dict[str, KafkaAccess]:
        """Each workload's own identity on ``cluster``, allowed exactly its grant, by principal.

        All grants of a cluster come in one call: an engine whose ACLs are one resource per
        resource pattern (GCP Managed Kafka) must merge the workloads sharing a topic.
        """
        _distinct(grants)
        return {g.principal: self.grant(cluster, role, g, ctx) for g in grants}

    def grant(self, cluster: Any, role: str, grant: KafkaGrant, ctx: AccessContext) -> KafkaAccess:
        raise NotImplementedError


def _unenforced_quota(grant: KafkaGrant, ctx: AccessContext, why: str) -> None:
    """Say so when a grant's quota cannot be enforced: the workload must throttle itself."""
    if grant.consumer_byte_rate is not None:
        pulumi.log.warn(
            f"{grant.principal}: consumer byte-rate quota {grant.consumer_byte_rate} is not "
            f"enforced ({why}); the workload must throttle itself",
            ctx.parent,
        )


def _distinct(grants: Sequence[KafkaGrant]) -> None:
    principals = [g.principal for g in grants]
    if len(set(principals)) != len(principals):
        raise ValueError(f"two workloads share a Kafka principal: {sorted(principals)}")


def _plain(user: pulumi.Input[str], secret: str) -> pulumi.Output:
    return pulumi.Output.from_input(user).apply(lambda u: ep.plain(u, secret))


def _remote(remote: Published | None, key: str) -> pulumi.Output:
    if remote is None:
        raise ValueError(f"no export read for the remote cluster's {key}")
    return remote.get(key)


class Strimzi(Engine):
    name = "strimzi"
    enforces_quotas = True  # the KafkaUser's `quotas`
    on_kubernetes = True
    published = False

    def build(self, name, role, spec, kafka, target, password, ready, opts):
        from infra.components.kafka.strimzi import StrimziCluster

        return StrimziCluster(name, role, spec, kafka, target, ready, opts=opts)

    def users(self, cluster):
        return cluster.create_users()

    def export(self, cluster, kafka, region_id):
        return pulumi.Output.from_input(
            {
                "engine": self.name,
                "bootstrap": cross_region_bootstrap(kafka, region_id),
                "username": ep.MIRROR_USER,
            }
        )

    def source(self, kafka, region_id, local, remote):
        bootstrap = (
            f"regional-kafka-replication-bootstrap.{NAMESPACE}.svc:{CROSS_REGION_PORT}"
            if local is not None
            else cross_region_bootstrap(kafka, region_id)
        )
        return ep.Endpoint(
            self.name,
            bootstrap,
            ep.MESH_TRUST,
            ep.scram(ep.MIRROR_USER, ep.mirror_secret(region_id)),
        )

    def target(self, aggregate):
        return ep.Endpoint(
            self.name,
            in_cluster_bootstrap("aggregate"),
            ep.MESH_TRUST,
            {
                "type": "tls",
                "certificateAndKey": {
                    "secretName": ep.MIRROR_MAKER_USER,
                    "certificate": "user.crt",
                    "key": "user.key",
                },
            },
        )

    def static_bootstrap(self, role):
        return in_cluster_bootstrap(role)

    def static_cross_region(self, kafka, region_id):
        return cross_region_bootstrap(kafka, region_id)

    def client(self, cluster, role):
        return KafkaClient(self.name, role, in_cluster_bootstrap(role), ep.MESH_CA_SECRET, "tls")

    def grant(self, cluster, role, grant, ctx):
        """A `KafkaUser` (SCRAM-SHA-512, on the workloads listener) with ACLs and quotas."""
        return cluster.workload_user(grant, ctx)


class Msk(Engine):
    name = "msk"

    def build(self, name, role, spec, kafka, target, password, ready, opts):
        from infra.components.kafka.msk import MskCluster

        user = ep.MIRROR_USER if role == "regional" else ep.MIRROR_MAKER_USER
        return MskCluster(name, role, spec, kafka, target, {user: password}, opts=opts)

    def export(self, cluster, kafka, region_id):
        return pulumi.Output.all(
            cluster.cluster.arn, cluster.bootstrap, cluster.security_group.id, cluster.subnet_ids
        ).apply(
            lambda a: {
                "engine": self.name,
                "arn": a[0],
                "bootstrap": a[1],
                "securityGroupIds": [a[2]],
                "subnetIds": a[3],
                "username": ep.MIRROR_USER,
            }
        )

    def source(self, kafka, region_id, local, remote):
        bootstrap = local.bootstrap if local is not None else _remote(remote, "bootstrap")
        return ep.Endpoint(
            self.name,
            bootstrap,
            ep.PUBLIC_TRUST,
            ep.scram(ep.MIRROR_USER, ep.mirror_secret(region_id)),
        )

    def target(self, aggregate):
        return ep.Endpoint(
            self.name,
            aggregate.bootstrap,
            ep.PUBLIC_TRUST,
            ep.scram(ep.MIRROR_MAKER_USER, ep.MIRROR_MAKER_SECRET),
        )

    def writer_password(self, aggregate, mesh_password):
        return mesh_password

    def replicates_from(self, source):
        return isinstance(source, Msk)

    def live_bootstrap(self, cluster):
        return cluster.bootstrap

    def client(self, cluster, role):
        return KafkaClient(self.name, role, cluster.bootstrap, None, "scram-sha-512")

    def grant(self, cluster, role, grant, ctx):
        """IAM access control: the workload's own role (IRSA) gets a policy allowing exactly its
        grant on this cluster, and its client signs in with the MSK IAM login module.

        MSK cannot enforce ``consumer_byte_rate``: client quotas are not in the AWS API (only
        `kafka-configs` against the brokers sets them), so a throttled workload must throttle
        itself (the backfill's source rate) on this engine.
        """
        import pulumi_aws as aws

        if grant.identity.grantee is None:
            raise ValueError(f"{grant.principal}: MSK IAM access needs the workload's IAM role")
        _unenforced_quota(grant, ctx, "MSK has no client quotas in its API")
        policy = aws.iam.RolePolicy(
            f"{cluster.name_prefix}-{grant.principal}",
            aws.iam.RolePolicyArgs(
                role=grant.identity.grantee,
                policy=cluster.cluster.arn.apply(
                    lambda arn: json.dumps(
                        {"Version": "2012-10-17", "Statement": msk_iam_statements(arn, grant)}
                    )
                ),
            ),
            opts=pulumi.ResourceOptions(parent=ctx.parent, provider=ctx.target.provider),
        )
        properties = cluster.cluster.bootstrap_brokers_sasl_iam.apply(
            lambda b: {
                "bootstrap.servers": b,
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "AWS_MSK_IAM",
                "sasl.jaas.config": f"{MSK_IAM_LOGIN_MODULE} required;",
                "sasl.client.callback.handler.class": MSK_IAM_CALLBACK_HANDLER,
            }
        )
        return KafkaAccess(
            principal=grant.identity.grantee, properties=properties, resources=[policy]
        )


class GcpManaged(Engine):
    name = "gcp-managed"
    peer_outputs = (EXPORT, SECRETS_EXPORT)  # the reader's key is a secret

    def build(self, name, role, spec, kafka, target, password, ready, opts):
        from infra.components.kafka.gcp_managed import ManagedKafkaCluster

        user = ep.MIRROR_USER if role == "regional" else ep.MIRROR_MAKER_USER
        return ManagedKafkaCluster(name, role, spec, kafka, target, user, opts=opts)

    def export(self, cluster, kafka, region_id):
        return pulumi.Output.all(cluster.bootstrap, cluster.username).apply(
            lambda a: {"engine": self.name, "bootstrap": a[0], "username": a[1]}
        )

    def export_secrets(self, cluster):
        return pulumi.Output.secret(cluster.password.apply(lambda p: {"password": p}))

    def source(self, kafka, region_id, local, remote):
        if local is not None:
            bootstrap, username = local.bootstrap, local.username
        else:
            bootstrap, username = _remote(remote, "bootstrap"), _remote(remote, "username")
        return ep.Endpoint(
            self.name, bootstrap, ep.PUBLIC_TRUST, _plain(username, ep.mirror_secret(region_id))
        )

    def source_password(self, region_id, local, remote, mesh_passwords):
        if local is not None:
            return local.password
        if remote is None:
            raise ValueError(f"no export read for {region_id}'s regional cluster")
        return remote.secret("password")

    def target(self, aggregate):
        return ep.Endpoint(
            self.name,
            aggregate.bootstrap,
            ep.PUBLIC_TRUST,
            _plain(aggregate.username, ep.MIRROR_MAKER_SECRET),
        )

    def writer_password(self, aggregate, mesh_password):
        return aggregate.password

    def live_bootstrap(self, cluster):
        return cluster.bootstrap

    def client(self, cluster, role):
        return KafkaClient(self.name, role, cluster.bootstrap, None, "plain")

    def workload_access(self, cluster, role, grants, ctx):
        """Workload identity: each workload's Google service account (from its GKE workload
        identity) signs in with OAUTHBEARER through Google's login callback handler, holds
        `roles/managedkafka.client`, and is named on ACLs for exactly its grant.

        The service's ACLs are one resource per resource pattern, so the workloads sharing a
        topic are merged here, with the cluster's own replication user: once a topic has an
        ACL, the service refuses every principal it does not name. Managed Kafka has no client
        quotas, so ``consumer_byte_rate`` cannot be enforced on this engine.
        """
        _distinct(grants)
        for g in grants:
            _unenforced_quota(g, ctx, "Managed Kafka has no client quotas")
        return cluster.workload_access(role, grants, ctx)


# The MSK IAM SASL client (`software.amazon.msk:aws-msk-iam-auth`, in the SQL runner's jar).
MSK_IAM_LOGIN_MODULE = "software.amazon.msk.auth.iam.IAMLoginModule"
MSK_IAM_CALLBACK_HANDLER = "software.amazon.msk.auth.iam.IAMClientCallbackHandler"

ENGINES: dict[str, Engine] = {e.name: e for e in (Strimzi(), Msk(), GcpManaged())}


def engine(name: str) -> Engine:
    """The engine object for a topology's `engine` value (validated against the cloud before)."""
    return ENGINES[name]


def engine_of(cluster: KafkaCluster) -> Engine:
    return ENGINES[cluster.engine]
