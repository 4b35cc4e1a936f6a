"""``rtdi check``: the samples pass; edited plans are caught; bad input exits 2 in one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from policies.checker import render_json, render_text
from policies.engine import Report, Violation
from policies.rules import ALL_RULES
from policyfixtures import ROOT, run_cli


def test_every_sample_stack_passes_with_no_mandatory_violation():
    code, out, err = run_cli(["check", "--all"])
    assert code == 0, out + err
    assert out.strip().splitlines()[-1].startswith("rtdi check passed")
    assert " [mandatory] " not in out


def test_json_format_of_all_stacks():
    code, out, _ = run_cli(["check", "--all", "--format", "json"])
    doc = json.loads(out)
    assert code == 0 and doc["summary"]["mandatory"] == 0 and doc["summary"]["passed"] is True
    assert sorted(doc["summary"]["stacks"]) == sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml")
    )
    assert doc["summary"]["rules"] == len(ALL_RULES)
    for v in doc["violations"]:
        assert set(v) == {"rule", "enforcement", "urn", "message"}
    # The samples break no rule but the advisory digest one: the Strimzi operator's images are
    # pinned by tag, and no digest for them can be had here (see the README).
    assert {(v["rule"], v["enforcement"]) for v in doc["violations"]} <= {
        ("images-pinned-by-digest", "advisory")
    }
    assert sum(g["count"] for g in doc["groups"]) == len(doc["violations"])


def test_check_named_stack_reads_its_topology():
    code, out, _ = run_cli(["check", "aws-eu-west-1"])
    assert code == 0, out
    assert "1 stack (aws-eu-west-1)" in out


def test_existing_plan_files_pass(planned_dir):
    args = ["check"] + [
        a
        for s in sorted(p.name for p in planned_dir.iterdir())
        for a in ("--plan", str(planned_dir / s / "resources.json"))
    ]
    code, out, err = run_cli(args)
    assert code == 0, out + err


def _edit(planned_dir: Path, tmp_path: Path, type_: str, edit) -> Path:
    """Copy the planned stacks and change every resource of ``type_`` in the first stack that has
    one with ``edit(inputs)``; skip when no sample stack declares that type (the samples choose
    engines)."""
    copy = tmp_path / "plan"
    shutil.copytree(planned_dir, copy)
    for path in sorted(copy.glob("*/resources.json")):
        entries = json.loads(path.read_text())
        hits = [e for e in entries if e["type"] == type_]
        if hits:
            for e in hits:
                edit(e["inputs"])
            path.write_text(json.dumps(entries, indent=1))
            return path
    pytest.skip(f"no sample stack declares {type_}")


MSK = "aws:msk/cluster:Cluster"
FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"


@pytest.mark.parametrize(
    "type_, edit, rule, says",
    [
        (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            lambda i: i.update(blockPublicAcls=False),
            "bucket-not-public",
            "blockPublicAcls not true",
        ),
        (
            "aws:eks/cluster:Cluster",
            lambda i: i["vpcConfig"].update(endpointPublicAccess=True),
            "kubernetes-api-private",
            "API endpoint is public",
        ),
        (
            "aws:s3/bucketVersioning:BucketVersioning",
            lambda i: i["versioningConfiguration"].update(status="Suspended"),
            "bucket-versioned",
            "is not versioned",
        ),
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            lambda i: i["rules"][0]["applyServerSideEncryptionByDefault"].update(
                sseAlgorithm="AES256", kmsMasterKeyId=None
            ),
            "bucket-encrypted",
            "encrypts with AES256",
        ),
        (
            "gcp:storage/bucket:Bucket",
            lambda i: i.update(location="US"),
            "bucket-colocated-with-cluster",
            "is in gcp us",
        ),
        (
            "gcp:container/cluster:Cluster",
            lambda i: (
                i["privateClusterConfig"].update(enablePrivateEndpoint=False),
                i.pop("masterAuthorizedNetworksConfig"),
            ),
            "kubernetes-api-private",
            "public to any address",
        ),
        (
            "kubernetes:kafka.strimzi.io/v1:Kafka",
            lambda i: i["spec"]["kafka"]["config"].update({"min.insync.replicas": 1}),
            "kafka-cluster-durability",
            "min.insync.replicas is 1",
        ),
        (
            "kubernetes:kafka.strimzi.io/v1:Kafka",
            lambda i: i["spec"]["kafka"]["listeners"][0].update(tls=False),
            "kafka-tls-only",
            "is plaintext",
        ),
        (
            "kubernetes:kafka.strimzi.io/v1:Kafka",
            lambda i: i["spec"]["kafka"].pop("rack"),
            "kafka-brokers-across-zones",
            "has no rack awareness",
        ),
        (
            "kubernetes:kafka.strimzi.io/v1:KafkaMirrorMaker2",
            lambda i: i["metadata"]["annotations"].update(
                {"rtdi-data-classes": "operational,secret-sauce"}
            ),
            "replication-destination-allowed",
            "is labelled rtdi-data-classes: 'operational,secret-sauce', but its topic filter "
            "carries operational, personal-eu",
        ),
        (
            "kubernetes:kafka.strimzi.io/v1:KafkaMirrorMaker2",
            lambda i: i["spec"].update(mirrors=i["spec"]["mirrors"][:1]),
            "aggregate-receives-all-regions",
            "receives nothing from",
        ),
        (
            "kubernetes:kafka.strimzi.io/v1:KafkaMirrorMaker2",
            lambda i: i["spec"]["mirrors"][0]["checkpointConnector"]["config"].update(
                {"sync.group.offsets.enabled": False}
            ),
            "mirrormaker-durability",
            "sync.group.offsets.enabled is false",
        ),
        (
            "kubernetes:kafka.strimzi.io/v1:KafkaTopic",
            lambda i: i["spec"].update(replicas=1),
            "kafka-topic-durability",
            "replication factor 1",
        ),
        (
            MSK,
            lambda i: i["brokerNodeGroupInfo"].update(
                connectivityInfo={"publicAccess": {"type": "SERVICE_PROVIDED_EIPS"}}
            ),
            "kafka-no-public-access",
            "brokers have public IPs",
        ),
        (
            MSK,
            lambda i: i["encryptionInfo"].pop("encryptionAtRestKmsKeyArn"),
            "kafka-encryption-at-rest",
            "AWS-managed key",
        ),
        (
            "aws:msk/configuration:Configuration",
            lambda i: i.update(serverProperties="min.insync.replicas=1\n"),
            "kafka-cluster-durability",
            "min.insync.replicas is 1",
        ),
        (
            "gcp:managedkafka/topic:Topic",
            lambda i: i.update(replicationFactor=2),
            "kafka-topic-durability",
            "replication factor 2",
        ),
        (
            FLINK,
            lambda i: i["spec"]["flinkConfiguration"].update(
                {"execution.checkpointing.dir": "s3p://acme-rtdi-aws-us-east-1-flink-state/x"}
            ),
            "flink-state-in-region",
            "is in no bucket or object store of region aws-eu-west-1",
        ),
        (
            FLINK,
            lambda i: i["spec"]["jobManager"].update(replicas=1),
            "flink-active-passive-ha",
            "FlinkDeployment payments is active/passive in the global stack's job specs, but "
            "lacks jobManager.replicas >= 2 (has 1)",
        ),
        (
            FLINK,
            lambda i: i["spec"]["flinkConfiguration"].pop(
                "execution.checkpointing.externalized-checkpoint-retention"
            ),
            "flink-checkpoints-retained",
            "checkpoints are not retained on cancellation (unset: NO_EXTERNALIZED_CHECKPOINTS)",
        ),
        (
            FLINK,
            lambda i: i["spec"]["taskManager"].pop("podTemplate"),
            "flink-taskmanagers-spread",
            "its TaskManagers have no topologySpreadConstraint on topology.kubernetes.io/zone",
        ),
        (
            "kubernetes:core/v1:ConfigMap",
            lambda i: (
                "job.sql" in i.get("data", {})
                and i["data"].update(
                    {"job.sql": i["data"]["job.sql"].replace("'topic' = '", "'topic' = 'ghost;")}
                )
            ),
            "flink-topics-data-class",
            "uses topic 'ghost', which is not a topic of the topology",
        ),
        (
            "kubernetes:core/v1:ConfigMap",
            lambda i: (
                "job.sql" in i.get("data", {})
                and i["data"].update(
                    {
                        "job.sql": re.sub(
                            r"'path' = '\w+://", "'path' = 'file:///tmp/", i["data"]["job.sql"]
                        )
                    }
                )
            ),
            "flink-files-in-region",
            "path 'file:///tmp/acme-rtdi-aws-eu-west-1-archive/aws-us-east-1.orders' is not an "
            "s3/s3a/s3p, gs or hdfs URI",
        ),
    ],
)
def test_edited_plan_is_caught(planned_dir, tmp_path, type_, edit, rule, says):
    path = _edit(planned_dir, tmp_path, type_, edit)
    code, out, err = run_cli(["check", "--plan", str(path)])
    assert code == 1, out + err
    lines = [
        line
        for line in out.splitlines()
        if line.startswith(f"{rule} [mandatory] ") and says in line
    ]
    assert lines, out
    assert "rtdi check FAILED" in out.splitlines()[-1]


def test_edited_plan_as_json(planned_dir, tmp_path):
    path = _edit(
        planned_dir,
        tmp_path,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        lambda i: i.update(restrictPublicBuckets=False),
    )
    code, out, _ = run_cli(["check", "--plan", str(path.parent), "--format", "json"])
    doc = json.loads(out)
    # One violation per edited block (a region has its data buckets and its log bucket).
    edited = sum(
        e["type"] == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
        for e in json.loads(path.read_text())
    )
    assert code == 1 and doc["summary"]["passed"] is False
    mandatory = [v for v in doc["violations"] if v["enforcement"] == "mandatory"]
    assert doc["summary"]["mandatory"] == len(mandatory) == edited
    for v in mandatory:
        assert v["rule"] == "bucket-not-public" and v["enforcement"] == "mandatory"
        assert "BucketPublicAccessBlock::" in v["urn"] and "restrictPublicBuckets" in v["message"]


def test_policy_config_can_demote_a_rule(planned_dir, tmp_path):
    path = _edit(
        planned_dir,
        tmp_path,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        lambda i: i.update(blockPublicAcls=False),
    )
    cfg = tmp_path / "policy.json"
    cfg.write_text(json.dumps({"bucket-not-public": {"enforcementLevel": "advisory"}}))
    code, out, _ = run_cli(["check", "--plan", str(path), "--config", str(cfg)])
    assert code == 0 and "bucket-not-public [advisory]" in out
    cfg.write_text(json.dumps({"bucket-not-public": "disabled"}))
    code, out, _ = run_cli(["check", "--plan", str(path), "--config", str(cfg)])
    assert code == 0 and "bucket-not-public" not in out


def test_cross_stack_primary_over_plan_files(planned_dir, tmp_path):
    copy = tmp_path / "plan"
    shutil.copytree(planned_dir, copy)
    outputs = copy / "aws-eu-west-1" / "outputs.json"
    doc = json.loads(outputs.read_text())
    doc["primary"] = True
    outputs.write_text(json.dumps(doc))
    args = ["check"] + [
        a
        for s in ("aws-us-east-1", "aws-eu-west-1")
        for a in ("--plan", str(copy / s / "resources.json"))
    ]
    code, out, _ = run_cli(args)
    assert code == 1
    assert (
        "single-primary-region [mandatory]" in out
        and "2 regional stacks export primary: true" in out
    )


@pytest.mark.parametrize(
    "argv, says",
    [
        (["check", "--plan", "no/such/resources.json"], "no such plan file"),
        (["check", "no-such-stack"], "no such stack 'no-such-stack'"),
        (["check"], "name at least one stack, or pass --all"),
        (["check", "--all", "--plan", "x"], "do not also name stacks"),
        (["check", "--all", "--config", "no-such-policy.json"], "cannot read the policy config"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, says):
    code, out, err = run_cli(argv)
    assert code == 2 and out == ""
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "content, says",
    [
        ("{not json", "invalid JSON in the plan file"),
        ('{"urn": "x"}', "not an rtdi plan: expected a JSON list"),
        ('[{"type": "aws:s3/bucket:Bucket"}]', "entry [0] is not a resource"),
        ('[{"urn": "u", "type": "t", "inputs": []}]', "`inputs` must be an object"),
    ],
)
def test_invalid_plan_file_exits_2(tmp_path, content, says):
    path = tmp_path / "resources.json"
    path.write_text(content)
    code, out, err = run_cli(["check", "--plan", str(path)])
    assert (
        code == 2 and says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    )


def test_bad_policy_config_exits_2(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("kafka-brokers-across-zones:\n  minZones: many\n")
    code, _, err = run_cli(["check", "--plan", "x", "--config", str(cfg)])
    assert (
        code == 2 and "kafka-brokers-across-zones.minZones" in err and "must be an integer" in err
    )


def test_text_output_one_line_per_violation():
    report = Report(
        violations=[
            Violation("bucket-not-public", "mandatory", "urn:a", "bad"),
            Violation("stateful-workloads-have-pdb", "advisory", "urn:b", "meh"),
        ],
        stacks=["s"],
        rules=["bucket-not-public", "stateful-workloads-have-pdb"],
    )
    assert render_text(report).splitlines() == [
        "bucket-not-public [mandatory] urn:a: bad",
        "stateful-workloads-have-pdb [advisory] urn:b: meh",
        "rtdi check FAILED: 2 violations (1 mandatory, 1 advisory) in 1 stack (s), 2 rules",
    ]


def test_text_output_groups_violations_of_one_cause():
    """One wrong setting on many topics is one finding with its count and a few examples; JSON
    keeps every violation and adds the groups."""
    topics = [f"trips-{i}" for i in range(136)]
    report = Report(
        violations=[
            Violation(
                "kafka-topic-durability",
                "mandatory",
                f"urn:pulumi:s::rtdi::kubernetes:kafka.strimzi.io/v1:KafkaTopic::topic-{t}",
                f"topic {t}: replication factor 1; set spec.replicas to at least 3",
            )
            for t in topics
        ]
        + [
            Violation("kafka-topic-durability", "mandatory", "urn:x::topic-a", "topic a: other"),
            Violation("bucket-not-public", "mandatory", "urn:x::b1", "public 'us'"),
            Violation("bucket-not-public", "mandatory", "urn:x::b2", "public 'eu'"),
        ],
        stacks=["s"],
        rules=["kafka-topic-durability", "bucket-not-public"],
    )
    lines = render_text(report).splitlines()
    assert lines[0] == (
        "kafka-topic-durability [mandatory] 136 resources: topic …: replication factor 1; set "
        "spec.replicas to at least 3"
    )
    assert lines[1].endswith("KafkaTopic::topic-trips-0 (trips-0)")
    assert lines[4] == "    ... and 133 more (--format json lists every one)"
    # a different message, and values that are not the resource's name, stay apart
    assert "kafka-topic-durability [mandatory] urn:x::topic-a: topic a: other" in lines
    assert "bucket-not-public [mandatory] urn:x::b1: public 'us'" in lines
    assert "bucket-not-public [mandatory] urn:x::b2: public 'eu'" in lines
    assert lines[-1].startswith(
        "rtdi check FAILED: 4 findings (139 violations: 139 mandatory, 0 advisory)"
    )
    doc = json.loads(render_json(report))
    assert len(doc["violations"]) == 139
    assert [g["count"] for g in doc["groups"]] == [136, 1, 1, 1]
    assert len(doc["groups"][0]["urns"]) == 136


def _edit_stack(planned_dir: Path, tmp_path: Path, stack: str, edit) -> Path:
    """Copy the planned stacks and apply ``edit(entries)`` to one stack's resources.json."""
    copy = tmp_path / "plan"
    shutil.copytree(planned_dir, copy)
    path = copy / stack / "resources.json"
    entries = json.loads(path.read_text())
    edit(entries)
    path.write_text(json.dumps(entries, indent=1))
    return copy


def _each(entries, type_suffix):
    return [e for e in entries if e["type"].endswith(type_suffix)]


def _widen_to_everything(entries):
    for e in _each(entries, ":KafkaMirrorMaker2"):
        for mirror in e["inputs"]["spec"]["mirrors"]:
            mirror["topicsPattern"] = ".*"


def _widen_to_eu_topic(entries):
    for e in _each(entries, ":KafkaMirrorMaker2"):
        for mirror in e["inputs"]["spec"]["mirrors"]:
            mirror["topicsPattern"] += "|rider\\-profiles"


def _unlabelled_eu_topic(entries):
    topic = _each(entries, ":KafkaTopic")[0]
    topic["inputs"]["spec"]["topicName"] = "rider-profiles"
    topic["inputs"]["metadata"]["labels"].pop("rtdi-data-class")


def _lying_topic_label(entries):
    _each(entries, ":KafkaTopic")[0]["inputs"]["metadata"]["labels"]["rtdi-data-class"] = "x"


def _one_subnet(entries):
    groups = _each(entries, "eks/nodeGroup:NodeGroup")
    for g in groups:
        g["inputs"]["subnetIds"] = groups[0]["inputs"]["subnetIds"]


@pytest.mark.parametrize(
    "stack, edit, rule, says",
    [
        (
            "aws-us-east-1",
            _widen_to_everything,
            "replication-destination-allowed",
            "replicates data class 'personal-eu' (topics rider-profiles) into aws-us-east-1",
        ),
        (
            "aws-us-east-1",
            _widen_to_eu_topic,
            "replication-destination-allowed",
            "is labelled rtdi-data-classes: 'operational', but its topic filter carries "
            "operational, personal-eu",
        ),
        (
            "aws-us-east-1",
            _unlabelled_eu_topic,
            "data-class-residency",
            "topic 'rider-profiles' of data class 'personal-eu' in region aws-us-east-1",
        ),
        (
            "onprem-dc1",
            _lying_topic_label,
            "data-class-residency",
            "is labelled rtdi-data-class: 'x', but the facts say 'operational'",
        ),
        (
            "aws-us-east-1",
            _one_subnet,
            "kubernetes-nodes-across-zones",
            "EKS node groups' subnets cover 1 zone(s) (us-east-1a)",
        ),
    ],
)
def test_rules_read_facts_not_claims(planned_dir, tmp_path, stack, edit, rule, says):
    """The cases of issue 8, on the sample plans: the labels rtdi writes still say all is well."""
    copy = _edit_stack(planned_dir, tmp_path, stack, edit)
    code, out, err = run_cli(["check", "--plan", str(copy)])
    assert code == 1, out + err
    assert any(
        line.startswith(f"{rule} [mandatory] ") and says in line for line in out.splitlines()
    ), out


@pytest.mark.parametrize("content", [None, "[]"])
def test_no_stack_or_no_resources_is_bad_input(tmp_path, content):
    """An empty plan folder or an empty resources.json is not a plan: exit 2, never a pass."""
    if content is not None:
        (tmp_path / "resources.json").write_text(content)
    code, out, err = run_cli(["check", "--plan", str(tmp_path)])
    assert code == 2 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert ("lists no resources" if content else "holds no plan") in err


def test_stack_that_declares_nothing_fails(planned_dir, tmp_path):
    """A real stack plan with only its root stack and providers left: a mandatory violation."""
    copy = _edit_stack(
        planned_dir,
        tmp_path,
        "onprem-dc1",
        lambda entries: entries.__setitem__(
            slice(None),
            [e for e in entries if e["type"].startswith(("pulumi:", "rtdi:"))],
        ),
    )
    code, out, _ = run_cli(["check", "--plan", str(copy / "onprem-dc1")])
    assert code == 1
    assert "plan-not-empty [mandatory]" in out and "declares no resources" in out


def test_regional_plan_without_its_global_stack_fails_closed(planned_dir, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    regional = next(
        p
        for p in sorted(planned_dir.iterdir())
        if '"pulumi:pulumi:StackReference"' in (p / "resources.json").read_text()
        and "KafkaMirrorMaker2" in (p / "resources.json").read_text()
    )
    shutil.copy(regional / "resources.json", lone / "resources.json")
    code, out, _ = run_cli(["check", "--plan", str(lone / "resources.json")])
    assert code == 1 and "global topology is not available" in out
    code, out, _ = run_cli(
        ["check", "--plan", str(lone / "resources.json"), "--plan", str(planned_dir / "global")]
    )
    assert code == 0, out


def test_plan_id_convention_matches_the_mocks():
    """resources.json records no ids; the plan adapter rebuilds them as infra/plan/mocks.py does."""
    from infra.plan.mocks import MARK
    from policies.view import PLAN_ID_FORMAT

    assert PLAN_ID_FORMAT.format(name="x") == f"x-{MARK}-id"
