"""The step runner of `rtdi drill run`.

Each step of the plan (infra/drill/plan.py) is a function of one ``Context``: the Pulumi steps
(flip, demote, promote) set the step's config and bring its stacks up through a ``Workspace``,
then check that every stack exports what the step's ``expect`` says; the Kafka steps (preflight's
measurements, stopping plain groups, translating and committing offsets, verifying) call a
``KafkaSide`` (``infra.drill.kafka.LiveKafka`` on live clusters), injected, so the runner never
knows which clusters or clients it talks to.

An aborted drill (a step that fails, a KeyboardInterrupt, or ``abort_after`` a step, to
rehearse) leaves the old primary serving: ``rollback`` undoes in reverse what this run changed.
If the new primary was brought up: the primary set back and the global stack up, then the new
primary up (which demotes it: its active-passive jobs stop with a savepoint), its plain groups
waited out, and every group's offsets translated back (new -> old) with the same jar; then the
old primary up, so its jobs and consumers run again, and the other regions (their registry).
Why the old primary restarts from its group offsets and loses nothing: sync-offsets committed the
savepoint's offsets to its groups there first, and the translation back only moves them forward.
"""

from __future__ import annotations

import datetime
import functools
import json
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
    """What a drill asks of the Kafka clusters (``infra.drill.kafka.LiveKafka``)."""

    def preflight(self, drill: DrillPlan) -> list[str]:
        """Measure the plan's preflight checks; return one line per check that fails."""

    def stop(self, groups: Sequence[ActivePassiveGroup], region: str) -> None:
        """Wait until each plain group has no member left in ``region``'s aggregate."""

    def sync_offsets(self, drill: DrillPlan) -> Offsets:
        """Translate and commit each group's offsets into the new primary's aggregate."""

    def verify(self, drill: DrillPlan, committed: Offsets) -> dict[str, Any]:
        """Per group: resumed at the translated offsets, records lost and re-read."""

    def sync_back(self, drill: DrillPlan) -> Offsets:
        """A rollback: translate each group's offsets from the new primary back to the old."""

    def halt(self) -> None:
        """The drill is over: end what the side runs in the background."""


class StepFailed(Exception):
    """A step did not reach its expected state; ``str`` says which stack and output."""


@dataclass
class StepResult:
    name: str
    seconds: float
    status: str  # "done", "failed", "interrupted", "aborted", "rolled back"
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "seconds": round(self.seconds, 3)}
        out["status"] = self.status
        if self.detail:
            out["detail"] = self.detail
        return out


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
    preflight: list[str] = field(default_factory=list)  # the failing checks' lines
    demoted_at: float | None = None  # clock reading when demote began
    abort_after: str | None = None
    rolled_back: bool = False
    rollback_failed: bool = False

    def kafka_side(self, step: str) -> KafkaSide:
        if self.kafka is None:
            raise StepFailed(f"{step} needs Kafka clients of the aggregates, which are not built")
        return self.kafka


def _apply(ctx: Context, step: Step) -> None:
    """A Pulumi step: its config, its ups in order, each stack checked against ``expect``."""
    for c in step.config:
        ctx.workspace.set_config(c.stack, c.key, c.value)
    for stack in step.stacks:
        # Counted before the up: an up that fails may have changed some of the stack, so a
        # rollback brings it up again; only a refusal of its config (ConfigError, before the
        # engine changes anything) leaves it out.
        ctx.upped.append(stack)
        try:
            outputs = ctx.workspace.up(stack)
        except ConfigError:
            ctx.upped.pop()
            raise
        _check(stack, outputs, step.expect.get(stack, {}))


def _check(stack: str, outputs: dict[str, Any], expected: dict[str, Any]) -> None:
    if not meets(outputs, expected):
        wrong = sorted(k for k in expected if not meets(outputs, {k: expected[k]}))
        raise StepFailed(f"{stack} exports other {', '.join(wrong)} than planned after up")


def preflight(ctx: Context) -> None:
    failed = [f"{c.name}: {c.offline}" for c in ctx.drill.checks if not c.passed]
    if not failed:
        failed = ctx.kafka_side("preflight").preflight(ctx.drill)
    ctx.preflight = list(failed)
    if failed:
        raise StepFailed("; ".join(failed))


def flip(ctx: Context) -> None:
    ctx.flipped = True  # from the config set on: an abort sets it back
    _apply(ctx, ctx.drill.step("flip"))


def _plain(ctx: Context) -> list[ActivePassiveGroup]:
    return [g for g in ctx.drill.groups if g.job is None]


def demote(ctx: Context) -> None:
    ctx.demoted_at = ctx.clock()
    plain = _plain(ctx)
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


def _step_name(fn: Callable[[Context], None]) -> str:
    return fn.__name__.replace("_", "-")


def rollback(ctx: Context) -> None:
    """Undo, in reverse, what this run changed, so that the old primary serves (module doc);
    each action is a ``rollback: ...`` result. Nothing to undo before the flip."""
    drill, ws = ctx.drill, ctx.workspace
    g, old, new = drill.global_stack, drill.stacks[drill.source], drill.stacks[drill.target]
    upped = [s for s in dict.fromkeys(ctx.upped) if s != g]
    before = drill.before

    def restored(stack: str, step: str) -> None:
        outputs = ws.up(stack)
        keys = drill.step(step).expect.get(stack, {})
        _check(stack, outputs, {k: before[stack].outputs[k] for k in keys})

    actions: list[tuple[str, Callable[[], Any]]] = []
    if ctx.flipped:

        def flip_back() -> None:
            ws.set_config(g, PRIMARY_KEY, drill.source)
            outputs = ws.up(g)
            if outputs.get("primaryRegion") != drill.source:
                raise StepFailed(f"{g} exports primaryRegion {outputs.get('primaryRegion')!r}")

        actions.append((f"primary set back to {drill.source}, {g} up", flip_back))
    if new in upped:
        actions.append((f"{new} up (demoted again)", lambda: restored(new, "promote")))
        if _plain(ctx):
            actions.append(
                (
                    f"plain groups stopped in {drill.target}",
                    lambda: ctx.kafka_side("rollback").stop(_plain(ctx), drill.target),
                )
            )
        if drill.groups:

            def back() -> None:
                ctx.offsets = ctx.kafka_side("rollback").sync_back(drill)

            actions.append((f"offsets translated back into {drill.source}", back))
    if old in upped:
        actions.append((f"{old} up (serving again)", lambda: restored(old, "demote")))
    for stack in upped:
        if stack not in (old, new):
            actions.append((f"{stack} up", functools.partial(restored, stack, "promote")))
    for what, action in actions:
        started = ctx.clock()
        try:
            action()
        except (Exception, KeyboardInterrupt) as exc:
            ctx.rollback_failed = True
            ctx.results.append(
                StepResult("rollback", ctx.clock() - started, "failed", f"{what}: {_why(exc)}")
            )
            return
        ctx.results.append(StepResult("rollback", ctx.clock() - started, "rolled back", what))
    ctx.rolled_back = bool(actions)


def _why(exc: BaseException) -> str:
    if isinstance(exc, StepFailed | ConfigError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def run_steps(ctx: Context, steps: Sequence[Callable[[Context], None]]) -> list[StepResult]:
    """Run ``steps`` in order, timing each. A step that fails (bad config too: the engine
    refuses it before changing anything; or any error of a client), a KeyboardInterrupt, or the
    end of the step ``ctx.abort_after`` stops the run and rolls back what it changed."""
    for fn in steps:
        name = _step_name(fn)
        started = ctx.clock()
        try:
            fn(ctx)
        except (Exception, KeyboardInterrupt) as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            ctx.results.append(StepResult(name, ctx.clock() - started, status, _why(exc)))
            rollback(ctx)
            return ctx.results
        ctx.results.append(StepResult(name, ctx.clock() - started, "done"))
        if ctx.abort_after == name and fn is not steps[-1]:
            ctx.results.append(StepResult("abort", 0.0, "aborted", f"--abort-after {name}"))
            rollback(ctx)
            return ctx.results
    return ctx.results


@dataclass
class DrillReport:
    """What `rtdi drill run` writes (``as_json``) and prints (``summary``)."""

    source: str
    target: str
    started: str  # UTC, ISO 8601
    outcome: str  # "done", "dry run", "stopped", "rolled back", "failed" (its rollback)
    steps: list[StepResult]
    preflight: list[str]
    groups: dict[str, Any]
    offsets: Offsets
    demote_to_first_record: float | None

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome in ("done", "dry run") else 1

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "started": self.started,
            "outcome": self.outcome,
            "steps": [s.as_json() for s in self.steps],
            "preflightFailed": self.preflight,
            "demoteToFirstRecordSeconds": self.demote_to_first_record,
            "groups": self.groups,
            "offsets": {
                g: {t: {str(p): o for p, o in sorted(parts.items())} for t, parts in topics.items()}
                for g, topics in self.offsets.items()
            },
            "lost": sum(int(v.get("lost", 0)) for v in self.groups.values()),
        }

    def dumps(self) -> str:
        return json.dumps(self.as_json(), indent=1)

    def summary(self) -> str:
        lines = [f"drill {self.source} -> {self.target}: {self.outcome}"]
        for s in self.steps:
            detail = f"  {s.detail}" if s.detail else ""
            lines.append(f"  {s.name:<13} {s.status:<11} {s.seconds:8.1f} s{detail}")
        if self.demote_to_first_record is not None:
            lines.append(
                f"  demote to the first record consumed in {self.target}: "
                f"{self.demote_to_first_record:.1f} s"
            )
        for name, g in sorted(self.groups.items()):
            resumed = g.get("resumed")
            shown = f", resumed {resumed:.1f} s after demote" if resumed is not None else ""
            lines.append(f"  {name}: {g.get('lost', 0)} lost, {g.get('reread', 0)} re-read{shown}")
        return "\n".join(lines)


def run_drill(
    drill: DrillPlan,
    workspace: Workspace,
    kafka: KafkaSide | None,
    dry_run: bool = False,
    abort_after: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DrillReport:
    """The drill, or with ``dry_run`` its preflight only. Refused before any step when the plan
    already says the flip would break a policy or a check."""
    from infra.drill.plan import STEPS as NAMES

    if drill.violates:
        raise ConfigError(
            [Issue("rtdi drill", "--to", "the drill plan is refused; see `rtdi drill plan`")]
        )
    if abort_after is not None and abort_after not in NAMES[:-1]:
        raise ConfigError(
            [
                Issue(
                    "rtdi drill",
                    "--abort-after",
                    f"not a step a drill can stop after; allowed: {', '.join(NAMES[:-1])}",
                    abort_after,
                )
            ]
        )
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    ctx = Context(drill, workspace, kafka, clock=clock, abort_after=abort_after)
    try:
        run_steps(ctx, STEPS[:1] if dry_run else STEPS)
    finally:
        if kafka is not None:
            kafka.halt()
    if ctx.rollback_failed:
        outcome = "failed"  # the old primary may not serve: the report says what is left
    elif ctx.rolled_back:
        outcome = "rolled back"
    elif any(r.status != "done" for r in ctx.results):
        outcome = "stopped"  # before anything changed: nothing to undo
    else:
        outcome = "dry run" if dry_run else "done"
    groups: dict[str, Any] = {name: dict(v) for name, v in ctx.verified.items()}
    resumed = []
    for g in groups.values():
        at = g.get("resumedAt")
        if at is not None and ctx.demoted_at is not None:
            g["resumed"] = at - ctx.demoted_at
            resumed.append(g["resumed"])
    return DrillReport(
        drill.source,
        drill.target,
        started,
        outcome,
        ctx.results,
        ctx.preflight,
        groups,
        ctx.offsets,
        max(resumed) if resumed else None,
    )
