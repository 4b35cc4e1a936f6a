"""``rtdi check``: the rules over offline plans, without a cloud account or the Pulumi CLI.

Either plans the named stacks in process (``rtdi check STACK... | --all``) or reads plans written
earlier (``rtdi check --plan .rtdi/plan``: a plan folder, one stack's folder or its
resources.json). Every rule runs on every stack; cross-stack rules run once over all of them.
Exit status: 0 when no mandatory rule is violated, 1 when one is, 2 on bad input (raised as
ConfigError and printed by ``infra.cli``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.plan.paths import shown
from infra.topology.errors import ConfigError, Issue
from policies import config as policy_config
from policies.engine import Report, Violation, evaluate
from policies.view import STACK_REFERENCE, PlanError, StackView, from_plan

EXIT_OK, EXIT_VIOLATIONS = 0, 1


def load_config(path: str | None) -> policy_config.PolicyConfig:
    if not path:
        return policy_config.PolicyConfig.defaults()
    try:
        return policy_config.load(path)
    except policy_config.PolicyConfigError as exc:
        raise ConfigError([Issue(exc.where, "", exc.message)]) from None


def check_stacks(
    project,
    stacks: Sequence[str],
    config: str | None = None,
    fmt: str = "text",
    progress: Any = None,
) -> int:
    """Plan ``stacks`` offline (with the global stacks they read, for the topology) and check them.

    ``progress``: called per stack while planning and used as a context manager around planning
    (``infra.cli.Progress``), so its line is gone before the report prints.
    """
    from infra.plan import plan_stacks
    from infra.plan.project import validate

    settings = load_config(config)
    wanted = list(dict.fromkeys(stacks))
    readers = validate(project, wanted)
    globals_ = [v.global_stack for v in readers.values() if v.global_stack]
    with progress if progress is not None else contextlib.nullcontext():
        plans = plan_stacks(
            project, wanted + [g for g in globals_ if g not in wanted], progress=progress
        )
    outputs = {name: plan.outputs for name, plan in plans.items()}
    views = [
        from_plan([r.as_json() for r in plans[name].resources], name, plans[name].outputs, outputs)
        for name in wanted
        if name in plans
    ]
    return finish(evaluate(views, settings), fmt)


def check_plans(paths: Sequence[str], config: str | None = None, fmt: str = "text") -> int:
    """Check plans written by ``rtdi plan``: a plan root (every ``<stack>/resources.json`` in it),
    one stack's folder, or its resources.json."""
    settings = load_config(config)
    views = [load_plan(p) for p in expand(paths)]
    # A regional plan whose global stack's outputs were not beside it reads them from a global
    # plan passed too.
    published = next(
        (v.published for v in views if v.published and not v.has_stack_reference), None
    )
    for view in views:
        if view.published is None and view.has_stack_reference and published is not None:
            view.published = published
    return finish(evaluate(views, settings), fmt)


def expand(paths: Sequence[str]) -> list[Path]:
    """Each path as the resources.json files it stands for; a plan root stands for all its stacks
    (``rtdi plan`` writes one, so ``rtdi check --plan .rtdi/plan`` checks what it wrote)."""
    out: list[Path] = []
    for p in map(Path, paths):
        stacks = sorted(p.glob("*/resources.json")) if p.is_dir() else []
        if p.is_dir() and not (p / "resources.json").is_file() and not stacks:
            raise ConfigError(
                [
                    Issue(
                        shown(p),
                        "",
                        "holds no plan (no resources.json, no <stack>/resources.json), so there "
                        "is no stack to check; write plans with `rtdi plan` first",
                    )
                ]
            )
        if p.is_dir() and not (p / "resources.json").is_file():
            out += stacks
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def load_plan(path: Path) -> StackView:
    """A resources.json, its sibling outputs.json, and the outputs of the stacks it references
    (``<plan root>/<stack>/outputs.json``, where ``rtdi plan`` writes them)."""
    resources = path / "resources.json" if path.is_dir() else path
    entries = _read_json(resources, "plan")
    folder = resources.parent
    outputs = (
        _read_json(folder / "outputs.json", "outputs")
        if (folder / "outputs.json").is_file()
        else None
    )
    referenced: dict[str, Any] = {}
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and e.get("type") == STACK_REFERENCE:
            name = str((e.get("inputs") or {}).get("name") or e.get("name") or "").rsplit("/", 1)[
                -1
            ]
            other = folder.parent / name / "outputs.json"
            if name and other.is_file():
                referenced[name] = _read_json(other, "outputs")
    if entries == []:
        # Every stack rtdi plans has at least its root pulumi:pulumi:Stack: an empty list is a
        # truncated or hand-made file, and every rule would pass on it. Bad input, not a verdict.
        raise ConfigError(
            [
                Issue(
                    shown(resources),
                    "",
                    "not an rtdi plan: it lists no resources, not even the stack itself; write "
                    "plans with `rtdi plan`",
                )
            ]
        )
    try:
        return from_plan(entries, _stack_name(entries, folder), outputs, referenced)
    except PlanError as exc:
        raise ConfigError([Issue(shown(resources), "", f"not an rtdi plan: {exc}")]) from None


def _stack_name(entries: Any, folder: Path) -> str:
    from policies.view import stack_of_urn

    for e in entries if isinstance(entries, list) else []:
        if (
            isinstance(e, dict)
            and isinstance(e.get("urn"), str)
            and e["urn"].startswith("urn:pulumi:")
        ):
            return stack_of_urn(e["urn"])
    return folder.name


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            [Issue(shown(path), "", f"no such {what} file; write plans with `rtdi plan` first")]
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            [
                Issue(
                    shown(path),
                    "",
                    "is a folder without resources.json or <stack>/resources.json; "
                    "pass a plan folder or a plan's resources.json",
                )
            ]
        ) from None
    except OSError as exc:
        raise ConfigError(
            [Issue(shown(path), "", f"cannot read the {what} file: {exc.strerror}")]
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [
                Issue(
                    f"{shown(path)}:{exc.lineno}:{exc.colno}",
                    "",
                    f"invalid JSON in the {what} file: {exc.msg}",
                )
            ]
        ) from None


# --------------------------------------------------------------------------- output


def summary(report: Report) -> dict[str, Any]:
    return {
        "stacks": report.stacks,
        "rules": len(report.rules),
        "violations": len(report.violations),
        "mandatory": len(report.mandatory),
        "advisory": len(report.advisory),
        "skipped": len(report.skipped),
        "passed": not report.mandatory,
    }


# At most this many resources are shown for a group of violations in text; JSON lists all.
EXAMPLES = 3
_TOKEN = re.compile(r"(…|[A-Za-z0-9_](?:[\w.\-]*\w)?)")  # "…": a factored-out word


@dataclass
class Group:
    """Violations of one cause: one rule, one level, one message once the words that name the
    resource (words of the resource's own name, such as a topic or cluster name) are factored
    out."""

    rule: str
    enforcement: str
    message: str  # the shared message; words that differ between members shown as '…'
    violations: list[Violation]

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "enforcement": self.enforcement,
            "message": self.message,
            "count": len(self.violations),
            "urns": [v.urn for v in self.violations],
        }


def _parts(message: str) -> list[str]:
    """The message split into words (odd indexes) and what lies between them (even)."""
    return _TOKEN.split(message)


def cause(v: Violation) -> str:
    """The message with each word that is part of the resource's own name (the last part of its
    URN) replaced by '…': what is left is the cause, shared by every resource it applies to."""
    name = v.urn.rsplit("::", 1)[-1]
    parts = _parts(v.message)
    for i in range(1, len(parts), 2):
        word = parts[i]
        if len(word) > 1 and not word.isdigit() and word in name:
            parts[i] = "…"
    return "".join(parts)


def _shared(messages: list[str]) -> str:
    """The members' message, with the words in which they differ shown as '…'."""
    split = [_parts(m) for m in messages]
    if len({len(p) for p in split}) != 1:
        return messages[0]
    return "".join(
        column[0] if len(set(column)) == 1 else "…" for column in zip(*split, strict=True)
    )


def _particular(shared: str, message: str) -> str:
    """What one member's message says where the shared message has '…' (", "-separated), or its
    whole message when the two do not line up; nothing when they are the same."""
    if shared == message:
        return ""
    mine, theirs = _parts(message), _parts(shared)
    if len(mine) != len(theirs):
        return f": {message}"
    return " (" + ", ".join(m for m, t in zip(mine, theirs, strict=True) if t != m) + ")"


def groups(report: Report) -> list[Group]:
    """The violations grouped by cause, in the order their first member is reported."""
    found: dict[tuple[str, str, str], Group] = {}
    for v in report.violations:
        key = (v.rule, v.enforcement, cause(v))
        if key not in found:
            found[key] = Group(v.rule, v.enforcement, v.message, [])
        found[key].violations.append(v)
    for group in found.values():
        group.message = _shared([v.message for v in group.violations])
    return list(found.values())


def render_text(report: Report) -> str:
    """One line per violation, except that violations of one cause are one finding with their
    count and a few example resources: one wrong setting repeated on 136 topics is one line to
    read, not 136 (``--format json`` keeps every violation)."""
    lines: list[str] = []
    for group in groups(report):
        members = group.violations
        if len(members) == 1:
            v = members[0]
            lines.append(f"{v.rule} [{v.enforcement}] {v.urn}: {v.message}")
            continue
        lines.append(
            f"{group.rule} [{group.enforcement}] {len(members)} resources: {group.message}"
        )
        for v in members[:EXAMPLES]:
            lines.append(f"    {v.urn}{_particular(group.message, v.message)}")
        if len(members) > EXAMPLES:
            lines.append(
                f"    ... and {len(members) - EXAMPLES} more (--format json lists every one)"
            )
    plural = "s" if len(report.stacks) != 1 else ""
    stacks = f"{len(report.stacks)} stack{plural} ({', '.join(report.stacks)})"
    if report.violations:
        found = len(groups(report))
        count = len(report.violations)
        levels = f"{len(report.mandatory)} mandatory, {len(report.advisory)} advisory"
        head = f"{count} violation{'s' if count != 1 else ''} ({levels})"
        if found != count:
            head = f"{found} finding{'s' if found != 1 else ''} ({count} violations: {levels})"
    else:
        head = "no violations"
    skipped = (
        f"; {len(report.skipped)} checks skipped on values unknown until deploy"
        if report.skipped
        else ""
    )
    verdict = "FAILED" if report.mandatory else "passed"
    lines.append(f"rtdi check {verdict}: {head} in {stacks}, {len(report.rules)} rules{skipped}")
    return "\n".join(lines)


def render_json(report: Report) -> str:
    """Every violation, plus the groups the text output shows."""
    return json.dumps(
        {
            "violations": [v.as_json() for v in report.violations],
            "groups": [g.as_json() for g in groups(report)],
            "summary": summary(report),
        },
        indent=1,
    )


def finish(report: Report, fmt: str) -> int:
    print(render_json(report) if fmt == "json" else render_text(report))
    return EXIT_VIOLATIONS if report.mandatory else EXIT_OK
