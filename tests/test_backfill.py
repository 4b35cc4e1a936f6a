"""Backfill (Kappa+): a bounded re-run of a Flink job, declared from `rtdi:backfills` through the
live job's own declaration, and planned offline by `rtdi backfill`.

The central check generates the live job and its backfill in one plan and diffs them: whatever
differs must be exactly what a backfill changes (bounds, group, sinks, throttle, its own names
and state), so a second code path for the job's logic would show up here.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pulumi
import pytest
import yaml
from test_flink import _edited, _load

from infra.cli import EXIT_BAD_INPUT
from infra.cli import main as cli_main
from infra.components.flink import admission_issues
from infra.components.flink.backfill import (
    FETCH_MAX_BYTES,
    BackfillRun,
    fallback_throttle,
)
from infra.plan import Project, plan_stacks
from infra.topology.errors import ConfigError
from infra.topology.jobs import JOBS_DIR, Job
from infra.topology.model import Backfill
from plantools import ROOT, require_shared, sample_config

FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(hours=6)
END = NOW - timedelta(hours=2)


def _z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _spec(name: str) -> dict:
    return yaml.safe_load((JOBS_DIR / f"{name}.yaml").read_text())


def _entry(job: str = "surge-pricing", **more) -> dict:
    return {"job": job, "from": _z(START), "to": _z(END), **more}


def _run(plans, stack: str, backfills: list, published: dict | None = None):
    """The real program for ``stack`` with ``rtdi:backfills`` set, reading the planned global
    (its peers not yet planned: a first deployment)."""
    from infra.plan.engine import run_stack
    from infra.program import main

    cfg = sample_config(stack)
    cfg.values["rtdi:backfills"] = json.dumps(backfills)
    return run_stack(cfg, main, {"global": published or plans["global"].values})


def _plan(stack: str, backfills: list):
    """``stack`` planned as `rtdi plan` does (converged, as the `plans` fixture), with
    ``rtdi:backfills`` set over its stack file."""
    project = Project.find(ROOT)
    project.extra = {stack: {"rtdi:backfills": json.dumps(backfills)}}
    return plan_stacks(project, [stack])[stack]


def _by_name(plan, kind: str) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in plan.of_type(kind)}


def _flat(value, path=()) -> dict[tuple, object]:
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _flat(sub, (*path, key)).items()}
    if isinstance(value, list):
        return {k: v for i, sub in enumerate(value) for k, v in _flat(sub, (*path, i)).items()}
    return {path: value}


def _diff(a, b) -> dict[tuple, tuple]:
    fa, fb = _flat(a), _flat(b)
    return {k: (fa.get(k), fb.get(k)) for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}


_TABLE = re.compile(r"CREATE TABLE `(\w+)` \((.*?)\) WITH \((.*?)\);", re.S)


def _tables(sql: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Each CREATE TABLE of a runner script: its columns and its options."""
    out = {}
    for name, columns, options in _TABLE.findall(sql):
        opts = dict(re.findall(r"'([^']+)' = '([^']*)'", options))
        out[name] = (columns, opts)
    return out


def _logic(sql: str) -> str:
    """The job's own SQL: the script after rtdi's tables."""
    return sql.rsplit(");\n", 1)[1]


@pytest.fixture(scope="module")
def surge(plans):
    run = BackfillRun(Job.model_validate(_spec("surge-pricing")), Backfill.model_validate(_entry()))
    return run, _plan("aws-us-east-1", [_entry()])


# --------------------------------------------------------------------------- the declaration


def test_the_backfill_is_the_live_job_but_for_bounds_group_sinks_and_throttle(plans, surge):
    run, plan = surge
    deployments = _by_name(plan, FLINK)
    live, backfill = deployments["surge-pricing"], deployments[run.name]
    differ = _diff(live, backfill)
    name = ("metadata", "name")
    assert differ.pop(name) == ("surge-pricing", run.name)
    assert differ.pop(("metadata", "labels", "rtdi-flink-backfill")) == (None, run.run_id)
    pod_label = ("spec", "podTemplate", "metadata", "labels", "rtdi-flink-backfill")
    assert differ.pop(pod_label) == (None, run.run_id)
    # Its own workload identity: its service account, and its own Kafka principal's Secrets.
    assert differ.pop(("spec", "serviceAccount")) == ("flink-surge-pricing", run.principal)
    identity = [
        k
        for k, (before, after) in differ.items()
        if isinstance(before, str)
        and before.startswith("flink-surge-pricing-")
        and after == before.replace("flink-surge-pricing", run.principal, 1)
    ]
    assert {k[-1] for k in identity} == {"name", "secretName"} and len(identity) == 4
    for k in identity:
        differ.pop(k)
    (sql_volume,) = [k for k in differ if k[-2:] == ("configMap", "name")]
    assert differ.pop(sql_volume) == ("surge-pricing-sql", f"{run.name}-sql")
    spread = ("spec", "taskManager", "podTemplate", "spec", "topologySpreadConstraints", 0)
    assert differ.pop((*spread, "labelSelector", "matchLabels", "app")) == (
        "surge-pricing",
        run.name,
    )
    assert differ.pop(("spec", "job", "parallelism")) == (4, run.parallelism)
    assert differ.pop(("spec", "job", "upgradeMode")) == ("last-state", "stateless")
    assert differ.pop(("spec", "flinkConfiguration", "execution.runtime-mode")) == (
        None,
        "STREAMING",
    )
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"):
        before, after = differ.pop(("spec", "flinkConfiguration", key))
        head, _, leaf = before.rpartition("/")
        assert after == f"{head}/{run.state_dir}/{leaf}"
    assert set(differ) <= {("spec", "flinkConfiguration", "high-availability.storageDir")}
    assert run.parallelism < 4 and run.state_dir == f"backfill-{run.run_id}"


def test_the_backfill_sql_is_the_live_sql_but_for_bounds_group_sinks_and_throttle(plans, surge):
    run, plan = surge
    maps = _by_name(plan, CONFIGMAP)
    live = maps["surge-pricing-sql"]["data"]["job.sql"]
    backfill = maps[f"{run.name}-sql"]["data"]["job.sql"]
    assert _logic(live) == _logic(backfill)
    assert _logic(live).strip() == _spec_sql("surge-pricing").strip()
    live_t, back_t = _tables(live), _tables(backfill)
    assert list(live_t) == list(back_t) == ["trips", "surge"]
    for table in live_t:
        assert live_t[table][0] == back_t[table][0]  # the same columns and watermark
    src = _diff(live_t["trips"][1], back_t["trips"][1])
    jaas = ("properties.sasl.jaas.config",)
    before, after = src.pop(jaas)  # its own Kafka principal (a Strimzi user per role)
    assert after == before.replace('"flink-surge-pricing-', f'"{run.principal}-') != before
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert src == {
        ("properties.group.id",): (
            "flink-surge-pricing",
            f"flink-surge-pricing-backfill-{run.run_id}",
        ),
        ("scan.startup.mode",): ("group-offsets", "timestamp"),
        ("scan.startup.timestamp-millis",): (
            None,
            str((START - epoch) // timedelta(milliseconds=1)),
        ),
        ("scan.bounded.mode",): (None, "timestamp"),
        ("scan.bounded.timestamp-millis",): (None, str((END - epoch) // timedelta(milliseconds=1))),
        # No fallback throttle: the Strimzi aggregate enforces the run's quota on its user.
    }
    registry = plan.outputs["kafkaFederation"]["topics"]
    sink = _diff(live_t["surge"][1], back_t["surge"][1])
    produce = registry["surge-multipliers-backfill"]["regions"]["aws-us-east-1"]["produce"]
    before, after = sink.pop(jaas)
    assert after == before.replace('"flink-surge-pricing-', f'"{run.principal}-') != before
    assert sink == {
        ("topic",): ("surge-multipliers", produce["topic"]),
        ("sink.transactional-id-prefix",): (
            "rtdi.surge-pricing.surge",
            f"rtdi.surge-pricing-backfill-{run.run_id}.surge",
        ),
    }


def _spec_sql(name: str) -> str:
    return (JOBS_DIR / f"{name}.sql").read_text()


def test_a_backfill_only_adds_to_the_plan(plans, surge):
    """Every resource of the region's plan is declared again, unchanged: the live job, its
    offsets, its state and its sinks are untouched by a backfill beside it."""
    _, plan = surge
    before = {r.urn: r.inputs for r in plans["aws-us-east-1"].resources}
    after = {r.urn: r.inputs for r in plan.resources}
    assert {u: after[u] for u in before} == before
    # What it adds is what the live job declares, once more under the backfill's name: its
    # deployment, SQL and budget, and its own workload identity (service account, cloud role,
    # Kafka users and their Secrets), never a share of the live job's.
    run, _ = surge
    live = {(r.type, r.name) for r in plans["aws-us-east-1"].resources}
    added = [(r.type, r.name) for r in plan.resources if r.urn not in before]
    assert {CONFIGMAP, FLINK, PDB} <= {t for t, _ in added}
    for kind, name in added:
        assert run.name in name, name
        assert (kind, name.replace(run.name, "surge-pricing")) in live, name
    assert len(added) == len({(t, n) for t, n in live if "surge-pricing" in n and "flink" in n})


def test_no_backfill_configured_plans_as_before(plans):
    plan = _plan("aws-eu-west-1", [])
    assert {r.urn: r.inputs for r in plan.resources} == {
        r.urn: r.inputs for r in plans["aws-eu-west-1"].resources
    }
    assert plan.outputs == plans["aws-eu-west-1"].outputs


def test_an_active_passive_backfill_runs_in_a_region_where_the_job_is_suspended(plans):
    primary = plans["global"].outputs["primaryRegion"]
    other = next(s for s in ("aws-eu-west-1", "gcp-europe-west4") if s != primary)
    plan = _run(plans, other, [_entry("payments", id="recon")])
    found = _by_name(plan, FLINK)
    assert found["payments"]["spec"]["job"]["state"] == "suspended"
    assert found["payments-backfill-recon"]["spec"]["job"]["state"] == "running"
    assert plan.outputs["flinkJobs"]["payments"] == "suspended"
    spec = found["payments-backfill-recon"]
    assert list(admission_issues("payments-backfill-recon", spec["spec"], "x")) == []


def test_two_backfills_of_one_job_need_two_ids(plans):
    plan = _run(plans, "aws-us-east-1", [_entry(), _entry(id="again")])
    names = sorted(_by_name(plan, FLINK))
    assert names == sorted(["archive", "payments", "surge-pricing", *_names(["again", None])])


def _names(ids) -> list[str]:
    return [f"surge-pricing-backfill-{i or Backfill.model_validate(_entry()).run_id}" for i in ids]


def test_an_enforced_quota_replaces_the_fallback_throttle():
    job = Job.model_validate(_spec("surge-pricing"))
    b = Backfill.model_validate(_entry())
    enforced = BackfillRun(job, b, quota_enforced=True).source_options()
    fallback = BackfillRun(job, b).source_options()
    assert set(fallback) - set(enforced) == {f"properties.{k}" for k, _ in fallback_throttle(1)}
    # Never above Kafka's own defaults: the fallback only lowers what a fetch may carry.
    assert dict(fallback_throttle(10**9))["fetch.max.bytes"] == str(FETCH_MAX_BYTES)


# --------------------------------------------------------------------------- bad stack config


def _refused(plans, stack, backfills, published=None) -> list[str]:
    with pytest.raises(pulumi.RunError) as info:
        _run(plans, stack, backfills, published)
    return str(info.value).splitlines()


FILE = "stacks/Pulumi.aws-us-east-1.yaml"


@pytest.mark.parametrize(
    "entry, line",
    [
        (
            _entry("nope"),
            f"{FILE}: rtdi:backfills[0].job = 'nope': no such Flink job; allowed: archive, "
            "payments, surge-pricing",
        ),
        (
            _entry(**{"from": _z(END), "to": _z(START)}),
            f"{FILE}: rtdi:backfills[0].to = '{START.isoformat()}': not after `from` "
            f"({END.isoformat()}); allowed: a later time",
        ),
        (
            _entry(to=_z(NOW + timedelta(days=1))),
            f"{FILE}: rtdi:backfills[0].to = '{(NOW + timedelta(days=1)).isoformat()}': in the "
            "future (now ",
        ),
    ],
    ids=["unknown-job", "from-after-to", "future"],
)
def test_a_bad_backfill_is_one_line_before_anything_is_declared(plans, entry, line):
    (got,) = _refused(plans, "aws-us-east-1", [entry])
    assert got.startswith(line), got


@pytest.mark.parametrize(
    "value, message",
    [
        ("2026-11-01", "not an RFC 3339 time"),
        ("2026-11-01T00:00:00", "not an RFC 3339 time"),
        ("2026-02-30T00:00:00Z", "not a calendar time"),
        (1793577600, "not a time"),
    ],
)
def test_a_time_must_be_rfc3339_with_an_offset(plans, value, message):
    from infra.topology.config import parse_regional

    cfg = sample_config("aws-us-east-1")
    cfg.values["rtdi:backfills"] = json.dumps([_entry(**{"from": value})])
    with pytest.raises(ConfigError) as exc:
        parse_regional(cfg, None)
    (line,) = str(exc.value).splitlines()
    assert line.startswith(f"{FILE}: rtdi:backfills[0].from = {value!r}: {message}; allowed: "), (
        line
    )


def test_yaml_timestamps_pulumi_hands_as_go_time_are_the_same_instant():
    b = Backfill.model_validate(
        {"job": "x", "from": "2026-11-01 00:00:00 -0500 EST", "to": "2026-11-01T06:00:00Z"}
    )
    assert b.start == datetime(2026, 11, 1, 5, tzinfo=UTC)


def test_duplicate_ids_and_long_names_are_refused(plans):
    lines = _refused(plans, "aws-us-east-1", [_entry(id="a"), _entry(id="a")])
    assert lines == [
        f"{FILE}: rtdi:backfills[1].id = 'a': already the id of backfill [0] of surge-pricing; "
        "allowed: a new id"
    ]
    published = json.loads(json.dumps(plans["global"].values))
    (job,) = [j for j in published["rtdi"]["flinkJobs"] if j["name"] == "surge-pricing"]
    job["name"] = "surge-pricing-for-the-whole-world-x"  # 35 characters: fits alone
    (line,) = _refused(plans, "aws-us-east-1", [_entry(job["name"])], published)
    assert "does not fit the Flink operator's 45 characters; allowed: a shorter id" in line


def test_a_job_without_a_backfill_section_or_outside_the_region_is_refused(plans):
    published = json.loads(json.dumps(plans["global"].values))
    (job,) = [j for j in published["rtdi"]["flinkJobs"] if j["name"] == "surge-pricing"]
    del job["backfill"]
    job["regions"] = ["aws-eu-west-1"]
    lines = _refused(plans, "aws-us-east-1", [_entry()], published)
    assert lines == [
        f"{FILE}: rtdi:backfills[0].job = 'surge-pricing': the job does not run in "
        "aws-us-east-1; allowed: a backfill in a region of the job (aws-eu-west-1)",
        f"{FILE}: rtdi:backfills[0].job = 'surge-pricing': the job spec has no `backfill:` "
        "section; allowed: add one to its jobs/flink spec (backfill.sinks: a separate topic per "
        "sink table, backfill.maxBytesPerSecond)",
    ]


def test_the_offline_plan_refuses_what_the_program_refuses(plans):
    project = Project.find(ROOT)
    project.extra = {"aws-us-east-1": {"rtdi:backfills": json.dumps([_entry("nope")])}}
    with pytest.raises(ConfigError) as exc:
        plan_stacks(project, ["aws-us-east-1"])
    program = _refused(plans, "aws-us-east-1", [_entry("nope")])
    assert str(exc.value).splitlines() == program


def test_a_range_past_retention_only_warns_in_the_stack(plans, caplog):
    """A finished backfill stays in the stack file after Kafka dropped its range; `pulumi up`
    keeps working (with a warning). `rtdi backfill` refuses a new one (below)."""
    old = _entry(**{"from": _z(NOW - timedelta(days=30))})
    plan = _run(plans, "aws-us-east-1", [old])
    assert f"surge-pricing-backfill-{Backfill.model_validate(old).run_id}" in _by_name(plan, FLINK)
    warned = [r.getMessage() for r in caplog.records if "retention" in r.getMessage()]
    assert len(warned) == 1 and "rtdi:backfills[0].from" in warned[0], warned


# --------------------------------------------------------------------------- job spec section


@pytest.mark.parametrize(
    "changes, line",
    [
        (
            {"backfill__sinks": {"surge": "surge-multipliers"}},
            "backfill.sinks.surge = 'surge-multipliers': a topic the live job reads or writes; "
            "allowed: a separate logical topic",
        ),
        (
            {"backfill__sinks": {"surge": "nope"}},
            "backfill.sinks.surge = 'nope': not a logical topic; allowed: a name in rtdi:kafka "
            "topics",
        ),
        (
            {"backfill__sinks": {"surge": "rider-profiles"}},
            "backfill.sinks.surge = 'rider-profiles': data class personal-eu may not be held in "
            "aws-us-east-1",
        ),
        (
            {"backfill__sinks": {"other": "surge-multipliers-backfill"}},
            "backfill.sinks: sink table surge has no backfill topic, so a backfill would write "
            "the live topic",
        ),
        (
            {"backfill__parallelism": 8},
            "backfill.parallelism = 8: more than the job's parallelism; allowed: 1 to 4",
        ),
        (
            {"backfill__maxBytesPerSecond": 100},
            "backfill.maxBytesPerSecond = 100: too small; allowed: a whole number from 1,024",
        ),
        (
            {"backfill__throttle": 1},
            "backfill.throttle: unknown key",
        ),
    ],
    ids=["live-sink", "unknown-topic", "data-class", "unmapped", "wider", "rate", "typo"],
)
def test_a_bad_backfill_section_is_one_line(tmp_path, changes, line):
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, {"job.yaml": _edited(**changes)})
    (got, *more) = str(exc.value).splitlines()
    assert got.startswith(f"jobs/flink/job.yaml: {line}"), got
    assert more == [] or changes == {"backfill__sinks": {"other": "surge-multipliers-backfill"}}


# --------------------------------------------------------------------------- the CLI


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli_main(["backfill", *args])
    return code, out.getvalue(), err.getvalue()


def test_rtdi_backfill_plans_the_region_and_says_how_to_apply_it(tmp_path):
    code, out, err = _cli(
        "payments", "--from", _z(START), "--to", _z(END), "--id", "recon", "--out", str(tmp_path)
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    primary = yaml.safe_load((ROOT / "stacks" / "Pulumi.global.yaml").read_text())["config"][
        "rtdi:topology"
    ]["primary"]
    assert (
        lines[0] == f"backfill payments-backfill-recon: job payments (active-passive) in "
        f"{primary}, from kafka"
    )
    assert f"range: {_z(START)} to {_z(END)}" in lines[1]
    assert "sinks: ledger -> payment-ledger-backfill" in out
    # aws-us-east-1's aggregate is Strimzi: the quota is the backfill's own KafkaUser's.
    assert (
        "throttle: 5242880 B/s per consumer, a Kafka consumer quota on principal "
        "flink-payments-backfill-recon" in out
    )
    pinned = (("job", "payments"), ("from", _z(START)), ("to", _z(END)), ("id", "recon"))
    assert lines[-5:] == [
        f"  pulumi config set --stack {primary} --path 'rtdi:backfills[0].{k}' {v}"
        for k, v in (*pinned, ("source", "kafka"))
    ]
    # The global stack's plan is written beside it, so the policy pack can check the backfill.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["global", primary])
    with contextlib.redirect_stdout(io.StringIO()) as checked:
        assert cli_main(["check", "--plan", str(tmp_path)]) == 0, checked.getvalue()
    manifest = tmp_path / primary / "manifests"
    written = [p for p in manifest.rglob("*.yaml") if "payments-backfill-recon" in p.read_text()]
    assert written, "the backfill's manifests are written"
    # What the plan holds validates strictly against the upstream CRDs, like every plan.
    require_shared()
    proc = subprocess.run(
        [
            sys.executable,
            "../shared/tools/validate_crs.py",
            "../shared/schemas/crds",
            str(manifest),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = proc.stdout.splitlines()[-1]
    assert proc.returncode == 0 and " failed=0 " in f" {summary} ", proc.stdout


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ["nope", "--from", _z(START), "--to", _z(END)],
            "rtdi backfill: JOB = 'nope': no such Flink job; allowed: archive, payments, "
            "surge-pricing",
        ),
        (
            ["surge-pricing", "--from", "yesterday", "--to", _z(END)],
            "rtdi backfill: --from = 'yesterday': not an RFC 3339 time; allowed: an RFC 3339 time "
            "with an offset, such as 2026-11-01T00:00:00Z",
        ),
        (
            ["surge-pricing", "--from", _z(START), "--to", _z(NOW + timedelta(hours=1))],
            f"rtdi backfill: --to = '{(NOW + timedelta(hours=1)).isoformat()}': in the future",
        ),
        (
            ["surge-pricing", "--from", _z(NOW - timedelta(days=4)), "--to", _z(END)]
            + ["--source", "kafka"],
            f"rtdi backfill: --from = '{(NOW - timedelta(days=4)).isoformat()}': older than "
            "source topic trips's retention (72 h",
        ),
        (
            ["surge-pricing", "--from", _z(START), "--to", _z(END), "--region", "mars"],
            "rtdi backfill: --region = 'mars': surge-pricing does not run there; allowed: a "
            "region of the job",
        ),
        (
            ["surge-pricing", "--from", _z(START), "--to", _z(END), "--id", "Bad_Id"],
            "rtdi backfill: --id = 'Bad_Id': not a backfill id",
        ),
    ],
    ids=["job", "time", "future", "retention", "region", "id"],
)
def test_rtdi_backfill_refuses_bad_input_in_one_line_with_exit_2(tmp_path, args, line):
    code, out, err = _cli(*args, "--out", str(tmp_path / "out"))
    assert (code, out) == (EXIT_BAD_INPUT, "")
    (got,) = err.strip().splitlines()
    assert got.startswith(line), got
    assert not (tmp_path / "out").exists()


def test_the_retention_refusal_points_to_the_archive():
    old = ["surge-pricing", "--from", _z(NOW - timedelta(days=4)), "--to", _z(END)]
    code, _, err = _cli(*old, "--source", "kafka")
    assert code == EXIT_BAD_INPUT
    assert err.strip().endswith(
        "allowed: a later time, or the region's Parquet archive as the source (`source: archive`)"
    )


def test_the_printed_pulumi_commands_apply_the_planned_backfill(tmp_path):
    """Run the exact `pulumi config set` lines with the real CLI: the stack file they write
    holds the backfill that was planned, and planning that file declares the same run."""
    import shlex
    import shutil

    from pulumi_cli import pulumi_cli

    code, out, err = _cli(
        "surge-pricing", "--from", _z(START), "--to", _z(END), "--out", str(tmp_path / "plan")
    )
    assert code == 0, err
    commands = [line.strip() for line in out.splitlines() if "pulumi config set" in line]
    stack = shlex.split(commands[0])[4]
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", root / "stacks")
    shutil.copytree(ROOT / "jobs", root / "jobs")
    cli = pulumi_cli(tmp_path / "state")
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    original = path.read_text()
    path.write_text("config: {}\n")
    cli.run("stack", "init", stack, cwd=root)
    salt = next(line for line in path.read_text().splitlines() if line.startswith("encryption"))
    path.write_text(f"{salt}\n{original}")
    for command in commands:
        cli.run(*shlex.split(command)[1:], cwd=root)
    written = Project.find(root)
    from infra.topology.config import parse_regional

    (applied,) = parse_regional(written.read(stack), None).backfills
    assert (applied.job, applied.start, applied.end) == ("surge-pricing", START, END)
    assert applied.id == Backfill.model_validate(_entry()).run_id
    planned = Project.find(ROOT)
    planned.extra = {stack: {"rtdi:backfills": json.dumps([_entry(id=applied.id)])}}
    name = f"surge-pricing-backfill-{applied.id}"
    ours = _by_name(plan_stacks(written, [stack])[stack], FLINK)[name]
    theirs = _by_name(plan_stacks(planned, [stack])[stack], FLINK)[name]
    assert ours == theirs


def test_a_new_backfill_goes_after_the_stacks_own_and_may_not_reuse_their_ids():
    from infra.plan.backfill import Request, config_lines, plan_backfill

    project = Project.find(ROOT)
    project.extra = {"aws-us-east-1": {"rtdi:backfills": json.dumps([_entry(id="first")])}}
    request = Request("surge-pricing", _z(START), _z(END), "aws-us-east-1", "second")
    bp = plan_backfill(project, request)
    assert bp.index == 1
    assert all("'rtdi:backfills[1]." in line for line in config_lines(bp))
    names = set(_by_name(bp.plan, FLINK))
    assert {"surge-pricing-backfill-first", "surge-pricing-backfill-second"} <= names
    project = Project.find(ROOT)
    project.extra = {"aws-us-east-1": {"rtdi:backfills": json.dumps([_entry(id="first")])}}
    with pytest.raises(ConfigError) as exc:
        plan_backfill(
            project, Request("surge-pricing", _z(START), _z(END), "aws-us-east-1", "first")
        )
    assert str(exc.value) == (
        "rtdi backfill: --id = 'first': already the id of backfill [0] of surge-pricing; allowed: "
        "a new id"
    )
