"""On-prem archive retention as the plans declare it: the on-prem target turns the archive's
expirations into an hourly expiry CronJob (infra/targets/expiry.py) that reaches the store with
the same identity as the region's Flink jobs; the clouds' lifecycle rules need none.

The script itself runs against a real HDFS in tests/integration/test_archive_expiry_real.py; here
only its refusals of bad arguments, which never reach `hadoop fs`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
import yaml
from test_target_onprem import S3_STORE, s3_config

from infra import versions
from infra.components.flink.archive import expirations
from infra.components.kafka.flows import federation_registry
from infra.plan import Project, plan_stacks
from infra.targets import expiry
from infra.targets.base import LABEL_JURISDICTION, LABEL_REGION
from infra.topology.config import parse_global
from plantools import ROOT, one, run_program, sample_config

ONPREM = "onprem-dc1"
CLOUDS = ["aws-eu-west-1", "aws-us-east-1", "gcp-europe-west4"]
CRONJOB = "kubernetes:batch/v1:CronJob"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
APP = "archive-expiry"


def expiry_jobs(plan) -> list:
    return [r for r in plan.of_type(CRONJOB) if r.inputs["metadata"]["name"] == APP]


def container(job) -> dict:
    (c,) = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return c


def rules(args: list[str]) -> tuple[list[str], str, dict[str, int]]:
    """The script's arguments as (-D options, root, prefix -> days)."""
    options: list[str] = []
    rest = list(args)
    while rest[0] == "-D":
        options.append(rest[1])
        rest = rest[2:]
    root, *pairs = rest
    found = {}
    for pair in pairs:
        prefix, days = pair.rsplit("=", 1)
        found[prefix] = int(days)
    assert len(found) == len(pairs), "a prefix is given twice"
    return options, root, found


def want(plans, stack: str) -> dict[str, int]:
    """Each physical topic the region's aggregate holds (its registry), kept for its class's
    archiveRetentionDays (the global stack's published data classes); none without one."""
    classes = plans["global"].outputs["rtdi"]["kafka"]["dataClasses"]
    topics = plans[stack].outputs["kafkaFederation"]["topics"]
    return {
        f"{n}/": classes[t["dataClass"]]["archiveRetentionDays"]
        for t in topics.values()
        if stack in t["regions"] and "archiveRetentionDays" in classes[t["dataClass"]]
        for n in t["regions"][stack]["consume"]["topics"]
    }


def test_onprem_plan_expires_every_archived_topic_as_its_data_class_says(plans):
    plan = plans[ONPREM]
    (job,) = expiry_jobs(plan)
    options, root, found = rules(container(job)["args"])
    assert options == []  # HDFS: the site's core-site.xml says where the namenode is
    assert root == plan.outputs["archive"]
    assert found == want(plans, ONPREM)
    assert found and set(found.values()) == {400}  # operational, the only class dc1 holds


def test_the_expiry_job_is_hourly_one_at_a_time_bounded_and_unprivileged(plans):
    plan = plans[ONPREM]
    (job,) = expiry_jobs(plan)
    spec = job.inputs["spec"]
    minute, *rest = spec["schedule"].split()
    assert 0 <= int(minute) < 60 and rest == ["*", "*", "*", "*"], "hourly"
    assert spec["concurrencyPolicy"] == "Forbid"
    run = spec["jobTemplate"]["spec"]
    assert 0 < run["activeDeadlineSeconds"] < 3600  # a run ends before the next one is due
    pod = run["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(job)
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    # Apache's Hadoop image of the pinned version (the site's mirror, if it has one).
    assert c["image"] == versions.ARCHIVE_EXPIRY_IMAGE
    assert versions.ARCHIVE_EXPIRY_IMAGE.endswith(f":{versions.HADOOP_VERSION}")
    labels = job.inputs["metadata"]["labels"]
    assert labels[LABEL_REGION] == ONPREM and labels[LABEL_JURISDICTION] == "us"
    assert run["template"]["metadata"]["labels"] == labels


def test_the_expiry_job_runs_the_script_of_jobs(plans):
    plan = plans[ONPREM]
    (job,) = expiry_jobs(plan)
    c = container(job)
    pod = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert c["command"][0] == "bash"
    directory, _, name = c["command"][1].rpartition("/")
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (cm,) = [
        r.inputs
        for r in plan.of_type(CONFIGMAP)
        if r.inputs["metadata"]["name"] == volume["configMap"]["name"]
        and r.inputs["metadata"]["namespace"] == APP
    ]
    assert cm["data"][name] == (ROOT / "jobs" / "archive-expiry" / "expire.sh").read_text()


def test_hdfs_expiry_reaches_the_store_as_the_archive_job_does(plans):
    """The workload identity the Flink jobs get (core-site.xml naming the site's namenode),
    acting as the HDFS user that owns what the archive job writes."""
    plan = plans[ONPREM]
    (job,) = expiry_jobs(plan)
    c = container(job)
    pod = job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HADOOP_USER_NAME"] == expiry.WRITER_HDFS_USER == "flink"
    (archive,) = [
        r.inputs
        for r in plan.of_type("kubernetes:flink.apache.org/v1beta1:FlinkDeployment")
        if r.inputs["metadata"]["name"] == "archive"
    ]
    (flink,) = archive["spec"]["podTemplate"]["spec"]["containers"]
    flink_env = {e["name"]: e.get("value") for e in flink["env"]}
    assert env["HADOOP_CONF_DIR"] == flink_env["HADOOP_CONF_DIR"]
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == env["HADOOP_CONF_DIR"]]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    sites = {}
    for r in plan.of_type(CONFIGMAP):
        meta = r.inputs["metadata"]
        if "core-site.xml" in r.inputs.get("data", {}):
            site = ET.fromstring(r.inputs["data"]["core-site.xml"])
            props = {p.findtext("name"): p.findtext("value") for p in site.iter("property")}
            sites[(meta["namespace"], meta["name"])] = props
    mine = sites[(APP, volume["configMap"]["name"])]
    assert mine == {"fs.defaultFS": "hdfs://namenode.dc1.acme.internal:8020"}
    assert mine == sites[("flink", "flink-archive-hadoop-conf")]
    sa = [
        r.inputs for r in plan.of_type(SERVICE_ACCOUNT) if r.inputs["metadata"]["namespace"] == APP
    ]
    assert [s["metadata"]["name"] for s in sa] == [pod["serviceAccountName"]]
    assert sa[0]["automountServiceAccountToken"] is False
    assert [r.inputs["metadata"]["name"] for r in plan.of_type(NAMESPACE)].count(APP) == 1


@pytest.mark.parametrize("stack", CLOUDS)
def test_clouds_expire_through_their_lifecycle_alone(plans, stack):
    plan = plans[stack]
    assert expiry_jobs(plan) == []
    assert APP not in [r.inputs["metadata"]["name"] for r in plan.of_type(NAMESPACE)]
    assert not [r for r in plan.resources if r.type == "rtdi:onprem:PrefixExpiry"]


# --------------------------------------------------------------------------- the S3 store


def _archive_only(stack, topology) -> None:
    """The target and its archive bucket with the sample topology's expirations, as
    `regional_stack` asks for them."""
    from infra.targets import make_target

    model = parse_global(sample_config("global"))
    target = make_target(stack, topology)
    registry = federation_registry(model.topology, model.kafka)
    target.bucket("archive", expirations(target.region.id, model.topology, model.kafka, registry))
    target.finish({})


@pytest.fixture(scope="module")
def s3_plan(topology):
    return run_program(s3_config(), _archive_only, topology)


def test_s3_expiry_uses_the_store_keys_and_endpoint(s3_plan, plans):
    (job,) = expiry_jobs(s3_plan)
    c = container(job)
    options, root, found = rules(c["args"])
    assert options == [
        f"fs.s3a.endpoint={S3_STORE['endpoint']}",
        "fs.s3a.path.style.access=true",
        "fs.s3a.endpoint.region=us-east-1",
    ]
    # The prefix of the shared bucket, through S3A; the expirations are below it.
    assert root == f"s3a://{S3_STORE['bucket']}/{ONPREM}/archive/"
    assert found == want(plans, ONPREM)
    env = {e["name"]: e for e in c["env"]}
    assert env["HADOOP_OPTIONAL_TOOLS"]["value"] == "hadoop-aws"
    assert "HADOOP_USER_NAME" not in env
    secret = one(s3_plan, SECRET, f"{ONPREM}-{APP}-object-store")
    assert secret.inputs["metadata"]["namespace"] == APP
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret.inputs["metadata"]["name"], "key": key}
    # rtdi never touches the shared bucket's own configuration.
    assert {r.type.split(":")[0] for r in s3_plan.resources if r.custom} <= {
        "kubernetes",
        "pulumi",
    }


# --------------------------------------------------------------------------- other data classes


def _variant(tmp_path_factory, name: str, edit: Callable[[dict], None]):
    project = tmp_path_factory.mktemp(name)
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", project / "stacks")
    path = project / "stacks" / "Pulumi.global.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc["config"]["rtdi:kafka"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    # A first deployment: the archived topics come from the static registry, no peer needed.
    return plan_stacks(Project.find(project), ["global", ONPREM], rounds=1)


def test_a_class_without_retention_is_not_expired(tmp_path_factory):
    def edit(kafka: dict) -> None:
        del kafka["dataClasses"]["operational"]["archiveRetentionDays"]
        kafka["dataClasses"]["short-lived"] = {"jurisdictions": ["us", "eu"]}
        kafka["dataClasses"]["short-lived"]["archiveRetentionDays"] = 7
        (orders,) = [t for t in kafka["topics"] if t["name"] == "orders"]
        orders["dataClass"] = "short-lived"

    plans = _variant(tmp_path_factory, "short-lived", edit)
    (job,) = expiry_jobs(plans[ONPREM])
    _, _, found = rules(container(job)["args"])
    assert found == want(plans, ONPREM)
    assert found and all(re.fullmatch(r"[a-z0-9-]+\.orders/", p) for p in found)
    assert set(found.values()) == {7}


def test_no_retention_at_all_declares_no_expiry(tmp_path_factory):
    def edit(kafka: dict) -> None:
        for c in kafka["dataClasses"].values():
            c.pop("archiveRetentionDays", None)

    plan = _variant(tmp_path_factory, "kept", edit)[ONPREM]
    assert expiry_jobs(plan) == []
    assert not [r for r in plan.resources if r.type == "rtdi:onprem:PrefixExpiry"]


# --------------------------------------------------------------------------- the script's refusals


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "usage: expire.sh"),
        (["hdfs://nn:8020/a"], "usage: expire.sh"),
        (["/a", "t/=3"], "ROOT /a: allowed: a URI"),
        (["hdfs://nn/a", "t=3"], "t=3: allowed: TOPIC/=DAYS"),
        (["hdfs://nn/a", "../=3"], "../=3: allowed: TOPIC/=DAYS"),
        (["hdfs://nn/a", "a/b/=3"], "a/b/=3: allowed: TOPIC/=DAYS"),
        (["hdfs://nn/a", "t*/=3"], "t*/=3: allowed: TOPIC/=DAYS"),
        (["hdfs://nn/a", "t/=0"], "t/=0: days 0; allowed: 1 to 2147483647"),
        (["hdfs://nn/a", "t/=2147483648"], "days 2147483648; allowed: 1 to 2147483647"),
        (["hdfs://nn/a", "t/=x"], "t/=x: days x; allowed"),
        (["-X", "hdfs://nn/a", "t/=3"], "unknown option -X"),
        (["-D", "novalue", "hdfs://nn/a", "t/=3"], "-D novalue: allowed: key=value"),
    ],
)
def test_the_script_refuses_bad_arguments_in_one_line(tmp_path, args, message):
    # No `hadoop` on PATH: a refusal must come before any call to it.
    done = subprocess.run(
        ["bash", str(expiry.SCRIPT), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 2, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert done.stdout == ""
