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
exactly once and nothing else. The surge-pricing job (all-active, one-minute windows) of
aws-eu-west-1 goes the same way with a window only in RocksDB state at the crash, and trips only
in the region's own copy: the other copies stay quiet and must not hold back event time.
Kafka, s3proxy and HDFS are the session's (conftest.py). Timings are printed (``-s`` shows them).
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
LEDGER = ("payment_id", "rider_id", "amount_cents")  # the payments job's sink columns
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


def planned(plans, stack: str, name: str = JOB) -> Planned:
    plan = plans[stack]
    (deployment,) = [r for r in plan.of_type(FLINK) if r.inputs["metadata"]["name"] == name]
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


def produce(bootstrap: str, topics: list[str], records: list[dict[str, Any]], key: str) -> None:
    """Each record into one of the region copies the job reads and one of its partitions (round
    robin over both, so every split the source reads gets records)."""
    from confluent_kafka import Producer

    errors: list = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "log_level": 0}
    )
    for n, r in enumerate(records):
        producer.produce(
            topics[n % len(topics)],
            partition=(n // len(topics)) % PARTITIONS,
            key=str(r[key]).encode(),
            value=json.dumps(r).encode(),
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
    assert producer.flush(60) == 0 and not errors, errors


def sink_rows(
    bootstrap: str, topic: str, isolation: str, fields: tuple[str, ...] = LEDGER
) -> list[tuple]:
    """Every record of the sink topic readable at ``isolation`` (read_committed or
    read_uncommitted), as tuples of its JSON ``fields``."""
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
            rows.append(tuple(row[f] for f in fields))
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


@dataclass
class Loopback:
    """A planned job made ready to run on loopback: its rewritten configuration and script, the
    planned topics created anew, and how to start the runner."""

    job: Planned
    store: Store
    conf: dict[str, str]
    dropped: dict[str, str]
    source_topics: list[str]
    sink_topic: str
    run: Callable[[str, dict[str, str]], kl.JavaProcess]

    @property
    def checkpoint_dir(self) -> str:
        return self.conf["execution.checkpointing.dir"]


def prepare(job: Planned, store: Store, kafka, fresh_topics, root: Path) -> Loopback:
    flink = fl.require_flink()
    conf, dropped = fl.loopback_configuration(job.configuration, store.uri, store.access)
    # HA on Kubernetes is what the plan gives every such job; savepoint-on-deletion (an operator
    # option) its active-passive ones.
    assert dropped.get("high-availability.type") == "kubernetes", dropped
    assert dropped.items() <= fl.NEEDS_KUBERNETES.items(), dropped
    conf.update(minicluster(job.spec))
    sql_text, tables = fl.loopback_sql(job.sql, kafka.bootstrap)
    (source,) = [t for t in tables.values() if "topic-pattern" in t]
    (sink,) = [t for t in tables.values() if "topic" in t]
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

    return Loopback(job, store, conf, dropped, source_topics, sink_topic, run)


def exactly_once_through_a_crash(job: Planned, store: Store, kafka, fresh_topics, root: Path):
    started = time.monotonic()
    lo = prepare(job, store, kafka, fresh_topics, root)
    run, source_topics, checkpoint_dir = lo.run, lo.source_topics, lo.checkpoint_dir

    def committed() -> list[tuple]:
        return sink_rows(kafka.bootstrap, lo.sink_topic, "read_committed")

    def written() -> list[tuple]:
        return sink_rows(kafka.bootstrap, lo.sink_topic, "read_uncommitted")

    payments = [payment(i) for i in range(FIRST + SECOND)]
    expected = sorted(
        (p["payment_id"], p["rider_id"], p["amount_cents"]) for p in payments if p["amount_cents"]
    )
    first_batch = [e for e in expected if int(e[0][4:]) < FIRST]

    produce(kafka.bootstrap, source_topics, payments[:FIRST], "payment_id")
    first = run("first", {})
    try:
        kl.wait_for(
            "the first payments committed to the ledger",
            running(first, lambda: len(committed()) >= len(first_batch)),
            WAIT,
            interval=1,
            alive=[first],
            last=first.tail,
        )
        kl.wait_for(
            "a retained checkpoint", lambda: store.checkpoints(checkpoint_dir), WAIT, alive=[first]
        )
        produce(kafka.bootstrap, source_topics, payments[FIRST:], "payment_id")
        # Crash while the sink's transaction since the last checkpoint holds records.
        kl.wait_for(
            "records in an open transaction",
            lambda: len(written()) > len(committed()),
            WAIT,
            interval=0.2,
            alive=[first],
        )
    finally:
        first.popen.kill()  # SIGKILL: no clean shutdown, no final checkpoint
        first.popen.wait(30)
    crash_at = time.monotonic() - started
    before = committed()
    aborted = len(written()) - len(before)
    assert len(before) < len(expected) and aborted > 0, (len(before), aborted)
    number, restore = store.checkpoints(checkpoint_dir)[-1]

    second = run("second", {"execution.state-recovery.path": restore})
    try:
        kl.wait_for(
            f"all {len(expected)} payments committed",
            running(second, lambda: len(committed()) >= len(expected)),
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
        rows = committed()
    finally:
        second.popen.kill()
        second.popen.wait(30)
    took = time.monotonic() - started
    print(
        f"\n{job.stack} {JOB} on {store.uri}: {took:.1f} s (crash at {crash_at:.1f} s with "
        f"{aborted} uncommitted records; restored from checkpoint {number} at "
        f"{restore}); dropped {sorted(lo.dropped)}; Flink {versions.FLINK_VERSION}"
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


# --------------------------------------------------------------------------- windows in state

SURGE = "surge-pricing"
SURGE_OUT = ("hexagon", "window_end", "demand")  # the surge job's sink columns
HEXAGONS = ("8928308280fffff", "8928308283bffff", "89283082877ffff")
# Trips one second apart from a minute boundary twenty minutes back (the job's windows are a
# minute, its watermark 10 s behind): before the crash windows 0..3 close and window 4 is only
# in RocksDB state; after it, the rest of window 4 and window 5.
TRIP_BASE = (int(time.time()) // 60 - 20) * 60
TRIPS_FIRST, TRIPS_MORE = 4 * 60 + 20, 100


def sql_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def trip(i: int, status: str | None = None) -> dict[str, Any]:
    """Trip i; three of four are requests, the only ones surge pricing counts."""
    return {
        "trip_id": f"trip-{i:05d}",
        "hexagon": HEXAGONS[i % len(HEXAGONS)],
        "status": status or ("requested" if i % 4 else "completed"),
        "event_time": sql_time(TRIP_BASE + i) + ".000",
    }


def window_end(t: dict[str, Any]) -> str:
    ts = int(
        datetime.strptime(t["event_time"][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    )
    return sql_time(ts - ts % 60 + 60)


def windows_exactly_once_through_a_crash(
    job: Planned, store: Store, kafka, fresh_topics, root: Path
):
    started = time.monotonic()
    lo = prepare(job, store, kafka, fresh_topics, root)

    def committed() -> list[tuple]:
        rows = sink_rows(kafka.bootstrap, lo.sink_topic, "read_committed", SURGE_OUT)
        return [(h, str(end)[:19].replace("T", " "), n) for h, end, n in rows]

    trips = [trip(i) for i in range(TRIPS_FIRST + TRIPS_MORE)]
    counts = Counter((t["hexagon"], window_end(t)) for t in trips if t["status"] == "requested")
    expected = sorted((h, end, n) for (h, end), n in counts.items())
    closed = [e for e in expected if e[1] <= sql_time(TRIP_BASE + 4 * 60)]
    assert len(closed) == 4 * len(HEXAGONS)

    # Every trip is the region's own (its copy on the aggregate); the other regions' copies stay
    # quiet, as a new or a sleeping region's would, and must not hold back event time.
    (own,) = [t for t in lo.source_topics if t.startswith(f"{job.stack}.")]
    produce(kafka.bootstrap, [own], trips[:TRIPS_FIRST], "trip_id")
    first = lo.run("first", {})
    try:
        kl.wait_for(
            f"windows 0..3 committed ({len(closed)} rows)",
            running(first, lambda: len(committed()) >= len(closed)),
            WAIT,
            interval=1,
            alive=[first],
            last=lambda: str(sorted(committed())),
        )
    finally:
        first.popen.kill()  # SIGKILL: window 4 is only in the job's state
        first.popen.wait(30)
    crash_at = time.monotonic() - started
    assert sorted(committed()) == closed, "only the closed windows were committed"
    number, restore = store.checkpoints(lo.checkpoint_dir)[-1]

    # The rest, then one record far ahead in each partition of the region's copy: every window of
    # the test closes (the closers' own is never complete, and they are no requests).
    produce(kafka.bootstrap, [own], trips[TRIPS_FIRST:], "trip_id")
    closers = [trip(100_000 + k, status="closer") for k in range(PARTITIONS)]
    for c in closers:
        c["event_time"] = sql_time(TRIP_BASE + 3600) + ".000"
    produce(kafka.bootstrap, [own], closers, "trip_id")
    second = lo.run("second", {"execution.state-recovery.path": restore})
    try:
        kl.wait_for(
            f"all {len(expected)} windows committed",
            running(second, lambda: len(committed()) >= len(expected)),
            WAIT,
            interval=1,
            alive=[second],
            last=lambda: str(sorted(committed())),
        )
        rows = committed()
    finally:
        second.popen.kill()
        second.popen.wait(30)
    took = time.monotonic() - started
    print(
        f"\n{job.stack} {SURGE} on {store.uri}: {took:.1f} s (crash at {crash_at:.1f} s with "
        f"window 4 in state; restored from checkpoint {number} at {restore}); Flink "
        f"{versions.FLINK_VERSION}"
    )
    assert [w for w, n in Counter((h, e) for h, e, _ in rows).items() if n > 1] == [], (
        "a window was committed twice"
    )
    assert sorted(rows) == expected, "every window once, with every request counted once"
    assert f"located at {restore}" in second.log_text(), "the job restored from that checkpoint"


@pytest.mark.integration
def test_planned_windowed_job_keeps_its_window_state_across_a_crash(
    plans, kafka, s3proxy, fresh_topics, tmp_path
):
    """The all-active surge-pricing job as aws-eu-west-1 plans it: one-minute windows in RocksDB,
    checkpointed incrementally to S3 every 30 s, over four regions' copies of which only its own
    has trips."""
    job = planned(plans, "aws-eu-west-1", SURGE)
    store = s3_store(s3proxy, job)
    windows_exactly_once_through_a_crash(job, store, kafka, fresh_topics, tmp_path)


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
