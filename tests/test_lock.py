"""The locks are the reproducible install: every dependency of pyproject.toml at one exact version
with hashes, the runtime lock (what `pulumi install` installs) agreeing with the dev lock (what
`make` installs), and the virtualenv the tests run in built from it. `make lock` rewrites them."""

from __future__ import annotations

import importlib.metadata
import subprocess
import tomllib

from locks import DEV_LOCK, RUNTIME_LOCK, expected_versions, read_lock
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from plantools import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PYPROJECT["dependencies"]]
DEV = [Requirement(r) for r in PYPROJECT["optional-dependencies"]["dev"]]


def test_every_pin_is_exact_and_hashed():
    for lock in (RUNTIME_LOCK, DEV_LOCK):
        pins = read_lock(lock)
        assert len(pins) > 30, lock.name
        unhashed = sorted(p.name for ps in pins.values() for p in ps if not p.hashes)
        assert unhashed == [], f"{lock.name}: pins without hashes (pip would refuse the file)"


def test_each_lock_pins_what_pyproject_asks_for():
    for lock, wanted in ((RUNTIME_LOCK, RUNTIME), (DEV_LOCK, RUNTIME + DEV)):
        pins = read_lock(lock)
        for req in wanted:
            name = canonicalize_name(req.name)
            assert name in pins, f"{lock.name} lacks {req}: run `make lock`"
            for pin in pins[name]:
                assert pin.version in req.specifier, f"{lock.name}: {name}=={pin.version} vs {req}"
    # The runtime dependency another change needs, and the lint tools `make lint` runs.
    assert {"ruamel-yaml", "ruff", "mypy"} <= set(read_lock(DEV_LOCK))


def test_runtime_lock_is_the_dev_lock_without_the_dev_tools():
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    for name, pins in runtime.items():
        assert name in dev, f"{name} is in requirements.txt only"
        assert {(p.version, p.hashes) for p in pins} == {(p.version, p.hashes) for p in dev[name]}
    names = {canonicalize_name(r.name) for r in RUNTIME}
    dev_only = {canonicalize_name(r.name) for r in DEV} - names
    assert dev_only and not dev_only & set(runtime), "a deployment does not need the test tools"


def test_this_virtualenv_is_the_dev_lock():
    """The suite runs on exactly the locked versions (make reinstalls when a lock changes)."""
    expected = expected_versions(read_lock(DEV_LOCK), default_environment())
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
    }
    differ = {n: (v, installed.get(n)) for n, v in expected.items() if installed.get(n) != v}
    assert differ == {}, "locked vs installed; rerun make (or make clean) to resync"


def test_make_installs_from_the_lock():
    """`make` on a fresh machine: locked dependencies with hashes, then rtdi without any."""
    dry = subprocess.run(
        ["make", "-n", "-B", ".venv/.installed", "PYTHON=python3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installs = [line for line in dry.splitlines() if " pip install " in line]
    assert len(installs) == 2, dry
    assert "--require-hashes -r requirements-dev.txt" in installs[0]
    assert "--no-deps" in installs[1] and installs[1].endswith("-e .")
