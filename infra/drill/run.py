"""The step runner of `rtdi drill run` (a skeleton: its Pulumi steps are built, its Kafka side
is an interface with no implementation yet).

Each step of the plan (infra/drill/plan.py) is a function of one ``Context``: the Pulumi steps
(flip, demote, promote) set the step's config and bring its stacks up through a ``Workspace``,
then check that every stack exports what the step's ``expect`` says; the Kafka steps (preflight's
measurements, stopping plain groups, translating and committing offsets, verifying) call a
``KafkaSide``, injected, so the runner never knows which clusters or clients it talks to.

An aborted drill leaves the old primary serving: a step that fails after the flip sets the
global stack's primary back and brings it up again, as long as no regional stack has been
brought up (the old primary's `up` either did not happen or was refused before it changed
anything, as `pulumi up` refuses bad config). Once a regional stack has changed, nothing is undone
here: the old primary's job has stopped with a savepoint, and restarting it from its group
offsets would re-read; the drill back (the same command, the other way) is what moves it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.drill.groups import ActivePassiveGroup
from infra.drill.plan import PRIMARY_KEY, DrillPlan, Step
from infra.drill.workspace import Workspace, meets
from infra.topology.errors import ConfigError, Issue

# partition -> offset, per topic, per group: what the sync step commits and verify checks.
Offsets = dict[str, dict[str, dict[int, int]]]


class KafkaSide(Protocol):
    """What a drill asks of the Kafka clusters (not implemented yet: the next session's)."""

    def preflight(self, drill: DrillPlan) -> list[str]:
        """Measure the plan's preflight checks; return one line per check that fails."""

    def stop(self, groups: Sequence[ActivePassiveGroup], region: str) -> None:
        """Wait until each plain group has no member left in ``region``'s aggregate."""

    def sync_offsets(self, drill: DrillPlan) -> Offsets:
        """Translate and commit each group's offsets into the new primary's aggregate."""

    def verify(self, drill: DrillPlan, committed: Offsets) -> dict[str, Any]:
        """Per group: resumed at the translated offsets, records lost and re-read."""


class StepFailed(Exception):
    """A step did not reach its expected state; ``str`` says which stack and output."""


@dataclass
class StepResult:
    name: str
    seconds: float
    status: str  # "done", "failed", "rolled back"
    detail: str = ""


@dataclass
class Context:
    drill: DrillPlan
    workspace: Workspace
    kafka: KafkaSide | None = None
    clock: Callable[[], float] = time.monotonic
    results: list[StepResult] = field(default_factory=list)
    offsets: Offsets = field(default_factory=dict)
    flipped: bool = False  # the global stack's primary was changed by this run
    upped: list[str] = field(default_factory=list)  # stacks this run brought up, in order
    verified: dict[str, Any] = field(default_factory=dict)

    def kafka_side(self, step: str) -> KafkaSide:
        if self.kafka is None:
            raise StepFailed(f"{step} needs Kafka clients of the aggregates, which are not built")
        return self.kafka


def _apply(ctx: Context, step: Step) -> None:
    """A Pulumi step: its config, its ups in order, each stack checked against ``expect``."""
    for c in step.config:
        ctx.workspace.set_config(c.stack, c.key, c.value)
    for stack in step.stacks:
        outputs = ctx.workspace.up(stack)
        ctx.upped.append(stack)
        expected = step.expect.get(stack, {})
        if not meets(outputs, expected):
            wrong = sorted(k for k in expected if not meets(outputs, {k: expected[k]}))
            raise StepFailed(f"{stack} exports other {', '.join(wrong)} than planned after up")


def preflight(ctx: Context) -> None:
    failed = [f"{c.name}: {c.offline}" for c in ctx.drill.checks if not c.passed]
    if not failed:
        failed = ctx.kafka_side("preflight").preflight(ctx.drill)
    if failed:
        raise StepFailed("; ".join(failed))


def flip(ctx: Context) -> None:
    ctx.flipped = True  # from the config set on: an abort sets it back
    _apply(ctx, ctx.drill.step("flip"))


def demote(ctx: Context) -> None:
    plain = [g for g in ctx.drill.groups if g.job is None]
    # Asked before any regional stack changes, so a drill that cannot stop them aborts cleanly.
    side = ctx.kafka_side("demote") if plain else None
    _apply(ctx, ctx.drill.step("demote"))
    if side is not None:
        side.stop(plain, ctx.drill.source)


def sync_offsets(ctx: Context) -> None:
    if ctx.drill.groups:
        ctx.offsets = ctx.kafka_side("sync-offsets").sync_offsets(ctx.drill)


def promote(ctx: Context) -> None:
    _apply(ctx, ctx.drill.step("promote"))


def verify(ctx: Context) -> None:
    if ctx.drill.groups:
        ctx.verified = ctx.kafka_side("verify").verify(ctx.drill, ctx.offsets)


STEPS: list[Callable[[Context], None]] = [preflight, flip, demote, sync_offsets, promote, verify]


def rollback(ctx: Context) -> None:
    """Set the global stack's primary back and bring it up: the old primary keeps serving."""
    g = ctx.drill.global_stack
    ctx.workspace.set_config(g, PRIMARY_KEY, ctx.drill.source)
    outputs = ctx.workspace.up(g)
    if outputs.get("primaryRegion") != ctx.drill.source:
        raise StepFailed(f"{g} exports primaryRegion {outputs.get('primaryRegion')!r} after up")


def run_steps(ctx: Context, steps: Sequence[Callable[[Context], None]]) -> list[StepResult]:
    """Run ``steps`` in order, timing each; on the first failure, roll back if the drill has
    flipped the global stack but brought no regional stack up yet, and stop. Bad config is a
    failure too: the engine refuses it before changing anything."""
    for fn in steps:
        name = fn.__name__.replace("_", "-")
        started = ctx.clock()
        try:
            fn(ctx)
        except (StepFailed, ConfigError) as exc:
            ctx.results.append(StepResult(name, ctx.clock() - started, "failed", str(exc)))
            regional = [s for s in ctx.upped if s != ctx.drill.global_stack]
            if ctx.flipped and not regional:
                started = ctx.clock()
                rollback(ctx)
                ctx.results.append(
                    StepResult(
                        "rollback",
                        ctx.clock() - started,
                        "rolled back",
                        f"primary set back to {ctx.drill.source}",
                    )
                )
            return ctx.results
        ctx.results.append(StepResult(name, ctx.clock() - started, "done"))
    return ctx.results


def run_drill(
    drill: DrillPlan, workspace: Workspace, kafka: KafkaSide | None, dry_run: bool = False
) -> list[StepResult]:
    """The drill, or with ``dry_run`` its preflight only. Refused before any step when the plan
    already says the flip would break a policy or a check."""
    if drill.violates:
        raise ConfigError(
            [Issue("rtdi drill", "--to", "the drill plan is refused; see `rtdi drill plan`")]
        )
    ctx = Context(drill, workspace, kafka)
    return run_steps(ctx, STEPS[:1] if dry_run else STEPS)
