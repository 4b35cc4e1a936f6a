"""The archive as the plans declare it: one archive FlinkDeployment per region reading every
aggregate topic the region holds (and nothing else) into its archive bucket, its Kafka identity
limited to those topics, the bucket's lifecycle expiring each topic as its data class says, and
bad archive settings refused in one line.
"""

from __future__ import annotations

import re

import pytest
import yaml

from infra import versions
from infra.components.flink import archive as archiving
from infra.components.kafka.flows import federation_registry
from infra.topology.config import parse_global
from infra.topology.errors import ConfigError
from infra.topology.jobs import load_jobs
from infra.topology.model import DataClass
from plantools import sample_config

FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
USER = "kubernetes:kafka.strimzi.io/v1:KafkaUser"
S3_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
GCS_BUCKET = "gcp:storage/bucket:Bucket"
REGIONAL = ["aws-eu-west-1", "aws-us-east-1", "gcp-europe-west4", "onprem-dc1"]
TABLE = re.compile(
    r"CREATE TABLE `([^`]+)` \((.*?)\) (?:PARTITIONED BY \((.*?)\) )?WITH \((.*?)\n\);", re.S
)


def tables(sql: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    """Each CREATE TABLE: (columns, partition columns, WITH options), by name."""
    return {
        name: (columns, parts or "", dict(re.findall(r"'([^']+)' = '((?:[^']|'')*)'", body)))
        for name, columns, parts, body in TABLE.findall(sql)
    }


def archive_of(plan) -> tuple[dict, str]:
    (d,) = [r.inputs for r in plan.of_type(FLINK) if r.inputs["metadata"]["name"] == "archive"]
    (cm,) = [
        r.inputs for r in plan.of_type(CONFIGMAP) if r.inputs["metadata"]["name"] == "archive-sql"
    ]
    return d["spec"], cm["data"]["job.sql"]


def held(plan, stack: str) -> list[str]:
    """Every physical topic the region's aggregate holds, from the stack's own registry."""
    topics = plan.outputs["kafkaFederation"]["topics"]
    return sorted(
        n
        for t in topics.values()
        if stack in t["regions"]
        for n in t["regions"][stack]["consume"]["topics"]
    )


@pytest.mark.parametrize("stack", REGIONAL)
def test_each_region_archives_exactly_the_topics_its_aggregate_holds(plans, stack):
    plan = plans[stack]
    spec, sql = archive_of(plan)
    found = tables(sql)
    sources = {n: o for n, (_, _, o) in found.items() if o["connector"] == "kafka"}
    sinks = {n: (p, o) for n, (_, p, o) in found.items() if o["connector"] == "filesystem"}
    read = sorted(re.sub(r"\\(.)", r"\1", o["topic-pattern"]) for o in sources.values())
    assert read == held(plan, stack)
    # A class the jurisdiction may not hold is never read, so never archived, here.
    kafka = plans["global"].outputs["rtdi"]["kafka"]
    jurisdiction = {"aws-eu-west-1": "eu", "gcp-europe-west4": "eu"}.get(stack, "us")
    classes = plan.outputs["kafkaFederation"]["topics"]
    for name, t in classes.items():
        allowed = jurisdiction in kafka["dataClasses"][t["dataClass"]]["jurisdictions"]
        assert any(r.endswith(f".{name}") for r in read) == allowed, (stack, name)
    archive = plan.outputs["archive"]
    scheme = archive.split("://")[0]
    paths = sorted(o["path"] for _, o in sinks.values())
    want_scheme = {"s3": "s3a"}.get(scheme, scheme)
    base = archive.split("://", 1)[1].rstrip("/")
    assert paths == sorted(f"{want_scheme}://{base}/{t}" for t in read)
    for parts, options in sinks.values():
        assert parts == "`dt`, `hr`"
        assert options["format"] == "parquet"
        assert options["parquet.utc-timezone"] == "true"
    # Every source feeds its own sink: one INSERT per physical topic.
    inserts = re.findall(r"INSERT INTO `archive_(\w+)`\n.*?FROM `kafka_(\w+)`;", sql, re.S)
    assert sorted(a for a, b in inserts if a == b) == sorted(archiving.table_name(t) for t in read)
    assert "SET 'table.local-time-zone' = 'UTC';" in sql
    # Exactly-once: files are published at completed checkpoints only.
    conf = spec["flinkConfiguration"]
    assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert spec["job"]["upgradeMode"] == "last-state"
    assert spec["job"]["state"] == "running"


def test_s3_regions_enable_the_hadoop_plugin_the_file_sink_writes_with(plans):
    for stack in ["aws-eu-west-1", "aws-us-east-1"]:
        spec, _ = archive_of(plans[stack])
        (container,) = spec["podTemplate"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        jars = env["ENABLE_BUILT_IN_PLUGINS"].split(";")
        assert f"flink-s3-fs-hadoop-{versions.FLINK_VERSION}.jar" in jars


def test_the_archive_has_its_own_kafka_identity_reading_only_what_it_archives(plans):
    for stack in ["aws-us-east-1", "onprem-dc1"]:  # the Strimzi aggregates
        plan = plans[stack]
        users = {
            r.inputs["metadata"]["name"]: r.inputs
            for r in plan.of_type(USER)
            if r.inputs["metadata"]["name"].startswith("flink-archive")
        }
        assert sorted(users) == ["flink-archive-aggregate"], stack
        acls = users["flink-archive-aggregate"]["spec"]["authorization"]["acls"]
        topics = sorted(a["resource"]["name"] for a in acls if a["resource"]["type"] == "topic")
        assert topics == held(plan, stack)
        assert all(
            sorted(a["operations"]) == ["Describe", "Read"]
            for a in acls
            if a["resource"]["type"] == "topic"
        )
        groups = [a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"]
        assert groups == ["flink-archive"]


def test_the_archive_bucket_expires_each_topic_as_its_data_class_says(plans):
    kafka = plans["global"].outputs["rtdi"]["kafka"]
    days = {c: v["archiveRetentionDays"] for c, v in kafka["dataClasses"].items()}
    for stack in ["aws-eu-west-1", "aws-us-east-1"]:
        plan = plans[stack]
        topics = plan.outputs["kafkaFederation"]["topics"]
        want = {
            f"{n}/": days[t["dataClass"]]
            for t in topics.values()
            if stack in t["regions"]
            for n in t["regions"][stack]["consume"]["topics"]
        }
        (config,) = [r.inputs for r in plan.of_type(S3_LIFECYCLE) if r.name.endswith("-archive")]
        got = {
            r["filter"]["prefix"]: r["expiration"]["days"]
            for r in config["rules"]
            if "expiration" in r
        }
        assert got == want, stack
        assert len(config["rules"]) <= 1000
    plan = plans["gcp-europe-west4"]
    (bucket,) = [
        r.inputs for r in plan.of_type(GCS_BUCKET) if r.inputs["name"].endswith("-archive")
    ]
    got = {
        p: r["condition"]["age"]
        for r in bucket["lifecycleRules"]
        if r["action"]["type"] == "Delete" and "matchesPrefixes" in r["condition"]
        for p in r["condition"]["matchesPrefixes"]
    }
    topics = plan.outputs["kafkaFederation"]["topics"]
    assert got == {
        f"{n}/": days[t["dataClass"]]
        for t in topics.values()
        if "gcp-europe-west4" in t["regions"]
        for n in t["regions"]["gcp-europe-west4"]["consume"]["topics"]
    }


def test_archive_tables_are_the_contract_the_query_layer_reads():
    model = parse_global(sample_config("global"))
    registry = federation_registry(model.topology, model.kafka)
    found = archiving.archive_tables("aws-us-east-1", model.topology, registry, "s3://b/p/")
    by_topic = {t.topic: t for t in found}
    trips = by_topic["aws-eu-west-1.trips"]
    assert trips.table == "aws_eu_west_1_trips"
    assert trips.logical == "trips" and trips.source_region == "aws-eu-west-1"
    assert trips.location == "s3://b/p/aws-eu-west-1.trips"
    assert trips.data_class == "operational"
    assert not [t for t in found if t.logical == "rider-profiles"]  # personal-eu, in the US
    # Retention by key prefix below the bucket's own (the target adds that one).
    keep = archiving.expirations("aws-us-east-1", model.topology, model.kafka, registry)
    assert keep["aws-eu-west-1.trips/"] == 400
    assert sorted(keep) == sorted(f"{t.topic}/" for t in found)
    assert [n for n, _ in archiving.COLUMNS] == [
        "key", "value", "headers", "kafka_partition", "kafka_offset", "kafka_timestamp"
    ]  # fmt: skip


def _load(tmp_path, spec: dict):
    folder = tmp_path / "jobs" / "flink"
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(yaml.safe_dump(spec))
    model = parse_global(sample_config("global"))
    return load_jobs(model.topology, model.kafka, folder)


ARCHIVE = {"name": "archive", "kind": "archive", "mode": "all-active"}


@pytest.mark.parametrize(
    "extra, head",
    [
        (
            {"sql": "x.sql"},
            "jobs/flink/job.yaml: kind = 'archive': an archive job's program and tables are "
            "rtdi's (every aggregate topic of the region, into its archive bucket); allowed: "
            "leave out sql",
        ),
        (
            {
                "sources": [
                    {"table": "t", "topic": "trips", "columns": [{"name": "a", "type": "INT"}]}
                ]
            },
            "jobs/flink/job.yaml: kind = 'archive': an archive job's program and tables are rtdi's",
        ),
        (
            {"kind": "parquet"},
            "jobs/flink/job.yaml: kind = 'parquet': allowed: 'stream' or 'archive'",
        ),
    ],
)
def test_bad_archive_spec_is_one_line(tmp_path, extra, head):
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, {**ARCHIVE, **extra})
    lines = str(exc.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(head), lines


def test_an_archive_spec_alone_is_valid(tmp_path):
    (job,) = _load(tmp_path, ARCHIVE)
    assert job.kind == "archive" and not job.sources and job.sql is None


@pytest.mark.parametrize("days", [0, -1, 2**31])
def test_archive_retention_is_bounded_by_the_cloud_apis(days):
    with pytest.raises(ValueError, match="S3 lifecycle expiration"):
        DataClass.model_validate({"jurisdictions": ["us"], "archiveRetentionDays": days})
    assert DataClass.model_validate({"jurisdictions": ["us"], "archiveRetentionDays": 1})
