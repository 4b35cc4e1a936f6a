"""Session fixtures: every sample stack is planned once, in process, and shared by all tests."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plantools import ROOT, STACK_NAMES


@pytest.fixture(scope="session")
def project():
    from infra.plan import Project

    return Project.find(ROOT)


@pytest.fixture(scope="session")
def plans(project):
    """Every stack in stacks/, planned once under the mock engine (global first, as `rtdi plan`)."""
    from infra.plan import plan_stacks

    planned = plan_stacks(project, STACK_NAMES)
    assert sorted(planned) == STACK_NAMES
    return planned


@pytest.fixture(scope="session")
def topology(plans):
    """The topology the global stack publishes (what regional stacks read)."""
    from infra.topology.model import Topology

    return Topology.model_validate(plans["global"].outputs["rtdi"]["topology"])


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str
    out: Path


@pytest.fixture(scope="session")
def cli_plan(tmp_path_factory) -> CliRun:
    """``rtdi plan --all --out TMP`` from the repo root, in process, once per session."""
    from infra.cli import main

    out = tmp_path_factory.mktemp("plan")
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["plan", "--all", "--out", str(out)])
    return CliRun(code, stdout.getvalue(), stderr.getvalue(), out)


@pytest.fixture(scope="session")
def target_plans(topology):
    """Each sample regional stack's target alone (make_target + the archive bucket, as the program
    builds it).

    Target tests read these, so what later layers (Kafka, Flink...) add to a region does not blur
    them; invariants that hold for the whole stack are asserted on `plans`.
    """
    from plantools import run_program, sample_config, target_only

    return {
        s: run_program(sample_config(s), target_only, topology)
        for s in STACK_NAMES
        if s != "global"
    }
