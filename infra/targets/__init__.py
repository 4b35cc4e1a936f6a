"""The only place that chooses a cloud."""

from __future__ import annotations

import pulumi

from infra.targets.base import Target
from infra.topology.model import RegionalBase, Topology


def make_target(
    stack: RegionalBase, topology: Topology, opts: pulumi.ResourceOptions | None = None
) -> Target:
    if stack.cloud == "aws":  # type: ignore[attr-defined]
        from infra.targets.aws import AwsTarget

        return AwsTarget(stack, topology, opts)  # type: ignore[arg-type]
    if stack.cloud == "gcp":  # type: ignore[attr-defined]
        from infra.targets.gcp import GcpTarget

        return GcpTarget(stack, topology, opts)  # type: ignore[arg-type]
    from infra.targets.onprem import OnpremTarget

    return OnpremTarget(stack, topology, opts)  # type: ignore[arg-type]
