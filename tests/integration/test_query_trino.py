"""The query engine rtdi plans, run for real: Trino 476 over a Parquet archive on S3.

Trino (``io.trino:trino-server`` of infra/versions.py's TRINO_VERSION, from Maven Central, on the
Temurin 25 under /usr/lib/jvm) is started once per session (conftest.py `trino`) with the
catalogs of aws-us-east-1's planned Helm release, only endpoints and credentials rewritten
(trino_local.REWRITTEN lists every key the test changes, and why): the archive catalog's Thrift
metastore becomes Trino's `file` metastore on moto (the test runs no Hive metastore), S3 is moto
on loopback. Trino refuses unknown catalog properties at startup, so the server starting proves
the planned property names are Trino 476's.

The archive is written in the layout of the archival job's contract
(``<topic>/dt=YYYY-MM-DD/hr=HH/part-*.parquet`` under the planned archive bucket, the contract's
columns and types), here by pyarrow, with a Flink file sink's in-progress file beside each hour
(a dot file, which must not count). Then the script of the planned `archive-tables` ConfigMap
runs as the partition CronJob runs it (every statement in order; its table locations are the
plan's, since moto's bucket has the planned bucket's name), and Trino counts exactly the records
written, by hour, across a day boundary; a second run of the script, after a new hour arrived,
finds that hour too and changes nothing else.
"""

from __future__ import annotations

import io
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trino_local

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

CONFIGMAP = "kubernetes:core/v1:ConfigMap"
START = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # 22:00, 23:00, then the next day's 00:00...
HOURS = 4
TABLE = re.compile(
    r"CREATE TABLE IF NOT EXISTS archive\.(\w+)\.(\w+) \(.*?external_location = "
    r"'([^']+)'",
    re.S,
)


def planned_script(plans) -> str:
    cm = next(
        r
        for r in plans[trino_local.REGION].of_type(CONFIGMAP)
        if r.name == f"{trino_local.REGION}-query-archive-sql"
    )
    return cm.inputs["data"]["archive.sql"]


def statements(script: str) -> list[str]:
    """The script's statements, as the CLI splits them (no `;` inside its literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def schema() -> pa.Schema:
    """The contract's columns, in Parquet as Flink's file sink writes them."""
    return pa.schema(
        [
            ("key", pa.binary()),
            ("value", pa.binary()),
            ("headers", pa.map_(pa.string(), pa.binary())),
            ("kafka_partition", pa.int32()),
            ("kafka_offset", pa.int64()),
            ("kafka_timestamp", pa.timestamp("ms", tz="UTC")),
        ]
    )


def write_hour(s3, bucket: str, prefix: str, hour: datetime, count: int, offset: int) -> int:
    """``count`` records in ``hour`` under ``prefix`` (one part file, one in-progress file);
    returns the next offset."""
    stamps = [hour + timedelta(seconds=(3599 * i) // max(count - 1, 1)) for i in range(count)]
    rows = {
        "key": [f"k{offset + i}".encode() for i in range(count)],
        "value": [f'{{"n": {offset + i}}}'.encode() for i in range(count)],
        "headers": [[("source", b"test")] for _ in range(count)],
        "kafka_partition": [i % 3 for i in range(count)],
        "kafka_offset": [offset + i for i in range(count)],
        "kafka_timestamp": stamps,
    }
    where = f"{prefix}/dt={hour:%Y-%m-%d}/hr={hour:%H}"
    for name in (f"part-{offset}-0.parquet", f".part-{offset}-1.inprogress.parquet"):
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pydict(rows, schema=schema()), sink)
        s3.put_object(Bucket=bucket, Key=f"{where}/{name}", Body=sink.getvalue())
    return offset + count


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key.rstrip("/")


def test_trino_counts_the_archive_by_hour(plans, moto, trino):
    script = planned_script(plans)
    tables = TABLE.findall(script)
    assert tables, "the plan declares archive tables"
    assert {schema_ for schema_, _, _ in tables} == {"kafka"}
    # Two topics of the region's aggregate: its own copy and another region's.
    chosen = [t for t in tables if t[1].endswith("_trips")][:2]
    assert len(chosen) == 2, tables
    s3 = moto.client()
    buckets = {split(loc)[0] for _, _, loc in tables}
    assert len(buckets) == 1, "every table is in the region's one archive bucket"
    (bucket,) = buckets
    s3.create_bucket(Bucket=bucket)
    produced: dict[str, Counter] = {}
    for n, (_, table, location) in enumerate(chosen):
        offset, counts = 0, Counter()
        for h in range(HOURS):
            hour = START + timedelta(hours=h)
            count = [57, 131, 1, 64][(h + n) % HOURS]
            offset = write_hour(s3, bucket, split(location)[1], hour, count, offset)
            counts[(f"{hour:%Y-%m-%d}", f"{hour:%H}")] = count
        produced[table] = counts

    started = time.monotonic()
    for stmt in statements(script):
        trino.run(stmt)
    first_run = time.monotonic() - started
    for table, counts in produced.items():
        rows = trino.run(
            f"SELECT dt, hr, count(*) FROM archive.kafka.{table} GROUP BY dt, hr ORDER BY dt, hr"
        )
        assert {(dt, hr): c for dt, hr, c in rows} == dict(counts), table
        # dt and hr are the record's Kafka timestamp in UTC.
        (wrong,) = trino.run(
            f"SELECT count(*) FROM archive.kafka.{table} WHERE "
            "format_datetime(kafka_timestamp AT TIME ZONE 'UTC', 'yyyy-MM-dd') <> dt "
            "OR format_datetime(kafka_timestamp AT TIME ZONE 'UTC', 'HH') <> hr"
        )[0:1]
        assert wrong == [0]
    # An archive hour, as the README shows it.
    table = chosen[0][1]
    (row,) = trino.run(
        f"SELECT count(*), min(kafka_offset), max(kafka_offset) FROM archive.kafka.{table} "
        "WHERE dt = '2026-11-29' AND hr = '23'"
    )
    assert row[0] == produced[table][("2026-11-29", "23")]

    # A new hour arrives; the CronJob's next run of the same script registers it.
    late = START + timedelta(hours=HOURS)
    location = split(chosen[0][2])[1]
    write_hour(s3, bucket, location, late, 9, 10_000)
    started = time.monotonic()
    for stmt in statements(script):
        trino.run(stmt)
    second_run = time.monotonic() - started
    rows = trino.run(f"SELECT dt, hr, count(*) FROM archive.kafka.{table} GROUP BY dt, hr")
    expected = dict(produced[table])
    expected[(f"{late:%Y-%m-%d}", f"{late:%H}")] = 9
    assert {(dt, hr): c for dt, hr, c in rows} == expected
    print(
        f"\nTrino started in {trino.started_in:.1f} s; the planned script ({len(tables)} tables) "
        f"ran in {first_run:.1f} s, again in {second_run:.1f} s",
        flush=True,
    )
