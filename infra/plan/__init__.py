"""The offline plan: the Pulumi program under the SDK's mock engine, written to disk."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from infra.plan.engine import SECRET, StackPlan, run_stack
from infra.plan.mocks import StackOutputsFor
from infra.plan.project import Project, Validated, validate
from infra.topology.model import GlobalStack, RegionalBase


def plan_stacks(
    project: Project,
    stacks: Iterable[str],
    rounds: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, StackPlan]:
    """Plan ``stacks`` as they converge; raises ConfigError on bad config.

    Regional stacks read each other's outputs (infra/peers.py), so a plan of one stack alone
    would show a first deployment. This plans the global stacks first, then in rounds: round 1
    plans the peer stacks (of this project) that the requested ones read as a first deployment
    (no regional stack exists yet, so flows that need a peer are pending); round 2 plans the
    requested stacks reading round 1's outputs, which is what a second `pulumi up` of every
    stack reaches. Two rounds always suffice: what a stack exports for peers never depends on
    what it read from them. ``rounds=1`` plans the requested stacks as a first deployment.
    Only the requested stacks are returned. ``progress(stack, n, total)`` is called before each
    stack runs (the CLI shows it on stderr).
    """
    from infra.program import main

    if rounds not in (1, 2):
        raise ValueError(f"rounds must be 1 (first deployment) or 2 (converged), not {rounds}")
    wanted = list(dict.fromkeys(stacks))
    validated = validate(project, wanted)
    read: list[str] = []  # the regional stacks that the wanted ones read as peers
    if rounds == 2:
        read = _peer_stacks(project, validated, wanted)
        extra = [s for s in read if s not in validated]
        if extra:
            validated = validate(project, [*wanted, *extra])
    globals_ = sorted(s for s, v in validated.items() if v.global_stack is None)
    regional = [s for s in wanted if validated[s].global_stack is not None]
    first_round = sorted(s for s in read if validated[s].global_stack is not None)
    if rounds == 1:
        first_round = regional
    total = len(globals_) + len(first_round) + (len(regional) if rounds == 2 else 0)
    done = 0

    def run(name: str, outputs: dict[str, Any], shown: str = "") -> StackPlan:
        nonlocal done
        done += 1
        if progress is not None:
            progress(shown or name, done, total)
        return run_stack(validated[name].config, main, outputs)

    plans: dict[str, StackPlan] = {}
    for name in globals_:
        plans[name] = run(name, {})

    def globals_of(v: Validated) -> dict[str, Any]:
        assert v.global_stack is not None
        return {v.global_stack: _as_read(plans[v.global_stack])}

    # Round 1, a first deployment: no regional stack exists yet. Its warnings about pending
    # flows are not news when round 2 completes those flows.
    first: dict[str, StackPlan] = {}
    with _quiet() if rounds == 2 else contextlib.nullcontext():
        for name in first_round:
            shown = f"{name} as a peer, first deployment" if rounds == 2 else name
            first[name] = run(name, globals_of(validated[name]), shown)
    if rounds == 1:
        plans.update(first)
    else:
        # Round 2 reads what round 1 created, as `pulumi up`'s second pass does.
        peers = {s: _as_read(p) for s, p in first.items()}
        for name in regional:
            plans[name] = run(name, {**peers, **globals_of(validated[name])})
    return {name: plans[name] for name in wanted if name in plans}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Drop what the mock engine logs (it logs to the root logger) while this runs."""
    root = logging.getLogger()
    drop = logging.Filter("rtdi.plan.quiet")  # passes only that logger's records: none here
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _peer_stacks(project: Project, validated: dict[str, Validated], wanted: list[str]) -> list[str]:
    """Regional stacks of this project that the ``wanted`` regional stacks read as peers."""
    from infra.components.kafka import peer_regions

    known = set(project.stack_names())
    out: list[str] = []
    for name in wanted:
        v = validated[name]
        if v.global_stack is None:
            continue
        published = validated[v.global_stack].model
        assert isinstance(published, GlobalStack) and isinstance(v.model, RegionalBase)
        for region_id in peer_regions(published.topology, published.kafka, v.model.region):
            if region_id in known and region_id not in out:
                out.append(region_id)
    return out


def _as_read(plan: StackPlan) -> StackOutputsFor:
    """A planned stack as the engine's state would hold it: values, and which ones are secret."""
    return StackOutputsFor(plan.values, [k for k, v in plan.outputs.items() if _has_secret(v)])


def _has_secret(value: Any) -> bool:
    if value == SECRET:
        return True
    if isinstance(value, dict):
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


__all__ = ["Project", "StackPlan", "plan_stacks", "run_stack", "validate"]
