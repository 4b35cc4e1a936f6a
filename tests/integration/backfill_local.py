"""What the real backfill tests share (test_flink_backfill.py over Kafka,
test_flink_backfill_archive.py over the Parquet archive): the planned backfill's deployment and
script, the surge-pricing answer computed by hand, and the committed contents of a sink topic.

The answer by hand is the job's SQL (jobs/flink/surge-pricing.sql) in Python: requested trips per
hexagon and one-minute tumbling window of their event time, over the trips whose Kafka timestamp
is in the range [start, end), end exclusive, as the backfill's bounds are.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.plan.backfill import CONFIG_MAP, FLINK_DEPLOYMENT, BackfillPlan

JOB = "surge-pricing"
LIVE_SINK = "surge-multipliers"
BACKFILL_SINK = "surge-multipliers-backfill"
HEXAGONS = ("8928308280fffff", "8928308281fffff")


def rfc3339(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@dataclass
class PlannedBackfill:
    name: str
    spec: dict[str, Any]  # the FlinkDeployment's spec
    script: str  # the SQL of its ConfigMap


def planned(bp: BackfillPlan) -> PlannedBackfill:
    """The backfill's FlinkDeployment spec and runner script, as `plan_backfill` declared them."""
    (deployment,) = [
        r.inputs
        for r in bp.plan.of_type(FLINK_DEPLOYMENT)
        if r.inputs["metadata"]["name"] == bp.name
    ]
    (script,) = [
        r.inputs["data"]["job.sql"]
        for r in bp.plan.of_type(CONFIG_MAP)
        if r.inputs["metadata"]["name"] == f"{bp.name}-sql"
    ]
    return PlannedBackfill(bp.name, deployment["spec"], script)


def trip(trip_id: str, hexagon: str, status: str, at: datetime) -> bytes:
    """A trip as the surge job's JSON source table reads it (event_time as Flink parses it)."""
    value = {
        "trip_id": trip_id,
        "hexagon": hexagon,
        "status": status,
        "event_time": at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d}",
    }
    return json.dumps(value).encode()


def surge_by_hand(
    trips: Iterable[tuple[bytes, int]], start: datetime, end: datetime
) -> Counter[tuple[str, str]]:
    """(hexagon, window end) -> demand over ``trips`` (JSON value, Kafka timestamp in ms) whose
    Kafka timestamp is in [start, end)."""
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    counts: Counter[tuple[str, str]] = Counter()
    for value, ts in trips:
        v = json.loads(value)
        if lo <= ts < hi and v["status"] == "requested":
            at = datetime.strptime(v["event_time"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
            window_end = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
            counts[(v["hexagon"], window_end.strftime("%Y-%m-%d %H:%M:%S"))] += 1
    return counts


def surge_rows(rows: list[dict]) -> Counter[tuple[str, str]]:
    """The sink's rows as (hexagon, window end) -> demand."""
    got: Counter[tuple[str, str]] = Counter()
    for row in rows:
        got[(row["hexagon"], str(row["window_end"])[:19].replace("T", " "))] += row["demand"]
    return got


def committed(bootstrap: str, topic: str) -> list[dict]:
    """Every committed record of ``topic`` (read_committed), from the start."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{time.monotonic_ns()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        rows, idle = [], 0
        while idle < 4:
            msg = c.poll(0.5)
            if msg is None:
                idle += 1
                continue
            idle = 0
            assert not msg.error(), msg.error()
            rows.append(json.loads(msg.value()))
        return rows
    finally:
        c.close()
