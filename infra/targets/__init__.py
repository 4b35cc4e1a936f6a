"""The only place that chooses a cloud."""

from __future__ import annotations

import pulumi

from infra.targets.base import Target
from infra.topology.model import AwsStack, GcpStack, OnpremStack, RegionalBase, Topology


def make_target(
    stack: RegionalBase, topology: Topology, opts: pulumi.ResourceOptions | None = None
) -> Target:
    """The stack's cloud as a Target. Each cloud's module is imported only when its stack is built,
    so a plan of on-prem stacks never loads pulumi_aws or pulumi_gcp."""
    if isinstance(stack, AwsStack):
        from infra.targets.aws import AwsTarget

        return AwsTarget(stack, topology, opts)
    if isinstance(stack, GcpStack):
        from infra.targets.gcp import GcpTarget

        return GcpTarget(stack, topology, opts)
    if isinstance(stack, OnpremStack):
        from infra.targets.onprem import OnpremTarget

        return OnpremTarget(stack, topology, opts)
    raise TypeError(f"no target for {type(stack).__name__}")
