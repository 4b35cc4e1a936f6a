"""The Pulumi program: the global stack publishes the topology, each regional stack builds a region.

``infra/__main__.py`` runs `main` under ``pulumi up``; ``rtdi plan`` runs the very same function
under the SDK's mock engine. Nothing here knows which cloud it is on; `make_target` decides.
"""

from __future__ import annotations

from typing import Any

import pulumi

from infra.components.kafka import EXPORT as KAFKA_REGIONAL_EXPORT
from infra.components.kafka import KafkaLayer
from infra.components.kafka.flows import federation_registry
from infra.components.kafka.mesh import EXPORT as MESH_EXPORT
from infra.components.kafka.mesh import KafkaMesh
from infra.targets import make_target
from infra.topology.config import from_engine, parse_global, parse_regional
from infra.topology.errors import ConfigError, Issue
from infra.topology.model import GlobalStack, Kafka, RegionalBase, Topology

# The global stack's single output that regional stacks read.
EXPORT = "rtdi"


def default_global_stack() -> str:
    return regional_stack_name("global")


def regional_stack_name(stack: str) -> str:
    """Regional stacks are named after their region id (`aws-us-east-1`), in this project, org."""
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{stack}"


async def main() -> None:
    cfg = from_engine(pulumi.get_stack())
    try:
        if cfg.is_global:
            global_stack(parse_global(cfg))
            return
        regional = parse_regional(cfg, None)
        ref = pulumi.StackReference(regional.global_stack or default_global_stack())
        published = (await ref.get_output_details(EXPORT)).value
        if not published:
            raise ConfigError(
                [_no_topology(cfg.file, regional.global_stack or default_global_stack())]
            )
        topology = Topology.model_validate(published["topology"])
        kafka = Kafka.model_validate(published["kafka"])
        regional_stack(parse_regional(cfg, topology), topology, kafka, ref.get_output(MESH_EXPORT))
    except ConfigError as exc:
        # Pulumi prints a RunError as its message alone, with no traceback.
        raise pulumi.RunError(str(exc)) from None


def _no_topology(file: str, name: str) -> Issue:
    return Issue(
        file,
        "rtdi:globalStack",
        f"stack {name} exports no `{EXPORT}` output; run `pulumi up` on the global stack first",
        name,
    )


def global_stack(model: GlobalStack) -> None:
    mesh = KafkaMesh("kafka-mesh", model.topology)
    pulumi.export(EXPORT, published_topology(model))
    pulumi.export(MESH_EXPORT, mesh.published)
    pulumi.export("primaryRegion", model.topology.primary)
    pulumi.export("kafkaFederation", federation_registry(model.topology, model.kafka))


def published_topology(model: GlobalStack) -> dict[str, Any]:
    """What regional stacks read from the global stack: the validated topology, with defaults."""
    return {
        "topology": model.topology.model_dump(mode="json", by_alias=True, exclude_none=True),
        "kafka": model.kafka.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def regional_stack(
    stack: RegionalBase, topology: Topology, kafka: Kafka, mesh: pulumi.Output
) -> KafkaLayer:
    """Build one region; the Kafka layer is returned so later layers (and tests) can ask it."""
    target = make_target(stack, topology)
    archive = target.bucket("archive")
    kafka_layer = KafkaLayer(target, topology, kafka, mesh, stack_name=regional_stack_name)
    target.finish({"zones": target.zones, "storageClass": target.storage_class})
    pulumi.export("region", target.region.id)
    pulumi.export("cloud", target.region.cloud)
    pulumi.export("primary", target.region.id == topology.primary)
    pulumi.export("kubernetesCluster", target.cluster_name)
    pulumi.export("buckets", {p: b.uri for p, b in target.buckets.items()})
    pulumi.export("archive", archive.uri)
    pulumi.export("kafkaSources", [f.source for f in kafka_layer.flows])
    pulumi.export(KAFKA_REGIONAL_EXPORT, kafka_layer.exported)
    pulumi.export("kafkaFederation", kafka_layer.registry)
    return kafka_layer
