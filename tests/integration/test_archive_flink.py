"""The archive job rtdi plans, run on real Flink 2.2 from real Kafka into S3 and HDFS stand-ins.

The planned archive job of aws-us-east-1 (its FlinkDeployment's configuration and the SQL of its
ConfigMap; only endpoints, credentials, the bucket's name and the checkpoint interval rewritten,
archive_local.py says why) runs on a MiniCluster with the plugins the plan enables, reading the
session's Kafka and writing s3a:// to the session's s3proxy; the one of onprem-dc1 writes hdfs://
to the session's HDFS with its planned core-site.xml and the HDFS image's Hadoop client. Records
are produced with Kafka timestamps in three UTC hours (one of them yesterday's), into the
region's own copy of a topic and into a peer region's copy.

On S3 the JVM is then SIGKILLed while a second round of records (the same hours) sits in
in-progress part files, between two checkpoints, and restarted from the last checkpoint.

Then, independently of the writing job:

- the files of the store (s3proxy's file store shows objects as files; WebHDFS lists HDFS) lie
  under ``<topic>/dt=YYYY-MM-DD/hr=HH/part-*`` for exactly the hours produced, no in-progress
  file is visible, and the topics without records hold nothing;
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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import archive_local as al
import flink_local as fl

from infra.components.flink import archive as archiving

STACK = "aws-us-east-1"
PEER = "aws-eu-west-1"
HDFS_STACK = "onprem-dc1"
LOGICAL = "trips"


def read_back(flink: Path, workdir: Path, store: al.Store, manifest: al.Manifest) -> list:
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
    conf = {**store.access, "parallelism.default": "1", "execution.runtime-mode": "BATCH"}
    enabled = f"flink-s3-fs-hadoop-{flink.name}.jar" if store.archive.startswith("s3a:") else ""
    plugins = fl.plugins_dir(flink, enabled, workdir / "rb")
    job = fl.start_runner(
        "readback",
        flink,
        workdir,
        sql,
        conf,
        plugins=plugins,
        classpath=store.classpath,
        env=store.env,
    )
    code = job.popen.wait(timeout=180)
    assert code == 0, job.tail()
    rows = []
    for f in sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line]
    return rows


def hours(stack: str, peer: str) -> dict[str, dict[datetime, int]]:
    """Records in three UTC hours (one yesterday's) in the region's own copy and a peer's."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return {
        f"{stack}.{LOGICAL}": {now - timedelta(hours=26): 40, now - timedelta(hours=2): 25},
        f"{peer}.{LOGICAL}": {now - timedelta(hours=1): 30},
    }


def check_layout(manifest: al.Manifest, files_of: Callable[[str], list[str]]) -> None:
    """Under each topic's location only ``dt=/hr=`` directories of the hours produced, each
    with committed part files, and no in-progress file visible. ``files_of(location)``: every
    file below it, as a path relative to it."""
    for topic, location in manifest.locations.items():
        files = files_of(location)
        if topic not in manifest.records:
            assert not files, f"{topic} had no records, yet holds {files}"
            continue
        visible = [f for f in files if not f.rsplit("/", 1)[-1].startswith(".")]
        assert visible, f"no committed part file for {topic}"
        assert not [f for f in visible if "inprogress" in f], "an in-progress file is visible"
        dirs = {f.rsplit("/", 1)[0] for f in visible}
        assert dirs == {f"dt={dt}/hr={hr}" for dt, hr in manifest.by_hour(topic)}, dirs
        assert all(f.rsplit("/", 1)[-1].startswith("part-") for f in visible)


def check_records(rows: list[dict], manifest: al.Manifest) -> None:
    """Every produced record exactly once, as produced, in its hour; nothing else."""

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
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    want = Counter(
        (
            p.topic,
            p.partition,
            p.offset,
            p.key,
            p.value,
            tuple(sorted(p.headers.items())),
            datetime.fromtimestamp(p.timestamp_ms / 1000, UTC).strftime(stamp)[:-3],
            p.dt,
            p.hr,
        )
        for records in manifest.records.values()
        for p in records
    )
    assert sum(got.values()) == sum(want.values()) > 0
    assert got == want


def run_and_check(kafka, plans, stack, peer, store, tmp_path, files_of, crash=None) -> None:
    flink = fl.require_flink()
    started = time.monotonic()
    manifest = al.archive_into(
        kafka, plans, stack, tmp_path / "run", store, hours(stack, peer), crash=crash
    )
    archived = time.monotonic() - started
    check_layout(manifest, files_of)
    started = time.monotonic()
    rows = read_back(flink, tmp_path / "readback", store, manifest)
    read = time.monotonic() - started
    check_records(rows, manifest)
    produced = sum(len(r) for r in manifest.records.values())
    print(
        f"\narchive {stack} ({store.archive.split(':')[0]}): {produced} records in "
        f"{len(manifest.records)} topics; produce {manifest.seconds['produce']:.1f} s, archive "
        f"job until committed {manifest.seconds['archive']:.1f} s, all {archived:.1f} s; read "
        f"back {read:.1f} s"
        + (
            f"; SIGKILL at {manifest.seconds['crash']:.1f} s, restarted from the last "
            f"checkpoint and committed in {manifest.seconds['restart']:.1f} s"
            if crash
            else ""
        ),
        flush=True,
    )


def test_planned_archive_on_s3_holds_every_record_once_across_a_crash(
    kafka, s3proxy, plans, tmp_path
):
    bucket = "rtdi-archive-test"
    s3proxy.create_bucket(bucket)
    s3 = {
        "s3.endpoint": s3proxy.endpoint,
        "s3.path.style.access": "true",
        "s3.access-key": s3proxy.access_key,
        "s3.secret-key": s3proxy.secret_key,
    }
    root = s3proxy.basedir / bucket

    def files_of(location: str) -> list[str]:
        # s3proxy's file store: object `key` of the bucket is the file bucket/key.
        folder = root / location.split("://", 1)[1].split("/", 1)[1]
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    def checkpoints(uri: str) -> list[tuple[int, str]]:
        prefix = uri.split("://", 1)[1].split("/", 1)[1]
        return [(n, f"s3p://{bucket}/{p}") for n, p in s3proxy.checkpoints(bucket, prefix)]

    store = al.s3_store(s3, bucket)
    run_and_check(kafka, plans, STACK, PEER, store, tmp_path, files_of, crash=checkpoints)


def test_planned_archive_on_hdfs_holds_every_record_once_in_its_hour(kafka, hdfs, plans, tmp_path):
    store = al.hdfs_store(hdfs, plans, HDFS_STACK, tmp_path)

    def files_of(location: str) -> list[str]:
        base = "/" + location.split("://", 1)[1].split("/", 1)[1]
        found = []
        for dt in hdfs.list(base):
            for hr in hdfs.list(f"{base}/{dt}"):
                found += [f"{dt}/{hr}/{f}" for f in hdfs.list(f"{base}/{dt}/{hr}")]
        return sorted(found)

    run_and_check(kafka, plans, HDFS_STACK, STACK, store, tmp_path, files_of)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-s"]))
