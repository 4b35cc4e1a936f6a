"""The real Workspace: Pulumi's Automation API over the project folder (the only code of rtdi
that imports ``pulumi.automation``, and the only part of a drill that needs the Pulumi CLI).

It runs the project as `pulumi up` does, from its folder: the program, the stack files under
``stackConfigDir`` and the backend the environment names (``PULUMI_BACKEND_URL``; a local one in
the tests). Config is set with ``path=True``, as `pulumi config set --path`, so the stack file
gets the change a person would have made; the drill's own record of it is that file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi.automation as auto

from infra.plan.engine import SECRET


class PulumiWorkspace:
    """``Workspace`` over `pulumi` for the project in ``work_dir``.

    ``env``: variables for every `pulumi` command (backend, passphrase, PATH to the CLI and its
    plugins); the CLI is the ``pulumi`` found on that PATH. ``on_output``: each line `pulumi up`
    prints (the runner logs them)."""

    def __init__(
        self,
        work_dir: Path,
        env: Mapping[str, str] | None = None,
        on_output: Callable[[str], Any] | None = None,
    ):
        env = dict(env or {})
        found = shutil.which("pulumi", path=env.get("PATH"))
        command = auto.PulumiCommand(str(Path(found).parent.parent)) if found else None
        self.workspace = auto.LocalWorkspace(
            work_dir=str(work_dir), env_vars=env, pulumi_command=command
        )
        self.on_output = on_output
        self._stacks: dict[str, auto.Stack] = {}

    def _stack(self, stack: str) -> auto.Stack:
        if stack not in self._stacks:
            self._stacks[stack] = auto.Stack.select(stack, self.workspace)
        return self._stacks[stack]

    def select(self, stack: str) -> None:
        self.workspace.select_stack(self._stack(stack).name)

    def set_config(self, stack: str, key: str, value: str) -> None:
        self._stack(stack).set_config(key, auto.ConfigValue(value), path=True)

    def up(self, stack: str) -> dict[str, Any]:
        result = self._stack(stack).up(on_output=self.on_output, suppress_progress=True)
        return _plain(result.outputs)

    def outputs(self, stack: str) -> dict[str, Any]:
        return _plain(self._stack(stack).outputs())


def _plain(outputs: Mapping[str, auto.OutputValue]) -> dict[str, Any]:
    """Output values, a secret one as ``[secret]``: what the offline plan shows for it."""
    return {k: SECRET if v.secret else v.value for k, v in outputs.items()}
