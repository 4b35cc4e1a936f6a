"""The FlinkDeployments rtdi plans, run on real Flink 2.2 against real Kafka and a real store.

For a region on S3 (aws-us-east-1: s3proxy stands in for S3) and a region on HDFS (onprem-dc1:
hadoop-client-minicluster stands in for the NameNode), the payments job (exactly-once,
active/passive) runs in a MiniCluster with:

- the ``flinkConfiguration`` of its planned FlinkDeployment, only the store's endpoint and
  credentials rewritten to loopback and the keys that need Kubernetes dropped
  (flink_local.loopback_configuration lists every key it considered: a new key fails here);
- the SQL of its planned ConfigMap (the tables rtdi generated from the federation registry), only
  the Kafka connection and security properties replaced by loopback PLAINTEXT; the physical
  topics the plan resolved are created on the loopback broker;
- the plugins the plan enables (``ENABLE_BUILT_IN_PLUGINS``) in a plugins directory, and for
  HDFS the planned core-site.xml (fs.defaultFS rewritten) in ``HADOOP_CONF_DIR`` with the image's
  Hadoop client jars on the classpath (never a file system plugin).

The JVM is SIGKILLed while the sink has an open transaction, restarted from the latest retained
checkpoint, and the committed (read_committed) ledger holds every payment with a positive amount
exactly once and nothing else. Timings are printed (``-s`` shows them).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flink_local as fl
import hdfs_local
import kafka_local as kl
from test_flink_runner_build import hadoop_jars_added

from infra import versions

JOB = "payments"
FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
PARTITIONS = 2
FIRST, SECOND = 120, 120
WAIT = 150
# Event times a few minutes back (the broker's time retention keeps them; the watermark is past).
BASE = int(time.time()) - 600
# Only fs.defaultFS of the planned core-site.xml: the NameNode's endpoint.
CORE_SITE_ENDPOINT = "fs.defaultFS"


@dataclass
class Planned:
    """What the plan of ``stack`` declares for the job: its spec, SQL and Hadoop configuration."""

    stack: str
    spec: dict[str, Any]
    sql: str
    env: dict[str, dict[str, Any]]
    core_site: str | None = None

    @property
    def configuration(self) -> dict[str, str]:
        return self.spec["flinkConfiguration"]


def planned(plans, stack: str) -> Planned:
    plan = plans[stack]
    (deployment,) = [r for r in plan.of_type(FLINK) if r.inputs["metadata"]["name"] == JOB]
    spec = deployment.inputs["spec"]
    (container,) = spec["podTemplate"]["spec"]["containers"]
    maps = {r.inputs["metadata"]["name"]: r.inputs["data"] for r in plan.of_type(CONFIGMAP)}
    volumes = {v["name"]: v for v in spec["podTemplate"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    sql_dir, sql_file = spec["job"]["args"][1].rsplit("/", 1)
    sql = maps[volumes[mounts[sql_dir]]["configMap"]["name"]][sql_file]
    env = {e["name"]: e for e in container.get("env", [])}
    core_site = None
    if "HADOOP_CONF_DIR" in env:
        conf_map = volumes[mounts[env["HADOOP_CONF_DIR"]["value"]]]["configMap"]["name"]
        core_site = maps[conf_map]["core-site.xml"]
    return Planned(stack, spec, sql, env, core_site)


@dataclass
class Store:
    """A loopback store standing in for the region's: where the job's state goes and how the
    runner reaches it."""

    uri: str  # replaces the planned store's scheme://authority
    access: dict[str, str]  # its endpoint and credentials, as Flink configuration
    checkpoints: Callable[[str], list[tuple[int, str]]]  # a checkpoint dir URI -> (N, URI)
    classpath: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def s3_store(proxy: fl.S3Proxy, job: Planned) -> Store:
    """s3proxy with a bucket of the planned bucket's name; presto's s3.* keys reach it."""
    bucket = fl.store_of(job.configuration["execution.checkpointing.dir"]).split("://")[1]
    proxy.create_bucket(bucket)

    def checkpoints(uri: str) -> list[tuple[int, str]]:
        prefix = uri.split("://", 1)[1].split("/", 1)[1]
        return [(n, f"s3p://{bucket}/{p}") for n, p in proxy.checkpoints(bucket, prefix)]

    access = {
        "s3.endpoint": proxy.endpoint,
        "s3.path.style.access": "true",
        "s3.access-key": proxy.access_key,
        "s3.secret-key": proxy.secret_key,
    }
    return Store(f"s3p://{bucket}", access, checkpoints)


def loopback_core_site(planned_xml: str, default_fs: str) -> str:
    """The planned core-site.xml with fs.defaultFS on loopback; any other property fails until
    considered."""
    root = ET.fromstring(planned_xml)
    for prop in root.iter("property"):
        name = prop.findtext("name")
        if name != CORE_SITE_ENDPOINT:
            raise fl.NotConsidered(f"core-site.xml property {name!r} not considered")
        value = prop.find("value")
        assert value is not None and (value.text or "").startswith("hdfs://")
        value.text = default_fs
    return ET.tostring(root, encoding="unicode")


def hdfs_store(cluster: hdfs_local.Hdfs, job: Planned, workdir: Path) -> Store:
    assert job.core_site is not None, "an HDFS region mounts its Hadoop configuration"
    conf_dir = workdir / "hadoop-conf"
    conf_dir.mkdir()
    (conf_dir / "core-site.xml").write_text(loopback_core_site(job.core_site, cluster.uri))

    def checkpoints(uri: str) -> list[tuple[int, str]]:
        path = "/" + uri.split("://", 1)[1].split("/", 1)[1]
        return [(n, f"{cluster.uri}{p}") for n, p in cluster.checkpoints(path)]

    # Hadoop's client as the HDFS runner image has it: the very jars its Dockerfile adds.
    client = sorted((hdfs_local.require_hadoop() / "client").glob("*.jar"))
    image = hadoop_jars_added()
    assert sorted(j.name for j in client) == sorted(image)
    for jar in client:
        assert hashlib.sha256(jar.read_bytes()).hexdigest() == image[jar.name][1], jar.name
    return Store(
        cluster.uri,
        {},
        checkpoints,
        classpath=client,
        env={"HADOOP_CONF_DIR": str(conf_dir)},
    )


# --------------------------------------------------------------------------- Kafka, both ways


def payment(i: int) -> dict[str, Any]:
    """Payment i; every fifth has no positive amount and is filtered out by the job."""
    stamp = datetime.fromtimestamp(BASE + i, UTC).strftime("%Y-%m-%d %H:%M:%S.000")
    amount = 0 if i % 5 == 0 else 100 + i
    return {"payment_id": f"pay-{i:05d}", "rider_id": f"rider-{i % 7}", "amount_cents": amount,
            "event_time": stamp}  # fmt: skip


def produce(bootstrap: str, topics: list[str], payments: list[dict[str, Any]]) -> None:
    """Each payment into one of the region copies the job reads (round robin)."""
    from confluent_kafka import Producer

    errors: list = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "log_level": 0}
    )
    for n, p in enumerate(payments):
        producer.produce(
            topics[n % len(topics)],
            key=p["payment_id"].encode(),
            value=json.dumps(p).encode(),
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
    assert producer.flush(60) == 0 and not errors, errors


def ledger(bootstrap: str, topic: str, isolation: str) -> list[tuple[str, str, int]]:
    """Every record of the sink topic readable at ``isolation`` (read_committed or
    read_uncommitted), as (payment_id, rider_id, amount_cents)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        rows, idle, deadline = [], 0, time.monotonic() + 15
        while time.monotonic() < deadline and idle < 3:
            msg = c.poll(0.3)
            if msg is None:
                idle += 1
                continue
            idle = 0
            if msg.error():
                raise RuntimeError(str(msg.error()))
            row = json.loads(msg.value())
            rows.append((row["payment_id"], row["rider_id"], row["amount_cents"]))
        return rows
    finally:
        c.close()


# --------------------------------------------------------------------------- the run


def running(job: kl.JavaProcess, probe: Callable[[], Any]) -> Callable[[], Any]:
    """``probe``, failing at once with the cause if the job has failed and is restarting: the
    planned restart strategy (exponential-delay) would otherwise retry until the wait times
    out."""

    def check() -> Any:
        log = job.log_text()
        if "to RESTARTING" in log:
            causes = [line for line in log.splitlines() if "Exception:" in line]
            pytest.fail(f"{job.name}: the job failed and restarts: {causes[:3]}", pytrace=False)
        return probe()

    return check


def minicluster(spec: dict[str, Any]) -> dict[str, str]:
    """What the operator derives from the spec for its pods, said to a MiniCluster: the job's
    parallelism, and as many TaskManagers as the operator would start for it."""
    parallelism = spec["job"]["parallelism"]
    slots = int(spec["flinkConfiguration"]["taskmanager.numberOfTaskSlots"])
    return {
        "parallelism.default": str(parallelism),
        "minicluster.number-of-taskmanagers": str(math.ceil(parallelism / slots)),
    }


def exactly_once_through_a_crash(job: Planned, store: Store, kafka, fresh_topics, root: Path):
    flink = fl.require_flink()
    started = time.monotonic()
    conf, dropped = fl.loopback_configuration(job.configuration, store.uri, store.access)
    assert dropped == fl.NEEDS_KUBERNETES, "HA on Kubernetes is what the plan gives this job"
    conf.update(minicluster(job.spec))
    sql_text, tables = fl.loopback_sql(job.sql, kafka.bootstrap)
    sources = [t for t in tables.values() if "topic-pattern" in t]
    (sink,) = [t for t in tables.values() if "topic" in t]
    (source,) = sources
    source_topics = fl.physical_topics(source)
    (sink_topic,) = fl.physical_topics(sink)
    assert len(source_topics) > 1, "the job reads every region's copy on its aggregate cluster"
    fresh_topics(
        [(t, PARTITIONS) for t in [*source_topics, sink_topic]],
        [source["properties.group.id"]],
    )
    considered_env = {"ENABLE_BUILT_IN_PLUGINS", "HADOOP_CONF_DIR"}
    plain = {n for n, e in job.env.items() if "valueFrom" not in e}  # secrets: SQL placeholders
    assert plain <= considered_env, f"container env not considered: {plain - considered_env}"
    enabled = job.env.get("ENABLE_BUILT_IN_PLUGINS", {}).get("value", "")
    plugins = fl.plugins_dir(flink, enabled, root)
    sql = root / "job.sql"
    sql.write_text(sql_text)
    checkpoint_dir = conf["execution.checkpointing.dir"]
    payments = [payment(i) for i in range(FIRST + SECOND)]
    expected = sorted(
        (p["payment_id"], p["rider_id"], p["amount_cents"]) for p in payments if p["amount_cents"]
    )
    first_batch = [e for e in expected if int(e[0][4:]) < FIRST]

    def run(name: str, extra: dict[str, str]) -> kl.JavaProcess:
        return fl.start_runner(
            name,
            flink,
            root,
            sql,
            {**conf, **extra},
            plugins=plugins,
            classpath=store.classpath,
            env=store.env,
        )

    produce(kafka.bootstrap, source_topics, payments[:FIRST])
    first = run("first", {})
    try:
        kl.wait_for(
            "the first payments committed to the ledger",
            running(
                first,
                lambda: (
                    len(ledger(kafka.bootstrap, sink_topic, "read_committed")) >= len(first_batch)
                ),
            ),
            WAIT,
            interval=1,
            alive=[first],
            last=first.tail,
        )
        kl.wait_for(
            "a retained checkpoint", lambda: store.checkpoints(checkpoint_dir), WAIT, alive=[first]
        )
        produce(kafka.bootstrap, source_topics, payments[FIRST:])
        # Crash while the sink's transaction since the last checkpoint holds records.
        kl.wait_for(
            "records in an open transaction",
            lambda: (
                len(ledger(kafka.bootstrap, sink_topic, "read_uncommitted"))
                > len(ledger(kafka.bootstrap, sink_topic, "read_committed"))
            ),
            WAIT,
            interval=0.2,
            alive=[first],
        )
    finally:
        first.popen.kill()  # SIGKILL: no clean shutdown, no final checkpoint
        first.popen.wait(30)
    crash_at = time.monotonic() - started
    before = ledger(kafka.bootstrap, sink_topic, "read_committed")
    written = len(ledger(kafka.bootstrap, sink_topic, "read_uncommitted"))
    assert len(before) < len(expected) and written > len(before), (len(before), written)
    number, restore = store.checkpoints(checkpoint_dir)[-1]

    second = run("second", {"execution.state-recovery.path": restore})
    try:
        kl.wait_for(
            f"all {len(expected)} payments committed",
            running(
                second,
                lambda: len(ledger(kafka.bootstrap, sink_topic, "read_committed")) >= len(expected),
            ),
            WAIT,
            interval=1,
            alive=[second],
            last=second.tail,
        )
        # One more checkpoint: a late duplicate would be committed by now.
        last = store.checkpoints(checkpoint_dir)[-1][0]
        kl.wait_for(
            "one more checkpoint",
            lambda: store.checkpoints(checkpoint_dir)[-1][0] > last,
            WAIT,
            alive=[second],
        )
        rows = ledger(kafka.bootstrap, sink_topic, "read_committed")
    finally:
        second.popen.kill()
        second.popen.wait(30)
    took = time.monotonic() - started
    print(
        f"\n{job.stack} {JOB} on {store.uri}: {took:.1f} s (crash at {crash_at:.1f} s with "
        f"{written - len(before)} uncommitted records; restored from checkpoint {number} at "
        f"{restore}); dropped {sorted(dropped)}; Flink {versions.FLINK_VERSION}"
    )
    assert [r for r, n in Counter(rows).items() if n > 1] == [], "a payment was committed twice"
    assert sorted(rows) == expected
    assert f"located at {restore}" in second.log_text(), "the job restored from that checkpoint"


@pytest.mark.integration
def test_planned_s3_region_job_is_exactly_once_across_a_crash(
    plans, kafka, s3proxy, fresh_topics, tmp_path
):
    job = planned(plans, "aws-us-east-1")
    assert job.configuration["execution.checkpointing.dir"].startswith("s3p://")
    store = s3_store(s3proxy, job)
    exactly_once_through_a_crash(job, store, kafka, fresh_topics, tmp_path)


@pytest.mark.integration
def test_planned_hdfs_region_job_is_exactly_once_across_a_crash(
    plans, kafka, hdfs, fresh_topics, tmp_path
):
    job = planned(plans, "onprem-dc1")
    assert job.configuration["execution.checkpointing.dir"].startswith("hdfs://")
    assert "ENABLE_BUILT_IN_PLUGINS" not in job.env, "HDFS needs Hadoop, no plugin"
    store = hdfs_store(hdfs, job, tmp_path)
    exactly_once_through_a_crash(job, store, kafka, fresh_topics, tmp_path)


# --------------------------------------------------------------------------- the rewrite itself


@pytest.mark.integration
def test_the_rewrite_refuses_what_it_has_not_considered(plans):
    """A key the plan starts writing, or a Kafka property nobody classified, fails the tests
    instead of being carried to (or silently dropped from) the loopback run."""
    job = planned(plans, "aws-us-east-1")
    with pytest.raises(fl.NotConsidered, match="pipeline.name"):
        fl.loopback_configuration({**job.configuration, "pipeline.name": "x"}, "s3p://b", {})
    with pytest.raises(fl.NotConsidered, match="high-availability.type"):
        fl.loopback_configuration(
            {**job.configuration, "high-availability.type": "zookeeper"}, "s3p://b", {}
        )
    odd = job.sql.replace(
        "'properties.group.id'", "'properties.client.dns.lookup' = 'x',\n  'properties.group.id'"
    )
    with pytest.raises(fl.NotConsidered, match="client.dns.lookup"):
        fl.loopback_sql(odd, "127.0.0.1:1")
    # Security settings of any engine, placeholders included, are replaced as a whole.
    secured = job.sql.replace(
        "'properties.group.id'",
        "'properties.sasl.mechanism' = 'SCRAM-SHA-512',\n"
        "  'properties.sasl.jaas.config' = 'x required password=\"${env:KAFKA_PASSWORD}\";',\n"
        "  'properties.group.id'",
    )
    script, tables = fl.loopback_sql(secured, "127.0.0.1:1")
    assert "${" not in script and "sasl" not in script
    for options in tables.values():
        assert options["properties.bootstrap.servers"] == "127.0.0.1:1"
        assert options["properties.security.protocol"] == "PLAINTEXT"
