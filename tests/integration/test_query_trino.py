"""The query engine rtdi plans, run for real: Trino 476 over the archive the real Flink job wrote.

Trino (``io.trino:trino-server`` of infra/versions.py's TRINO_VERSION, from Maven Central, on the
Temurin 25 under /usr/lib/jvm) is started once per session (conftest.py `trino`) with the
catalogs of aws-us-east-1's planned Helm release, only endpoints and credentials rewritten
(trino_local.REWRITTEN lists every key the test changes, and why): the archive catalog's Thrift
metastore is the region's planned Hive metastore (its version, Hive 4.0.1, from Maven Central,
with the planned metastore-site.xml, endpoints and credentials rewritten: conftest.py
`trino_metastore`), S3 is moto on loopback. Trino refuses unknown catalog properties at startup,
so the server starting proves the planned property names are Trino 476's.

The archive is written by the region's planned archive Flink job (archive_local.archive_records:
real Kafka in, a MiniCluster running the real SQL runner, s3a:// out to the same moto, path-style
with moto's keys) into a bucket of the planned archive bucket's name, from records produced
with Kafka timestamps in four UTC hours across a day boundary, into the region's own copy of a
topic and a peer region's copy; nothing here writes Parquet by hand. Then the script of the
planned `archive-tables` ConfigMap runs as the partition CronJob runs it (every statement in
order; its table locations are the plan's, and must be where the job wrote), and Trino counts
exactly the records produced, by hour (the manifest's ``by_hour``), each in its UTC hour, each
(partition, offset) once. On S3 the job leaves no in-progress object (unfinished parts are
multipart uploads); on HDFS it leaves `.<part>.inprogress.<uuid>` files, so one of the job's part
files copied under such a name must not count. The job then runs again with a later hour for one
topic; the script's second run finds that hour too and changes nothing else.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import archive_local as al
import trino_local

CONFIGMAP = "kubernetes:core/v1:ConfigMap"
PEER = "aws-eu-west-1"
LOGICAL = "trips"
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


def split(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// or s3a:// URI."""
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key.rstrip("/")


def by_hour(rows) -> dict[tuple[str, str], int]:
    return {(dt, hr): c for dt, hr, c in rows}


@dataclass
class FirstArchive:
    """What the archive job wrote for a query test: four hours across yesterday's midnight in
    the region's own copy of `LOGICAL` and a peer's, into the plan's one archive bucket."""

    bucket: str
    s3: dict[str, str]
    midnight: datetime
    own: str
    peer: str
    wanted: dict[str, dict[datetime, int]]
    manifest: Any
    seconds: float
    location: dict[str, tuple[str, str]]  # physical topic -> (planned table, planned location)


def first_archive(kafka, plans, region: str, moto, tables, folder: Path) -> FirstArchive:
    """Run the planned archive job into moto (the plan's bucket, emptied first) and check that
    the planned tables of the two topics are where it wrote them."""
    buckets = {split(loc)[0] for _, _, loc in tables}
    assert len(buckets) == 1, "every table is in the region's one archive bucket"
    (bucket,) = buckets
    moto.fresh_bucket(bucket)
    s3 = {
        "s3.endpoint": moto.endpoint,
        "s3.path.style.access": "true",
        "s3.access-key": trino_local.MOTO_KEY[0],
        "s3.secret-key": trino_local.MOTO_KEY[1],
    }
    # Four hours across yesterday's midnight (within the broker's retention, none in the future).
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight -= timedelta(days=1)
    own, peer = f"{region}.{LOGICAL}", f"{PEER}.{LOGICAL}"
    hours = [midnight + timedelta(hours=h) for h in (-2, -1, 0, 1)]
    wanted = {
        own: dict(zip(hours, [57, 131, 1, 64], strict=True)),
        peer: dict(zip(hours, [64, 57, 131, 1], strict=True)),
    }
    started = time.monotonic()
    manifest = al.archive_records(kafka, plans, region, folder, s3, bucket, wanted)
    seconds = time.monotonic() - started
    location = {
        key.rsplit("/", 1)[-1]: (table, f"s3://{bucket}/{key}")
        for _, table, key in ((s, t, split(loc)[1]) for s, t, loc in tables)
    }
    for topic in (own, peer):
        _, planned = location[topic]
        assert planned == "s3://" + manifest.locations[topic].split("://", 1)[1], topic
    return FirstArchive(bucket, s3, midnight, own, peer, wanted, manifest, seconds, location)


def test_trino_counts_what_the_archive_job_wrote_by_hour(
    kafka, plans, moto, trino_metastore, trino, tmp_path
):
    region = trino_local.REGION
    script = planned_script(plans)
    tables = TABLE.findall(script)
    assert tables, "the plan declares archive tables"
    assert {schema_ for schema_, _, _ in tables} == {"kafka"}
    first = first_archive(kafka, plans, region, moto, tables, tmp_path / "first")
    bucket, s3, midnight, own, peer = first.bucket, first.s3, first.midnight, first.own, first.peer
    wanted, manifest, first_job = first.wanted, first.manifest, first.seconds
    # The planned tables of the two topics (where the job wrote them: first_archive checked).
    chosen = {topic: first.location[topic][0] for topic in (own, peer)}

    started = time.monotonic()
    for stmt in statements(script):
        trino.run(stmt)
    first_run = time.monotonic() - started
    for topic, table in chosen.items():
        expected = manifest.by_hour(topic)
        assert len(expected) == 4 and sum(expected.values()) == sum(wanted[topic].values())
        assert {dt for dt, _ in expected} == {
            f"{midnight - timedelta(days=1):%Y-%m-%d}",
            f"{midnight:%Y-%m-%d}",
        }
        rows = trino.run(
            f"SELECT dt, hr, count(*) FROM archive.kafka.{table} GROUP BY dt, hr ORDER BY dt, hr"
        )
        assert by_hour(rows) == expected, table
        # dt and hr are the record's Kafka timestamp in UTC; offsets are the broker's.
        (row,) = trino.run(
            f"SELECT count(*) FILTER (WHERE "
            "format_datetime(kafka_timestamp AT TIME ZONE 'UTC', 'yyyy-MM-dd') <> dt "
            "OR format_datetime(kafka_timestamp AT TIME ZONE 'UTC', 'HH') <> hr), "
            f"count(DISTINCT (kafka_partition, kafka_offset)) FROM archive.kafka.{table}"
        )
        assert row == [0, len(manifest.records[topic])], table
    # On S3 the job's only objects are published part files in the hours produced (its
    # unfinished parts are multipart uploads, invisible until committed).
    client = moto.client()
    published: dict[str, list[str]] = {}
    for topic in chosen:
        prefix = split(manifest.locations[topic])[1] + "/"
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        below = [k.removeprefix(prefix) for k in keys]
        dirs = {k.rsplit("/", 1)[0] for k in below}
        assert dirs == {f"dt={dt}/hr={hr}" for dt, hr in manifest.by_hour(topic)}, below
        assert all(k.rsplit("/", 1)[1].startswith("part-") for k in below), below
        published[topic] = sorted(keys)
    # Where Flink's sink does leave in-progress files (HDFS: `.<part>.inprogress.<uuid>` beside
    # the hour's part files), Trino skips them: one of the job's own part files under that name
    # does not count.
    hour_dir, name = published[own][0].rsplit("/", 1)
    client.copy_object(
        Bucket=bucket,
        Key=f"{hour_dir}/.{name}.inprogress.0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        CopySource={"Bucket": bucket, "Key": published[own][0]},
    )
    rows = trino.run(f"SELECT dt, hr, count(*) FROM archive.kafka.{chosen[own]} GROUP BY dt, hr")
    assert by_hour(rows) == manifest.by_hour(own)
    # The other tables of the region's archive hold nothing.
    empty = next(t for _, t, _ in tables if t not in chosen.values())
    assert trino.run(f"SELECT count(*) FROM archive.kafka.{empty}") == [[0]]

    # A later hour arrives for one topic; the CronJob's next run of the same script registers it.
    late = midnight + timedelta(hours=2)
    started = time.monotonic()
    again = al.archive_records(
        kafka, plans, region, tmp_path / "second", s3, bucket, {own: {late: 9}}
    )
    second_job = time.monotonic() - started
    assert again.by_hour(own) == {(f"{late:%Y-%m-%d}", f"{late:%H}"): 9}
    started = time.monotonic()
    for stmt in statements(script):
        trino.run(stmt)
    second_run = time.monotonic() - started
    for topic, table in chosen.items():
        expected = {**manifest.by_hour(topic), **again.by_hour(topic)}
        rows = trino.run(f"SELECT dt, hr, count(*) FROM archive.kafka.{table} GROUP BY dt, hr")
        assert by_hour(rows) == expected, table
    produced = sum(len(r) for r in manifest.records.values())
    print(
        f"\nTrino started in {trino.started_in:.1f} s, its Hive metastore in "
        f"{trino_metastore.started_in:.1f} s; the archive job wrote {produced} records "
        f"in {first_job:.1f} s (job until committed {manifest.seconds['archive']:.1f} s), "
        f"9 more in {second_job:.1f} s; the planned script ({len(tables)} tables) ran in "
        f"{first_run:.1f} s, again in {second_run:.1f} s",
        flush=True,
    )
