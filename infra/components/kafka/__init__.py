"""The Kafka layer of one region (paper 4.1 and 6): regional and aggregate clusters of any engine,
flows from every region's regional cluster into this region's aggregate, topics as code, and the
federation registry.

Flows between two MSK clusters use the MSK Replicator; every other flow uses MirrorMaker 2 on this
region's Kubernetes. A source on a managed engine is reached through what its own regional stack
exports (`kafkaRegional`), read with a StackReference: the only cross-region facts not derivable
from the topology are a managed cluster's bootstrap address and, for GCP, its reader's key.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pulumi
import pulumi_kubernetes as k8s

from infra.components.kafka import endpoints as ep
from infra.components.kafka.engines import Engine, KafkaClient, engine_of
from infra.components.kafka.flows import (
    NAMESPACE,
    ROLES,
    federation_registry,
    flows_into,
    regional_topics,
)
from infra.components.kafka.mirror import MirrorMaker2
from infra.components.kafka.strimzi import StrimziOperator, mesh_ca_secrets, password_secret
from infra.targets.base import Target
from infra.topology.model import Kafka, Topology

EXPORT = "kafkaRegional"


class KafkaLayer(pulumi.ComponentResource):
    def __init__(
        self,
        target: Target,
        topology: Topology,
        kafka: Kafka,
        mesh: pulumi.Output,
        stack_name: Callable[[str], str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        name = f"{target.region.id}-kafka"
        super().__init__("rtdi:kafka:Kafka", name, None, opts)
        self.target, self.topology, self.kafka = target, topology, kafka
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

        # What other regions' stacks published about their managed regional clusters.
        self.remote: dict[str, pulumi.Output] = {}
        for flow in self.flows:
            if flow.source != region.id and self.engines[flow.source]["regional"].published:
                ref = pulumi.StackReference(
                    stack_name(flow.source), opts=pulumi.ResourceOptions(parent=self)
                )
                self.remote[flow.source] = ref.get_output(EXPORT)

        if mirrored:
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
                for f in mirrored
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
                for f in mirrored
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
        if replicated:
            from infra.components.kafka.msk import MskReplicator

            for flow in replicated:
                source = (
                    self._local_export() if flow.source == region.id else self.remote[flow.source]
                )
                MskReplicator(
                    f"{name}-replicator-{flow.source}",
                    target,
                    flow,
                    source,
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
        self.register_outputs({"sources": [f.source for f in self.flows]})

    def client(self, role: str) -> KafkaClient:
        """How this region's workloads (Flink, Pinot...) reach its ``role`` cluster, any engine."""
        if role not in ROLES:
            raise ValueError(f"no Kafka cluster role {role!r}; roles: {', '.join(ROLES)}")
        return self.engines[self.target.region.id][role].client(self.clusters[role], role)

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
                addresses[f"{region_id}/regional"] = self.remote[region_id].apply(
                    lambda r: r["bootstrap"]
                )
        return (
            pulumi.Output.all(**addresses).apply(lambda found: _fill(static, found))
            if addresses
            else pulumi.Output.from_input(static)
        )


def _fill(registry: dict, addresses: dict) -> dict:
    out = json.loads(json.dumps(registry))
    for topic in out["topics"].values():
        for region_id, entry in topic["regions"].items():
            if f"{region_id}/regional" in addresses:
                entry["produce"]["bootstrap"] = entry["produce"]["crossRegionBootstrap"] = (
                    addresses[f"{region_id}/regional"]
                )
            if f"{region_id}/aggregate" in addresses:
                entry["consume"]["bootstrap"] = addresses[f"{region_id}/aggregate"]
    return out
