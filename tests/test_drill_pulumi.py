"""The real Workspace (Pulumi's Automation API) drives the drill's flip of the global stack.

A copy of the tracked files on a local backend, with the real CLI (tests/pulumi_cli.py: skipped
only without ../shared/pulumi or a pulumi on PATH, failing in CI): the global stack brought up,
then the drill's `flip` step through `PulumiWorkspace` exactly as the plan lists it (config set,
up), and what the engine applied compared with the offline plan of the flipped global stack.
The program runs from this checkout's virtualenv (linked into the copy): test_deploy.py proves
that `pulumi install` makes an equal one.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from test_deploy import fresh_copy

from plantools import ROOT
from pulumi_cli import pulumi_cli

NEW = "gcp-europe-west4"


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    cli = pulumi_cli(tmp_path_factory.mktemp("drill-state"))
    copy = fresh_copy(tmp_path_factory.mktemp("drill-project"))
    (copy / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    cli.run("stack", "init", "global", cwd=copy)
    return copy, cli


def secrets(cli, copy) -> dict:
    out = cli.run("stack", "output", "--json", "--show-secrets", "-s", "global", cwd=copy)
    return json.loads(out.stdout)


def test_the_flip_through_pulumi_automation(project_copy, plans):
    from infra.drill.automation import PulumiWorkspace
    from infra.drill.plan import flipped, plan_drill
    from infra.drill.workspace import meets, without_nulls
    from infra.plan import Project, plan_stacks

    copy, cli = project_copy
    lines: list[str] = []
    ws = PulumiWorkspace(copy, env=cli.env, on_output=lines.append)
    ws.select("global")
    started = time.monotonic()
    before = ws.up("global")
    assert before["primaryRegion"] == "aws-us-east-1"
    assert before["rtdi"] == plans["global"].outputs["rtdi"]
    mesh = secrets(cli, copy)["kafkaMesh"]

    # The flip step as `rtdi drill plan` lists it, driven through the Workspace.
    drill = plan_drill(Project.find(ROOT), NEW, before=plans)
    flip = drill.step("flip")
    assert flip.stacks == ["global"]
    for c in flip.config:
        ws.set_config(c.stack, c.key, c.value)
    after = ws.up("global")
    took = time.monotonic() - started

    # What the engine applied is the offline plan of the flipped stack, output by output.
    planned = plan_stacks(flipped(Project.find(ROOT), "global", NEW), ["global"])["global"]
    assert sorted(after) == sorted(planned.outputs)
    for key in ("primaryRegion", "rtdi", "kafkaFederation"):
        assert without_nulls(after[key]) == planned.outputs[key], key
    # Only where the plan leaves a key out does the engine hold a null (see without_nulls).
    assert after["kafkaFederation"] != without_nulls(after["kafkaFederation"])
    assert after["kafkaMesh"] == "[secret]"
    assert secrets(cli, copy)["kafkaMesh"] == mesh  # minted once: the flip keeps the mesh CA
    assert meets(after, flip.expect["global"])
    assert not meets(before, flip.expect["global"])
    assert ws.outputs("global") == after
    # The stack file holds the change, as `pulumi config set --path` writes it.
    config = yaml.safe_load((copy / "stacks" / "Pulumi.global.yaml").read_text())["config"]
    assert config["rtdi:topology"]["primary"] == NEW
    assert (
        config["rtdi:topology"]["regions"]
        == yaml.safe_load((ROOT / "stacks" / "Pulumi.global.yaml").read_text())["config"][
            "rtdi:topology"
        ]["regions"]
    )
    # The flip updated only outputs: nothing replaced or created (the mesh CA and the mirror
    # passwords stay), which `pulumi up` reports on its summary line.
    assert any("14 unchanged" in line for line in lines), lines[-10:]
    assert took < 300
