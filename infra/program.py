"""The Pulumi program: the global stack publishes the topology, each regional stack builds a region.

``__main__.py`` (the project root) runs `main` under ``pulumi up``; ``rtdi plan`` runs the very
same function under the SDK's mock engine. Nothing here knows which cloud it is on;
`make_target` decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pulumi

from infra.components.flink import FlinkLayer, FlinkLayerArgs
from infra.components.flink.archive import archive_tables, expirations
from infra.components.kafka import EXPORT as KAFKA_REGIONAL_EXPORT
from infra.components.kafka import SECRETS_EXPORT as KAFKA_REGIONAL_SECRETS
from infra.components.kafka import KafkaLayer, peer_regions
from infra.components.kafka.flows import federation_registry
from infra.components.kafka.mesh import EXPORT as MESH_EXPORT
from infra.components.kafka.mesh import KafkaMesh
from infra.components.kafka.offset_sync import OffsetSync
from infra.components.pinot import PinotLayer, PinotLayerArgs
from infra.components.query import QueryLayer, QueryLayerArgs
from infra.peers import StackOutputs, read_stack_outputs
from infra.targets import make_target
from infra.topology.config import from_engine, parse_global, parse_regional, stack_file
from infra.topology.errors import ConfigError, Issue
from infra.topology.jobs import Job, check_backfills, load_jobs, retention_issues
from infra.topology.model import GlobalStack, Kafka, RegionalBase, Topology
from infra.topology.pinot import PinotTable, load_tables

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
        global_name = regional.global_stack or default_global_stack()
        # Read like every peer (infra/peers.py), so that a missing global stack is one clear line
        # instead of a failed StackReference. It cannot be pending: without the topology there
        # is nothing to build.
        published = await read_stack_outputs(global_name)
        if published.missing(EXPORT) or published.missing(MESH_EXPORT):
            raise ConfigError([_no_topology(cfg.file, global_name, published)])
        if not _mesh_readable(published.values[MESH_EXPORT]):
            raise ConfigError([_undecryptable_mesh(cfg.file, global_name)])
        # Now that it exists, a StackReference cannot fail: it records the read in the stack,
        # where the policy pack finds the topology, and carries the mesh's secrecy as the engine
        # keeps it.
        ref = pulumi.StackReference(global_name)
        topology = Topology.model_validate(published.values[EXPORT]["topology"])
        kafka = Kafka.model_validate(published.values[EXPORT]["kafka"])
        # Published by the global stack (see infra/topology/jobs.py); an older global stack
        # without jobs runs none.
        jobs = [Job.model_validate(j) for j in published.values[EXPORT].get("flinkJobs", [])]
        # Likewise the Pinot tables (infra/topology/pinot.py); an older global stack has none.
        tables = [
            PinotTable.model_validate(t) for t in published.values[EXPORT].get("pinotTables", [])
        ]
        model = parse_regional(cfg, topology)
        backfill_issues(cfg.file, model, jobs, topology, kafka)
        peers = {
            region_id: await read_stack_outputs(regional_stack_name(region_id))
            for region_id in peer_regions(topology, kafka, model.region)
        }
        regional_stack(model, topology, kafka, ref.get_output(MESH_EXPORT), peers, jobs, tables)
    except ConfigError as exc:
        # Pulumi prints a RunError as its message alone, with no traceback.
        raise pulumi.RunError(str(exc)) from None


def backfill_issues(
    file: str, model: RegionalBase, jobs: Sequence[Job], topology: Topology, kafka: Kafka
) -> None:
    """Refuse the region's `rtdi:backfills` that the published jobs do not allow, before
    anything is declared (the offline plan runs the same check, infra/plan/project.py)."""
    found = check_backfills(
        model.backfills, model.region, list(jobs), topology, kafka, datetime.now(UTC)
    )
    issues = [Issue(file, key, message, value) for key, value, message in found]
    if issues:
        raise ConfigError(issues)
    # Not refused: a finished backfill's entry stays in the stack after its range has expired.
    # `rtdi backfill` refuses a new one whose range its source no longer holds.
    now = datetime.now(UTC)
    for key, value, message in retention_issues(
        model.backfills, model.region, list(jobs), topology, kafka, now
    ):
        pulumi.log.warn(str(Issue(file, key, message, value)))


def _no_topology(file: str, name: str, published: StackOutputs) -> Issue:
    what = "does not exist yet, so it exports" if not published.exists else "exports"
    missing = EXPORT if published.missing(EXPORT) else MESH_EXPORT
    return Issue(
        file,
        "rtdi:globalStack",
        f"stack {name} {what} no `{missing}` output; run `pulumi up` on the global stack first",
        name,
    )


def _mesh_readable(mesh: Any) -> bool:
    """Pulumi hands a reader `{}` for secrets it cannot decrypt (another secrets provider or
    passphrase) and only warns "eliding undecryptable secrets": refuse that here, in words."""
    return isinstance(mesh, dict) and {"caCert", "caKey", "mirrorPasswords"} <= set(mesh)


def _undecryptable_mesh(file: str, name: str) -> Issue:
    return Issue(
        file,
        "rtdi:globalStack",
        f"stack {name}'s secret output `{MESH_EXPORT}` reads as empty: this stack cannot decrypt "
        "it; allowed: every stack with the same secrets provider (the same "
        "PULUMI_CONFIG_PASSPHRASE, or the same --secrets-provider at `pulumi stack init`)",
        name,
    )


def global_stack(model: GlobalStack) -> None:
    mesh = KafkaMesh("kafka-mesh", model.topology)
    pulumi.export(EXPORT, published_topology(model))
    pulumi.export(MESH_EXPORT, mesh.published)
    pulumi.export("primaryRegion", model.topology.primary)
    pulumi.export("kafkaFederation", federation_registry(model.topology, model.kafka))


def published_topology(model: GlobalStack) -> dict[str, Any]:
    """What regional stacks read from the global stack: the validated topology, with defaults,
    and the validated Flink jobs (their SQL inlined) and Pinot tables, so every region builds
    the same set."""
    jobs = load_jobs(model.topology, model.kafka)
    tables = load_tables(model.topology, model.kafka)
    return {
        "topology": model.topology.model_dump(mode="json", by_alias=True, exclude_none=True),
        "kafka": model.kafka.model_dump(mode="json", by_alias=True, exclude_none=True),
        "flinkJobs": [j.model_dump(mode="json", by_alias=True, exclude_none=True) for j in jobs],
        "pinotTables": [
            t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tables
        ],
    }


def regional_stack(
    stack: RegionalBase,
    topology: Topology,
    kafka: Kafka,
    mesh: pulumi.Output,
    peers: Mapping[str, StackOutputs],
    jobs: Sequence[Job] = (),
    tables: Sequence[PinotTable] = (),
) -> KafkaLayer:
    """Build one region; the Kafka layer is returned so later layers (and tests) can ask it."""
    target = make_target(stack, topology)
    # The archive keeps each data class's topics as long as the class says (the bucket's
    # lifecycle; infra/components/flink/archive.py writes it).
    archive = target.bucket(
        "archive",
        expirations(target.region.id, topology, kafka, federation_registry(topology, kafka)),
    )
    kafka_layer = KafkaLayer(target, topology, kafka, mesh, peers)
    flink = FlinkLayer(
        target,
        FlinkLayerArgs(
            jobs=list(jobs),
            topology=topology,
            kafka=kafka,
            registry=kafka_layer.registry,
            access=kafka_layer.access,
            enforces_quotas=kafka_layer.enforces_quotas,
            backfills=stack.backfills,
            handover=stack.flink_handover,
            stack_file=stack_file(stack.region),
        ),
    )
    OffsetSync(
        f"{target.region.id}-offset-sync",
        target,
        topology,
        kafka,
        federation_registry(topology, kafka),
        list(jobs),
        kafka_layer.access,
    )
    pinot = PinotLayer(
        target,
        PinotLayerArgs(
            tables=list(tables),
            topology=topology,
            kafka=kafka,
            access=kafka_layer.access,
            stack_file=stack_file(stack.region),
        ),
    )
    # The query engine over the region's Pinot and archive: tables for exactly the topics the
    # region's aggregate holds (what the archive job writes: infra/components/flink/archive.py).
    query = QueryLayer(
        target,
        QueryLayerArgs(
            engine=target.region.query.engine,
            tables=archive_tables(
                target.region.id,
                topology,
                federation_registry(topology, kafka),
                archive,
            ),
        ),
    )
    target.finish({"zones": target.zones, "storageClass": target.storage_class})
    pulumi.export("region", target.region.id)
    pulumi.export("cloud", target.region.cloud)
    pulumi.export("primary", target.region.id == topology.primary)
    pulumi.export("kubernetesCluster", target.cluster_name)
    pulumi.export("buckets", {p: b.uri for p, b in target.buckets.items()})
    pulumi.export("archive", archive.uri)
    pulumi.export("kafkaSources", [f.source for f in kafka_layer.flows])
    pulumi.export(KAFKA_REGIONAL_EXPORT, kafka_layer.exported)
    pulumi.export(KAFKA_REGIONAL_SECRETS, kafka_layer.exported_secrets)
    pulumi.export("kafkaFederation", kafka_layer.registry)
    # What waits for a peer stack (empty once every flow is complete); see infra/peers.py.
    pulumi.export("pending", kafka_layer.pending_json)
    pulumi.export("flinkJobs", flink.states)
    pulumi.export("pinotTables", pinot.table_names)
    pulumi.export("query", query.exported)
    return kafka_layer
