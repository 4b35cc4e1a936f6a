"""A primary flip as the plans declare it (infra/components/flink/handover.py).

The samples are planned twice, with the global stack's primary as it is and flipped to another
region; per region, exactly what changes for each active-passive job, and nothing for all-active
ones. Then the handover path (an active-passive jar job published beside the samples, a handover
savepoint in the new primary's stack config) and its one-line refusals.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml

from infra.components.flink import admission_issues
from infra.components.flink.handover import REGION_ENV, SAVEPOINT_ON_DELETION
from infra.plan import Project, plan_stacks
from infra.plan.diff import StackPlanFiles, diff_stack
from infra.plan.engine import run_stack
from infra.program import main
from plantools import ROOT, STACK_NAMES, amend, require_shared, sample_config

FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
OLD, NEW = "aws-us-east-1", "gcp-europe-west4"
REGIONAL = [s for s in STACK_NAMES if s != "global"]
JAR = "local:///opt/flink/usrlib/ledger.jar"


def flink(plan) -> dict[str, Any]:
    """Each job's FlinkDeployment in a plan: its inputs and resource options, by job name."""
    return {r.inputs["metadata"]["name"]: r for r in plan.of_type(FLINK)}


@pytest.fixture(scope="module")
def flipped(plans, tmp_path_factory):
    """The sample stacks planned again with the global stack's primary flipped to NEW."""
    project = tmp_path_factory.mktemp("flip")
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", project / "stacks")
    path = project / "stacks" / "Pulumi.global.yaml"
    doc = yaml.safe_load(path.read_text())
    assert doc["config"]["rtdi:topology"]["primary"] == OLD
    doc["config"]["rtdi:topology"]["primary"] = NEW
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return plan_stacks(Project.find(project), STACK_NAMES)


def test_a_flip_replaces_active_passive_jobs_in_the_two_regions_and_nothing_else(plans, flipped):
    for stack in REGIONAL:
        before, after = flink(plans[stack]), flink(flipped[stack])
        assert before.keys() == after.keys() == {"payments", "surge-pricing", "archive"}
        # All-active: identical, running everywhere, never replaced.
        for name in ("surge-pricing", "archive"):
            for jobs in (before, after):
                assert jobs[name].inputs["spec"]["job"]["state"] == "running"
                assert jobs[name].options == {}
            assert before[name].inputs == after[name].inputs
        old, new = before["payments"].inputs, after["payments"].inputs
        expected = {OLD: ("running", "suspended"), NEW: ("suspended", "running")}.get(stack)
        if expected is None:
            assert old == new, f"{stack} is neither primary: its payments must not change"
            assert new["spec"]["job"]["state"] == "suspended"
            continue
        assert (old["spec"]["job"]["state"], new["spec"]["job"]["state"]) == expected
        # job.state is the only change: the rest of the spec is the same in both roles.
        same = json.loads(json.dumps(old))  # a copy: the session's plans stay as planned
        same["spec"]["job"]["state"] = new["spec"]["job"]["state"]
        assert same == new, stack
        files = {
            name: StackPlanFiles([r.as_json() for r in p[stack].resources], p[stack].outputs)
            for name, p in (("old", plans), ("new", flipped))
        }
        diff = diff_stack(stack, files["old"], files["new"])
        (changed,) = [r for r in diff.changed if r.type == FLINK]
        assert changed.name == f"{stack}-flink-payments" and changed.replace
        assert [c.path for c in changed.changes] == ["spec.job.state"]


def test_no_role_of_an_active_passive_job_names_a_savepoint_to_restore(plans, flipped):
    """Without a handover a region's job starts from no savepoint in either role: the new
    resource is a first deployment (no status savepoint), with no initialSavepointPath. Its
    deletion stops it with a savepoint, so the sink and the group offsets are committed."""
    for plan in (plans, flipped):
        for stack in REGIONAL:
            payments = flink(plan[stack])["payments"]
            job = payments.inputs["spec"]["job"]
            assert job["upgradeMode"] == "savepoint"
            assert not {"initialSavepointPath", "savepointRedeployNonce"} & job.keys()
            conf = payments.inputs["spec"]["flinkConfiguration"]
            assert conf[SAVEPOINT_ON_DELETION] == "true"
            assert conf["execution.checkpointing.savepoint-dir"].endswith("/payments/savepoints")
            assert payments.options == {
                "replaceOnChanges": ["spec.job.state"],
                "deleteBeforeReplace": True,
            }


def test_the_source_reads_the_translated_group_offsets_in_every_region(plans):
    for stack in REGIONAL:
        (cm,) = [
            r
            for r in plans[stack].of_type("kubernetes:core/v1:ConfigMap")
            if r.inputs["metadata"]["name"] == "payments-sql"
        ]
        sql = cm.inputs["data"]["job.sql"]
        assert "'properties.group.id' = 'flink-payments'" in sql
        assert "'scan.startup.mode' = 'group-offsets'" in sql


# --------------------------------------------------------------------------- handover


def with_jar_job(plans) -> dict[str, Any]:
    """The published global stack plus `ledger`, an active-passive jar job like payments."""
    published = json.loads(json.dumps(plans["global"].values))
    jobs = published["rtdi"]["flinkJobs"]
    ledger = json.loads(json.dumps(next(j for j in jobs if j["name"] == "payments")))
    for key in ("sql", "sqlText"):
        ledger.pop(key)
    ledger.update(name="ledger", jar=JAR)
    jobs.append(ledger)
    return published


def regional(published, stack: str, handover: dict | None):
    cfg = sample_config(stack)
    if handover is not None:
        cfg = amend(cfg, "flinkHandover", handover)
    return run_stack(cfg, main, {"global": published})


def state_bucket(plan) -> str:
    return plan.values["buckets"]["flink-state"]


def test_a_handover_savepoint_starts_the_new_primarys_jar_job(plans, tmp_path):
    published = with_jar_job(plans)
    bucket = state_bucket(plans[OLD])
    savepoint = "s3p://" + bucket.split("://")[1] + "/ledger/handover/savepoint-0a1b2c-1"
    plan = regional(published, OLD, {"ledger": {"savepoint": savepoint, "nonce": 7}})
    jobs = flink(plan)
    job = jobs["ledger"].inputs["spec"]["job"]
    assert job["state"] == "running" and job["jarURI"] == JAR
    assert job["initialSavepointPath"] == savepoint
    assert job["savepointRedeployNonce"] == 7
    assert job["allowNonRestoredState"] is True
    (container,) = jobs["ledger"].inputs["spec"]["podTemplate"]["spec"]["containers"]
    assert {"name": REGION_ENV, "value": OLD} in container["env"]
    # The SQL job beside it is untouched by the handover of another job.
    assert "initialSavepointPath" not in jobs["payments"].inputs["spec"]["job"]
    assert list(admission_issues("ledger", jobs["ledger"].inputs["spec"], "x")) == []
    # Strictly valid against the operator's CRD, as tests/test_schemas.py checks every plan.
    shared = require_shared()
    cr = {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "ledger"},
        "spec": jobs["ledger"].inputs["spec"],
    }
    (tmp_path / "ledger.yaml").write_text(yaml.safe_dump(cr))
    done = subprocess.run(
        [
            sys.executable,
            "../shared/tools/validate_crs.py",
            str(shared / "schemas" / "crds"),
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip().splitlines()[-1] == "validated=1 failed=0 unknown_kind=0", done


def test_without_a_handover_the_jar_job_starts_fresh_and_names_its_region(plans):
    plan = regional(with_jar_job(plans), NEW, None)
    ledger = flink(plan)["ledger"].inputs["spec"]
    assert ledger["job"]["state"] == "suspended"
    assert not {"initialSavepointPath", "savepointRedeployNonce"} & ledger["job"].keys()
    (container,) = ledger["podTemplate"]["spec"]["containers"]
    assert {"name": REGION_ENV, "value": NEW} in container["env"]


FILE = f"stacks/Pulumi.{OLD}.yaml"


@pytest.mark.parametrize(
    ("stack", "handover", "line"),
    [
        (
            OLD,
            {"nope": {"savepoint": "s3p://b/nope/sp", "nonce": 1}},
            f"{FILE}: rtdi:flinkHandover = 'nope': not a job of region {OLD}; allowed: its "
            "active-passive jar jobs (ledger)",
        ),
        (
            OLD,
            {"surge-pricing": {"savepoint": "s3p://b/surge/sp", "nonce": 1}},
            f"{FILE}: rtdi:flinkHandover = 'surge-pricing': an all-active job runs in every "
            "region and never moves; allowed: an active-passive jar job (ledger)",
        ),
        (
            OLD,
            {"payments": {"savepoint": "s3p://b/payments/sp", "nonce": 1}},
            f"{FILE}: rtdi:flinkHandover = 'payments': an SQL job starts from the translated "
            "group offsets with empty state: its planner-generated source uid would restore the "
            "old region's offsets; allowed: an active-passive jar job (ledger)",
        ),
        (
            "aws-eu-west-1",
            {"ledger": {"savepoint": "s3p://b/ledger/sp", "nonce": 1}},
            "stacks/Pulumi.aws-eu-west-1.yaml: rtdi:flinkHandover.ledger = 's3p://b/ledger/sp': "
            f"region aws-eu-west-1 is not the primary ({OLD}), and a handover left here would "
            "be restored at the next flip back; allowed: remove it",
        ),
        (
            OLD,
            {"ledger": {"savepoint": "gs://b/ledger/sp", "nonce": 1}},
            f"{FILE}: rtdi:flinkHandover.ledger.savepoint = 'gs://b/ledger/sp': not in this "
            "region's flink-state bucket; allowed: a URI in it, starting s3:// or s3p:// (copy the "
            "savepoint there first)",
        ),
    ],
    ids=["unknown-job", "all-active", "sql-job", "not-primary", "scheme"],
)
def test_a_bad_handover_is_one_line(plans, stack, handover, line):
    with pytest.raises(Exception) as exc:
        regional(with_jar_job(plans), stack, handover)
    assert str(exc.value) == line


OTHER_BUCKET = """
import json, sys
sys.path.insert(0, "tests")
from test_flink_flip_plan import OLD, regional
published = json.loads(sys.stdin.read())
try:
    regional(published, OLD, {"ledger": {"savepoint": "s3p://another/ledger/sp", "nonce": 1}})
except Exception as exc:
    print(type(exc).__name__, str(exc))
"""


def test_a_handover_in_another_bucket_is_one_line(plans, tmp_path):
    """The bucket's name is known once it exists, so this check runs inside the program, as a
    RunError (`pulumi up` prints its message alone). An error there leaves the SDK's pending
    registrations behind, so the program runs in a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", OTHER_BUCKET],
        input=json.dumps(with_jar_job(plans)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == (
        f"RunError {FILE}: rtdi:flinkHandover.ledger.savepoint = 's3p://another/ledger/sp': not "
        "in this region's flink-state bucket; allowed: a URI under "
        f"s3://acme-rtdi-{OLD}-flink-state/ (copy the savepoint there first)"
    ), done.stderr[-2000:]


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        ({"savepoint": "s3p://b/ledger/sp", "nonce": 0}, "nonce", "too small"),
        ({"savepoint": "s3p://b/ledger/sp", "nonce": 2**63}, "nonce", "too large"),
        ({"savepoint": "s3p://b/ledger/sp", "nonce": "x"}, "nonce", "text is not a whole number"),
        ({"savepoint": "/tmp/sp", "nonce": 1}, "savepoint", "a savepoint directory"),
        ({"savepoint": "s3p://b/ledger/sp"}, "nonce", "required"),
        (
            {"savepoint": "s3p://b/sp", "nonce": 1, "drop": True},
            "drop",
            "unknown key; allowed here: savepoint, nonce",
        ),
    ],
    ids=["nonce-zero", "nonce-long", "nonce-text", "not-a-uri", "no-nonce", "unknown-key"],
)
def test_a_malformed_handover_is_one_line_naming_the_key(plans, value, key, words):
    with pytest.raises(Exception) as exc:
        regional(with_jar_job(plans), OLD, {"ledger": value})
    (line,) = str(exc.value).splitlines()
    assert line.startswith(f"{FILE}: flinkHandover.ledger.{key}") or line.startswith(
        f"{FILE}: rtdi:flinkHandover.ledger.{key}"
    ), line
    assert words in line, line


def test_rtdi_plan_refuses_a_bad_handover_with_exit_2(tmp_path, monkeypatch):
    """The same refusal through the CLI, before anything is planned."""
    import contextlib
    import io

    from infra.cli import EXIT_BAD_INPUT
    from infra.cli import main as cli_main

    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    path = tmp_path / "stacks" / f"Pulumi.{OLD}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["rtdi:flinkHandover"] = {"payments": {"savepoint": "s3p://b/p/sp", "nonce": 1}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(["plan", "--all", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT, err.getvalue()
    lines = [line for line in err.getvalue().splitlines() if "flinkHandover" in line]
    assert lines == [
        f"{FILE}: rtdi:flinkHandover = 'payments': an SQL job starts from the translated group "
        "offsets with empty state: its planner-generated source uid would restore the old "
        "region's offsets; allowed: an active-passive jar job (none)"
    ], err.getvalue()
