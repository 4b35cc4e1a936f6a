"""A backfill over the Parquet archive, planned by rtdi and run for real: Flink 2.2 (the SQL
runner on a MiniCluster) reading what the planned archive job wrote to HDFS, into real Kafka.

onprem-dc1 archives to HDFS. Trips are produced into two of its aggregate's copies of `trips`
with Kafka timestamps over three UTC hours, in two rounds the planned archive job (on loopback,
archive_local.py) commits one after the other: each hour of each copy holds several part files
whose records interleave in time, so the backfill reads them out of order. The Kafka topics are
then deleted: what the backfill reads can only come from the archive.

`plan_backfill` plans `surge-pricing` over a range that starts and ends inside hours (so only
the exact Kafka-timestamp filter gives the right answer, not the hour partitions), `source:
archive`. Its runner script and flinkConfiguration run with only endpoints, credentials and the
archive paths' scheme://authority rewritten (flink_local.loopback_sql / loopback_configuration,
archive_local.loopback_paths), at the planned parallelism (2). An unreadable file lies in an hour
before the range and one after it: the job reads only the range's hours, or it fails.

The job must end by itself with its exactly-once sink committed (the final checkpoint), and the
backfill topic must hold exactly the surge counts computed by hand over the in-range trips; the
live sink stays empty and no consumer group appears on Kafka. Timings are printed (``-s``).
"""

from __future__ import annotations

import getpass
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import archive_local as al
import backfill_local as bl
import flink_local as fl
import kafka_local as kl

from infra.plan import Project
from infra.plan.backfill import Request, plan_backfill

ROOT = Path(__file__).resolve().parents[2]
REGION = "onprem-dc1"
SOURCES = ("aws-us-east-1.trips", "onprem-dc1.trips")  # two of the aggregate's four copies
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
HOURS = [HOUR - timedelta(hours=h) for h in (3, 2, 1)]
PER_HOUR = 120  # trips per hour and copy: one every 30 s
ROUNDS = 2
# Inside the first hour to inside the second: before, in and after the range in the archive.
START = HOURS[0] + timedelta(minutes=37)
END = HOURS[1] + timedelta(minutes=23)
WAIT = 240


def value(topic: str, n: int, stamp_ms: int) -> bytes:
    """Trip n of ``topic`` at its Kafka timestamp; one in three completed (not counted)."""
    at = datetime.fromtimestamp(stamp_ms / 1000, UTC)
    status = "completed" if n % 3 == 0 else "requested"
    hexagon = bl.HEXAGONS[(stamp_ms // 7000) % 2]
    return bl.trip(f"{topic}-{stamp_ms}-{n}", hexagon, status, at)


def hdfs_put(cluster, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through WebHDFS (the NameNode redirects to a DataNode)."""
    user = getpass.getuser()
    base = f"http://{kl.LOOPBACK}:{cluster.http_port}/webhdfs/v1{path}"

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(Stay).open(
            urllib.request.Request(f"{base}?op=CREATE&user.name={user}", method="PUT"),
            timeout=10,
        )
        raise AssertionError("WebHDFS CREATE did not redirect to a DataNode")
    except urllib.error.HTTPError as e:
        assert e.code == 307, e
        datanode = e.headers["Location"]
    request = urllib.request.Request(datanode, data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201


def groups(bootstrap: str) -> set[str]:
    listed = kl.admin(bootstrap).list_consumer_groups(request_timeout=10).result()
    return {g.group_id for g in listed.valid}


@pytest.mark.integration
def test_a_planned_archive_backfill_reads_only_the_range_from_parquet(
    kafka, hdfs, plans, fresh_topics, tmp_path
):
    flink = fl.require_flink()
    started = time.monotonic()
    store = al.hdfs_store(hdfs, plans, REGION, tmp_path)
    wanted = {topic: dict.fromkeys(HOURS, PER_HOUR) for topic in SOURCES}
    manifest = al.archive_into(
        kafka, plans, REGION, tmp_path / "archive", store, wanted, values=value, rounds=ROUNDS
    )
    archived = time.monotonic() - started
    for topic in SOURCES:
        base = "/" + manifest.locations[topic].split("://", 1)[1].split("/", 1)[1]
        for hour in HOURS:
            files = hdfs.list(f"{base}/dt={hour:%Y-%m-%d}/hr={hour:%H}")
            assert len([f for f in files if f.startswith("part-")]) >= ROUNDS, (topic, files)
    # Unreadable files in an hour before the range and in one after it: read, they fail the job.
    base = "/" + manifest.locations["onprem-dc1.trips"].split("://", 1)[1].split("/", 1)[1]
    for hour in (HOURS[0] - timedelta(hours=1), HOURS[2]):
        hdfs_put(hdfs, f"{base}/dt={hour:%Y-%m-%d}/hr={hour:%H}/part-unreadable", b"not parquet")
    # Kafka forgets the trips: the backfill can only read them from the archive.
    client = kl.admin(kafka.bootstrap)
    for future in client.delete_topics(list(SOURCES), request_timeout=30).values():
        future.result(timeout=60)
    fresh_topics([(bl.LIVE_SINK, 1), (bl.BACKFILL_SINK, 1)], ["flink-surge-pricing"])
    want = bl.surge_by_hand(
        [(r.value, r.timestamp_ms) for t in SOURCES for r in manifest.records[t]], START, END
    )

    request = Request(bl.JOB, bl.rfc3339(START), bl.rfc3339(END), REGION, "itest", "archive")
    planned = bl.planned(plan_backfill(Project.find(ROOT), request))
    assert "'connector' = 'filesystem'" in planned.script
    assert "properties.group.id" not in planned.script, "an archive backfill has no consumer"
    script, tables = fl.loopback_sql(planned.script, kafka.bootstrap)
    script, locations = al.loopback_paths(script, store.archive)
    assert set(SOURCES) <= set(locations), sorted(locations)
    assert [n for n, o in tables.items() if o.get("connector") == "kafka"] == ["surge"]
    conf, _ = fl.loopback_configuration(
        planned.spec["flinkConfiguration"], store.state, store.access
    )
    assert conf["execution.runtime-mode"] == "STREAMING"
    conf["parallelism.default"] = str(planned.spec["job"]["parallelism"])
    assert conf["parallelism.default"] == "2"
    (container,) = planned.spec["podTemplate"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    work = tmp_path / "backfill"
    work.mkdir()
    plugins = fl.plugins_dir(flink, env.get("ENABLE_BUILT_IN_PLUGINS", ""), work)
    sql = work / "backfill.sql"
    sql.write_text(script)

    before = groups(kafka.bootstrap)
    run = time.monotonic()
    job = fl.start_runner(
        "backfill",
        flink,
        work,
        sql,
        conf,
        plugins=plugins,
        classpath=store.classpath,
        env=store.env,
    )
    try:
        kl.wait_for(
            "the archive backfill to end by itself",
            lambda: not job.alive() or "to RESTARTING" in job.log_text(),
            WAIT,
            interval=1,
        )
    finally:
        job.stop()
    took = time.monotonic() - run
    failures = [ln for ln in job.log_text().splitlines() if "Caused by" in ln][-3:]
    assert job.popen.returncode == 0, failures or job.tail()
    rows = bl.committed(kafka.bootstrap, bl.BACKFILL_SINK)
    got = bl.surge_rows(rows)
    produced = sum(len(manifest.records[t]) for t in SOURCES)
    print(
        f"\narchive backfill: {produced} trips archived in {archived:.1f} s "
        f"({manifest.seconds['archive']:.1f} s archive job, {ROUNDS} rounds); backfill of "
        f"{sum(want.values())} requested in range ended by itself in {took:.1f} s; "
        f"{len(rows)} windows committed; test {time.monotonic() - started:.1f} s",
        flush=True,
    )
    assert len(rows) == len(want), "one row per hexagon and minute, none twice"
    assert got == want
    assert bl.committed(kafka.bootstrap, bl.LIVE_SINK) == [], "the live sink is untouched"
    made = {g for g in groups(kafka.bootstrap) - before if not g.startswith("check-")}
    assert made == set(), f"the archive backfill made consumer groups: {made}"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-s"]))
