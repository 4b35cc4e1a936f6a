"""Kafka engines are objects: nothing outside the engine registry branches on an engine's name,
and later layers reach a region's Kafka through `KafkaLayer.client` whatever its engine."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pulumi
import pytest

from infra.components.kafka import engines as engines_module
from infra.components.kafka import peer_regions
from infra.components.kafka.engines import ENGINES
from infra.peers import StackOutputs
from infra.plan.engine import run_stack
from infra.program import regional_stack
from infra.topology.config import from_engine, parse_regional
from infra.topology.model import Kafka, KafkaEngine, Topology
from plantools import sample_config

ROOT = Path(__file__).resolve().parent.parent
KAFKA = ROOT / "infra" / "components" / "kafka"
REGISTRY = Path(engines_module.__file__).resolve()
# Every Kafka component module but the registry, where engine names live, and the program that
# composes a region (which compared engines before too).
SCANNED = [
    *(p for p in sorted(KAFKA.glob("*.py")) if p.resolve() != REGISTRY),
    ROOT / "infra" / "program.py",
]


def engine_name_branches(source: str) -> list[str]:
    """Engine names used to decide: compared (==, !=, in), dispatched on (dict keys) or matched."""
    names = set(ENGINES)
    found = []

    def literal_names(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Constant) and node.value in names:
            return {node.value}
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return {n for e in node.elts for n in literal_names(e)}
        return set()

    for node in ast.walk(ast.parse(source)):
        used: set[str] = set()
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                used |= literal_names(operand)
        elif isinstance(node, ast.Dict):
            used = {n for k in node.keys if k is not None for n in literal_names(k)}
        elif isinstance(node, ast.MatchValue):
            used = literal_names(node.value)
        found += [f"line {node.lineno}: {name!r}" for name in sorted(used)]
    return found


def test_the_scanner_sees_engine_comparisons():
    """The check below can fail: each way of branching on an engine name is caught."""
    assert engine_name_branches("x = e == 'msk'") == ["line 1: 'msk'"]
    assert engine_name_branches("x = e in ('strimzi', 'gcp-managed')") == [
        "line 1: 'gcp-managed'",
        "line 1: 'strimzi'",
    ]
    assert engine_name_branches("x = {'msk': 1}[e]") == ["line 1: 'msk'"]
    assert engine_name_branches("match e:\n    case 'strimzi': pass") == ["line 2: 'strimzi'"]
    # Naming a Helm release or namespace `strimzi` is not a decision about an engine.
    assert engine_name_branches("ns = Namespace(name='strimzi')") == []


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.name)
def test_only_the_engine_registry_compares_engine_names(path):
    assert engine_name_branches(path.read_text()) == []


def test_the_scan_covers_the_layer_and_skips_only_the_registry():
    names = {p.name for p in SCANNED}
    assert {"__init__.py", "flows.py", "msk.py", "strimzi.py", "program.py"} <= names
    assert "engines.py" not in names


def test_the_registry_has_one_object_per_engine_the_topology_allows():
    assert set(ENGINES) == set(get_args(KafkaEngine))
    assert all(e.name == name for name, e in ENGINES.items())


# ------------------------------------------------------------------ clients for later layers


def _absent(topology: Topology, kafka: Kafka, region_id: str) -> dict[str, StackOutputs]:
    """Every peer stack missing: a client does not depend on what peers publish."""
    return {r: StackOutputs(r, exists=False) for r in peer_regions(topology, kafka, region_id)}


def _clients(stack: str, plans) -> dict:
    """Plan ``stack`` with a program that builds the region and exports what clients see."""
    published = plans["global"].values["rtdi"]
    topology = Topology.model_validate(published["topology"])
    kafka = Kafka.model_validate(published["kafka"])
    mesh = plans["global"].values["kafkaMesh"]

    async def program() -> None:
        model = parse_regional(from_engine(pulumi.get_stack()), topology)
        layer = regional_stack(
            model,
            topology,
            kafka,
            pulumi.Output.secret(mesh),
            _absent(topology, kafka, model.region),
        )
        for role in ("regional", "aggregate"):
            client = layer.client(role)
            pulumi.export(
                f"client-{role}",
                {
                    "engine": client.engine,
                    "trust": client.trust_secret,
                    "mechanism": client.mechanism,
                    "properties": client.properties(),
                },
            )

    return run_stack(sample_config(stack), program, {"global": plans["global"].values}).outputs


def _region_engine(plans, stack: str, role: str) -> str:
    topology = Topology.model_validate(plans["global"].values["rtdi"]["topology"])
    return getattr(topology.region(stack).kafka, role).engine


# One sample stack per engine and role: Strimzi in aws-us-east-1, MSK in aws-eu-west-1, GCP
# Managed Kafka as gcp-europe-west4's regional cluster.
CASES = [
    ("aws-us-east-1", "regional", "strimzi"),
    ("aws-us-east-1", "aggregate", "strimzi"),
    ("aws-eu-west-1", "regional", "msk"),
    ("aws-eu-west-1", "aggregate", "msk"),
    ("gcp-europe-west4", "regional", "gcp-managed"),
]


@pytest.mark.parametrize(("stack", "role", "kind"), CASES)
def test_a_later_layer_reaches_kafka_without_knowing_the_engine(plans, stack, role, kind):
    assert _region_engine(plans, stack, role) == kind
    client = _clients(stack, plans)[f"client-{role}"]
    assert client["engine"] == kind
    props = client["properties"]
    if kind == "strimzi":
        assert props == {
            "bootstrap.servers": f"{role}-kafka-bootstrap.kafka.svc:9093",
            "security.protocol": "SSL",
        }
        assert (client["trust"], client["mechanism"]) == ("rtdi-kafka-mesh-ca", "tls")
    elif kind == "msk":
        assert props["bootstrap.servers"].endswith(".kafka.amazonaws.com:9096")
        assert f"acme-rtdi-aws-eu-west-1-{role}" in props["bootstrap.servers"]
        assert (props["security.protocol"], props["sasl.mechanism"]) == (
            "SASL_SSL",
            "SCRAM-SHA-512",
        )
        assert "trust" not in client  # the JVM's public trust store (outputs drop None)
    else:
        assert props["bootstrap.servers"].startswith(
            "bootstrap.acme-rtdi-regional.europe-west4.managedkafka."
        )
        assert (props["security.protocol"], props["sasl.mechanism"]) == ("SASL_SSL", "PLAIN")
        assert "trust" not in client  # the JVM's public trust store (outputs drop None)


def test_a_role_that_does_not_exist_is_refused(plans):
    with pytest.raises(Exception, match="no Kafka cluster role 'raw'"):
        published = plans["global"].values["rtdi"]
        topology = Topology.model_validate(published["topology"])
        kafka = Kafka.model_validate(published["kafka"])

        async def program() -> None:
            model = parse_regional(from_engine(pulumi.get_stack()), topology)
            mesh = pulumi.Output.secret(plans["global"].values["kafkaMesh"])
            regional_stack(
                model, topology, kafka, mesh, _absent(topology, kafka, model.region)
            ).client("raw")

        run_stack(sample_config("onprem-dc1"), program, {"global": plans["global"].values})
