"""A backfill rtdi planned, run for real: Flink 2.2 (the SQL runner on a MiniCluster, Maven
Central jars) over real Kafka on loopback.

`rtdi backfill surge-pricing` is planned for a region (the same `plan_backfill` the CLI runs);
the test takes the runner script and the `flinkConfiguration` of the planned backfill
deployment and rewrites only what cannot exist here: the Kafka bootstrap and security become
loopback PLAINTEXT, the state directories local folders, and Kubernetes HA is left out (no
Kubernetes). Trips are produced into two of the aggregate's per-region topics with Kafka
timestamps before, inside and after the range. The job must end by itself (bounded sources, a
final checkpoint commits the exactly-once sink) and the backfill topic must hold exactly the
surge counts of the in-range trips; the live sink topic stays empty and the live job's
consumer group has no offsets.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backfill_local as bl
import flink_local as fl
import kafka_jars
import kafka_local as kl

from infra.plan import Project
from infra.plan.backfill import Request, plan_backfill

ROOT = Path(__file__).resolve().parents[2]
REGION = "onprem-dc1"
SOURCES = ("aws-us-east-1.trips", "onprem-dc1.trips")  # two of the aggregate's copies
PARTITIONS = 2
LIVE_SINK = bl.LIVE_SINK
BACKFILL_SINK = bl.BACKFILL_SINK
HEXAGONS = bl.HEXAGONS
# The range: whole minutes (the job's windows) two hours back, so it is past and retained.
END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
START = END - timedelta(minutes=5)
WAIT = 240


def trips() -> list[tuple[str, int, bytes, int]]:
    """(topic, partition, value, Kafka timestamp ms): three minutes before the range, the five
    inside, three after; per partition in time order, so no trip is late for the watermark."""
    out = []
    first = START - timedelta(minutes=3)
    for i in range(11 * 60 // 5):  # one trip per topic-partition every 5 s
        at = first + timedelta(seconds=5 * i)
        for t, topic in enumerate(SOURCES):
            for p in range(PARTITIONS):
                status = "requested" if (i + p) % 3 else "completed"
                value = bl.trip(f"{topic}-{p}-{i}", HEXAGONS[(i + t) % 2], status, at)
                out.append((topic, p, value, int(at.timestamp() * 1000)))
    return out


def produce(bootstrap: str, records) -> None:
    from confluent_kafka import Producer

    errors: list = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "log_level": 0}
    )
    for topic, partition, value, ts in records:
        producer.produce(
            topic,
            value=value,
            partition=partition,
            timestamp=ts,
            on_delivery=lambda err, _m: errors.append(err) if err else None,
        )
    assert producer.flush(60) == 0 and not errors, errors


def loopback_sql(sql: str, bootstrap: str) -> str:
    """The planned script with only the Kafka endpoint and its security moved to loopback."""
    sql = re.sub(
        r"'properties\.bootstrap\.servers' = '[^']*'",
        f"'properties.bootstrap.servers' = '{bootstrap}'",
        sql,
    )
    sql = re.sub(
        r"'properties\.security\.protocol' = '[^']*'",
        "'properties.security.protocol' = 'PLAINTEXT'",
        sql,
    )
    # Credentials the cluster needs (certificates, SASL) have no meaning on PLAINTEXT.
    sql = re.sub(r",\n  '(properties\.(ssl|sasl)\.[^']*)' = '[^']*'", "", sql)
    return sql


def loopback_conf(conf: dict[str, str], parallelism: int, state: Path) -> dict[str, str]:
    """The planned configuration with state in local folders and no Kubernetes HA."""
    out = {k: v for k, v in conf.items() if not k.startswith("high-availability.")}
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"):
        tail = conf[key].split("/surge-pricing/", 1)[1]
        out[key] = (state / "surge-pricing" / tail).as_uri()
    out = {k: v for k, v in out.items() if not k.startswith(("s3.", "fs.s3a."))}
    out["parallelism.default"] = str(parallelism)
    return out


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    fl.require_flink()
    jars = kl.require_kafka(kafka_jars.fetched())
    root = tmp_path_factory.mktemp("flink-backfill")
    broker = kl.broker("kafka", root, {})
    try:
        kl.start_brokers([broker], jars)
        for topic, partitions in (
            *((s, PARTITIONS) for s in SOURCES),
            (LIVE_SINK, 1),
            (BACKFILL_SINK, 1),
        ):
            kl.retry(
                f"{topic} created",
                lambda t=topic, p=partitions: kl.create_topic(broker.bootstrap, t, p, {}),
                30,
                alive=[broker.process],
            )
        yield broker, root
    finally:
        broker.stop()


@pytest.mark.integration
def test_a_planned_backfill_ends_by_itself_with_exactly_the_in_range_results(kafka):
    broker, root = kafka
    flink = fl.require_flink()
    project = Project.find(ROOT)
    request = Request(bl.JOB, bl.rfc3339(START), bl.rfc3339(END), REGION, "itest", "kafka")
    planned = bl.planned(plan_backfill(project, request))
    spec, script = planned.spec, planned.script
    assert re.search(r"'topic-pattern' = '[^']*onprem\\-dc1\\.trips", script)
    assert f"'topic' = '{BACKFILL_SINK}'" in script

    records = trips()
    want = bl.surge_by_hand([(v, ts) for _, _, v, ts in records], START, END)
    produce(broker.bootstrap, records)
    sql = root / "backfill.sql"
    sql.write_text(loopback_sql(script, broker.bootstrap))
    conf = loopback_conf(spec["flinkConfiguration"], spec["job"]["parallelism"], root / "state")
    started = time.monotonic()
    job = fl.start_runner("backfill", flink, root, sql, conf)
    try:
        kl.wait_for("the backfill to end by itself", lambda: not job.alive(), WAIT, interval=1)
    finally:
        if job.alive():
            print(job.tail())
        job.stop()
    took = time.monotonic() - started
    assert job.popen.returncode == 0, job.tail()
    rows = bl.committed(broker.bootstrap, BACKFILL_SINK)
    got = bl.surge_rows(rows)
    print(
        f"\nbackfill of {len(records)} trips ({sum(want.values())} requested in range): "
        f"{took:.1f} s, ended by itself; {len(rows)} windows committed"
    )
    assert len(rows) == len(want), "one row per hexagon and minute, none twice"
    assert got == want
    assert bl.committed(broker.bootstrap, LIVE_SINK) == [], "the live sink is untouched"
    for topic in SOURCES:
        assert kl.committed(broker.bootstrap, "flink-surge-pricing", topic, PARTITIONS) == {}
