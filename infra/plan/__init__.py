"""The offline plan: the Pulumi program under the SDK's mock engine, written to disk."""

from __future__ import annotations

from collections.abc import Iterable

from infra.plan.engine import StackPlan, run_stack
from infra.plan.project import Project, validate


def plan_stacks(project: Project, stacks: Iterable[str]) -> dict[str, StackPlan]:
    """Plan ``stacks`` (and the global stacks they read, first). Raises ConfigError on bad config."""
    from infra.program import main

    wanted = list(dict.fromkeys(stacks))
    validated = validate(project, wanted)
    order = sorted(validated, key=lambda s: (validated[s].global_stack is not None, s))
    plans: dict[str, StackPlan] = {}
    for name in order:
        v = validated[name]
        outputs = {v.global_stack: plans[v.global_stack].values} if v.global_stack else {}
        plans[name] = run_stack(v.config, main, outputs)
    return {name: plans[name] for name in wanted if name in plans}


__all__ = ["Project", "StackPlan", "plan_stacks", "run_stack", "validate"]
