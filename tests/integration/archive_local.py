"""The planned archive job on loopback: real Kafka in, Parquet on an S3-compatible server out.

``archive_records`` is what other tests reuse to make an archive (the query layer's Trino test
runs it against moto, since Trino's S3 client does not work with s3proxy): it takes the archive
FlinkDeployment and SQL ConfigMap rtdi plans for a region, rewrites only endpoints and
credentials (flink_local.loopback_sql / loopback_configuration, which refuse anything they have
not considered) and the bucket's name, produces records with chosen Kafka timestamps into the
physical topics the plan reads, runs the real runner on a MiniCluster until the archive's
consumer group has committed every record (Flink commits the group's offsets and publishes the
part files at the same completed checkpoint), then stops it and returns what was produced.

One rewrite beyond endpoints: the checkpoint interval. The plan's (five minutes) is the archive's
delay in production; on loopback it is ``CHECKPOINT_SECONDS`` so a test does not wait minutes for
files. Exactly-once does not depend on it: files are published only at completed checkpoints,
whatever their interval.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flink_local as fl
import kafka_local as kl

JOB = "archive"
FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
PARTITIONS = 2
CHECKPOINT_SECONDS = 5
# The crash run's checkpoints: far enough apart that a kill CRASH_AFTER_SECONDS after producing
# lands while the new records sit in in-progress part files.
CRASH_CHECKPOINT_SECONDS = 40
CRASH_AFTER_SECONDS = 10
PATH = re.compile(r"'path' = '(\w+)://([^/']+)/([^']*)'")


@dataclass
class Store:
    """A loopback store standing in for the region's archive (and flink-state) bucket: what
    replaces the planned paths' ``scheme://authority``, and how the runner reaches it."""

    archive: str  # replaces the archive paths' scheme://authority (s3a://bucket, hdfs://host:port)
    state: str  # replaces the state URIs' scheme://authority
    access: dict[str, str]  # its endpoint and credentials, as Flink configuration
    classpath: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def s3_store(s3: dict[str, str], bucket: str) -> Store:
    """An S3-compatible server (Flink keys s3.endpoint, s3.access-key, s3.secret-key) with an
    existing ``bucket``: the archive through s3a://, the state through s3p://."""
    return Store(f"s3a://{bucket}", f"s3p://{bucket}", dict(s3))


def hdfs_store(cluster, plans, stack: str, workdir: Path) -> Store:
    """The loopback HDFS for a region on HDFS: its planned core-site.xml (fs.defaultFS on
    loopback) in HADOOP_CONF_DIR and the HDFS runner image's Hadoop client on the classpath,
    as tests/integration/test_flink_planned.py runs the payments job there."""
    import test_flink_planned as tfp

    store = tfp.hdfs_store(cluster, tfp.planned(plans, stack, JOB), workdir)
    # The HDFS is the session's and the planned archive root one path: each test that archives
    # there starts from an empty archive, whatever an earlier one left.
    archive = plans[stack].outputs["buckets"]["archive"]
    cluster.remove("/" + archive.split("://", 1)[1].split("/", 1)[1])
    return Store(cluster.uri, cluster.uri, {}, store.classpath, store.env)


@dataclass(frozen=True)
class Produced:
    """One record as produced, and where the archive must hold it."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]
    timestamp_ms: int

    @property
    def dt(self) -> str:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d")

    @property
    def hr(self) -> str:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).strftime("%H")


@dataclass
class Manifest:
    """What was archived: the records by physical topic, the bucket and table locations."""

    store: str  # the store's scheme://authority (s3a://bucket, hdfs://host:port)
    locations: dict[str, str]  # physical topic -> <store>/<prefix><topic>
    records: dict[str, list[Produced]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def by_hour(self, topic: str) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for r in self.records.get(topic, []):
            counts[(r.dt, r.hr)] += 1
        return dict(counts)


@dataclass
class PlannedArchive:
    stack: str
    spec: dict[str, Any]
    sql: str
    env: dict[str, dict[str, Any]]

    @property
    def configuration(self) -> dict[str, str]:
        return self.spec["flinkConfiguration"]


def planned_archive(plans, stack: str) -> PlannedArchive:
    """The region's archive FlinkDeployment and the script of its SQL ConfigMap, as planned."""
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
    return PlannedArchive(stack, spec, sql, env)


def loopback_paths(script: str, store: str) -> tuple[str, dict[str, str]]:
    """Every archive path of ``script`` moved to ``store`` (scheme://authority; same keys below
    it), as the archive job writes them and a backfill over the archive reads them. Returns
    (script, physical topic -> path)."""
    locations: dict[str, str] = {}

    def move(found: re.Match) -> str:
        scheme, _, rest = found.groups()
        assert store.startswith(f"{scheme}://"), (scheme, store)
        path = f"{store}/{rest}"
        locations[rest.rsplit("/", 1)[-1]] = path
        return f"'path' = '{path}'"

    return PATH.sub(move, script), locations


def loopback_archive_sql(sql: str, bootstrap: str, store: str) -> tuple[str, dict, dict]:
    """The planned script on loopback: Kafka connections to ``bootstrap``, archive paths moved to
    ``store`` (scheme://authority; same keys below it). Returns (script, Kafka table -> options,
    topic -> path)."""
    script, tables = fl.loopback_sql(sql, bootstrap)
    script, locations = loopback_paths(script, store)
    kafka = {n: o for n, o in tables.items() if o.get("connector") == "kafka"}
    assert kafka and len(locations) == len(kafka), (sorted(kafka), sorted(locations))
    return script, kafka, locations


# A record's value from its topic, its number and its Kafka timestamp (ms).
Values = Callable[[str, int, int], bytes]


def numbered(topic: str, n: int, _stamp: int) -> bytes:
    """The default value: the record's number and topic, as JSON."""
    return json.dumps({"n": n, "topic": topic}).encode()


def produce(
    bootstrap: str, topic: str, timestamps_ms: list[int], tag: str, values: Values = numbered
) -> list[Produced]:
    """Records with the given Kafka timestamps, round robin over the partitions, each with a key,
    a value (``values``) and a header; as the broker stored them (partition and offset)."""
    from confluent_kafka import Producer

    out: list[Produced] = []
    errors: list = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "log_level": 0}
    )
    for n, stamp in enumerate(timestamps_ms):
        key = f"{tag}-{n:05d}".encode()
        value = values(topic, n, stamp)
        headers = {"rtdi-test": f"h{n}".encode()}

        def delivered(err, msg, key=key, value=value, headers=headers):
            if err:
                errors.append(err)
                return
            out.append(
                Produced(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    key,
                    value,
                    headers,
                    msg.timestamp()[1],
                )
            )

        producer.produce(
            topic,
            partition=n % PARTITIONS,
            key=key,
            value=value,
            headers=list(headers.items()),
            timestamp=stamp,
            on_delivery=delivered,
        )
    assert producer.flush(60) == 0 and not errors, errors
    return out


def spread(records_by_hour: dict[datetime, int]) -> list[int]:
    """Timestamps (ms) for ``count`` records in each UTC hour, spread over the hour."""
    stamps = []
    for hour, count in sorted(records_by_hour.items()):
        start = int(hour.replace(minute=0, second=0, microsecond=0).timestamp() * 1000)
        stamps += [start + (i * 3_599_000) // max(count, 1) for i in range(count)]
    return stamps


def archive_records(
    kafka: kl.Broker,
    plans,
    stack: str,
    workdir: Path,
    s3: dict[str, str],
    bucket: str,
    records_by_hour: dict[str, dict[datetime, int]],
    wait: float = 240,
) -> Manifest:
    """Run the planned archive job of ``stack`` (a region on S3) against ``kafka`` into
    ``bucket`` of the S3-compatible server ``s3`` (Flink keys: s3.endpoint, s3.access-key,
    s3.secret-key; the bucket must exist). ``records_by_hour``: physical topic -> UTC hour ->
    records to produce there (hours within the broker's retention, none in the future). Every
    physical topic the plan reads is created empty first; returns the manifest once all records
    are committed."""
    return archive_into(kafka, plans, stack, workdir, s3_store(s3, bucket), records_by_hour, wait)


def archive_into(
    kafka: kl.Broker,
    plans,
    stack: str,
    workdir: Path,
    store: Store,
    records_by_hour: dict[str, dict[datetime, int]],
    wait: float = 240,
    crash: Callable[[str], list[tuple[int, str]]] | None = None,
    values: Values = numbered,
    rounds: int = 1,
) -> Manifest:
    """`archive_records` into any loopback ``store`` (S3-compatible or HDFS).

    ``values`` makes each record's value (default: its number and topic). With ``rounds`` > 1
    each topic's timestamps are dealt round robin into that many rounds, produced one after the
    other, each once the previous one is committed: every round lands in part files of its own
    (files are published at checkpoints), so an hour holds several files whose records
    interleave in time, as a day of production does.

    With ``crash`` (a checkpoint directory URI -> its completed checkpoints, (N, URI)): once the
    records are committed, the same hours are produced again, and the JVM is SIGKILLed while
    they are read but not yet checkpointed (their part files in progress); the job is started
    again from its latest checkpoint, as the operator restarts a `last-state` job, and runs
    until everything is committed. Checkpoints are then CRASH_CHECKPOINT_SECONDS apart, so the
    kill lands between two of them."""
    flink = fl.require_flink()
    started = time.monotonic()
    job = planned_archive(plans, stack)
    script, tables, locations = loopback_archive_sql(job.sql, kafka.bootstrap, store.archive)
    topics = sorted({t for o in tables.values() for t in fl.physical_topics(o)})
    unknown = sorted(set(records_by_hour) - set(topics))
    assert not unknown, f"not topics the planned archive of {stack} reads: {unknown}"
    groups = sorted({o["properties.group.id"] for o in tables.values()})
    _fresh(kafka, topics, groups)
    manifest = Manifest(store.archive, locations)
    dealt = {
        t: [spread(hours)[r::rounds] for r in range(rounds)] for t, hours in records_by_hour.items()
    }

    def produce_round(r: int) -> None:
        for topic, stamps in dealt.items():
            tag = topic if r == 0 else f"{topic}-r{r}"
            manifest.records.setdefault(topic, [])
            manifest.records[topic] += produce(kafka.bootstrap, topic, stamps[r], tag, values)

    produce_round(0)
    manifest.seconds["produce"] = time.monotonic() - started

    conf, _ = fl.loopback_configuration(job.configuration, store.state, store.access)
    interval = CHECKPOINT_SECONDS if crash is None else CRASH_CHECKPOINT_SECONDS
    conf["execution.checkpointing.interval"] = f"{interval} s"
    parallelism = job.spec["job"]["parallelism"]
    conf["parallelism.default"] = str(parallelism)
    workdir.mkdir(parents=True, exist_ok=True)
    sql_file = workdir / "archive.sql"
    sql_file.write_text(script)
    enabled = job.env.get("ENABLE_BUILT_IN_PLUGINS", {}).get("value", "")
    plugins = fl.plugins_dir(flink, enabled, workdir)

    def start(name: str, extra: dict[str, str]) -> kl.JavaProcess:
        return fl.start_runner(
            name,
            flink,
            workdir,
            sql_file,
            {**conf, **extra},
            plugins=plugins,
            classpath=store.classpath,
            env=store.env,
        )

    def committed(runner: kl.JavaProcess) -> Callable[[], bool]:
        ends = {t: kl.end_offsets(kafka.bootstrap, t, PARTITIONS) for t in topics}

        def probe() -> bool:
            log = runner.log_text()
            if "to RESTARTING" in log or "to FAILED" in log:
                causes = [ln for ln in log.splitlines() if "Exception" in ln]
                raise AssertionError(f"the archive job failed: {causes[:3]}")
            # Empty partitions have nothing to commit: only those with records count.
            return all(
                kl.committed(kafka.bootstrap, g, t, PARTITIONS).get(p) == end
                for t in topics
                for g in groups
                for p, end in ends[t].items()
                if end > 0
            )

        return probe

    what = "the archive job's group at the end of every topic"
    run = time.monotonic()
    runner = start("archive", {})
    try:
        kl.wait_for(what, committed(runner), wait, alive=[runner])
        for r in range(1, rounds):
            produce_round(r)
            kl.wait_for(f"{what}, round {r + 1}", committed(runner), wait, alive=[runner])
        manifest.seconds["archive"] = time.monotonic() - run
        if crash is None:
            return manifest
        for topic, hours in records_by_hour.items():
            again = produce(kafka.bootstrap, topic, spread(hours), f"{topic}-2", values)
            manifest.records[topic] += again
        all_in = committed(runner)
        time.sleep(CRASH_AFTER_SECONDS)  # read and in part files, the next checkpoint far off
        assert not all_in(), "the second records were checkpointed before the crash"
        runner.popen.kill()
        runner.popen.wait(timeout=30)
    finally:
        runner.stop()
    found = crash(conf["execution.checkpointing.dir"])
    assert found, "no completed checkpoint to restart from"
    manifest.seconds["crash"] = time.monotonic() - run
    restarted = start("archive-restarted", {"execution.state-recovery.path": found[-1][1]})
    try:
        kl.wait_for(what, committed(restarted), wait, alive=[restarted])
        manifest.seconds["restart"] = time.monotonic() - run - manifest.seconds["crash"]
    finally:
        restarted.stop()
    return manifest


def _fresh(kafka: kl.Broker, topics: list[str], groups: list[str]) -> None:
    """The plan's topics created anew and its group forgotten (other tests use the names)."""
    import contextlib

    client = kl.admin(kafka.bootstrap)
    stale = [t for t in topics if t in kl.topics(kafka.bootstrap)]
    if stale:
        for future in client.delete_topics(stale, request_timeout=30).values():
            future.result(timeout=60)
    for future in client.delete_consumer_groups(groups, request_timeout=30).values():
        with contextlib.suppress(Exception):  # no such group: nothing to delete
            future.result(timeout=30)
    for name in topics:
        kl.retry(
            f"{name} created",
            lambda n=name: kl.create_topic(kafka.bootstrap, n, PARTITIONS, {}),
            60,
            alive=[kafka.process] if kafka.process else [],
        )
