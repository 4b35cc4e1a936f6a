"""Where a region's charts and images come from: the public repositories, or the site's mirrors.

A data centre behind a firewall reaches neither quay.io nor Docker Hub, so a regional stack may
name a source per chart (`rtdi:charts`) and a registry mirror (`rtdi:imageRegistry`). Components
ask `Target.sources` for a Helm release's chart arguments and for every image they declare, and
never learn whether the site is air-gapped.

The image rewrite rule (`mirrored`): an image reference is ``[registry/]path[:tag][@digest]``,
its first component being a registry when it holds a ``.`` or a ``:`` or is ``localhost`` (the
rule of Docker and containerd); without one the registry is Docker Hub, where a one-component
path is ``library/<name>``. The mirrored reference is ``<mirror>/<path>[:tag][@digest]``: the
source registry is dropped, the path, the tag and the digest are kept as written (so a digest
still pins the same bytes). ``quay.io/strimzi/kafka:1.2.0-kafka-4.3.1`` becomes
``<mirror>/strimzi/kafka:1.2.0-kafka-4.3.1``, ``kafka:4`` becomes ``<mirror>/library/kafka:4``.
A reference already in the mirror is kept. This is the layout `skopeo sync`, `crane copy` and
registry proxy caches (Harbor, Nexus, Artifactory) produce for a mirror prefix.
"""

from __future__ import annotations

from typing import Any

from infra import versions
from infra.topology.model import RegionalBase

DOCKER_HUB = "docker.io"
_DOCKER_HUB_NAMES = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def split_reference(reference: str) -> tuple[str, str]:
    """``reference`` -> (registry, path with its tag and digest), Docker Hub's implicit parts
    made explicit."""
    first, sep, rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, reference
    if registry in _DOCKER_HUB_NAMES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return registry, path


def mirrored(reference: str, mirror: str | None) -> str:
    """``reference`` as pulled from ``mirror`` (unchanged without one); see the module doc."""
    if not mirror or reference.startswith(f"{mirror}/"):
        return reference
    _, path = split_reference(reference)
    return f"{mirror}/{path}"


class Sources:
    """The chart source of each Helm release and the registry of each image, for one region."""

    def __init__(self, stack: RegionalBase):
        self.charts = stack.charts
        self.helm = stack.helm
        self.registry = stack.image_registry

    def image(self, reference: str) -> str:
        return mirrored(reference, self.registry)

    def release_args(self, chart: str) -> dict[str, Any]:
        """Keyword arguments of `k8s.helm.v3.ReleaseArgs` that say which chart, where from, and
        whether the release waits. The version is always the pinned one (infra/versions.py);
        a local chart was checked to hold it (infra/topology/checks.py)."""
        public, version = versions.HELM_CHARTS[chart]
        source = self.charts.get(chart)
        args: dict[str, Any] = {"version": version}
        if (source is None or source.source == "public") and public.startswith("https://"):
            # A public Helm repository (the Flink operator's): the chart by name in it.
            args["chart"] = chart
            args["repository_opts"] = {"repo": public}
        elif source is None or source.source == "public":
            args["chart"] = public
        elif source.source == "local":
            args["chart"] = source.path
        elif source.source == "oci":
            args["chart"] = f"{str(source.repository).rstrip('/')}/{chart}"
        else:
            args["chart"] = chart
            args["repository_opts"] = {"repo": source.repository}
        wait = self.helm.wait
        # Atomic implies waiting: without readiness Helm cannot tell a failed release to undo.
        args["atomic"] = wait if self.helm.atomic is None else self.helm.atomic
        args["skip_await"] = not wait
        args["timeout"] = self.helm.timeout_seconds
        return args

    def strimzi_values(self) -> dict[str, Any]:
        """Chart values that point every image the Strimzi operator runs or derives (operator,
        Kafka, Cruise Control, MirrorMaker 2, entity operators) at the mirror. Each component's
        `<component>.image.registry` is empty in the chart, so they all fall back to
        `defaultImageRegistry`, which with the chart's `defaultImageRepository` (strimzi) gives
        `<mirror>/strimzi/<image>:<tag>`: the rewrite rule applied to quay.io/strimzi/..."""
        return {"defaultImageRegistry": self.registry} if self.registry else {}
