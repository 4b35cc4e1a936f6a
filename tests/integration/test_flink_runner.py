"""rtdi's Flink SQL runner on real Flink 2.2 (Maven Central jars), real Kafka and S3 on loopback.

1. The runner refuses bad scripts and arguments with one line and exit code 2, before any Flink
   class loads.
2. A script with semicolons inside literals, quoted identifiers and comments, a SET and two INSERTs
   runs as one job whose two sinks both write.
3. Exactly-once through a crash: a surge-pricing-like windowed count (event-time tumbling windows
   over a real Kafka topic, into a transactional Kafka sink) checkpoints to s3p:// (the
   flink-s3-fs-presto plugin against s3proxy) with RocksDB incremental, retained, exactly-once
   checkpoints. The JVM is SIGKILLed after some windows are committed and while one window is
   still only in RocksDB state; the job restarts from the latest retained checkpoint, more records
   arrive, and the committed output (read_committed) counts every input record exactly once: no
   window is missing, none appears twice, and every count is exact.

The checkpoint settings are the Flink 2.x keys rtdi plans for a stateful job, with a short interval
so windows close fast; test_flink_planned.py runs the planned configuration and SQL themselves.
Kafka and s3proxy are the session's (conftest.py). Timings are printed (``-s`` shows them).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flink_local as fl
import kafka_local as kl

from infra import versions

SOURCE, SINK, PARTITIONS = "trips", "surge-counts", 3
BUCKET, JOB = "flink-state", "surge-pricing"
CITIES = ("sf", "nyc")
# Event times ten minutes back, on a window boundary: recent enough that the broker's 7-day time
# retention does not delete them under the job (a restored source would then silently skip to the
# log start), old enough that the closing records below are not in the future.
BASE_MS = int(time.time() * 1000) // 10_000 * 10_000 - 600_000
STEP_MS = 250  # 40 records per window, 20 per city
FIRST, MORE = 240, 240  # records 0..239 before the crash (windows 0..5), 240..479 after
WAIT = 120


# --------------------------------------------------------------------------- bad input, no Flink


def run_runner_alone(tmp_path: Path, script: str | None, *args: str) -> subprocess.CompletedProcess:
    """The runner jar alone on the classpath: bad input must be refused before Flink is needed."""
    argv = list(args)
    if script is not None:
        (tmp_path / "job.sql").write_text(script)
        argv = ["--sql-file", str(tmp_path / "job.sql"), *argv]
    return subprocess.run(
        ["java", "-cp", str(fl.RUNNER_JAR), fl.MAIN, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("SELECT 1;", (), "line 1: a bare query has no sink"),
        (
            "CREATE TABLE t (x INT) WITH ('connector' = 'datagen');",
            (),
            "no INSERT INTO statement",
        ),
        ("-- x\nINSERT INTO t SELECT 'open;\n", (), "line 2: a string literal opened with '"),
        ("INSERT INTO t /* never closed;", (), "a /* comment is never closed"),
        ("INSERT INTO `t;\n", (), "line 1: a quoted identifier opened with `"),
        (
            "BEGIN STATEMENT SET;\nINSERT INTO t SELECT 1;\nEND;",
            (),
            "BEGIN is not needed: write plain INSERT INTO statements",
        ),
        (None, (), "--sql-file PATH is required"),
        (None, ("--sql-file", "missing.sql"), "missing.sql: no such file"),
        ("INSERT INTO t SELECT 1;", ("--conf", "novalue"), "--conf 'novalue' is not key=value"),
        ("INSERT INTO t SELECT 1;", ("--jar", "x"), "unknown argument '--jar'"),
    ],
)
def test_runner_refuses_bad_input_in_one_line(tmp_path, script, args, expected):
    fl.require_flink()
    done = run_runner_alone(tmp_path, script, *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtdi-sql-runner: "), done.stderr
    assert expected in lines[0]


# --------------------------------------------------------------------------- one job, two sinks


@pytest.mark.integration
def test_runner_splits_only_on_statement_ends_and_submits_inserts_as_one_job(tmp_path):
    flink = fl.require_flink()
    script = """
    -- a comment; with a semicolon
    SET 'parallelism.default' = '1';
    CREATE VIEW `odd;name` AS SELECT * FROM (VALUES ('a;b'), ('it''s; fine')) AS t(s); /* ; */
    CREATE TABLE left_sink (s STRING) WITH ('connector' = 'print', 'print-identifier' = 'L');
    CREATE TABLE right_sink (s STRING) WITH ('connector' = 'print', 'print-identifier' = 'R');
    INSERT INTO left_sink SELECT s FROM `odd;name`;
    INSERT INTO right_sink SELECT UPPER(s) FROM `odd;name` WHERE s <> 'x;y'
    """
    sql = tmp_path / "job.sql"
    sql.write_text(script)
    log4j = kl.log4j2_config(tmp_path / "log4j2.properties", tmp_path / "runner.log")
    started = time.monotonic()
    done = subprocess.run(
        fl.runner_command(flink, sql, {}, log4j),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    print(f"\nbounded two-sink job: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    submitted = [line for line in done.stderr.splitlines() if "submitted job" in line]
    assert len(submitted) == 1 and "with 2 INSERT statement(s)" in submitted[0]
    printed = {line.strip() for line in done.stdout.splitlines()}
    assert {"L> +I[a;b]", "L> +I[it's; fine]", "R> +I[A;B]", "R> +I[IT'S; FINE]"} <= printed


# --------------------------------------------------------------------------- exactly-once


def event(i: int) -> tuple[str, str, int, int]:
    """Record i: key, city, partition and event time (ms)."""
    return f"trip-{i:05d}", CITIES[i % 2], i % PARTITIONS, BASE_MS + i * STEP_MS


def window_of(ts_ms: int) -> str:
    start = ts_ms - ts_ms % 10_000
    return datetime.fromtimestamp(start / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def produce_events(bootstrap: str, records: list[tuple[str, str, int, int]]) -> None:
    from confluent_kafka import Producer

    errors: list = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "log_level": 0}
    )
    for key, city, partition, ts in records:
        producer.produce(
            SOURCE,
            key=key.encode(),
            value=city.encode(),
            partition=partition,
            timestamp=ts,
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
    assert producer.flush(60) == 0 and not errors, errors


def committed_output(bootstrap: str, group: str) -> list[tuple[str, str, int]]:
    """Everything committed to the sink topic, read with isolation.level=read_committed."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 0,
        }
    )
    try:
        low, high = c.get_watermark_offsets(TopicPartition(SINK, 0), timeout=10)
        c.assign([TopicPartition(SINK, 0, 0)])
        rows = []
        deadline = time.monotonic() + 10
        idle = 0
        while time.monotonic() < deadline and idle < 3:
            msg = c.poll(0.5)
            if msg is None:
                idle += 1
                continue
            idle = 0
            if msg.error():
                raise RuntimeError(str(msg.error()))
            row = json.loads(msg.value())
            start = str(row["window_start"])[:19].replace("T", " ")
            rows.append((row["city"], start, row["trips"]))
        return rows
    finally:
        c.close()


def surge_sql(bootstrap: str) -> str:
    return f"""
    SET 'table.local-time-zone' = 'UTC';
    CREATE TABLE trips (
      trip_id STRING,
      city STRING,
      ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
      WATERMARK FOR ts AS ts
    ) WITH (
      'connector' = 'kafka',
      'topic' = '{SOURCE}',
      'properties.bootstrap.servers' = '{bootstrap}',
      'properties.group.id' = '{JOB}',
      'scan.startup.mode' = 'earliest-offset',
      'key.format' = 'raw',
      'key.fields' = 'trip_id',
      'value.format' = 'raw',
      'value.fields-include' = 'EXCEPT_KEY'
    );
    CREATE TABLE surge (
      city STRING,
      window_start TIMESTAMP_LTZ(3),
      trips BIGINT
    ) WITH (
      'connector' = 'kafka',
      'topic' = '{SINK}',
      'properties.bootstrap.servers' = '{bootstrap}',
      'properties.transaction.timeout.ms' = '60000',
      'format' = 'json',
      'json.timestamp-format.standard' = 'SQL',
      'sink.delivery-guarantee' = 'exactly-once',
      'sink.transactional-id-prefix' = '{JOB}'
    );
    -- one count per city and 10 s window; the window's records may straddle the crash
    INSERT INTO surge
    SELECT city, window_start, COUNT(*) AS trips
    FROM TABLE(TUMBLE(TABLE trips, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY city, window_start, window_end;
    """


def checkpoint_conf(proxy: fl.S3Proxy) -> dict[str, str]:
    """The Flink 2.x keys rtdi plans for a stateful exactly-once job; endpoint and credentials
    point at loopback, the interval is short so the test does not wait."""
    return {
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": "true",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.interval": "2 s",
        "execution.checkpointing.num-retained": "3",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.dir": f"s3p://{BUCKET}/checkpoints/{JOB}",
        "execution.checkpointing.savepoint-dir": f"s3p://{BUCKET}/savepoints/{JOB}",
        "restart-strategy.type": "none",
        "parallelism.default": "2",
        "s3.endpoint": proxy.endpoint,
        "s3.path.style.access": "true",
        "s3.access-key": proxy.access_key,
        "s3.secret-key": proxy.secret_key,
    }


@pytest.fixture(scope="module")
def world(kafka, s3proxy, fresh_topics, tmp_path_factory):
    """The two topics on the shared broker, and the flink-state bucket on the shared s3proxy."""
    flink = fl.require_flink()
    root = tmp_path_factory.mktemp("flink-runner")
    fresh_topics([(SOURCE, PARTITIONS), (SINK, 1)], [JOB])
    s3proxy.create_bucket(BUCKET)
    return flink, kafka, s3proxy, root


@pytest.mark.integration
def test_windowed_counts_are_exactly_once_across_a_crash_and_a_checkpoint_restore(world):
    flink, kafka, proxy, root = world
    started = time.monotonic()
    sql = root / "surge.sql"
    sql.write_text(surge_sql(kafka.bootstrap))
    conf = checkpoint_conf(proxy)
    events = [event(i) for i in range(FIRST + MORE)]
    expected = Counter((city, window_of(ts)) for _, city, _, ts in events)
    # Windows 0..4 close before the crash (the watermark reaches window 5); window 5 is in state.
    before = {w for w in expected if w[1] < window_of(events[FIRST - 1][3])}

    produce_events(kafka.bootstrap, events[:FIRST])
    first = fl.start_runner("surge-1", flink, root, sql, conf)
    try:
        kl.wait_for(
            "the first windows committed to the sink",
            lambda: len(committed_output(kafka.bootstrap, "check-1")) >= len(before),
            WAIT,
            interval=1,
            alive=[first],
        )
        kl.wait_for(
            "a retained checkpoint after the commit",
            lambda: proxy.checkpoints(BUCKET, f"checkpoints/{JOB}"),
            WAIT,
            alive=[first],
        )
        crash_at = time.monotonic() - started
    finally:
        first.popen.kill()  # SIGKILL: a crash, no clean shutdown, no final checkpoint
        first.popen.wait(30)
    rows = committed_output(kafka.bootstrap, "check-2")
    assert {(c, w) for c, w, _ in rows} == before, "only the closed windows were committed"

    number, path = proxy.checkpoints(BUCKET, f"checkpoints/{JOB}")[-1]
    restore = f"s3p://{BUCKET}/{path}"
    produce_events(kafka.bootstrap, events[FIRST:])
    # Records in every partition far ahead close every window of the test (their own never does).
    produce_events(
        kafka.bootstrap,
        [(f"closer-{p}", "none", p, BASE_MS + 300_000) for p in range(PARTITIONS)],
    )
    second = fl.start_runner(
        "surge-2", flink, root, sql, {**conf, "execution.state-recovery.path": restore}
    )
    try:
        kl.wait_for(
            f"all {len(expected)} windows committed",
            lambda: len(committed_output(kafka.bootstrap, "check-3")) >= len(expected),
            WAIT,
            interval=1,
            alive=[second],
            last=lambda: sorted(committed_output(kafka.bootstrap, "check-3")),
        )
        rows = committed_output(kafka.bootstrap, "check-4")
    finally:
        second.popen.kill()
        second.popen.wait(30)
    took = time.monotonic() - started
    print(
        f"\nexactly-once across a crash: {took:.1f} s (crash at {crash_at:.1f} s, restored from "
        f"checkpoint {number} at {restore}); Flink {versions.FLINK_VERSION}"
    )
    windows = Counter((c, w) for c, w, _ in rows)
    assert [w for w, n in windows.items() if n > 1] == [], "a window was committed twice"
    assert {(c, w): n for c, w, n in rows} == dict(expected)
    assert sum(n for _, _, n in rows) == FIRST + MORE
    assert f"located at {restore}." in second.log_text(), "the job restored from that checkpoint"
