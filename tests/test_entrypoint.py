"""`pulumi up` runs infra/__main__.py as a script (Pulumi.yaml `main: infra/`); it must declare
exactly what `rtdi plan` declares, since the plan is how we see what `pulumi up` would do."""

from __future__ import annotations

import runpy

import yaml
from plantools import ROOT, sample_config

from infra.plan.engine import run_entry, run_stack
from infra.program import main


def test_pulumi_yaml_points_at_the_program():
    meta = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert meta["name"] == "rtdi" and meta["runtime"]["name"] == "python"
    assert meta["main"] == "infra/" and meta["stackConfigDir"] == "stacks"
    assert (ROOT / meta["main"] / "__main__.py").is_file()


def test_script_entry_point_declares_what_the_plan_declares(plans):
    global_values = plans["global"].values
    cfg = sample_config("onprem-dc1")
    as_script = run_entry(
        cfg,
        lambda: runpy.run_path(str(ROOT / "infra"), run_name="__main__"),
        {"global": global_values},
    )
    as_plan = run_stack(sample_config("onprem-dc1"), main, {"global": global_values})
    assert len(as_script.resources) > 40
    assert [r.urn for r in as_script.resources] == [r.urn for r in as_plan.resources]
    assert [r.inputs for r in as_script.resources] == [r.inputs for r in as_plan.resources]
    assert as_script.outputs == as_plan.outputs
