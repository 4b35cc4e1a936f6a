"""The real Pulumi CLI for tests: ../shared/pulumi unpacked in .cache/pulumi, or one on PATH.

Tests that need the engine itself (``pulumi install``, ``pulumi config --json``, ``pulumi up`` of
the global stack, StackReferences between stacks) call `pulumi_cli()`. It skips only where neither
../shared/pulumi nor a `pulumi` on PATH exists, and fails instead when CI is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from plantools import ROOT, SHARED

CACHE = ROOT / ".cache" / "pulumi"
INSTALL = SHARED / "pulumi" / "install.sh"
PASSPHRASE = "rtdi-tests"


def _failed(stdout: str) -> str:
    """What a failed `pulumi up` printed that says why: its diagnostics (before the outputs,
    which can be long enough to push them out of a tail), else the tail."""
    start = stdout.find("Diagnostics:")
    if start < 0:
        return stdout[-4000:]
    end = stdout.find("Outputs:", start)
    return stdout[start : end if end > 0 else start + 4000][:4000]


@dataclass(frozen=True)
class PulumiCli:
    """A Pulumi CLI and the environment it runs in; state and home under ``home``."""

    env: dict[str, str]
    home: Path

    def run(self, *args: str, cwd: Path, check: bool = True, timeout: float = 300, **kw):
        proc = subprocess.run(
            ["pulumi", *args, "--non-interactive"],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{_failed(proc.stdout)}\nstderr:\n{proc.stderr[-4000:]}"
            )
        return proc


def _shared_env(dest: Path) -> dict[str, str]:
    """Run install.sh and apply the `export` lines it prints to a copy of this environment."""
    out = subprocess.run(
        ["bash", str(INSTALL), str(dest)], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        if not line.startswith("export "):
            continue
        key, _, value = line[len("export ") :].partition("=")
        value = value.strip('"')
        value = value.replace("$PATH", env.get("PATH", "")).replace(
            "${PULUMI_CONFIG_PASSPHRASE:-rtdi-local}", PASSPHRASE
        )
        env[key] = value
    return env


def pulumi_cli(state: Path, env: dict[str, str] | None = None) -> PulumiCli:
    """A CLI whose local backend lives in ``state`` (a fresh folder per test or module)."""
    env = dict(os.environ if env is None else env)
    if INSTALL.is_file():
        run_env = _shared_env(CACHE)
    elif shutil.which("pulumi"):
        run_env = dict(os.environ)
    elif env.get("CI"):
        pytest.fail(
            f"neither {INSTALL.parent} nor a pulumi on PATH, but CI is set: CI must have the CLI",
            pytrace=False,
        )
    else:
        pytest.skip("no Pulumi CLI: neither ../shared/pulumi nor a pulumi on PATH")
    state.mkdir(parents=True, exist_ok=True)
    home = state / "home"
    home.mkdir(exist_ok=True)
    run_env.update(
        {
            "PULUMI_BACKEND_URL": f"file://{state}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "1",
        }
    )
    # Plugins (random, tls, the language host) come from PATH; keep PULUMI_HOME shared so the CLI
    # does not try to download what it already has.
    run_env.setdefault("PULUMI_HOME", str(home))
    return PulumiCli(run_env, state)
