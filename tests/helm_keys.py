"""Check the values rtdi passes to a Helm chart against the chart's own default values.

Helm ignores a values key the chart does not know, so a typo (``watchNamespace`` for
``watchNamespaces``) deploys silently with the default. Every key path rtdi sets must therefore
exist in the chart's default ``values.yaml``. Maps that charts pass through verbatim (labels,
annotations, resources, ...) are free-form: their own key must exist, what is inside them is not
checked. Lists are compared at the key level only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from infra import versions

# Free-form maps, by key name ("podAnnotations") or by dotted path suffix ("extra.configs").
# The one place to extend when a chart passes a map through to Kubernetes unchecked.
FREE_FORM: frozenset[str] = frozenset(
    {
        "extra.configs",
        "catalogs",
        "env",
        "podAnnotations",
        "podLabels",
        "labels",
        "annotations",
        "nodeSelector",
        "tolerations",
        "affinity",
        "resources",
        "securityContext",
        "podSecurityContext",
    }
)


def is_free_form(path: tuple[str, ...], free_form: Iterable[str] = FREE_FORM) -> bool:
    for entry in free_form:
        parts = tuple(entry.split("."))
        if path[-len(parts) :] == parts:
            return True
    return False


def unknown_keys(
    values: Mapping[str, Any],
    defaults: Any,
    prefix: tuple[str, ...] = (),
    free_form: Iterable[str] = FREE_FORM,
) -> list[str]:
    """Dotted paths of ``values`` that the chart's ``defaults`` do not have."""
    free_form = tuple(free_form)
    found: list[str] = []
    for key, value in values.items():
        path = (*prefix, str(key))
        if not isinstance(defaults, Mapping) or key not in defaults:
            found.append(".".join(path))
            continue
        if not isinstance(value, Mapping) or is_free_form(path, free_form):
            # A scalar, a list, or a free-form map: the key exists, that is all we can check.
            continue
        found.extend(unknown_keys(value, defaults[key], path, free_form))
    return found


def chart_name(chart: str) -> str:
    """``oci://quay.io/strimzi-helm/strimzi-kafka-operator`` or ``strimzi/strimzi-kafka-operator``
    -> the chart's name."""
    return chart.rstrip("/").rsplit("/", 1)[-1].removesuffix(".tgz")


# A pinned chart whose default values are checked against another version's file: apache/pinot
# publishes chart 1.0.0, whose values.yaml has exactly the keys (only comments differ) of the
# in-tree 1.0.1-SNAPSHOT that ../shared/schemas/helm-values holds (infra/versions.py).
VALUES_OF = {
    (versions.PINOT_CHART_NAME, versions.PINOT_CHART_VERSION): versions.PINOT_CHART_VALUES,
}


def defaults_file(folder: Path, chart: str, version: str) -> Path:
    name = chart_name(chart)
    return folder / f"{name}-{VALUES_OF.get((name, version), version)}.values.yaml"


def release_problems(release: Mapping[str, Any], folder: Path) -> list[str]:
    """Why ``release`` (chart, version, values as in helm-*.yaml) sets a key the chart ignores."""
    chart, version = release["chart"], str(release["version"])
    path = defaults_file(folder, chart, version)
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in folder.glob("*.values.yaml"))) or "none"
        return [
            f"{chart_name(chart)} {version}: no default values {path.name} to check against; have: "
            f"{known}"
        ]
    defaults = yaml.safe_load(path.read_text()) or {}
    return [
        f"{chart_name(chart)} {version}: {key}: not a key of the chart's default values"
        for key in unknown_keys(release.get("values") or {}, defaults)
    ]
