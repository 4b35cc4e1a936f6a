"""The Kafka layer of one region (paper 4.1 and 6): regional and aggregate clusters of any engine,
flows from every region's regional cluster into this region's aggregate, topics as code, and the
federation registry.

Flows between two MSK clusters use the MSK Replicator; every other flow uses MirrorMaker 2 on this
region's Kubernetes. A source on a managed engine is reached through what its own regional stack
exports (`kafkaRegional`): the only cross-region facts not derivable from the topology are a
managed cluster's bootstrap address and, for GCP, its reader's key.

A first deployment converges from nothing, in any order: a peer stack that does not exist yet or
has not exported `kafkaRegional` yet makes the flows that need it *pending* (left out, with a
warning and an entry in the stack's `pending` output) and the next `pulumi up` completes them.
What this stack exports for peers depends only on its own resources, never on what it read from
peers, so two rounds always suffice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.kafka import endpoints as ep
from infra.components.kafka.access import AccessContext, KafkaAccess, KafkaGrant
from infra.components.kafka.engines import (
    EXPORT,
    SECRETS_EXPORT,
    Engine,
    KafkaClient,
    Published,
    engine_of,
)
from infra.components.kafka.flows import (
    NAMESPACE,
    ROLES,
    federation_registry,
    flows_into,
    regional_topics,
)
from infra.components.kafka.mirror import MirrorMaker2
from infra.components.kafka.strimzi import StrimziOperator, mesh_ca_secrets, password_secret
from infra.peers import StackOutputs
from infra.targets.base import Target
from infra.topology.model import Kafka, Topology


@dataclass(frozen=True)
class Pending:
    """Something this stack leaves out until a peer stack has exported what it needs."""

    stack: str  # the peer's short stack name: what to `pulumi up`
    output: str
    reason: str
    waiting: str

    def as_json(self) -> dict[str, str]:
        return {
            "stack": self.stack,
            "output": self.output,
            "reason": self.reason,
            "waiting": self.waiting,
        }


class KafkaLayer(pulumi.ComponentResource):
    def __init__(
        self,
        target: Target,
        topology: Topology,
        kafka: Kafka,
        mesh: pulumi.Output,
        peers: Mapping[str, StackOutputs],
        opts: pulumi.ResourceOptions | None = None,
    ):
        """``peers``: what `peer_regions` named was read, by region id (see `infra.peers`)."""
        name = f"{target.region.id}-kafka"
        super().__init__("rtdi:kafka:Kafka", name, None, opts)
        self.target, self.topology, self.kafka = target, topology, kafka
        self.mesh_ca: pulumi.Output[str] = mesh.apply(lambda m: m["caCert"])
        self._random: random.Provider | None = None
        region = target.region
        self.engines: dict[str, dict[str, Engine]] = {
            r.id: {role: engine_of(getattr(r.kafka, role)) for role in ROLES}
            for r in topology.regions
        }
        mine = self.engines[region.id]
        self.flows = flows_into(topology, kafka, region)
        replicated = [
            f
            for f in self.flows
            if mine["aggregate"].replicates_from(self.engines[f.source]["regional"])
        ]
        mirrored = [f for f in self.flows if f not in replicated]

        # What other regions' stacks published about their managed regional clusters; a flow
        # whose source has not published yet waits for the next round.
        self.remote: dict[str, Published] = {}
        self.pending: list[Pending] = []
        waiting: set[str] = set()
        for source in peer_regions(topology, kafka, region.id):
            read = peers.get(source)
            if read is None:
                raise ValueError(f"{region.id}: peer stack of {source} was not read")
            needed = self.engines[source]["regional"].peer_outputs
            missing = [(o, r) for o in needed if (r := read.missing(o)) is not None]
            if not missing:
                self.remote[source] = Published(read.output(EXPORT), read.output(SECRETS_EXPORT))
                continue
            stack, (output, reason) = read.short_name, missing[0]
            waiting.add(source)
            for flow in self.flows:
                if flow.source == source:
                    how = "MSK Replicator" if flow in replicated else "MirrorMaker 2"
                    what = f"{how} flow {source} -> {region.id} aggregate"
                    self.pending.append(Pending(stack, output, reason, what))
            self.pending.append(
                Pending(stack, output, reason, f"federation registry address of {source} regional")
            )
        for p in self.pending:
            pulumi.log.warn(
                f"{region.id}: {p.waiting} is pending: {p.reason} ({p.stack}: {p.output}); "
                f"`pulumi up` stack {p.stack}, then this stack again",
                self,
            )
        # Pending flows are left out, so nothing half-configured is applied.
        live_mirrored = [f for f in mirrored if f.source not in waiting]
        live_replicated = [f for f in replicated if f.source not in waiting]

        ns = k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=target.labels),
            opts=target.k8s_opts(self),
        )
        ready: list[pulumi.Resource] = [ns]
        strimzi_roles = [role for role in ROLES if mine[role].on_kubernetes]
        if strimzi_roles or mirrored:
            ready.append(
                StrimziOperator(
                    f"{name}-strimzi", target, ns, opts=pulumi.ResourceOptions(parent=self)
                )
            )
            ready += mesh_ca_secrets(name, target, mesh, strimzi_roles, self, [ns])

        passwords = mesh.apply(lambda m: m["mirrorPasswords"])
        maker_passwords = mesh.apply(lambda m: m["mirrorMakerPasswords"])
        own = {
            "regional": passwords.apply(lambda p: p[region.id]),
            "aggregate": maker_passwords.apply(lambda p: p[region.id]),
        }
        self.clusters = {
            role: mine[role].build(
                f"{region.id}-kafka-{role}",
                role,
                getattr(region.kafka, role),
                kafka,
                target,
                own[role],
                ready,
                pulumi.ResourceOptions(parent=self),
            )
            for role in ROLES
        }
        users = [u for role in ROLES for u in mine[role].users(self.clusters[role])]
        self.clusters["regional"].create_topics(kafka, regional_topics(kafka, region))

        if live_mirrored:
            secrets = [
                password_secret(
                    f"{name}-mirror-{f.source}",
                    target,
                    ep.mirror_secret(f.source),
                    self.engines[f.source]["regional"].source_password(
                        f.source, self._local(f.source), self.remote.get(f.source), passwords
                    ),
                    self,
                    [ns],
                )
                for f in live_mirrored
            ]
            writer = mine["aggregate"].writer_password(self.clusters["aggregate"], own["aggregate"])
            if writer is not None:
                secrets.append(
                    password_secret(
                        f"{name}-mirror-maker", target, ep.MIRROR_MAKER_SECRET, writer, self, [ns]
                    )
                )
            sources = [
                (
                    f,
                    self.engines[f.source]["regional"].source(
                        kafka, f.source, self._local(f.source), self.remote.get(f.source)
                    ),
                )
                for f in live_mirrored
            ]
            MirrorMaker2(
                f"{name}-mirror",
                target,
                kafka,
                mine["aggregate"].target(self.clusters["aggregate"]),
                sources,
                ready + users + secrets + list(self.clusters.values()),
                opts=pulumi.ResourceOptions(parent=self),
            )
        if live_replicated:
            from infra.components.kafka.msk import MskReplicator

            for flow in live_replicated:
                exported = (
                    self._local_export()
                    if flow.source == region.id
                    else self.remote[flow.source].public
                )
                MskReplicator(
                    f"{name}-replicator-{flow.source}",
                    target,
                    flow,
                    exported,
                    self.clusters["aggregate"],
                    opts=pulumi.ResourceOptions(parent=self),
                )

        self.registry = self._registry()
        k8s.core.v1.ConfigMap(
            f"{name}-federation",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="kafka-federation", namespace=NAMESPACE, labels=target.labels
            ),
            data={
                "registry.json": self.registry.apply(
                    lambda r: json.dumps(r, indent=1, sort_keys=True)
                )
            },
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        self.exported = self._local_export()
        self.exported_secrets = mine["regional"].export_secrets(self.clusters["regional"])
        self.register_outputs({"sources": [f.source for f in self.flows]})

    @property
    def pending_json(self) -> list[dict[str, str]]:
        """The stack's `pending` output: empty once every flow is complete."""
        return [p.as_json() for p in self.pending]

    def client(self, role: str) -> KafkaClient:
        """How this region's workloads (Flink, Pinot...) reach its ``role`` cluster, any engine."""
        if role not in ROLES:
            raise ValueError(f"no Kafka cluster role {role!r}; roles: {', '.join(ROLES)}")
        return self.engines[self.target.region.id][role].client(self.clusters[role], role)

    def enforces_quotas(self, role: str) -> bool:
        """Whether this region's ``role`` cluster enforces a grant's consumer byte-rate quota;
        where it does not, a throttled workload must throttle itself."""
        return self.engines[self.target.region.id][role].enforces_quotas

    def access(
        self,
        role: str,
        grants: Sequence[KafkaGrant],
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> dict[str, KafkaAccess]:
        """Each workload's own identity on this region's ``role`` cluster, allowed exactly its
        grant, by principal; every grant of a cluster in one call (see
        `Engine.workload_access`). Resources are children of ``parent``, the asking layer;
        ``depends_on`` is what the workload's namespace needs first."""
        if role not in ROLES:
            raise ValueError(f"no Kafka cluster role {role!r}; roles: {', '.join(ROLES)}")
        if not grants:
            return {}
        ctx = AccessContext(self.target, parent, self.mesh_ca, self._random_provider, depends_on)
        return self.engines[self.target.region.id][role].workload_access(
            self.clusters[role], role, grants, ctx
        )

    def _random_provider(self) -> random.Provider:
        """Workload passwords are minted here, in the region: no other stack needs them."""
        if self._random is None:
            self._random = random.Provider(
                f"{self.target.region.id}-kafka-random", opts=pulumi.ResourceOptions(parent=self)
            )
        return self._random

    # ------------------------------------------------------------------ engines

    def _local(self, source: str):
        """This region's regional cluster when ``source`` is this region, else None."""
        return self.clusters["regional"] if source == self.target.region.id else None

    def _local_export(self) -> pulumi.Output:
        """What other regions need to read this region's regional cluster (see module doc)."""
        region_id = self.target.region.id
        return self.engines[region_id]["regional"].export(
            self.clusters["regional"], self.kafka, region_id
        )

    # ------------------------------------------------------------------ registry

    def _registry(self) -> pulumi.Output:
        """The static registry, with every managed cluster's address filled in from its stack."""
        static = federation_registry(self.topology, self.kafka)
        addresses: dict[str, pulumi.Input[str]] = {}
        for region_id, engines in self.engines.items():
            if region_id == self.target.region.id:
                for role in ROLES:
                    live = engines[role].live_bootstrap(self.clusters[role])
                    if live is not None:
                        addresses[f"{region_id}/{role}"] = live
            elif engines["regional"].published and region_id in self.remote:
                addresses[f"{region_id}/regional"] = self.remote[region_id].get("bootstrap")
        return (
            pulumi.Output.all(**addresses).apply(lambda found: _fill(static, found))
            if addresses
            else pulumi.Output.from_input(static)
        )


def peer_regions(topology: Topology, kafka: Kafka, region_id: str) -> list[str]:
    """The regions whose stacks this region's Kafka layer reads: other regions whose regional
    cluster only its own stack can describe (a managed engine), and that send it a flow."""
    engines = {r.id: engine_of(r.kafka.regional) for r in topology.regions}
    return [
        f.source
        for f in flows_into(topology, kafka, topology.region(region_id))
        if f.source != region_id and engines[f.source].published
    ]


def _fill(registry: dict, addresses: dict) -> dict:
    out: dict = json.loads(json.dumps(registry))
    for topic in out["topics"].values():
        for region_id, entry in topic["regions"].items():
            if f"{region_id}/regional" in addresses:
                entry["produce"]["bootstrap"] = entry["produce"]["crossRegionBootstrap"] = (
                    addresses[f"{region_id}/regional"]
                )
            if f"{region_id}/aggregate" in addresses:
                entry["consume"]["bootstrap"] = addresses[f"{region_id}/aggregate"]
    return out
