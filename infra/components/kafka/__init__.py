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
from infra.components.kafka.flows import (
    NAMESPACE,
    cross_region_bootstrap,
    federation_registry,
    flows_into,
    regional_topics,
)
from infra.components.kafka.mirror import MirrorMaker2
from infra.components.kafka.strimzi import (
    StrimziCluster,
    StrimziOperator,
    mesh_ca_secrets,
    password_secret,
)
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
        engines = {
            r.id: (r.kafka.regional.engine, r.kafka.aggregate.engine) for r in topology.regions
        }
        regional_engine, aggregate_engine = engines[region.id]
        self.flows = flows_into(topology, kafka, region)
        replicated = [
            f for f in self.flows if aggregate_engine == "msk" and engines[f.source][0] == "msk"
        ]
        mirrored = [f for f in self.flows if f not in replicated]

        ns = k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=target.labels),
            opts=target.k8s_opts(self),
        )
        ready: list[pulumi.Resource] = [ns]
        strimzi_roles = [
            role
            for role, engine in (("regional", regional_engine), ("aggregate", aggregate_engine))
            if engine == "strimzi"
        ]
        if strimzi_roles or mirrored:
            ready.append(
                StrimziOperator(
                    f"{name}-strimzi", target, ns, opts=pulumi.ResourceOptions(parent=self)
                )
            )
            ready += mesh_ca_secrets(name, target, mesh, strimzi_roles, self, [ns])

        passwords = mesh.apply(lambda m: m["mirrorPasswords"])
        maker_passwords = mesh.apply(lambda m: m["mirrorMakerPasswords"])
        self.clusters = {
            "regional": self._cluster(
                "regional", regional_engine, passwords.apply(lambda p: p[region.id]), ready
            ),
            "aggregate": self._cluster(
                "aggregate", aggregate_engine, maker_passwords.apply(lambda p: p[region.id]), ready
            ),
        }
        users = [
            u
            for c in self.clusters.values()
            if isinstance(c, StrimziCluster)
            for u in c.create_users()
        ]
        self.clusters["regional"].create_topics(kafka, regional_topics(kafka, region))

        # What other regions' stacks published about their managed regional clusters.
        self.remote: dict[str, pulumi.Output] = {}
        for flow in self.flows:
            if flow.source != region.id and engines[flow.source][0] != "strimzi":
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
                    self._source_password(f.source, passwords),
                    self,
                    [ns],
                )
                for f in mirrored
            ]
            if aggregate_engine != "strimzi":
                secrets.append(
                    password_secret(
                        f"{name}-mirror-maker",
                        target,
                        ep.MIRROR_MAKER_SECRET,
                        self.clusters["aggregate"].password
                        if aggregate_engine == "gcp-managed"
                        else maker_passwords.apply(lambda p: p[region.id]),
                        self,
                        [ns],
                    )
                )
            sources = [(f, self._source_endpoint(f.source, engines[f.source][0])) for f in mirrored]
            MirrorMaker2(
                f"{name}-mirror",
                target,
                kafka,
                self._target_endpoint(aggregate_engine),
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

        self.registry = self._registry(engines)
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

    # ------------------------------------------------------------------ engines

    def _cluster(self, role: str, engine: str, password: pulumi.Output, ready: list):
        spec = getattr(self.target.region.kafka, role)
        name = f"{self.target.region.id}-kafka-{role}"
        opts = pulumi.ResourceOptions(parent=self)
        if engine == "msk":
            from infra.components.kafka.msk import MskCluster

            user = ep.MIRROR_USER if role == "regional" else ep.MIRROR_MAKER_USER
            return MskCluster(
                name, role, spec, self.kafka, self.target, {user: password}, opts=opts
            )
        if engine == "gcp-managed":
            from infra.components.kafka.gcp_managed import ManagedKafkaCluster

            user = ep.MIRROR_USER if role == "regional" else ep.MIRROR_MAKER_USER
            return ManagedKafkaCluster(name, role, spec, self.kafka, self.target, user, opts=opts)
        return StrimziCluster(name, role, spec, self.kafka, self.target, ready, opts=opts)

    def _local_export(self) -> pulumi.Output:
        """What other regions need to read this region's regional cluster (see module doc)."""
        c = self.clusters["regional"]
        engine = self.target.region.kafka.regional.engine
        if engine == "msk":
            return pulumi.Output.all(
                c.cluster.arn, c.bootstrap, c.security_group.id, c.subnet_ids
            ).apply(
                lambda a: {
                    "engine": engine,
                    "arn": a[0],
                    "bootstrap": a[1],
                    "securityGroupIds": [a[2]],
                    "subnetIds": a[3],
                    "username": ep.MIRROR_USER,
                }
            )
        if engine == "gcp-managed":
            return pulumi.Output.secret(
                pulumi.Output.all(c.bootstrap, c.username, c.password).apply(
                    lambda a: {
                        "engine": engine,
                        "bootstrap": a[0],
                        "username": a[1],
                        "password": a[2],
                    }
                )
            )
        return pulumi.Output.from_input(
            {
                "engine": engine,
                "bootstrap": cross_region_bootstrap(self.kafka, self.target.region.id),
                "username": ep.MIRROR_USER,
            }
        )

    def _source_password(self, source: str, passwords: pulumi.Output) -> pulumi.Output:
        engine = next(r.kafka.regional.engine for r in self.topology.regions if r.id == source)
        if engine != "gcp-managed":
            return passwords.apply(lambda p: p[source])
        if source == self.target.region.id:
            return self.clusters["regional"].password
        return self.remote[source].apply(lambda r: r["password"])

    def _source_endpoint(self, source: str, engine: str) -> ep.Endpoint:
        local = source == self.target.region.id
        if engine == "strimzi":
            return ep.strimzi_source(source, local, cross_region_bootstrap(self.kafka, source))
        bootstrap = (
            self.clusters["regional"].bootstrap
            if local
            else self.remote[source].apply(lambda r: r["bootstrap"])
        )
        if engine == "msk":
            return ep.Endpoint(
                engine,
                bootstrap,
                ep.PUBLIC_TRUST,
                ep.scram(ep.MIRROR_USER, ep.mirror_secret(source)),
            )
        username = (
            self.clusters["regional"].username
            if local
            else self.remote[source].apply(lambda r: r["username"])
        )
        return ep.Endpoint(
            engine, bootstrap, ep.PUBLIC_TRUST, _plain(username, ep.mirror_secret(source))
        )

    def _target_endpoint(self, engine: str) -> ep.Endpoint:
        aggregate = self.clusters["aggregate"]
        if engine == "strimzi":
            return ep.strimzi_target()
        if engine == "msk":
            return ep.Endpoint(
                engine,
                aggregate.bootstrap,
                ep.PUBLIC_TRUST,
                ep.scram(ep.MIRROR_MAKER_USER, ep.MIRROR_MAKER_SECRET),
            )
        return ep.Endpoint(
            engine,
            aggregate.bootstrap,
            ep.PUBLIC_TRUST,
            _plain(aggregate.username, ep.MIRROR_MAKER_SECRET),
        )

    # ------------------------------------------------------------------ registry

    def _registry(self, engines: dict) -> pulumi.Output:
        """The static registry, with every managed cluster's address filled in from its stack."""
        static = federation_registry(self.topology, self.kafka)
        addresses: dict[str, pulumi.Input[str]] = {}
        for region_id, (regional, aggregate) in engines.items():
            if region_id == self.target.region.id:
                for role, engine in (("regional", regional), ("aggregate", aggregate)):
                    if engine != "strimzi":
                        addresses[f"{region_id}/{role}"] = self.clusters[role].bootstrap
            elif regional != "strimzi" and region_id in self.remote:
                addresses[f"{region_id}/regional"] = self.remote[region_id].apply(
                    lambda r: r["bootstrap"]
                )
        return (
            pulumi.Output.all(**addresses).apply(lambda found: _fill(static, found))
            if addresses
            else pulumi.Output.from_input(static)
        )


def _plain(user: pulumi.Input[str], secret: str) -> pulumi.Output:
    return pulumi.Output.from_input(user).apply(lambda u: ep.plain(u, secret))


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
