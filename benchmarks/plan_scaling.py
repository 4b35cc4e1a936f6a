"""How the offline plan scales with the number of regions, against the mock engine's own cost.

Builds synthetic topologies of 1, 4 and 16 regions (aws, gcp and onprem in turn, three zones each)
as in-memory StackConfig objects, plans the global stack and every regional stack with the real
program (`infra.program.main`) under `infra.plan.engine.run_stack`, and prints per size: regions,
stacks, total resources, wall ms and ms per resource. Then it declares N trivial pulumi_aws
resources under the same `run_stack` to show what the SDK's mock engine costs per resource alone.

Run from the repo root:
``.venv/bin/python benchmarks/plan_scaling.py [--sizes 1 4 16] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.plan.engine import StackPlan, run_stack
from infra.topology.config import NAMESPACE, StackConfig, stack_file

TOPOLOGY = "bench"
AWS_GEOS = [
    "us-east",
    "eu-west",
    "ap-south",
    "ca-central",
    "sa-east",
    "us-west",
    "eu-central",
    "ap-northeast",
]
GCP_GEOS = [
    "europe-west",
    "us-central",
    "asia-east",
    "australia-southeast",
    "southamerica-east",
    "us-east",
]


def kafka(jurisdictions: list[str]) -> dict[str, Any]:
    """The sample's topics: one in every region, one only where EU data may live (if any)."""
    classes = {"operational": {"jurisdictions": jurisdictions}}
    topics = [
        {
            "name": "trips",
            "partitions": 24,
            "retentionHours": 72,
            "dataClass": "operational",
            "consumerGroups": [{"name": "eta-service"}, {"name": "surge-pricing"}],
        }
    ]
    if "eu" in jurisdictions:
        classes["personal-eu"] = {"jurisdictions": ["eu"]}
        topics.append({"name": "rider-profiles", "partitions": 12, "dataClass": "personal-eu"})
    return {"dataClasses": classes, "topics": topics}


def _cfg(stack: str, values: dict[str, Any]) -> StackConfig:
    flat = {
        f"{NAMESPACE}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()
    }
    return StackConfig(stack=stack, file=stack_file(stack), values=flat)


def synthetic(n: int) -> tuple[StackConfig, list[StackConfig]]:
    """A global stack with ``n`` regions and one regional stack per region."""
    regions, regional = [], []
    for i in range(n):
        cloud = ("aws", "gcp", "onprem")[i % 3]
        k = i // 3
        jurisdiction = ("us", "eu")[i % 2]
        if cloud == "aws":
            name = f"{AWS_GEOS[k % len(AWS_GEOS)]}-{k // len(AWS_GEOS) + 1}"
            zones = [f"{name}{z}" for z in "abc"]
            values = {
                "cloud": "aws",
                "network": {"mode": "create", "cidr": f"10.{i}.0.0/16"},
                "kubernetes": {"nodesPerZone": 2, "maxNodesPerZone": 6},
            }
        elif cloud == "gcp":
            name = f"{GCP_GEOS[k % len(GCP_GEOS)]}{k // len(GCP_GEOS) + 1}"
            zones = [f"{name}-{z}" for z in "abc"]
            values = {
                "cloud": "gcp",
                "gcpProject": "bench-rtdi-project",
                "kubernetes": {"nodesPerZone": 2},
            }
        else:
            name = f"dc{k + 1}"
            zones = [f"{name}-rack-{z}" for z in "abc"]
            values = {
                "cloud": "onprem",
                "kubernetes": {
                    "kubeconfig": f"~/.kube/{name}.yaml",
                    "context": f"{name}-prod",
                    "storageClass": "local-nvme",
                },
                "objectStore": {
                    "kind": "hdfs",
                    "uri": f"hdfs://namenode.{name}.bench.internal:8020/rtdi",
                },
            }
        regions.append({"cloud": cloud, "name": name, "zones": zones, "jurisdiction": jurisdiction})
        region_id = f"{cloud}-{name}"
        regional.append(_cfg(region_id, {**values, "region": region_id}))
    topology = {
        "name": TOPOLOGY,
        "primary": f"{regions[0]['cloud']}-{regions[0]['name']}",
        "regions": regions,
    }
    jurisdictions = sorted({r["jurisdiction"] for r in regions})
    return _cfg("global", {"topology": topology, "kafka": kafka(jurisdictions)}), regional


def plan_all(global_cfg: StackConfig, regional: list[StackConfig]) -> list[StackPlan]:
    from infra.program import main

    global_plan = run_stack(global_cfg, main, {})
    return [
        global_plan,
        *(run_stack(cfg, main, {"global": global_plan.values}) for cfg in regional),
    ]


def timed(fn, *args) -> tuple[Any, float]:
    gc.collect()
    start = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - start) * 1000


BARE_KINDS = {
    # two inputs, three outputs: about the least a resource can cost
    "narrow": (
        "iam.RolePolicyAttachment",
        lambda aws, i, o: aws.iam.RolePolicyAttachment(
            f"attach-{i}", role="bare", policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess", opts=o
        ),
    ),
    # no inputs but some thirty output properties, each a future the SDK must resolve
    "wide": ("sns.Topic", lambda aws, i, o: aws.sns.Topic(f"topic-{i}", opts=o)),
}


def bare_engine(n: int, kind: str = "narrow") -> tuple[int, float]:
    """N trivial pulumi_aws resources under the same run_stack: the mock engine's own cost."""
    import pulumi_aws as aws

    declare = BARE_KINDS[kind][1]

    async def program() -> None:
        provider = aws.Provider("bare", region="us-east-1")
        opts = pulumi.ResourceOptions(provider=provider)
        for i in range(n):
            declare(aws, i, opts)

    plan, ms = timed(run_stack, StackConfig(stack="bare", file="-", values={}), program, {})
    return len(plan.resources), ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--bare", type=int, nargs="+", default=[250, 1000])
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; the fastest is reported"
    )
    args = parser.parse_args(argv)

    # The first plan of each cloud imports its provider SDK (seconds); measure it apart.
    _, cold_ms = timed(plan_all, *synthetic(3))
    print(
        "cold start: first 3-region plan (imports pulumi_aws, pulumi_gcp, pulumi_kubernetes): "
        f"{cold_ms:,.0f} ms\n"
    )

    print(
        f"{'regions':>7} {'stacks':>6} {'resources':>9} {'per stack':>9} {'wall ms':>9} "
        f"{'ms/resource':>11}"
    )
    rows = []
    for n in args.sizes:
        best = None
        for _ in range(args.repeat):
            plans, ms = timed(plan_all, *synthetic(n))
            if best is None or ms < best[1]:
                best = (plans, ms)
        plans, ms = best
        resources = sum(len(p.resources) for p in plans)
        rows.append((n, len(plans), resources, ms))
        print(
            f"{n:>7} {len(plans):>6} {resources:>9} {resources / len(plans):>9.1f} {ms:>9,.0f} "
            f"{ms / resources:>11.2f}"
        )

    print("\nbare mock engine: N pulumi_aws resources, one explicit provider, the same run_stack")
    print(f"{'resource':>34} {'declared':>8} {'registered':>10} {'wall ms':>9} {'ms/resource':>11}")
    bare: dict[str, float] = {}
    for kind, (label, _) in BARE_KINDS.items():
        for n in args.bare:
            count, ms = bare_engine(n, kind)
            bare[kind] = min(bare.get(kind, float("inf")), ms / count)
            print(
                f"{label + ' (' + kind + ')':>34} {n:>8} {count:>10} {ms:>9,.0f} "
                f"{ms / count:>11.2f}"
            )

    floor = bare["narrow"]
    print(
        f"\nrtdi vs the engine's floor ({floor:.2f} ms per narrow resource; a wide one costs "
        f"{bare['wide']:.2f}):"
    )
    for n, stacks, resources, ms in rows:
        per = ms / resources
        print(
            f"  {n:>2} regions: {per:.2f} ms/resource = {per / floor:.1f}x the floor, "
            f"{ms / stacks:,.0f} ms per stack"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
