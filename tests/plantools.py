"""Helpers the tests share: run programs under the offline planner and read what they declared.

Everything here goes through `infra.plan.engine.run_stack`, the project's wrapper around the
Pulumi SDK's mock engine, so tests assert on exactly what a `pulumi up` would register.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import MockResourceArgs

from infra.plan.engine import Declared, StackPlan, run_stack
from infra.plan.mocks import PlanMocks
from infra.topology.config import (
    NAMESPACE,
    StackConfig,
    parse_regional,
    read_stack_file,
    stack_file,
)
from infra.topology.model import Topology

ROOT = Path(__file__).resolve().parent.parent
STACKS = ROOT / "stacks"
SHARED = ROOT.parent / "shared"
STACK_NAMES = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in STACKS.glob("Pulumi.*.yaml"))

# Resource types that never belong to a region component.
ROOT_TYPES = {"pulumi:pulumi:Stack", "pulumi:pulumi:StackReference"}


# --------------------------------------------------------------------------- ../shared


def require_shared(path: Path = SHARED, env: dict | None = None) -> Path:
    """``path`` if it exists; otherwise skip (a user's clone) or fail (CI, where it must exist)."""
    env = os.environ if env is None else env
    if path.is_dir():
        return path
    if env.get("CI"):
        pytest.fail(
            f"{path} is missing but CI is set: CI must provide the shared reference data",
            pytrace=False,
        )
    pytest.skip(
        f"{path} is absent (a user's own clone); these checks need the shared reference data"
    )


# --------------------------------------------------------------------------- configs


def config(stack: str, values: dict[str, Any], secret_keys: Iterable[str] = ()) -> StackConfig:
    """A StackConfig as the engine would pass it: ``rtdi:`` keys, strings, structures as JSON."""
    flat = {}
    for key, value in values.items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        flat[full] = value if isinstance(value, str) else json.dumps(value)
    secrets = {k if ":" in k else f"{NAMESPACE}:{k}" for k in secret_keys}
    return StackConfig(stack=stack, file=stack_file(stack), values=flat, secret_keys=secrets)


def sample_config(stack: str) -> StackConfig:
    path = STACKS / f"Pulumi.{stack}.yaml"
    return read_stack_file(path, f"stacks/{path.name}")


def run_program(
    cfg: StackConfig, body: Callable[[Any, Topology], None], topology: Topology
) -> StackPlan:
    """Run a small program that reads and validates ``cfg`` like the real one, then calls
    ``body(model, topology)``."""
    from infra.topology.config import from_engine

    async def program() -> None:
        body(parse_regional(from_engine(pulumi.get_stack()), topology), topology)

    return run_stack(cfg, program, {})


def target_only(stack, topology) -> None:
    """The region alone: its target and the archive bucket, as `regional_stack` builds them."""
    from infra.targets import make_target

    target = make_target(stack, topology)
    archive = target.bucket("archive")
    target.finish({})
    pulumi.export("storageClass", target.storage_class)
    pulumi.export("kubernetesCluster", target.cluster_name)
    pulumi.export("archive", archive.uri)


class Workload(pulumi.ComponentResource):
    """Stands in for a component (Flink, Pinot...) that asks its target for storage access."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions):
        super().__init__("test:index:Workload", name, None, opts)


WORKLOAD = "flink"
NAMESPACE_WL = "flink"
SERVICE_ACCOUNT = "flink-runner"
GRANTED = ("flink-state", "archive")


def workload(stack, topology) -> None:
    """Every bucket purpose, and a ServiceAccount's workload identity that may use two of them."""
    import pulumi_kubernetes as k8s

    from infra.targets import make_target
    from infra.targets.base import BUCKET_PURPOSES

    target = make_target(stack, topology)
    buckets = {p: target.bucket(p) for p in BUCKET_PURPOSES}
    name = f"{target.name}-{WORKLOAD}"
    owner = Workload(name, pulumi.ResourceOptions(parent=target))
    wi = target.workload_identity(
        name, NAMESPACE_WL, SERVICE_ACCOUNT, [buckets[p] for p in GRANTED], parent=owner
    )
    k8s.core.v1.ServiceAccount(
        f"{target.name}-{WORKLOAD}-sa",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=wi.service_account, namespace=wi.namespace, annotations=wi.annotations
        ),
        opts=target.k8s_opts(owner),
    )
    target.finish({})
    pulumi.export(
        "identity",
        {
            "serviceAccount": wi.service_account,
            "namespace": wi.namespace,
            "env": wi.env,
            "volumes": wi.volumes,
            "volumeMounts": wi.volume_mounts,
        },
    )
    pulumi.export("buckets", {p: b.uri for p, b in buckets.items()})
    pulumi.export("storageClass", target.storage_class)


# --------------------------------------------------------------------------- reading a plan


def one(plan: StackPlan, type_: str, name: str | None = None) -> Declared:
    found = [r for r in plan.of_type(type_) if name is None or r.name == name]
    assert len(found) == 1, (
        f"expected one {type_} {name or ''} in {plan.stack}, found {[r.name for r in found]}"
    )
    return found[0]


def provider_of(plan: StackPlan, r: Declared) -> Declared:
    """The provider resource a resource names (references are ``<provider urn>::<provider id>``)."""
    assert r.provider, f"{r.type} {r.name} has no explicit provider"
    urn = r.provider.rsplit("::", 1)[0]
    assert urn in plan.registered, f"{r.name} names provider {urn}, which the plan never declared"
    return plan.registered[urn]


def region_component(plan: StackPlan, region_id: str) -> Declared:
    found = [
        r
        for r in plan.resources
        if r.type.startswith("rtdi:") and r.type.endswith(":Region") and r.name == region_id
    ]
    assert len(found) == 1, f"expected one region component {region_id} in {plan.stack}"
    return found[0]


def mock_state(type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The id and state the plan's mocks give a resource (what its ``.id``/``.arn`` resolve to)."""
    return PlanMocks({}).new_resource(MockResourceArgs(type_, name, inputs, "", "", True))


def mock_id(r: Declared) -> str:
    return mock_state(r.type, r.name, r.inputs)[0]


def mock_output(r: Declared, key: str) -> Any:
    return mock_state(r.type, r.name, r.inputs)[1][key]


def plan_text(plan: StackPlan) -> str:
    return json.dumps([r.as_json() for r in plan.resources]) + json.dumps(plan.outputs)


def assert_owned_by_region(plan: StackPlan, region_id: str, owners: Iterable[str] = ()) -> None:
    """What the target declares hangs off the region component and carries the region id in its
    name.

    Cloud resources and providers are children of the region component itself, or of an ``owners``
    component (by name) that asked the target for them and is itself under the region.
    """
    region = region_component(plan, region_id)
    owner_urns = {r.urn for r in plan.resources if r.name in set(owners)}
    assert len(owner_urns) == len(set(owners))
    under = [r for r in plan.resources if region.urn in ancestors(plan, r)]
    assert under, f"nothing is declared under region {region_id}"
    for r in under:
        assert r.name.startswith(f"{region_id}-"), (
            f"{r.type} {r.name} is not prefixed with {region_id}-"
        )
    for urn in owner_urns:
        assert region.urn in ancestors(plan, plan.registered[urn])
    for r in plan.resources:
        if r.type.split(":")[0] in ("aws", "gcp") or r.type.startswith("pulumi:providers:"):
            assert r.parent == region.urn or r.parent in owner_urns, (
                f"{r.type} {r.name} is parented to {r.parent}, not to region {region_id}"
            )


def assert_named_after_region(plan: StackPlan, region_id: str) -> None:
    """Every resource except the stack and its references starts with the region id."""
    named = [r for r in plan.resources if r.type not in ROOT_TYPES]
    assert named
    bad = [
        f"{r.type} {r.name}"
        for r in named
        if not r.name.startswith(f"{region_id}-") and r.name != region_id
    ]
    assert bad == [], f"not prefixed with {region_id}-"


def assert_explicit_providers(
    plan: StackPlan, package: str, expect: dict[str, Any], region_id: str
) -> int:
    """Every ``package:`` resource names a ``pulumi:providers:package`` declared under the region
    with ``expect`` inputs."""
    region = region_component(plan, region_id)
    checked = 0
    for r in plan.resources:
        if not r.type.startswith(f"{package}:"):
            continue
        p = provider_of(plan, r)
        assert p.type == f"pulumi:providers:{package}", f"{r.name} uses a {p.type} provider"
        assert p.parent == region.urn, f"provider {p.name} of {r.name} is not the region's"
        for key, value in expect.items():
            assert p.inputs.get(key) == value, (
                f"provider {p.name} of {r.name}: {key}={p.inputs.get(key)!r}, expected {value!r}"
            )
        checked += 1
    return checked


def amend(cfg: StackConfig, key: str, changes: dict[str, Any]) -> StackConfig:
    """A copy of ``cfg`` whose structured ``rtdi:<key>`` value has ``changes`` merged in."""
    full = key if ":" in key else f"{NAMESPACE}:{key}"
    values = dict(cfg.values)
    values[full] = json.dumps({**json.loads(values.get(full, "{}")), **changes})
    return StackConfig(
        stack=cfg.stack, file=cfg.file, values=values, secret_keys=set(cfg.secret_keys)
    )


def ancestors(plan: StackPlan, r: Declared) -> list[str]:
    chain, parent = [], r.parent
    while parent:
        chain.append(parent)
        parent = plan.registered[parent].parent if parent in plan.registered else None
    return chain


def kubeconfig_of(plan: StackPlan, r: Declared) -> dict[str, Any]:
    """The kubeconfig of the Kubernetes provider ``r`` is declared with."""
    p = provider_of(plan, r)
    assert p.type == "pulumi:providers:kubernetes"
    return json.loads(p.inputs["kubeconfig"])


def assert_k8s_on_region_provider(plan: StackPlan, region_id: str) -> Declared:
    """Every Kubernetes resource goes to the region's cluster through its one provider."""
    region = region_component(plan, region_id)
    providers = plan.of_type("pulumi:providers:kubernetes")
    assert [p.name for p in providers] == [f"{region_id}-k8s"]
    (k8s_provider,) = providers
    assert k8s_provider.parent == region.urn
    objects = [r for r in plan.resources if r.type.startswith("kubernetes:")]
    assert objects
    for r in objects:
        assert provider_of(plan, r).urn == k8s_provider.urn, (
            f"{r.type} {r.name} does not use {region_id}-k8s"
        )
    return k8s_provider


S3_READ_WRITE = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


def s3_rights(plan: StackPlan, stack: str, workload: str) -> dict[str, set[str]]:
    """Bucket purpose -> the S3 object actions ``workload``'s IRSA policy allows on it."""
    policy = one(plan, "aws:iam/rolePolicy:RolePolicy", f"{stack}-{workload}-irsa")
    rights: dict[str, set[str]] = {}
    for s in json.loads(policy.inputs["policy"])["Statement"]:
        for res in s["Resource"]:
            if res.startswith("arn:aws:s3:::") and res.endswith("/*"):
                purpose = res.removesuffix("/*").rsplit(f"{stack}-", 1)[1]
                rights.setdefault(purpose, set()).update(s["Action"])
    return rights
