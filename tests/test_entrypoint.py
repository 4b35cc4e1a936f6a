"""`pulumi up` runs the root __main__.py (Pulumi.yaml has no `main`, so the project root is the
program directory, where Pulumi's pip toolchain also finds requirements.txt). It must declare
exactly what `rtdi plan` declares, since the plan is how we see what `pulumi up` would do."""

from __future__ import annotations

import runpy

import yaml

from infra.plan.engine import run_entry, run_stack
from infra.program import main
from plantools import ROOT, sample_config


def test_pulumi_yaml_points_at_the_program_and_the_lock():
    meta = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert meta["name"] == "rtdi" and meta["runtime"]["name"] == "python"
    assert meta["stackConfigDir"] == "stacks"
    # The pip toolchain reads requirements.txt from, and runs pip in, the program directory (`main`,
    # default the root); the virtualenv is relative to the root.
    program_dir = ROOT / meta.get("main", ".")
    assert program_dir.resolve() == ROOT
    assert (program_dir / "__main__.py").is_file() and (program_dir / "requirements.txt").is_file()
    options = meta["runtime"]["options"]
    assert options["toolchain"] == "pip"
    venv = (ROOT / options["virtualenv"]).resolve()
    # The policy pack runs in the same virtualenv, and installs the same lock if it makes it.
    pack = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert (ROOT / "policies" / pack["runtime"]["options"]["virtualenv"]).resolve() == venv
    pack_reqs = (ROOT / "policies" / "requirements.txt").read_text().splitlines()
    assert [r for r in pack_reqs if r and not r.startswith("#")] == ["-r ../requirements.txt"]


def test_script_entry_point_declares_what_the_plan_declares(plans):
    global_values = plans["global"].values
    cfg = sample_config("onprem-dc1")
    as_script = run_entry(
        cfg,
        lambda: runpy.run_path(str(ROOT), run_name="__main__"),
        {"global": global_values},
    )
    as_plan = run_stack(sample_config("onprem-dc1"), main, {"global": global_values})
    assert len(as_script.resources) > 40
    assert [r.urn for r in as_script.resources] == [r.urn for r in as_plan.resources]
    assert [r.inputs for r in as_script.resources] == [r.inputs for r in as_plan.resources]
    assert as_script.outputs == as_plan.outputs
