"""Read another stack's outputs without failing the update when that stack is not there yet.

A `pulumi.StackReference` to a stack that does not exist fails the engine's update, and nothing in
the program can catch that: a first deployment, where every regional stack reads the others,
could then never start. The engine's builtin invoke `pulumi:pulumi:readStackOutputs` (the same
lookup a StackReference does, see pulumi/pulumi pkg/resource/deploy/builtins.go) instead returns
an error the program receives and can handle, so a missing peer becomes a pending flow and a
warning, not a failed update. Its answer lists which outputs are secret; `StackOutputs.output`
keeps those secret. tests/test_first_deployment.py checks all of this against the real CLI.

The offline plan's mocks (infra/plan/mocks.py) answer this invoke exactly as the engine does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import invoke_async

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
# What the engine says when the stack does not exist (local backend: `unknown stack "o/p/s"`).
_MISSING = re.compile(r"unknown stack|stack .* not found|no stack named", re.IGNORECASE)

MISSING_STACK = "stack does not exist yet"


def no_output(name: str) -> str:
    return f"stack has no output {name} yet"


@dataclass(frozen=True)
class StackOutputs:
    """What a stack exported when it was read; ``exists`` is False for a stack not created yet."""

    name: str
    exists: bool
    values: dict[str, Any] = field(default_factory=dict)
    secret_names: frozenset[str] = frozenset()

    @property
    def short_name(self) -> str:
        """The stack's name without organisation and project: what `pulumi up -s` takes."""
        return self.name.rsplit("/", 1)[-1]

    def missing(self, output: str) -> str | None:
        """Why ``output`` cannot be read yet, in words; None when it can."""
        if not self.exists:
            return MISSING_STACK
        if self.values.get(output) is None:
            return no_output(output)
        return None

    def output(self, name: str) -> pulumi.Output:
        """The output as a Pulumi Output, secret when the stack exported it as a secret."""
        value = pulumi.Output.from_input(self.values.get(name))
        return pulumi.Output.secret(value) if name in self.secret_names else value


async def read_stack_outputs(name: str) -> StackOutputs:
    """Read stack ``name`` (`org/project/stack`); a stack that does not exist is reported, not
    fatal. Any other failure (no access, a broken backend) is raised: it is not a first deployment.
    """
    try:
        result = await invoke_async(READ_STACK_OUTPUTS, {"name": name})
    except Exception as exc:
        if _MISSING.search(str(exc)):
            return StackOutputs(name, exists=False)
        raise
    result = result or {}
    return StackOutputs(
        name,
        exists=True,
        values=dict(result.get("outputs") or {}),
        secret_names=frozenset(result.get("secretOutputNames") or ()),
    )
