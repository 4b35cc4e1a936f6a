"""The Kafka layer of one region (paper 4.1 and 6): regional and aggregate clusters, the flows
from every region into the aggregate, topics as code, and the federation registry."""
from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from infra.components.kafka.flows import NAMESPACE, federation_registry, flows_into, regional_topics
from infra.components.kafka.strimzi import (
    MirrorMaker2,
    StrimziCluster,
    StrimziOperator,
    federation_config_map,
    kafka_topics,
    mesh_ca_secrets,
    mirror_users,
)
from infra.targets.base import Target
from infra.topology.model import Kafka, Topology


class KafkaLayer(pulumi.ComponentResource):
    def __init__(self, target: Target, topology: Topology, kafka: Kafka, mesh: pulumi.Output,
                 opts: Optional[pulumi.ResourceOptions] = None):
        name = f"{target.region.id}-kafka"
        super().__init__("rtdi:kafka:Kafka", name, None, opts)
        region = target.region
        ns = k8s.core.v1.Namespace(name, metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=target.labels),
                                   opts=target.k8s_opts(self))
        operator = StrimziOperator(f"{name}-strimzi", target, ns, opts=pulumi.ResourceOptions(parent=self))
        ready = [ns, operator]
        secrets = mesh_ca_secrets(name, target, mesh, self, [ns])
        self.clusters = {
            role: StrimziCluster(f"{name}-{role}", role, getattr(region.kafka, role), kafka, target, ready + secrets,
                                 opts=pulumi.ResourceOptions(parent=self))
            for role in ("regional", "aggregate")
        }
        users = mirror_users(name, target, mesh, topology.region_ids, self, ready + [self.clusters["regional"], self.clusters["aggregate"]])
        kafka_topics(name, target, kafka, regional_topics(kafka, region), self, ready + [self.clusters["regional"]])
        self.flows = flows_into(topology, kafka, region)
        MirrorMaker2(f"{name}-mirror", target, kafka, self.flows, ready + users + [self.clusters["aggregate"]],
                     opts=pulumi.ResourceOptions(parent=self))
        self.registry = federation_registry(topology, kafka)
        federation_config_map(name, target, self.registry, self, [ns])
        self.register_outputs({"sources": [f.source for f in self.flows]})
