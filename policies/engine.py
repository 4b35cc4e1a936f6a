"""Rules, and the evaluator that runs them over stack views.

A rule is a `Rule` subclass instance with its metadata (id, description, why, severity, default
enforcement, parameters with defaults) and two hooks:

* ``check(ctx)``: one stack (``ctx.view``). Runs for every stack in ``rtdi check`` and, in a policy
  pack, for the stack being previewed.
* ``check_stacks(ctx)``: every stack checked together (``ctx.views``); only ``rtdi check`` has more
  than one. A rule whose invariant spans stacks sets ``cross_stack = True`` and puts the part a
  single stack can verify in ``check``.

Rules report with ``ctx.report(resource_or_urn, message)``; the message says what is wrong and how
to fix it. Rules wrap the work on each resource in ``with ctx.guard(resource):`` so that a value a
preview cannot know yet (pulumi_policy raises ``UnknownValueError``) skips that resource only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from policies.view import Resource, StackView, UnknownValueError

LEVELS = ("advisory", "mandatory", "disabled")
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    schema: Mapping[str, Any]  # JSON Schema of the value (also the policy pack's config schema)


@dataclass(frozen=True)
class Violation:
    rule: str
    enforcement: str
    urn: str
    message: str
    stack: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "enforcement": self.enforcement,
            "urn": self.urn,
            "message": self.message,
        }


@dataclass(frozen=True)
class Skipped:
    rule: str
    urn: str
    reason: str


class Rule:
    id: str = ""
    category: str = ""
    description: str = ""  # what the rule requires, one sentence
    why: str = ""  # what goes wrong without it
    severity: str = "high"
    enforcement: str = "mandatory"  # default level; policy config may override
    params: tuple[Param, ...] = ()
    cross_stack: bool = False

    def check(self, ctx: Context) -> None:  # pragma: no cover - every rule overrides one hook
        pass

    def check_stacks(self, ctx: Context) -> None:
        pass

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def __repr__(self) -> str:
        return f"<Rule {self.id}>"


class Context:
    """What a rule sees: the stack (or stacks), its parameters, and where to report."""

    def __init__(
        self,
        rule: Rule,
        params: Mapping[str, Any],
        view: StackView | None,
        views: Sequence[StackView],
    ):
        self.rule = rule
        self.params = params
        self._view = view
        self.views = list(views)
        self.found: list[tuple[str, str, str]] = []  # (urn, message, stack)
        self.skipped: list[Skipped] = []

    @property
    def view(self) -> StackView:
        """The stack ``check`` looks at. ``check_stacks`` has one only under a policy pack (which
        sees one stack at a time), so a rule reads ``views`` there."""
        if self._view is None:
            raise RuntimeError(f"rule {self.rule.id}: no single stack here; read ctx.views")
        return self._view

    @view.setter
    def view(self, view: StackView | None) -> None:
        self._view = view

    def __getitem__(self, param: str) -> Any:
        return self.params[param]

    def report(self, where: Resource | str | StackView | None, message: str) -> None:
        if isinstance(where, Resource):
            urn, stack = where.urn, where.stack
        elif isinstance(where, StackView):
            urn, stack = where.stack_urn, where.stack
        elif isinstance(where, str):
            urn, stack = where, (self._view.stack if self._view else "")
        else:
            view = self._view or (self.views[0] if self.views else None)
            urn, stack = (view.stack_urn, view.stack) if view else ("", "")
        self.found.append((urn, message, stack))

    def guard(self, resource: Resource | str | None = None) -> _Guard:
        """``with ctx.guard(r): ...``: an unknown preview value skips the block and is recorded."""
        return _Guard(self, resource)


class _Guard:
    def __init__(self, ctx: Context, resource: Resource | str | None):
        self.ctx, self.resource = ctx, resource

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is not None and issubclass(kind, UnknownValueError):
            urn = (
                self.resource.urn if isinstance(self.resource, Resource) else (self.resource or "")
            )
            self.ctx.skipped.append(Skipped(self.ctx.rule.id, urn, str(exc)))
            return True
        return False


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement == "advisory"]


def run_rule(
    rule: Rule,
    params: Mapping[str, Any],
    views: Sequence[StackView],
    single: StackView | None = None,
) -> Context:
    """Run one rule: ``check`` on each view, then ``check_stacks`` over all of them.

    An UnknownValueError a rule did not guard ends that hook for that view only (recorded as
    skipped).
    """
    views = list(views)
    for view in views:
        view.peers = views
    ctx = Context(rule, params, None, views)
    for view in views:
        ctx.view = view
        _call(ctx, rule.check, view.stack_urn)
    ctx.view = single
    if rule.cross_stack:
        _call(ctx, rule.check_stacks, "")
    return ctx


def _call(ctx: Context, hook, where: str) -> None:
    try:
        hook(ctx)
    except UnknownValueError as exc:
        ctx.skipped.append(Skipped(ctx.rule.id, where, str(exc)))


def evaluate(
    views: Sequence[StackView], config: ResolvedLike, rules: Iterable[Rule] | None = None
) -> Report:
    """Every enabled rule over ``views``; violations carry the level ``config`` gives the rule."""
    from policies.rules import ALL_RULES

    report = Report(stacks=[v.stack for v in views])
    for rule in rules if rules is not None else ALL_RULES:
        level = config.level(rule)
        if level == "disabled":
            continue
        report.rules.append(rule.id)
        ctx = run_rule(rule, config.params(rule), views)
        seen = set()
        for urn, message, stack in ctx.found:
            if (urn, message) in seen:
                continue
            seen.add((urn, message))
            report.violations.append(Violation(rule.id, level, urn, message, stack))
        report.skipped.extend(ctx.skipped)
    report.violations.sort(key=lambda v: (v.stack, v.rule, v.urn, v.message))
    return report


class ResolvedLike(Protocol):  # pragma: no cover - a type, never instantiated
    """What `evaluate` needs of a configuration (policies.config.PolicyConfig is the real one)."""

    def level(self, rule: Rule) -> str: ...

    def params(self, rule: Rule) -> Mapping[str, Any]: ...
