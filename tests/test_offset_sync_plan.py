"""The offset sync job as the plans declare it (infra/components/kafka/offset_sync.py): a
Deployment in every region but the primary, for the groups the topology marks active-passive and
the groups of active-passive Flink jobs, signing in as its own identity allowed exactly their
topics, MirrorMaker 2's offset-syncs topics and the groups, on every engine.

Expectations come from the plans: the topology and jobs the global stack publishes, each
regional stack's federation registry, and the engines the registry names.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from test_config_errors import Case, assert_one_line, broken_project, run_cli

from infra import versions
from infra.components.kafka.offset_sync import PRINCIPAL, offset_syncs_topic
from infra.plan import Project, plan_stacks
from plantools import ROOT, STACK_NAMES, mock_id, mock_output

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
USER = "kubernetes:kafka.strimzi.io/v1:KafkaUser"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ACL = "gcp:managedkafka/acl:Acl"
JOB = ROOT / "jobs" / "offset-sync"
REGIONAL = [s for s in STACK_NAMES if s != "global"]
G = "stacks/Pulumi.global.yaml"


# --------------------------------------------------------------------------- what the plan says


def published(plans) -> dict[str, Any]:
    return plans["global"].outputs["rtdi"]


def expected_groups(plans) -> dict[str, set[str]]:
    """Active-passive group -> logical topics, from what the global stack publishes."""
    out: dict[str, set[str]] = {}
    for topic in published(plans)["kafka"]["topics"]:
        for g in topic.get("consumerGroups", []):
            if g["mode"] == "active-passive":
                out.setdefault(g["name"], set()).add(topic["name"])
    for job in published(plans)["flinkJobs"]:
        if job["mode"] == "active-passive" and job.get("sources"):
            out.setdefault(f"flink-{job['name']}", set()).update(s["topic"] for s in job["sources"])
    return out


def expected_reads(plan, stack: str, plans) -> set[str]:
    topics = plan.outputs["kafkaFederation"]["topics"]
    return {
        n
        for ts in expected_groups(plans).values()
        for t in ts
        for n in topics[t]["regions"][stack]["consume"]["topics"]
    }


def sync_deployments(plan) -> list[dict]:
    return [
        r.inputs
        for r in plan.of_type(DEPLOYMENT)
        if r.inputs["metadata"]["namespace"] == "offset-sync"
    ]


def properties(plan) -> dict[str, str]:
    (cm,) = [
        r.inputs
        for r in plan.of_type(CONFIGMAP)
        if r.inputs["metadata"] == {**r.inputs["metadata"], "name": "offset-sync"}
        and r.inputs["metadata"]["namespace"] == "offset-sync"
    ]
    text = cm["data"]["offset-sync.properties"]
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


# --------------------------------------------------------------------------- where it runs


def test_the_sample_marks_a_payments_consumer_active_passive(plans):
    groups = expected_groups(plans)
    assert groups == {"ledger-writer": {"payment-events"}, "flink-payments": {"payment-events"}}


def args_of(d: dict) -> dict[str, str]:
    (c,) = d["spec"]["template"]["spec"]["containers"]
    return dict(zip(c["args"][::2], c["args"][1::2], strict=True)) | {
        "configs": [c["args"][i + 1] for i, a in enumerate(c["args"]) if a == "--config"]
    }


def test_it_runs_in_every_region_but_the_primary_and_names_the_primary(plans):
    primary = published(plans)["topology"]["primary"]
    for stack in REGIONAL:
        (d,) = sync_deployments(plans[stack])
        assert d["spec"]["replicas"] == (0 if stack == primary else 1), stack
        assert args_of(d)["--primary-region"] == primary


def test_the_deployment_is_one_unprivileged_pod_with_probes_and_a_budget(plans):
    for stack in REGIONAL:
        for d in sync_deployments(plans[stack]):
            spec = d["spec"]
            assert spec["replicas"] <= 1 and spec["strategy"] == {"type": "Recreate"}
            pod = spec["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] > 0
            assert pod["automountServiceAccountToken"] is False
            (c,) = pod["containers"]
            assert c["image"] == versions.OFFSET_SYNC_IMAGE
            assert c["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }
            assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"]
            # Ready while passes run, waiting for the primary's Secret included: `pulumi up`
            # waits for readiness, and a first deployment must converge without the Secret.
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
            assert "pulumi.com/skipAwait" not in (d["metadata"].get("annotations") or {})
            (port,) = c["ports"]
            assert c["args"][c["args"].index("--health-port") + 1] == str(port["containerPort"])
            configs = [
                c["args"][i + 1]
                for i, a in enumerate(c["args"])
                if a in ("--config", "--primary-config")
            ]
            assert len(configs) == 2
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            for path in configs:
                folder, _ = path.rsplit("/", 1)
                assert folder in mounts, path
            cm = [v for v in volumes.values() if "configMap" in v and v["name"] == "config"]
            assert cm and volumes["primary"]["secret"] == {
                "secretName": "offset-sync-primary",
                "optional": True,
            }
            assert "/tmp" in mounts, "a read-only root needs a writable /tmp for Kafka's codecs"


def test_the_config_names_the_groups_the_region_and_the_local_aggregate(plans):
    for stack in REGIONAL:
        props = properties(plans[stack])
        assert set(props["groups"].split(",")) == set(expected_groups(plans))
        assert "primary.region" not in props, "the Deployment's args name it: a flip rolls the pod"
        assert props["local.region"] == stack
        consume = plans[stack].outputs["kafkaFederation"]["topics"]["payment-events"]
        engine = consume["regions"][stack]["consume"]["engine"]
        assert props["local.cluster.bootstrap.servers"], stack
        assert not any(k.startswith("primary.cluster.") for k in props), (
            "the primary's side comes from the operator's Secret"
        )
        for m in re.finditer(
            r'password="([^"]*)"', props.get("local.cluster.sasl.jaas.config", "")
        ):
            assert re.fullmatch(r"\$\{env:\w+\}", m.group(1)), (stack, engine)


# --------------------------------------------------------------------------- grants per engine


def test_strimzi_aggregates_give_it_a_kafka_user_for_exactly_its_reads(plans):
    checked = 0
    for stack in REGIONAL:
        plan = plans[stack]
        users = [
            r.inputs
            for r in plan.of_type(USER)
            if r.inputs["metadata"]["name"] == f"{PRINCIPAL}-aggregate"
        ]
        if not users:
            continue
        (user,) = users
        reads = expected_reads(plan, stack, plans)
        sources = {n.split(".payment-events")[0] for n in reads}
        acls = {
            (a["resource"]["type"], a["resource"]["name"]): sorted(a["operations"])
            for a in user["spec"]["authorization"]["acls"]
        }
        want = {("topic", t): ["Describe", "Read"] for t in reads}
        want |= {("topic", offset_syncs_topic(s)): ["Describe", "Read"] for s in sources}
        want |= {("group", g): ["Read"] for g in expected_groups(plans)}
        assert acls == want, stack
        assert all(
            a["resource"]["patternType"] == "literal" for a in user["spec"]["authorization"]["acls"]
        )
        checked += 1
    assert checked == 3  # aws-us-east-1, gcp-europe-west4 and onprem-dc1


def test_msk_aggregates_give_its_role_an_iam_policy_for_exactly_its_reads(plans):
    stack = "aws-eu-west-1"
    plan = plans[stack]
    policies = {r.name: r.inputs for r in plan.of_type(ROLE_POLICY)}
    policy = policies[f"{stack}-kafka-aggregate-{PRINCIPAL}"]
    # On the job's own IRSA role (it has no bucket, so no S3 policy of its own).
    (role,) = [
        r for r in plan.of_type("aws:iam/role:Role") if r.name == f"{stack}-offset-sync-irsa"
    ]
    assert policy["role"] == mock_id(role)
    (cluster,) = [
        r
        for r in plan.of_type("aws:msk/cluster:Cluster")
        if r.inputs["clusterName"].endswith("-aggregate")
    ]
    arn = mock_output(cluster, "arn")
    head, rest = arn.split(":cluster/")
    grants: dict[str, set[str]] = {}
    for s in json.loads(policy["policy"])["Statement"]:
        for a in s["Action"]:
            grants.setdefault(a, set()).update(s["Resource"])
    reads = expected_reads(plan, stack, plans)
    sources = {n.split(".payment-events")[0] for n in reads}
    topics = {f"{head}:topic/{rest}/{t}" for t in reads}
    topics |= {f"{head}:topic/{rest}/{offset_syncs_topic(s)}" for s in sources}
    groups = {f"{head}:group/{rest}/{g}" for g in expected_groups(plans)}
    assert grants == {
        "kafka-cluster:Connect": {arn},
        "kafka-cluster:DescribeCluster": {arn},
        "kafka-cluster:DescribeTopic": topics,
        "kafka-cluster:ReadData": topics,
        "kafka-cluster:AlterGroup": groups,
        "kafka-cluster:DescribeGroup": groups,
    }
    props = properties(plan)
    assert props["local.cluster.sasl.mechanism"] == "AWS_MSK_IAM"


def _variant(tmp_path_factory, name: str, edit: Callable[[dict], None]):
    project = tmp_path_factory.mktemp(name)
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", project / "stacks")
    path = project / "stacks" / "Pulumi.global.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc["config"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return plan_stacks(Project.find(project), STACK_NAMES)


@pytest.fixture(scope="module")
def managed_aggregate(tmp_path_factory):
    """The samples with gcp-europe-west4's aggregate on Managed Kafka."""

    def edit(c: dict) -> None:
        (gcp,) = [r for r in c["rtdi:topology"]["regions"] if r["cloud"] == "gcp"]
        gcp["kafka"]["aggregate"] = {"engine": "gcp-managed"}

    return _variant(tmp_path_factory, "managed-aggregate", edit)


def test_managed_kafka_aggregates_name_its_service_account_on_acls(managed_aggregate):
    stack = "gcp-europe-west4"
    plan = managed_aggregate[stack]
    members = {r.name: r.inputs for r in plan.of_type("gcp:projects/iAMMember:IAMMember")}
    member = members[f"{stack}-kafka-aggregate-{PRINCIPAL}"]
    assert member["role"] == "roles/managedkafka.client"
    who = "User:" + member["member"].removeprefix("serviceAccount:")
    mine: dict[str, set[str]] = {}
    for r in plan.of_type(ACL):
        for e in r.inputs["aclEntries"]:
            if e["principal"] == who:
                mine.setdefault(r.inputs["aclId"], set()).add(e["operation"])
    reads = expected_reads(plan, stack, managed_aggregate)
    sources = {n.split(".payment-events")[0] for n in reads}
    want = {f"topic/{t}": {"READ", "DESCRIBE"} for t in reads}
    want |= {f"topic/{offset_syncs_topic(s)}": {"READ", "DESCRIBE"} for s in sources}
    want |= {f"consumerGroup/{g}": {"READ"} for g in expected_groups(managed_aggregate)}
    assert mine == want
    assert properties(plan)["local.cluster.sasl.mechanism"] == "OAUTHBEARER"


@pytest.fixture(scope="module")
def flipped(tmp_path_factory):
    def edit(c: dict) -> None:
        c["rtdi:topology"]["primary"] = "gcp-europe-west4"

    return _variant(tmp_path_factory, "flip", edit)


def test_a_flip_moves_the_job_and_points_every_region_at_the_new_primary(plans, flipped):
    for stack in REGIONAL:
        (before,), (after,) = sync_deployments(plans[stack]), sync_deployments(flipped[stack])
        assert after["spec"]["replicas"] == (0 if stack == "gcp-europe-west4" else 1), stack
        assert args_of(after)["--primary-region"] == "gcp-europe-west4"
        # Same identity and config: only the primary's name and the replica count change.
        assert properties(plans[stack]) == properties(flipped[stack])
        strip = ("args", "replicas")
        assert _without(before, strip) == _without(after, strip), stack


def _without(d: dict, keys: tuple[str, ...]) -> Any:
    if isinstance(d, dict):
        return {k: _without(v, keys) for k, v in d.items() if k not in keys}
    if isinstance(d, list):
        return [_without(v, keys) for v in d]
    return d


# --------------------------------------------------------------------------- bad input


def _groups(c: dict) -> list[dict]:
    (t,) = [t for t in c["rtdi:kafka"]["topics"] if t["name"] == "payment-events"]
    return t["consumerGroups"]


CASES = [
    Case(
        "unknown-consumer-mode",
        "global",
        lambda c: _groups(c)[0].update(mode="passive"),
        f"{G}: rtdi:kafka.topics[3].consumerGroups[0].mode = 'passive': ",
        "allowed: 'all-active' or 'active-passive'",
    ),
    Case(
        "a-group-with-two-modes",
        "global",
        lambda c: c["rtdi:kafka"]["topics"][0]["consumerGroups"].append(
            {"name": "ledger-writer", "retry": False, "deadLetter": False}
        ),
        f"{G}: rtdi:kafka.topics[3].consumerGroups[0].mode = 'active-passive': consumer group "
        "ledger-writer is all-active at topics[0].consumerGroups[2]",
        "allowed: all-active here too",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_consumer_mode_is_one_line(tmp_path, monkeypatch, case):
    monkeypatch.chdir(broken_project(tmp_path, case))
    code, stdout, stderr = run_cli(["plan", "--all", "--out", str(tmp_path / "out")])
    assert code == 2 and stdout == ""
    assert_one_line(stderr, case)


# --------------------------------------------------------------------------- the build


def test_the_pom_and_the_image_recipe_spell_infra_versions():
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(JOB / "pom.xml").getroot()
    props = {p.tag.split("}")[1]: p.text for p in pom.find("m:properties", ns)}
    assert props["kafka.version"] == versions.KAFKA_VERSION
    assert props["slf4j.version"] == versions.OFFSET_SYNC_SLF4J_VERSION
    assert pom.findtext("m:version", namespaces=ns) == versions.OFFSET_SYNC_VERSION
    kafka = {
        d.findtext("m:artifactId", namespaces=ns): d.findtext("m:version", namespaces=ns)
        for d in pom.iterfind("m:dependencies/m:dependency", ns)
        if d.findtext("m:groupId", namespaces=ns) == "org.apache.kafka"
    }
    assert kafka == {
        "kafka-clients": "${kafka.version}",
        "connect-mirror-client": "${kafka.version}",
        "connect-mirror": "${kafka.version}",
    }
    froms = re.findall(r"^FROM (\S+)", (JOB / "Dockerfile").read_text(), re.M)
    assert froms == [versions.OFFSET_SYNC_JRE_IMAGE]
    assert versions.OFFSET_SYNC_IMAGE.endswith(f":{versions.OFFSET_SYNC_VERSION}")
