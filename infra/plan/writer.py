"""Write a stack's plan: resources.json, outputs.json and every Kubernetes object as YAML."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from infra.plan.engine import Declared, StackPlan

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def is_k8s_object(r: Declared) -> bool:
    return r.custom and r.type.startswith("kubernetes:") and r.type != HELM_RELEASE


def k8s_object(r: Declared) -> dict[str, Any]:
    """The object as the API server would receive it (the SDK already puts apiVersion and kind)."""
    obj = {k: v for k, v in r.inputs.items() if v is not None}
    return {
        "apiVersion": obj.pop("apiVersion"),
        "kind": obj.pop("kind"),
        "metadata": obj.pop("metadata", {}),
        **obj,
    }


def helm_release(r: Declared) -> dict[str, Any]:
    keep = (
        "name",
        "chart",
        "version",
        "namespace",
        "repositoryOpts",
        "createNamespace",
        "atomic",
        "values",
    )
    return {k: r.inputs[k] for k in keep if k in r.inputs}


def write(plan: StackPlan, out: Path) -> dict[str, int]:
    folder = out / plan.stack
    if folder.exists():
        shutil.rmtree(folder)
    manifests = folder / "manifests"
    manifests.mkdir(parents=True)
    (folder / "resources.json").write_text(
        json.dumps([r.as_json() for r in plan.resources], indent=1, sort_keys=True)
    )
    (folder / "outputs.json").write_text(json.dumps(plan.outputs, indent=1, sort_keys=True))
    counts = Counter()
    for r in plan.resources:
        counts["resources"] += 1
        counts[r.type.split(":", 1)[0]] += 1
        if r.type == HELM_RELEASE:
            counts["helm"] += 1
            _dump(manifests / f"helm-{_slug(r.name)}.yaml", helm_release(r))
        elif is_k8s_object(r):
            counts["k8s objects"] += 1
            obj = k8s_object(r)
            _dump(manifests / f"{obj['kind']}-{_slug(r.name)}.yaml", obj)
    return dict(counts)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _dump(path: Path, doc: dict) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def summary(stack: str, counts: dict[str, int], folder: Path) -> str:
    clouds = ", ".join(f"{counts[c]} {c}" for c in ("aws", "gcp", "kubernetes") if counts.get(c))
    return (
        f"{stack}: {counts.get('resources', 0)} resources ({clouds or 'no cloud resources'}), "
        f"{counts.get('k8s objects', 0)} Kubernetes objects, {counts.get('helm', 0)} Helm releases -> {folder}"
    )
