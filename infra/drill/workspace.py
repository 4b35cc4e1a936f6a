"""The one interface a DR drill drives stacks through, and its implementation over the offline plan.

A drill's Pulumi side is four operations on named stacks: select one, set a config value (a
config path, as `pulumi config set --path`), bring it up, read its outputs. ``Workspace`` is that
and nothing more, so the step runner cannot tell the real engine (``infra.drill.automation``,
Pulumi's Automation API) from ``PlanWorkspace``, which answers from the offline plan: tests run
the drill's steps against it and assert each step's outcome without a cloud.

``PlanWorkspace`` keeps what the engine keeps: per stack, what its last `up` applied. A regional
stack's `up` reads the global stack and its peers as they were last brought up (their
StackReferences), never as their files now say, so a step run out of order shows it: bringing
up the new primary before the global stack leaves its active-passive jobs suspended, as
`pulumi up` would.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Protocol

from infra.plan import Project, StackPlan, validate
from infra.plan.engine import run_stack
from infra.topology.errors import ConfigError, Issue


class Workspace(Protocol):
    def select(self, stack: str) -> None:
        """Make ``stack`` current; it must exist (a drill works on deployed stacks)."""

    def set_config(self, stack: str, key: str, value: str) -> None:
        """Set the config path ``key`` (``rtdi:topology.primary``) of ``stack`` to ``value``."""

    def up(self, stack: str) -> dict[str, Any]:
        """Bring ``stack`` up with its config; return its outputs (secrets as ``[secret]``)."""

    def outputs(self, stack: str) -> dict[str, Any]:
        """What ``stack``'s last `up` exported (secrets as ``[secret]``)."""


_PATH_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def split_key(key: str) -> tuple[str, list[str | int]]:
    """``rtdi:topology.regions[0].name`` -> (``rtdi:topology``, ["regions", 0, "name"]), the way
    `pulumi config set --path` reads a key: the first segment (with its namespace) is the config
    key, the rest a path into its structured value."""
    namespace, sep, rest = key.partition(":")
    if not sep or not rest:
        raise ValueError(f"a config key is namespace:name, not {key!r}")
    parts: list[str | int] = []
    pos = 0
    while pos < len(rest):
        m = _PATH_PART.match(rest, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot read the config path {key!r}")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    head = parts[0]
    if not isinstance(head, str):
        raise ValueError(f"a config key starts with a name, not an index: {key!r}")
    return f"{namespace}:{head}", parts[1:]


class PlanWorkspace:
    """A Workspace over the offline plan: ``deployed`` is what each stack's last `up` applied
    (e.g. the converged ``plan_stacks`` of every stack); config set here is laid over the stack
    files, as `pulumi config set` would write it, without editing them."""

    def __init__(self, project: Project, deployed: dict[str, StackPlan]):
        self.project = Project(project.root, project.stacks_dir, copy.deepcopy(project.extra))
        self.deployed = dict(deployed)
        self.current: str | None = None
        self.ups: list[str] = []  # every stack brought up, in order: what a step did

    def select(self, stack: str) -> None:
        if stack not in self.deployed:
            raise ConfigError(
                [Issue("workspace", "", f"no stack named {stack!r} is deployed", stack)]
            )
        self.current = stack

    def set_config(self, stack: str, key: str, value: str) -> None:
        self.select(stack)
        top, path = split_key(key)
        if not path:
            self.project.extra.setdefault(stack, {})[top] = value
            return
        raw = self.project.read(stack).values.get(top)
        doc: Any = json.loads(raw) if raw else {}
        node = doc
        for part, following in zip(path, [*path[1:], None], strict=True):
            if following is None:
                node[part] = value
            else:
                if isinstance(node, dict):
                    node = node.setdefault(part, [] if isinstance(following, int) else {})
                else:
                    node = node[part]
        self.project.extra.setdefault(stack, {})[top] = json.dumps(doc)

    def up(self, stack: str) -> dict[str, Any]:
        """Run the program as the stack, reading the other stacks' last applied outputs; bad
        config raises ConfigError, as `pulumi up` fails before it changes anything."""
        from infra.plan import _as_read
        from infra.program import main

        self.select(stack)
        cfg = validate(self.project, [stack])[stack].config
        read: dict[str, dict[str, Any]] = {
            name: _as_read(plan) for name, plan in self.deployed.items() if name != stack
        }
        plan = run_stack(cfg, main, read)
        self.deployed[stack] = plan
        self.ups.append(stack)
        return copy.deepcopy(plan.outputs)

    def outputs(self, stack: str) -> dict[str, Any]:
        self.select(stack)
        return copy.deepcopy(self.deployed[stack].outputs)


def without_nulls(value: Any) -> Any:
    """``value`` with the null-valued keys of every mapping left out: how a step compares what a
    Workspace reports with what the plan expects. The engine keeps a null inside an output
    (``kafkaFederation``'s bootstrap of a region whose stack it has not read) where the offline
    plan's outputs leave the key out; both mean "not known here"."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def meets(outputs: dict[str, Any], expect: dict[str, Any]) -> bool:
    """Whether a stack's ``outputs`` hold every expected top-level output (``Step.expect``)."""
    return all(
        key in outputs and without_nulls(outputs[key]) == without_nulls(value)
        for key, value in expect.items()
    )
