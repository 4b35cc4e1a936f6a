"""The offline plan: the Pulumi program under the SDK's mock engine, written to disk."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from infra.plan.engine import StackPlan, run_stack
from infra.plan.project import Project, validate


def plan_stacks(
    project: Project,
    stacks: Iterable[str],
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, StackPlan]:
    """Plan ``stacks`` (and the global stacks they read, first). Raises ConfigError on bad config.

    ``progress(stack, n, total)`` is called before each stack runs (the CLI shows it on stderr).
    """
    from infra.program import main

    wanted = list(dict.fromkeys(stacks))
    validated = validate(project, wanted)
    order = sorted(validated, key=lambda s: (validated[s].global_stack is not None, s))
    plans: dict[str, StackPlan] = {}
    for n, name in enumerate(order, 1):
        if progress is not None:
            progress(name, n, len(order))
        v = validated[name]
        outputs = {v.global_stack: plans[v.global_stack].values} if v.global_stack else {}
        plans[name] = run_stack(v.config, main, outputs)
    return {name: plans[name] for name in wanted if name in plans}


__all__ = ["Project", "StackPlan", "plan_stacks", "run_stack", "validate"]
