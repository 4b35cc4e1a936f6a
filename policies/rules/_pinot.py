"""What the Pinot rules read: the apache/pinot chart's values and the table configs applied.

* A Pinot Helm release is one of the ``pinot`` chart (by the chart's name, wherever it comes
  from: a repository, an OCI registry, a local ``pinot`` folder or ``pinot-<version>.tgz``). A
  component's configuration is its ``<component>.extra.configs`` (the lines the chart appends to
  its ``.conf`` file), its pod count ``<component>.replicaCount`` (the chart's default when
  unset).
* A table config is a JSON object with ``tableName`` and ``tableType`` in a ConfigMap a Job's
  pod mounts (what the apply Job sends to the controller), whatever the key it is under.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.view import Resource, StackView, as_int, dig, items, parse_properties, text

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
CHART = "pinot"
# The chart's defaults (values.yaml of apache/pinot's helm/pinot, 1.0.x).
DEFAULT_REPLICAS = {"controller": 1, "broker": 1, "server": 1, "minionStateless": 1, "minion": 0}


def chart_name(chart: str) -> str:
    last = chart.rstrip("/").rsplit("/", 1)[-1].removesuffix(".tgz")
    head, _, version = last.rpartition("-")
    return head if head and version[:1].isdigit() else last


def releases(view: StackView) -> list[Resource]:
    return [
        r
        for r in view.of_type(HELM_RELEASE)
        if chart_name(text(dig(r.props, "chart")) or "") == CHART
    ]


def values(release: Resource) -> Mapping[str, Any]:
    found = dig(release.props, "values")
    return found if isinstance(found, Mapping) else {}


def release_name(release: Resource) -> str:
    return text(dig(release.props, "name")) or release.name


def configs(release: Resource, component: str) -> dict[str, str]:
    return parse_properties(dig(values(release), component, "extra", "configs"))


def replicas(release: Resource, component: str) -> int:
    raw = dig(values(release), component, "replicaCount")
    if raw is None:
        return DEFAULT_REPLICAS[component]
    return as_int(raw) or 0


@dataclass(frozen=True)
class TableConfig:
    configmap: Resource
    key: str
    config: Mapping[str, Any]

    @property
    def name(self) -> str:
        return f"{self.config.get('tableName')}_{self.config.get('tableType')}"


def mounted_configmaps(view: StackView) -> list[Resource]:
    """ConfigMaps a Job's pod template mounts, in the Job's namespace."""
    names: set[tuple[str, str]] = set()
    for job in view.of_kind("batch", "Job"):
        for volume in items(dig(job.props, "spec", "template", "spec", "volumes")):
            name = text(dig(volume, "configMap", "name"))
            if name:
                names.add((job.k8s_namespace, name))
    return [
        c for c in view.of_kind("core", "ConfigMap") if (c.k8s_namespace, c.k8s_name or "") in names
    ]


def tables(view: StackView) -> Iterator[TableConfig]:
    for cm in mounted_configmaps(view):
        data = dig(cm.props, "data")
        if not isinstance(data, Mapping):
            continue
        for key in sorted(data):
            try:
                doc = json.loads(data[key]) if isinstance(data[key], str) else None
            except ValueError:
                continue
            if isinstance(doc, Mapping) and "tableName" in doc and "tableType" in doc:
                yield TableConfig(cm, key, doc)


def stream_configs(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every stream config of a table: ingestionConfig's streamConfigMaps, else the legacy
    ``tableIndexConfig.streamConfigs``."""
    maps = items(dig(config, "ingestionConfig", "streamIngestionConfig", "streamConfigMaps"))
    found = [m for m in maps if isinstance(m, Mapping)]
    legacy = dig(config, "tableIndexConfig", "streamConfigs")
    if isinstance(legacy, Mapping):
        found.append(legacy)
    return found


def replication(config: Mapping[str, Any]) -> int | None:
    """``segmentsConfig.replication`` (a string or a number in Pinot's JSON); Pinot reads a
    realtime table's ``replicasPerPartition`` when replication is unset."""
    segments = dig(config, "segmentsConfig")
    raw = dig(segments, "replication")
    if raw is None:
        raw = dig(segments, "replicasPerPartition")
    if raw is None:
        return 1
    try:
        return int(str(raw).strip())
    except ValueError:
        return None
