"""Write a stack's plan: resources.json, outputs.json and every Kubernetes object as YAML."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from infra.components.pinot import NAMESPACE as PINOT_NAMESPACE
from infra.components.pinot import TABLES_CONFIGMAP
from infra.plan.engine import Declared, StackPlan
from infra.plan.paths import shown
from infra.topology.errors import ConfigError, Issue

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
NAME_MAX = 255  # bytes in one file name on ext4, XFS, APFS and NTFS
HASH_LEN = 12  # hex digits of the suffix that keeps shortened names apart


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
        "skipAwait",
        "timeout",
        "values",
    )
    return {k: r.inputs[k] for k in keep if k in r.inputs}


def write(plan: StackPlan, out: Path) -> dict[str, int]:
    """Write one stack's plan under ``out/<stack>``; an OSError becomes one line and exit 2."""
    try:
        return _write(plan, out)
    except OSError as exc:
        raise ConfigError([write_error(exc, out / plan.stack)]) from None


def write_error(exc: OSError, fallback: Path) -> Issue:
    where = Path(exc.filename) if exc.filename else fallback
    return Issue("rtdi", "", f"cannot write {shown(where)}: {exc.strerror or exc}")


def check_writable(out: Path) -> None:
    """Refuse an output folder that cannot be written before spending time planning into it.

    Creates nothing (a refused plan writes nothing): finds the nearest existing ancestor and checks
    it is a folder this process may write to.
    """
    folder = out
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        reason = "a file is in the way of a folder"
    elif not os.access(folder, os.W_OK | os.X_OK):
        reason = "permission denied"
    else:
        return
    raise ConfigError([Issue("rtdi", "", f"cannot write {shown(out)}: {reason} ({shown(folder)})")])


def _write(plan: StackPlan, out: Path) -> dict[str, int]:
    folder = out / plan.stack
    if folder.exists():
        shutil.rmtree(folder)  # a file in the way raises NotADirectoryError: reported, not removed
    manifests = folder / "manifests"
    manifests.mkdir(parents=True)
    (folder / "resources.json").write_text(
        json.dumps([r.as_json() for r in plan.resources], indent=1, sort_keys=True)
    )
    (folder / "outputs.json").write_text(json.dumps(plan.outputs, indent=1, sort_keys=True))
    counts: Counter[str] = Counter()
    for r in plan.resources:
        counts["resources"] += 1
        counts[r.type.split(":", 1)[0]] += 1
        if r.type == HELM_RELEASE:
            counts["helm"] += 1
            _dump(manifests / file_name(f"helm-{_slug(r.name)}"), helm_release(r))
        elif is_k8s_object(r):
            counts["k8s objects"] += 1
            obj = k8s_object(r)
            _dump(manifests / file_name(f"{obj['kind']}-{_slug(r.name)}"), obj)
            _pinot_json(folder, obj)
    return dict(counts)


def _pinot_json(folder: Path, obj: dict[str, Any]) -> None:
    """Each Pinot schema and table the region applies, as the JSON the controller receives,
    under ``pinot/`` for review (the Pinot layer's ConfigMap holds them)."""
    meta = obj.get("metadata") or {}
    if obj["kind"] != "ConfigMap" or (meta.get("namespace"), meta.get("name")) != (
        PINOT_NAMESPACE,
        TABLES_CONFIGMAP,
    ):
        return
    out = folder / "pinot"
    out.mkdir(exist_ok=True)
    for key, value in sorted((obj.get("data") or {}).items()):
        if key.endswith(".json") and key != "servers.json":
            (out / file_name(key.removesuffix(".json"), ".json")).write_text(value + "\n")


def file_name(stem: str, suffix: str = ".yaml") -> str:
    """``stem + suffix``, cut to NAME_MAX bytes with a hash of the whole stem when longer.

    The hash keeps two long names that share a prefix apart, and is stable, so a long name maps
    to the same file in every plan and ``rtdi diff`` or ``diff -r`` pair them up.
    """
    name = stem + suffix
    if len(name.encode()) <= NAME_MAX:
        return name
    digest = hashlib.sha256(stem.encode()).hexdigest()[:HASH_LEN]
    room = NAME_MAX - len(suffix.encode()) - len(digest) - 1
    head = stem.encode()[:room].decode(errors="ignore")
    return f"{head}-{digest}{suffix}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _dump(path: Path, doc: dict) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def summary(stack: str, counts: dict[str, int], folder: Path, pending: Any = None) -> str:
    """The line ``rtdi plan`` prints per stack; ``pending`` is the stack's ``pending`` output.

    A first deployment converges over several ``pulumi up`` runs: when flows wait for a peer
    stack's outputs, the line says how many and which stacks to bring up, so nobody has to dig
    through outputs.json to learn that the plan is not final.
    """
    clouds = ", ".join(f"{counts[c]} {c}" for c in ("aws", "gcp", "kubernetes") if counts.get(c))
    line = (
        f"{stack}: {counts.get('resources', 0)} resources ({clouds or 'no cloud resources'}), "
        f"{counts.get('k8s objects', 0)} Kubernetes objects, {counts.get('helm', 0)} Helm releases"
    )
    waits = [p for p in pending if isinstance(p, dict)] if isinstance(pending, list) else []
    if waits:
        peers = sorted({str(p["stack"]) for p in waits if p.get("stack")})
        line += f", {len(waits)} pending" + (f" (pulumi up {', '.join(peers)})" if peers else "")
    return f"{line} -> {shown(folder)}"
