"""`rtdi drill plan` and the plan-backed Workspace (issue 11, items 1 and 4's workspace).

The drill's plan is worked out from the sample stacks' own plans (the session's `plans`) and the
same stacks planned with the primary flipped over the global stack file; the Workspace tests run
its steps through `PlanWorkspace` and assert, after each, what the stacks export.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from plantools import ROOT, STACK_NAMES

OLD, NEW = "aws-us-east-1", "gcp-europe-west4"
OTHERS = ["aws-eu-west-1", "onprem-dc1"]


def run_cli(argv: list[str], cwd: Path = ROOT) -> tuple[int, str, str]:
    from infra.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def drill(plans):
    from infra.drill.plan import plan_drill
    from infra.plan import Project

    return plan_drill(Project.find(ROOT), NEW, before=plans)


def test_the_steps_in_the_order_a_flip_needs(drill):
    from infra.drill.plan import PRIMARY_KEY, STEPS, ConfigSet

    assert [s.name for s in drill.steps] == list(STEPS)
    assert (drill.source, drill.target, drill.global_stack) == (OLD, NEW, "global")
    # The global stack first: regional stacks read the primary from its applied outputs.
    assert drill.step("flip").config == [ConfigSet("global", PRIMARY_KEY, NEW)]
    assert drill.step("flip").stacks == ["global"]
    assert drill.step("demote").stacks == [OLD]
    assert drill.step("promote").stacks == [NEW, *OTHERS]
    for name in ("preflight", "sync-offsets", "verify"):
        assert drill.step(name).stacks == [] and drill.step(name).config == []
    ups = [s for step in drill.steps for s in step.stacks]
    assert sorted(ups) == STACK_NAMES  # every stack once


def test_the_active_passive_groups_are_the_marked_groups_and_the_jobs(drill, plans):
    from infra.drill.groups import ActivePassiveGroup, active_passive_groups
    from infra.topology.jobs import load_jobs
    from infra.topology.model import Kafka, Topology

    assert drill.groups == [
        ActivePassiveGroup("flink-payments", ("payment-events",), "payments"),
        # Marked `mode: active-passive` in the global stack's topics (the offset sync's groups).
        ActivePassiveGroup("ledger-writer", ("payment-events",), None),
    ]
    published = plans["global"].outputs["rtdi"]
    topology = Topology.model_validate(published["topology"])
    kafka = Kafka.model_validate(published["kafka"])
    jobs = load_jobs(topology, kafka)
    assert {j.name: j.mode for j in jobs} == {
        "payments": "active-passive",
        "surge-pricing": "all-active",
    }
    # Made active-passive, surge-pricing's group moves too; all-active, payments' does not.
    swapped = [
        j.model_copy(
            update={"mode": "all-active" if j.mode == "active-passive" else "active-passive"}
        )
        for j in jobs
    ]
    groups = active_passive_groups(topology, kafka, swapped)
    assert [(g.name, g.topics, g.job) for g in groups] == [
        ("flink-surge-pricing", ("trips",), "surge-pricing"),
        ("ledger-writer", ("payment-events",), None),
    ]


def test_each_step_expects_what_the_post_flip_plan_exports(drill):
    flip, demote, promote = (drill.step(n) for n in ("flip", "demote", "promote"))
    assert flip.expect["global"]["primaryRegion"] == NEW
    assert flip.expect["global"]["rtdi"]["topology"]["primary"] == NEW
    assert demote.expect[OLD]["flinkJobs"] == {"payments": "suspended", "surge-pricing": "running"}
    assert demote.expect[OLD]["primary"] is False
    assert promote.expect[NEW]["flinkJobs"] == {"payments": "running", "surge-pricing": "running"}
    assert promote.expect[NEW]["primary"] is True
    for stack in OTHERS:  # only their registry names the new primary
        assert list(promote.expect[stack]) == ["kafkaFederation"]
        assert promote.expect[stack]["kafkaFederation"]["primary"] == NEW
    for step in drill.steps:
        for stack, outputs in step.expect.items():
            assert stack in step.stacks
            assert outputs == {k: drill.after[stack].outputs[k] for k in outputs}


def test_the_diffs_are_rtdi_diffs_of_the_flip(drill):
    """The same diff as `rtdi plan --all --diff` after editing the global stack file (README's
    block, which tests/test_diff_cli.py checks against the real command), in the drill's order."""
    from infra.plan.diff import render_text

    assert [d.stack for d in drill.diffs] == ["global", OLD, NEW, *OTHERS]
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- primary-flip -->\n```\n", 1)[1].split("```", 1)[0]
    by_name = sorted(drill.diffs, key=lambda d: d.stack)
    assert render_text(by_name) + "\n" == block
    old = next(d for d in drill.diffs if d.stack == OLD)
    replaced = [r.name for r in old.changed if r.replace]
    assert replaced == [f"{OLD}-flink-payments"]


def test_preflight_checks_and_their_thresholds(drill, plans):
    from infra.drill.plan import plan_drill
    from infra.plan import Project

    lag = [c for c in drill.checks if c.name == "replication-lag"]
    # Every region's copy of payment-events into the new primary's aggregate, the old one's first.
    assert [c.what.split(":")[0] for c in lag] == [
        f"{r}.payment-events" for r in [OLD, "aws-eu-west-1", NEW, "onprem-dc1"]
    ]
    assert all(c.threshold == "at most 1000 (--max-lag)" and c.offline is None for c in lag)
    syncs = [c for c in drill.checks if c.name == "offset-syncs"]
    assert [f"{OLD}'s aggregate" in syncs[0].what, f"{NEW}'s aggregate" in syncs[1].what] == [
        True,
        True,
    ]
    # MirrorMaker 2's offset.lag.max (its default, 100: the plan sets none) bounds the re-reads.
    assert all(c.threshold.startswith("at most 100 records (the mirrors'") for c in syncs)
    policy = drill.checks[-1]
    assert policy.name == "policies" and policy.passed
    assert policy.offline == f"passed: 0 mandatory, {len(drill.report.advisory)} advisory"
    assert not drill.violates
    # Flags set the thresholds.
    other = plan_drill(Project.find(ROOT), NEW, max_lag=5, max_sync_lag=7, before=plans)
    assert {c.threshold for c in other.checks if c.name == "replication-lag"} == {
        "at most 5 (--max-lag)"
    }
    assert all(
        c.threshold.startswith("at most 7 records (--max-sync-lag")
        for c in other.checks
        if c.name == "offset-syncs"
    )


def test_a_mandatory_violation_after_the_flip_exits_1(plans, tmp_path):
    """Images by tag are advisory by default; made mandatory, the post-flip plans violate it."""
    from infra.drill.plan import plan_drill, render_json
    from infra.plan import Project

    config = tmp_path / "policy.yaml"
    config.write_text("images-pinned-by-digest: {enforcementLevel: mandatory}\n")
    drill = plan_drill(Project.find(ROOT), NEW, policy_config=str(config), before=plans)
    assert drill.violates and drill.report.mandatory
    assert {v.rule for v in drill.report.mandatory} == {"images-pinned-by-digest"}
    doc = json.loads(render_json(drill))
    assert doc["violates"] is True and doc["check"]["summary"]["passed"] is False
    assert doc["verdict"].startswith(f"drill to {NEW} REFUSED: policies (FAILED: ")


def test_a_copy_without_offset_syncs_refuses_the_drill(plans):
    """aws-eu-west-1's aggregate is MSK: its own regional copy comes from the MSK Replicator,
    which writes no MirrorMaker 2 offset syncs, so no offset there can be translated."""
    from infra.drill.plan import plan_drill, render_text
    from infra.plan import Project

    drill = plan_drill(Project.find(ROOT), "aws-eu-west-1", before=plans)
    refused = [c for c in drill.checks if not c.passed]
    assert [c.name for c in refused] == ["offset-syncs"]
    assert "MSK Replicator aws-eu-west-1-kafka-replicator-aws-eu-west-1" in refused[0].what
    assert drill.violates and not drill.report.mandatory
    assert render_text(drill).splitlines()[-1].startswith("drill to aws-eu-west-1 REFUSED")


def test_cli_json(tmp_path):
    """The command itself, once: both plans made, JSON out, exit 0."""
    code, out, err = run_cli(["drill", "plan", "--to", NEW, "--format", "json"])
    assert code == 0, err
    doc = json.loads(out)
    assert [s["name"] for s in doc["steps"]] == [
        "preflight",
        "flip",
        "demote",
        "sync-offsets",
        "promote",
        "verify",
    ]
    assert doc["steps"][1]["config"] == [
        {"stack": "global", "key": "rtdi:topology.primary", "value": NEW}
    ]
    assert [d["stack"] for d in doc["diffs"]] == ["global", OLD, NEW, *OTHERS]
    assert doc["groups"] == [
        {"name": "flink-payments", "topics": ["payment-events"], "job": "payments"},
        {"name": "ledger-writer", "topics": ["payment-events"], "job": None},
    ]
    assert doc["violates"] is False and doc["check"]["summary"]["mandatory"] == 0


def test_text_output(drill):
    from infra.drill.plan import render_text

    text = render_text(drill)
    lines = text.splitlines()
    assert lines[0].startswith(f"drill {OLD} -> {NEW} (global stack global;")
    assert f"   $ pulumi config set --stack global --path 'rtdi:topology.primary' {NEW}" in lines
    ups = [line.split()[-1] for line in lines if line.startswith("   $ pulumi up --stack ")]
    assert ups == ["global", OLD, NEW, *OTHERS]
    assert f'   then {OLD} outputs flinkJobs.payments = "suspended", ' in text
    assert lines[-1] == (
        f"drill to {NEW} planned: 6 steps, 5 stack updates, 2 active/passive group(s) moved"
    )


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--to", OLD],
            f"rtdi drill: --to = '{OLD}': already the primary region; allowed: another region "
            f"(aws-eu-west-1, {NEW}, onprem-dc1)",
        ),
        (
            ["--to", "mars"],
            "rtdi drill: --to = 'mars': not a region of the topology of stack global; allowed: "
            f"{OLD}, aws-eu-west-1, {NEW}, onprem-dc1",
        ),
        (
            ["--to", NEW, "--global", "nope"],
            "rtdi drill: --global = 'nope': not a global stack; allowed: global",
        ),
        (
            ["--to", NEW, "--max-lag", "-1"],
            "rtdi drill: --max-lag = -1: a number of records; allowed: 0 or more",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, line):
    code, out, err = run_cli(["drill", "plan", *argv])
    assert (code, out, err) == (2, "", line + "\n")


def test_a_new_primary_without_a_stack_here_is_bad_input(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(ROOT / "stacks", project / "stacks")
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "stacks" / f"Pulumi.{NEW}.yaml").unlink()
    code, out, err = run_cli(["drill", "plan", "--to", NEW], cwd=project)
    assert code == 2 and out == ""
    assert err == (
        f"rtdi drill: --to = '{NEW}': the new primary {NEW} has no stack in stacks reading global, "
        f"and the drill brings it up; allowed: a region with a stack here (aws-eu-west-1, {OLD}, "
        "onprem-dc1)\n"
    )


# --------------------------------------------------------------------------- the Workspace


def running_payments(ws) -> list[str]:
    return [
        s
        for s in STACK_NAMES
        if s != "global" and ws.outputs(s)["flinkJobs"]["payments"] == "running"
    ]


def test_the_drill_through_the_plan_workspace(drill, plans):
    """Each step's config and ups through the Workspace, then what the stacks export: the
    step's `expect`, never two regions running payments, and in the end the post-flip plan."""
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project

    ws = PlanWorkspace(Project.find(ROOT), plans)
    assert running_payments(ws) == [OLD]
    seen = {}
    for step in drill.steps:
        for c in step.config:
            ws.set_config(c.stack, c.key, c.value)
        for stack in step.stacks:
            ws.up(stack)
        for stack, outputs in step.expect.items():
            assert {k: ws.outputs(stack)[k] for k in outputs} == outputs, (step.name, stack)
        seen[step.name] = running_payments(ws)
    assert ws.ups == ["global", OLD, NEW, *OTHERS]
    # Flipped but not demoted: the old primary still runs it; demoted: nobody until promoted.
    assert seen == {
        "preflight": [OLD],
        "flip": [OLD],
        "demote": [],
        "sync-offsets": [],
        "promote": [NEW],
        "verify": [NEW],
    }
    assert ws.outputs("global")["primaryRegion"] == NEW
    for stack in STACK_NAMES:
        done, planned = ws.deployed[stack], drill.after[stack]
        assert [r.as_json() for r in done.resources] == [r.as_json() for r in planned.resources]
        assert done.outputs == planned.outputs


def test_plan_workspace_reads_peers_as_applied_not_as_configured(plans):
    """The new primary brought up before the global stack reads the old primary from the global
    stack's applied outputs, as `pulumi up` would: its payments job stays suspended."""
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project

    ws = PlanWorkspace(Project.find(ROOT), plans)
    ws.set_config("global", "rtdi:topology.primary", NEW)
    assert ws.up(NEW)["flinkJobs"]["payments"] == "suspended"
    assert ws.outputs("global")["primaryRegion"] == OLD
    assert ws.up("global")["primaryRegion"] == NEW
    assert ws.up(NEW)["flinkJobs"]["payments"] == "running"
    # The file is untouched: config set through the workspace lies over it.
    assert "primary: aws-us-east-1" in (ROOT / "stacks" / "Pulumi.global.yaml").read_text()


def test_plan_workspace_refuses_what_pulumi_refuses(plans):
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project
    from infra.topology.errors import ConfigError

    ws = PlanWorkspace(Project.find(ROOT), plans)
    with pytest.raises(ConfigError, match="no stack named 'nowhere' is deployed"):
        ws.select("nowhere")
    ws.set_config("global", "rtdi:topology.primary", "mars")
    with pytest.raises(ConfigError, match="primary"):
        ws.up("global")
    assert ws.outputs("global")["primaryRegion"] == OLD  # nothing applied


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("rtdi:topology.primary", ("rtdi:topology", ["primary"])),
        ("rtdi:topology.regions[1].name", ("rtdi:topology", ["regions", 1, "name"])),
        ("rtdi:cloud", ("rtdi:cloud", [])),
    ],
)
def test_config_paths_read_as_pulumi_reads_them(key, expected):
    from infra.drill.workspace import split_key

    assert split_key(key) == expected


def test_config_path_into_a_list(plans):
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project

    ws = PlanWorkspace(Project.find(ROOT), plans)
    ws.set_config("global", "rtdi:topology.regions[3].jurisdiction", "eu")
    topology = json.loads(ws.project.read("global").values["rtdi:topology"])
    assert [r["jurisdiction"] for r in topology["regions"]] == ["us", "eu", "eu", "eu"]


def test_readme_shows_the_real_drill_plan(drill):
    from infra.drill.plan import render_text

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- drill-plan -->\n```\n", 1)[1].split("```", 1)[0]
    shown = render_text(drill).split("\npreflight checks:")[0].rstrip("\n") + "\n"
    assert block == shown
    assert f"first {len(shown.splitlines())} lines" in readme


# --------------------------------------------------------------------------- the step runner


def test_the_pulumi_steps_of_the_runner(drill, plans):
    """flip, demote and promote as the runner runs them: config, ups, each stack checked against
    the step's expect; the Kafka steps are not among them (not built)."""
    from infra.drill.run import Context, demote, flip, promote, run_steps
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project

    ws = PlanWorkspace(Project.find(ROOT), plans)
    # The jobs' groups only: stopping a plain group (ledger-writer) needs the Kafka side.
    ctx = Context(_jobs_only(drill), ws)
    results = run_steps(ctx, [flip, demote, promote])
    assert [(r.name, r.status) for r in results] == [
        ("flip", "done"),
        ("demote", "done"),
        ("promote", "done"),
    ]
    assert ctx.upped == ws.ups == ["global", OLD, NEW, *OTHERS]
    assert running_payments(ws) == [NEW]


def test_an_abort_after_the_flip_leaves_the_old_primary_serving(drill, plans):
    """The old primary's `up` refused (bad config, as `pulumi up` refuses it): the runner sets
    the global stack's primary back and brings it up; payments still runs in the old primary."""
    from infra.drill.run import Context, demote, flip, run_steps
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project

    ws = PlanWorkspace(Project.find(ROOT), plans)
    ws.set_config(OLD, "rtdi:kubernetes.nodesPerZone", "three")
    results = run_steps(Context(_jobs_only(drill), ws), [flip, demote])
    assert [(r.name, r.status) for r in results] == [
        ("flip", "done"),
        ("demote", "failed"),
        ("rollback", "rolled back"),
    ]
    assert "nodesPerZone" in results[1].detail
    assert ws.ups == ["global", "global"]
    assert ws.outputs("global")["primaryRegion"] == OLD
    assert ws.outputs(OLD)["primary"] is True
    assert running_payments(ws) == [OLD]


def test_without_a_kafka_side_the_drill_stops_and_the_old_primary_serves(drill, plans):
    """Without a KafkaSide, the dry run stops in preflight before touching a stack, and a run
    past the demotion stops at sync-offsets and rolls back: the old primary runs payments again
    (the abort rule of infra/drill/run.py; tests/test_drill_run.py covers every step)."""
    from infra.drill.run import Context, demote, flip, run_drill, run_steps, sync_offsets
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project

    ws = PlanWorkspace(Project.find(ROOT), plans)
    report = run_drill(drill, ws, None, dry_run=True)
    assert [(r.name, r.status) for r in report.steps] == [("preflight", "failed")]
    assert report.steps[0].detail == (
        "preflight needs Kafka clients of the aggregates, which are not built"
    )
    assert (report.outcome, report.exit_code, ws.ups) == ("stopped", 1, [])
    # A plain group to stop: demote asks for the Kafka side before any regional stack changes,
    # so the drill rolls back and the old primary keeps serving.
    results = run_steps(Context(drill, ws), [flip, demote])
    assert [(r.name, r.status) for r in results] == [
        ("flip", "done"),
        ("demote", "failed"),
        ("rollback", "rolled back"),
    ]
    assert running_payments(ws) == [OLD]
    # Only the jobs' groups: demote is Pulumi's alone; the run stops at sync-offsets, and the
    # rollback brings the old primary up again.
    ws = PlanWorkspace(Project.find(ROOT), plans)
    results = run_steps(Context(_jobs_only(drill), ws), [flip, demote, sync_offsets])
    assert [(r.name, r.status) for r in results] == [
        ("flip", "done"),
        ("demote", "done"),
        ("sync-offsets", "failed"),
        ("rollback", "rolled back"),
        ("rollback", "rolled back"),
    ]
    assert ws.ups == ["global", OLD, "global", OLD]
    assert running_payments(ws) == [OLD]


def _jobs_only(drill):
    import dataclasses

    return dataclasses.replace(drill, groups=[g for g in drill.groups if g.job is not None])


def test_a_refused_plan_is_not_run(drill, plans):
    import dataclasses

    from infra.drill.plan import Check
    from infra.drill.run import run_drill
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project
    from infra.topology.errors import ConfigError

    refused = dataclasses.replace(
        drill, checks=[*drill.checks, Check("offset-syncs", "x", "y", "no syncs", passed=False)]
    )
    ws = PlanWorkspace(Project.find(ROOT), plans)
    with pytest.raises(ConfigError, match="the drill plan is refused"):
        run_drill(refused, ws, None)
    assert ws.ups == []


def test_a_region_an_active_passive_job_does_not_run_in_is_bad_input(tmp_path, monkeypatch):
    import infra.topology.jobs as jobs_module

    jobs = tmp_path / "jobs" / "flink"
    shutil.copytree(ROOT / "jobs" / "flink", jobs)
    spec = jobs / "payments.yaml"
    spec.write_text(spec.read_text() + f"regions: [{OLD}, aws-eu-west-1]\n")
    monkeypatch.setattr(jobs_module, "JOBS_DIR", jobs)
    code, out, err = run_cli(["drill", "plan", "--to", NEW])
    assert (code, out) == (2, "")
    assert err == (
        f"rtdi drill: --to = '{NEW}': the active-passive job payments does not run there, and "
        f"it follows the primary; allowed: one of its regions ({OLD}, aws-eu-west-1)\n"
    )
