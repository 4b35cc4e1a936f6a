"""The archive job rtdi plans, run on real Flink 2.2 from real Kafka into an S3-compatible store.

The planned archive job of aws-us-east-1 (its FlinkDeployment's configuration and the SQL of its
ConfigMap; only endpoints, credentials, the bucket's name and the checkpoint interval rewritten,
archive_local.py says why) runs on a MiniCluster with the plugins the plan enables, reading the
session's Kafka and writing s3a:// to the session's s3proxy. Records are produced with Kafka
timestamps in three different UTC hours (one of them yesterday's), into the region's own copy
of a topic and into a peer region's copy.

Then, independently of the writing job:

- the objects in the bucket (s3proxy's file store shows them as files) lie under
  ``<topic>/dt=YYYY-MM-DD/hr=HH/part-*`` for exactly the hours produced, with no in-progress
  file left visible;
- a second Flink job, in batch mode, reads the Parquet files back through the format's reader
  (partitions from the directory names, as Hive and Trino take them) and every produced record
  is there exactly once: key, value, header, partition, offset, timestamp, dt and hr.

Timings are printed (``-s`` shows them).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import archive_local as al
import flink_local as fl

from infra.components.flink import archive as archiving

STACK = "aws-us-east-1"
PEER = "aws-eu-west-1"
LOGICAL = "trips"


def read_back(flink: Path, workdir: Path, s3: dict[str, str], manifest: al.Manifest) -> list:
    """Every archived row of the manifest's topics, read by Flink's Parquet reader in batch
    mode and written out as JSON lines (bytes as base64)."""
    out = workdir / "readback"
    workdir.mkdir(parents=True, exist_ok=True)
    parts = ["SET 'table.local-time-zone' = 'UTC';"]
    columns = ",\n".join(f"  `{n}` {t}" for n, t in archiving.COLUMNS)
    selects = []
    for i, topic in enumerate(sorted(manifest.records)):
        parts.append(
            f"CREATE TABLE `t{i}` (\n{columns},\n  `dt` STRING,\n  `hr` STRING\n)"
            f" PARTITIONED BY (`dt`, `hr`) WITH (\n"
            f"  'connector' = 'filesystem',\n  'path' = '{manifest.locations[topic]}',\n"
            f"  'format' = 'parquet',\n  'parquet.utc-timezone' = 'true'\n);"
        )
        selects.append(
            f"SELECT '{topic}', `key`, `value`, `headers`, `kafka_partition`, `kafka_offset`, "
            f"CAST(`kafka_timestamp` AS STRING), `dt`, `hr` FROM `t{i}`"
        )
    parts.append(
        f"CREATE TABLE `rows` (`topic` STRING, {columns.replace(chr(10), ' ')}, `dt` STRING, "
        f"`hr` STRING) WITH ('connector' = 'filesystem', 'path' = 'file://{out}', "
        f"'format' = 'json');".replace("`kafka_timestamp` TIMESTAMP(3)", "`kafka_timestamp` STRING")
    )
    parts.append("INSERT INTO `rows`\n" + "\nUNION ALL\n".join(selects) + ";")
    sql = workdir / "readback.sql"
    sql.write_text("\n".join(parts) + "\n")
    conf = {**s3, "parallelism.default": "1", "execution.runtime-mode": "BATCH"}
    plugins = fl.plugins_dir(flink, f"flink-s3-fs-hadoop-{flink.name}.jar", workdir / "rb")
    job = fl.start_runner("readback", flink, workdir, sql, conf, plugins=plugins)
    code = job.popen.wait(timeout=180)
    assert code == 0, job.tail()
    rows = []
    for f in sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line]
    return rows


def test_planned_archive_writes_every_record_once_in_its_hour(kafka, s3proxy, plans, tmp_path):
    flink = fl.require_flink()
    bucket = "rtdi-archive-test"
    s3proxy.create_bucket(bucket)
    s3 = {
        "s3.endpoint": s3proxy.endpoint,
        "s3.path.style.access": "true",
        "s3.access-key": s3proxy.access_key,
        "s3.secret-key": s3proxy.secret_key,
    }
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = {
        f"{STACK}.{LOGICAL}": {now - timedelta(hours=26): 40, now - timedelta(hours=2): 25},
        f"{PEER}.{LOGICAL}": {now - timedelta(hours=1): 30},
    }
    started = time.monotonic()
    manifest = al.archive_records(kafka, plans, STACK, tmp_path / "run", s3, bucket, hours)
    archived = time.monotonic() - started

    # The layout, object by object (s3proxy's file store: bucket/key is a file).
    root = s3proxy.basedir / bucket
    produced = {t: len(r) for t, r in manifest.records.items()}
    for topic in produced:
        files = [p for p in (root / topic).rglob("*") if p.is_file()]
        visible = [p for p in files if not p.name.startswith(".")]
        assert visible, f"no committed part file for {topic}"
        assert not [p for p in files if "inprogress" in p.name], "an in-progress file is visible"
        dirs = {p.relative_to(root / topic).parent.as_posix() for p in visible}
        assert dirs == {f"dt={dt}/hr={hr}" for dt, hr in manifest.by_hour(topic)}, dirs
        assert all(p.name.startswith("part-") for p in visible)

    started = time.monotonic()
    rows = read_back(flink, tmp_path / "readback", s3, manifest)
    read = time.monotonic() - started

    def decode(b: str | None) -> bytes | None:
        return None if b is None else base64.b64decode(b)

    got = Counter(
        (
            r["topic"],
            r["kafka_partition"],
            r["kafka_offset"],
            decode(r["key"]),
            decode(r["value"]),
            tuple(sorted((k, decode(v)) for k, v in (r["headers"] or {}).items())),
            r["kafka_timestamp"],
            r["dt"],
            r["hr"],
        )
        for r in rows
    )
    want = Counter(
        (
            p.topic,
            p.partition,
            p.offset,
            p.key,
            p.value,
            tuple(sorted(p.headers.items())),
            datetime.fromtimestamp(p.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[
                :-3
            ],
            p.dt,
            p.hr,
        )
        for records in manifest.records.values()
        for p in records
    )
    assert sum(got.values()) == sum(want.values()) == sum(produced.values())
    assert got == want
    print(
        f"\narchive: {sum(produced.values())} records in {len(produced)} topics; produce "
        f"{manifest.seconds['produce']:.1f} s, archive job to committed "
        f"{manifest.seconds['archive']:.1f} s, all {archived:.1f} s; read back {read:.1f} s",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-s"]))
