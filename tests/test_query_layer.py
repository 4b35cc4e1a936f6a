"""The query layer as the plans declare it: one engine per region with the catalogs of its
engine and version, a metastore on a database of its own, the archive's tables (exactly the
region's aggregate topics), and Presto as a region's option, chosen in the topology."""

from __future__ import annotations

import json
import re

from infra import versions
from infra.components.kafka.flows import flows_into, topic_allowed
from infra.components.query.engines import (
    Presto,
    Trino,
    parse_properties,
    properties,
    trino_fs_switch,
)
from infra.topology.model import Kafka, Topology
from plantools import sample_config

RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRONJOB = "kubernetes:batch/v1:CronJob"
REGIONAL = ["aws-eu-west-1", "aws-us-east-1", "gcp-europe-west4", "onprem-dc1"]
TABLE = re.compile(
    r"CREATE TABLE IF NOT EXISTS archive\.kafka\.(\w+) \(.*?external_location = "
    r"'([^']+)'",
    re.S,
)


def engine_release(plan, region: str):
    (release,) = [r for r in plan.of_type(RELEASE) if r.name.startswith(f"{region}-query-")]
    return release


def catalogs(release) -> dict[str, dict[str, str]]:
    values = release.inputs["values"]
    raw = values.get("catalogs", values.get("catalog"))
    return {name: parse_properties(text) for name, text in raw.items()}


def script(plan, region: str) -> str:
    (cm,) = [r for r in plan.of_type(CONFIGMAP) if r.name == f"{region}-query-archive-sql"]
    return cm.inputs["data"]["archive.sql"]


def expected_topics(topology: Topology, kafka: Kafka, region_id: str) -> list[str]:
    """What the region's aggregate holds, derived from the flows, not from the registry the
    layer reads: every topic its data class allows here, copied from every region flowing in."""
    region = topology.region(region_id)
    out = []
    for topic in kafka.topics:
        if not topic_allowed(kafka, topic, region):
            continue
        out += [
            f"{f.source}.{topic.name}"
            for f in flows_into(topology, kafka, region)
            if topic.name in f.topics
        ]
    return sorted(out)


def published(plans) -> tuple[Topology, Kafka]:
    rtdi = plans["global"].outputs["rtdi"]
    return Topology.model_validate(rtdi["topology"]), Kafka.model_validate(rtdi["kafka"])


# --------------------------------------------------------------------------- the plans


def test_every_region_runs_trino_476_from_the_pinned_chart(plans):
    for stack in REGIONAL:
        release = engine_release(plans[stack], stack)
        assert release.inputs["chart"] == "trino"
        assert release.inputs["version"] == versions.TRINO_CHART_VERSION
        assert release.inputs["namespace"] == "query"
        values = release.inputs["values"]
        assert values["image"] == {"repository": "trinodb/trino", "tag": versions.TRINO_VERSION}
        assert values["serviceAccount"] == {"create": False, "name": "query-engine"}
        assert sorted(values["catalogs"]) == ["archive", "pinot"], "the chart's tpch/tpcds gone"
        out = plans[stack].outputs["query"]
        assert out["engine"] == "trino" and out["version"] == versions.TRINO_VERSION
        assert out["coordinator"] == "http://trino.query.svc.cluster.local:8080"


def test_catalog_properties_are_those_of_trino_476_and_the_region_store(plans):
    for stack in REGIONAL:
        found = catalogs(engine_release(plans[stack], stack))
        archive, pinot = found["archive"], found["pinot"]
        assert pinot == {
            "connector.name": "pinot",
            "pinot.controller-urls": "pinot-controller.pinot.svc.cluster.local:9000",
        }
        assert archive["connector.name"] == "hive"
        assert archive["hive.metastore"] == "thrift"
        assert archive["hive.metastore.uri"] == (
            "thrift://hive-metastore.query.svc.cluster.local:9083"
        )
        # 476 spells the native file systems fs.native-*; 481 renamed them (never both here).
        assert not any(k in archive for k in ("fs.s3.enabled", "fs.gcs.enabled"))
        buckets = plans[stack].outputs["buckets"]
        scheme = buckets["archive"].split("://")[0]
        if scheme == "s3":
            assert archive["fs.native-s3.enabled"] == "true"
            assert archive["s3.region"] == stack.removeprefix("aws-")
            assert "s3.endpoint" not in archive, "the cloud's own S3, through IRSA"
        elif scheme == "gs":
            assert archive["fs.native-gcs.enabled"] == "true"
        else:
            assert scheme == "hdfs"
            assert archive["fs.hadoop.enabled"] == "true"
            assert archive["hive.config.resources"] == "/etc/hadoop/conf/core-site.xml"
            values = engine_release(plans[stack], stack).inputs["values"]
            for node in ("coordinator", "worker"):
                mounts = values[node]["additionalVolumeMounts"]
                assert {
                    "name": "hadoop-conf",
                    "mountPath": "/etc/hadoop/conf",
                    "readOnly": True,
                } in mounts
        # Secrets never in a catalog file: keys come from the pod's identity.
        assert not [k for k in archive if "secret" in k or "access-key" in k]


def test_the_renamed_switch_follows_the_version():
    assert trino_fs_switch("s3", "476") == "fs.native-s3.enabled"
    assert trino_fs_switch("gcs", "480") == "fs.native-gcs.enabled"
    assert trino_fs_switch("s3", "481") == "fs.s3.enabled"
    assert trino_fs_switch("azure", "500") == "fs.azure.enabled"
    text = properties({"b": "2", "a": "1"})
    assert text == "a=1\nb=2\n" and parse_properties(text) == {"a": "1", "b": "2"}


def test_archive_tables_are_exactly_the_region_aggregate_topics(plans):
    topology, kafka = published(plans)
    seen_eu_only = False
    for stack in REGIONAL:
        root = plans[stack].outputs["archive"].rstrip("/")
        tables = dict(TABLE.findall(script(plans[stack], stack)))
        topics = expected_topics(topology, kafka, stack)
        assert tables == {re.sub(r"[.-]", "_", t): f"{root}/{t}" for t in topics}, stack
        assert plans[stack].outputs["query"]["archiveTables"] == sorted(tables)
        eu_only = [t for t in tables if t.endswith("rider_profiles")]
        region = topology.region(stack)
        assert bool(eu_only) == (region.jurisdiction == "eu"), stack
        seen_eu_only |= bool(eu_only)
        # Each table's hourly partitions are registered on every run of the script.
        for table in tables:
            assert (
                f"CALL archive.system.sync_partition_metadata('kafka', '{table}', 'FULL');"
                in script(plans[stack], stack)
            )
    assert seen_eu_only, "the samples have a personal-eu topic in some region"


def test_the_partition_job_runs_the_planned_script_with_the_engine_cli(plans):
    for stack in REGIONAL:
        # The query layer's own (on-prem also expires its archive with one: test_archive_expiry).
        (cron,) = [
            r for r in plans[stack].of_type(CRONJOB) if r.inputs["metadata"]["namespace"] == "query"
        ]
        spec = cron.inputs["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == f"trinodb/trino:{versions.TRINO_VERSION}"
        assert container["command"] == [
            "trino",
            "--server",
            "http://trino.query.svc.cluster.local:8080",
            "--file",
            "/opt/rtdi/sql/archive.sql",
        ]
        assert pod["volumes"] == [{"name": "sql", "configMap": {"name": "archive-tables"}}]


def test_the_metastore_has_its_own_database_and_the_archive_identity(plans):
    for stack in REGIONAL:
        plan = plans[stack]
        (db,) = [r for r in plan.of_type(STATEFULSET) if r.name == f"{stack}-query-db"]
        (pg,) = db.inputs["spec"]["template"]["spec"]["containers"]
        assert pg["image"] == versions.METASTORE_POSTGRES_IMAGE
        (claim,) = db.inputs["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        storage_class = claim["spec"]["storageClassName"]
        assert storage_class == "local-nvme" if stack == "onprem-dc1" else storage_class
        (hms,) = [r for r in plan.of_type(DEPLOYMENT) if r.name == f"{stack}-query-metastore"]
        pod = hms.inputs["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        # rtdi's image (jobs/metastore/Dockerfile): the driver is in it, nothing is fetched.
        assert container["image"] == versions.METASTORE_IMAGE
        assert "initContainers" not in pod
        assert pod["serviceAccountName"] == "hive-metastore"
        env = {e["name"]: e for e in container["env"]}
        assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "metastore-db",
            "key": "password",
        }
        opts = env["SERVICE_OPTS"]["value"]
        assert "jdbc:postgresql://metastore-db.query.svc.cluster.local:5432/metastore" in opts
        assert "ConnectionPassword=$(DB_PASSWORD)" in opts, "the password never in the spec"


# --------------------------------------------------------------------------- Presto


def _with_engine(plans, stack: str, engine: str):
    from infra.plan.engine import run_stack
    from infra.program import main

    values = json.loads(json.dumps(plans["global"].values))
    for region in values["rtdi"]["topology"]["regions"]:
        if f"{region['cloud']}-{region['name']}" == stack:
            region["query"] = {"engine": engine}
    return run_stack(sample_config(stack), main, {"global": values})


def test_presto_is_a_region_option_with_its_own_chart_and_property_names(plans):
    plan = _with_engine(plans, "aws-us-east-1", "presto")
    release = engine_release(plan, "aws-us-east-1")
    assert release.inputs["chart"] == "presto"
    assert release.inputs["version"] == versions.PRESTO_CHART_VERSION
    values = release.inputs["values"]
    assert values["image"] == {"repository": "prestodb/presto", "tag": versions.PRESTO_VERSION}
    found = catalogs(release)
    assert found["archive"]["connector.name"] == "hive-hadoop2"
    assert found["archive"]["hive.s3.use-instance-credentials"] == "false"
    assert not [k for k in found["archive"] if k.startswith(("fs.", "s3."))]
    assert found["pinot"]["connector.name"] == "pinot"
    sql = script(plan, "aws-us-east-1")
    assert "kafka_timestamp timestamp," in sql and "timestamp(3)" not in sql
    assert plan.outputs["query"]["engine"] == "presto"
    # The same tables as Trino's: residency does not depend on the engine.
    assert TABLE.findall(sql) == TABLE.findall(script(plans["aws-us-east-1"], "aws-us-east-1"))


def test_engine_objects_answer_for_their_engine():
    assert Trino().cli("http://t:8080", "/f.sql")[0] == "trino"
    assert Presto().cli("http://p:8080", "/f.sql") == [
        "presto-cli",
        "--server",
        "p:8080",
        "--file",
        "/f.sql",
    ]
    assert Presto().column_type("timestamp(3)") == "timestamp"
    assert Trino().column_type("timestamp(3)") == "timestamp(3)"


def test_an_unknown_engine_is_one_line(tmp_path, monkeypatch):
    from test_config_errors import Case, assert_one_line, broken_project, run_cli

    from infra.cli import EXIT_BAD_INPUT

    def edit(c: dict) -> None:
        c["rtdi:topology"]["regions"][0]["query"] = {"engine": "spark"}

    case = Case(
        "query-engine",
        "global",
        edit,
        "stacks/Pulumi.global.yaml: rtdi:topology.regions[0].query.engine = 'spark': ",
        "allowed: ",
    )
    monkeypatch.chdir(broken_project(tmp_path, case))
    code, stdout, stderr = run_cli(["plan", "--all", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert_one_line(stderr, case)
    assert "trino" in stderr and "presto" in stderr
