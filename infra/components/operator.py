"""An operator from its Helm chart in a namespace of its own: what Strimzi and Flink share.

The chart's source (public repository, mirror or local path), version and wait settings come
from the region's `Target.sources` (infra/targets/sources.py), so every operator follows the
site's `rtdi:charts` and `rtdi:helm` alike.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.targets.base import Target


def operator_release(
    owner: pulumi.ComponentResource,
    name: str,
    target: Target,
    namespace: str,
    release: str,
    chart: str,
    values: dict[str, Any],
    watch: k8s.core.v1.Namespace,
) -> tuple[k8s.core.v1.Namespace, k8s.helm.v3.Release]:
    """The operator's namespace and its Helm release ``release`` of ``chart``, both children of
    ``owner``; the release waits for ``watch``, the namespace the operator manages."""
    ns = k8s.core.v1.Namespace(
        f"{name}-ns",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels=target.labels),
        opts=target.k8s_opts(owner),
    )
    helm = k8s.helm.v3.Release(
        name,
        k8s.helm.v3.ReleaseArgs(
            name=release,
            namespace=ns.metadata.name,
            **target.sources.release_args(chart),
            values=values,
        ),
        opts=target.k8s_opts(owner, depends_on=[watch]),
    )
    return ns, helm
