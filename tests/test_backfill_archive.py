"""Backfill from the Parquet archive (paper 4.4: the archive is the source of backfill).

A backfill with `source: archive` is the Kafka backfill but for its source tables: each becomes a
view of the same name over the archive's copies of its topic, read where the region's archive
job writes them, filtered to the range. These tests diff it against the archive job's own script
and the Kafka backfill in one plan; tests/integration/test_flink_backfill_archive.py runs it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from test_backfill import (
    CONFIGMAP,
    END,
    FLINK,
    NOW,
    START,
    _by_name,
    _cli,
    _entry,
    _logic,
    _tables,
    _z,
)
from test_backfill import _plan as _plan_with

from infra.cli import EXIT_BAD_INPUT
from infra.components.flink.archive_read import (
    ArchiveCopy,
    decode_issues,
    hour_pattern,
    source_sql,
)
from infra.topology.jobs import Job, Table, check_backfills, load_jobs, retention_issues
from infra.topology.model import Backfill, GlobalStack
from plantools import S3_READ_WRITE, s3_rights

KAFKA_USER = "kubernetes:kafka.strimzi.io/v1:KafkaUser"
REGION = "aws-us-east-1"
OLD_START, OLD_END = NOW - timedelta(days=10, minutes=7), NOW - timedelta(days=9, minutes=3)
# A FileSystem table's name and path; never across statements (a Kafka table's JAAS ends in ';').
_PATH = re.compile(r"CREATE TABLE `(\w+)` \([^;]*?\) PARTITIONED BY [^;]*?'path' = '([^']*)'")


@pytest.fixture(scope="module")
def both(plans):
    """One plan of the region with the same backfill from Kafka and from the archive."""
    entries = [_entry(id="kafka"), _entry(id="arch", source="archive")]
    return _plan_with(REGION, entries)


def _sql(plan, name: str) -> str:
    return _by_name(plan, CONFIGMAP)[f"{name}-sql"]["data"]["job.sql"]


def test_the_archive_backfill_reads_exactly_where_the_archive_job_writes(plans, both):
    sql = _sql(both, "surge-pricing-backfill-arch")
    archive = _sql(both, "archive")
    registry = both.outputs["kafkaFederation"]["topics"]
    copies = registry["trips"]["regions"][REGION]["consume"]["topics"]
    read = dict(_PATH.findall(sql))
    written = dict(_PATH.findall(archive))
    # One table per copy the live job's source subscribes to, at the archive job's own path.
    assert sorted(read) == sorted(f"archive_trips_{re.sub('[.-]', '_', t)}" for t in copies)
    assert sorted(read.values()) == sorted(
        written[f"archive_{re.sub('[.-]', '_', t)}"] for t in copies
    )
    assert all(p.startswith("s3a://") for p in read.values())  # the recoverable S3 plugin
    # Nothing of it is Kafka: no source table, no group, no bounded Kafka scan.
    assert "trips" not in _tables(sql)
    assert "properties.group.id" not in sql and "scan.bounded" not in sql
    assert "CREATE TEMPORARY VIEW `trips` AS" in sql


def test_only_the_sources_differ_from_the_kafka_backfill(both):
    kafka, arch = (
        _sql(both, "surge-pricing-backfill-kafka"),
        _sql(both, "surge-pricing-backfill-arch"),
    )
    assert _logic(kafka) == _logic(arch)
    k_surge, a_surge = _tables(kafka)["surge"], _tables(arch)["surge"]
    assert k_surge[0] == a_surge[0]
    differ = {
        k for k in k_surge[1].keys() | a_surge[1].keys() if k_surge[1].get(k) != a_surge[1].get(k)
    }
    # Its own transactional ids and principal; the same topic, guarantee and timeout.
    assert differ == {"sink.transactional-id-prefix", "properties.sasl.jaas.config"}
    assert a_surge[1]["topic"] == k_surge[1]["topic"]


def test_the_archive_backfill_gets_no_kafka_read_access(both):
    users = {r.name: r.inputs for r in both.of_type(KAFKA_USER)}
    kafka = [u for n, u in users.items() if "surge-pricing-backfill-kafka" in n]
    arch = [u for n, u in users.items() if "surge-pricing-backfill-arch" in n]
    reads = [
        acl
        for u in arch
        for acl in u["spec"]["authorization"]["acls"]
        if acl["resource"]["type"] in ("topic", "group") and "Read" in acl["operations"]
    ]
    assert len(kafka) == 2 and len(arch) == 1, sorted(users)
    assert reads == []
    assert all("quotas" not in u["spec"] for u in arch)


def test_the_view_selects_the_range_by_kafka_timestamp_and_reads_only_its_hours():
    job = Job.model_validate(
        {
            "name": "j",
            "mode": "all-active",
            "sql": "j.sql",
            "sources": [
                {
                    "table": "t",
                    "topic": "trips",
                    "columns": [
                        {"name": "n", "type": "BIGINT"},
                        {"name": "at", "type": "TIMESTAMP(3)"},
                    ],
                    "watermark": {"column": "at", "delaySeconds": 30},
                }
            ],
        }
    )
    start = datetime(2026, 11, 29, 23, 59, 30, 250_000, tzinfo=UTC)
    end = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    copy = ArchiveCopy("archive_t_x", "hdfs://n/x")
    (ddl, view) = source_sql(job.sources[0], [copy], start, end)
    assert "`n` AS CAST(JSON_VALUE(CAST(`value` AS STRING), '$.n') AS BIGINT)" in ddl
    # Held at the epoch until the files are read: out-of-order files drop nothing.
    assert "WATERMARK FOR `at` AS TIMESTAMP '1970-01-01 00:00:00.000'" in ddl
    (pattern,) = re.findall(r"'source.path.regex-pattern' = '([^']*)'", ddl)
    assert pattern == hour_pattern(start, end)
    assert "`kafka_timestamp` >= TIMESTAMP '2026-11-29 23:59:30.250'" in view
    assert "`kafka_timestamp` < TIMESTAMP '2026-11-30 02:00:00.000'" in view
    # Another offset is the same instant: the partitions are UTC.
    local = start.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert source_sql(job.sources[0], [copy], local, end) == [ddl, view]


def _read(pattern: str, dt: str, hr: str, file: str = "part-0a1b-0-3") -> bool:
    """Whether Flink reads a file there: Java's `matches`, the whole path (the same syntax)."""
    path = f"/rtdi/onprem-dc1/archive/x.trips/dt={dt}/hr={hr}/{file}"
    return re.fullmatch(pattern, path) is not None


def test_only_the_hours_of_the_range_are_read():
    start = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
    end = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # exclusive: hour 02 holds nothing of it
    pattern = hour_pattern(start, end)
    assert _read(pattern, "2026-11-29", "23") and not _read(pattern, "2026-11-29", "22")
    assert all(_read(pattern, "2026-11-30", f"{h:02d}") for h in range(24))
    assert _read(pattern, "2026-12-01", "01") and not _read(pattern, "2026-12-01", "02")
    assert not _read(pattern, "2026-12-02", "00") and not _read(pattern, "2025-11-30", "00")
    # Not a file of an hour directory: a deeper path, or the directory itself.
    assert not re.fullmatch(pattern, "/a/x.trips/dt=2026-11-30/hr=05")
    assert not re.fullmatch(pattern, "/a/x.trips/dt=2026-11-30/hr=05/sub/part-0")


def test_a_long_range_stays_a_short_pattern():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    end = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    pattern = hour_pattern(start, end)
    assert len(pattern) < 200, pattern
    assert _read(pattern, "2025-07-14", "13") and _read(pattern, "2026-02-28", "23")
    assert _read(pattern, "2026-03-02", "04") and not _read(pattern, "2026-03-02", "05")
    assert not _read(pattern, "2024-12-31", "23") and not _read(pattern, "2026-03-03", "00")


def _table(fmt: str, *columns: tuple[str, str]) -> Table:
    return Table.model_validate(
        {
            "table": "t",
            "topic": "trips",
            "format": fmt,
            "columns": [{"name": n, "type": t} for n, t in columns],
        }
    )


@pytest.mark.parametrize(
    "table, key, value, words",
    [
        (_table("avro", ("a", "STRING")), "sources[0].format", "avro", "cannot decode avro values"),
        (_table("csv", ("a", "STRING")), "sources[0].format", "csv", "cannot decode csv values"),
        (
            _table("json", ("a", "ARRAY<STRING>")),
            "sources[0].columns[0].type",
            "ARRAY<STRING>",
            "cannot decode this JSON column",
        ),
        (_table("json", ("b", "BYTES")), "sources[0].columns[0].type", "BYTES", "cannot decode"),
        (
            _table("json", ("value", "STRING")),
            "sources[0].columns[0].name",
            "value",
            "a name the archive's own columns take",
        ),
        (_table("raw", ("a", "INT")), "sources[0].format", "raw", "one STRING or BYTES column"),
    ],
    ids=["avro", "csv", "array", "bytes", "taken-name", "raw-int"],
)
def test_what_the_archive_cannot_decode_is_named(table, key, value, words):
    ((k, v, message),) = list(decode_issues([table]))
    assert (k, v) == (key, value) and words in message and "`source: kafka`" in message


@pytest.mark.parametrize(
    "table",
    [
        _table(
            "json",
            ("a", "STRING"),
            ("b", "DECIMAL(10, 2)"),
            ("c", "TIMESTAMP_LTZ(3)"),
            ("d", "BOOLEAN"),
        ),
        _table("raw", ("a", "STRING")),
        _table("raw", ("a", "BYTES")),
    ],
    ids=["json-scalars", "raw-text", "raw-bytes"],
)
def test_what_the_archive_decodes_passes(table):
    assert list(decode_issues([table])) == []


@pytest.fixture(scope="module")
def published(plans) -> GlobalStack:
    from infra.plan import Project, validate
    from plantools import ROOT

    (model,) = [s.model for s in validate(Project.find(ROOT), ["global"]).values()]
    assert isinstance(model, GlobalStack)
    return model


def _check(published, entry, jobs=None, region=REGION):
    jobs = jobs if jobs is not None else load_jobs(published.topology, published.kafka)
    b = Backfill.model_validate(entry)
    found = list(
        check_backfills([b], region, jobs, published.topology, published.kafka, NOW, retention=True)
    )
    return found


def test_an_archive_backfill_needs_an_archive_in_its_region(published):
    jobs = [j for j in load_jobs(published.topology, published.kafka) if j.kind != "archive"]
    ((key, value, message),) = _check(published, _entry(source="archive"), jobs)
    assert (key, value) == ("rtdi:backfills[0].source", "archive")
    assert message.startswith(f"no archive job runs in {REGION}, so it has no archive to read")


def test_the_archive_keeps_a_data_class_only_so_long(published):
    days = published.kafka.data_classes["operational"].archive_retention_days
    assert days is not None
    old = NOW - timedelta(days=days + 1)
    ((key, value, message),) = _check(published, _entry(source="archive", **{"from": _z(old)}))
    assert (key, value) == ("rtdi:backfills[0].from", old.isoformat())
    assert (
        f"older than the archive keeps source topic trips (data class operational: {days} days"
        in message
    )


def test_the_archive_is_not_complete_until_its_files_are_published(published):
    archiver = next(
        j for j in load_jobs(published.topology, published.kafka) if j.kind == "archive"
    )
    settle = 2 * archiver.checkpoint_interval_seconds
    recent = NOW - timedelta(seconds=settle - 60)
    ((key, _, message),) = _check(published, _entry(source="archive", to=_z(recent)))
    assert key == "rtdi:backfills[0].to"
    assert f"allowed: a time at least {settle} s past, or the Kafka source" in message
    assert _check(published, _entry(source="archive", to=_z(NOW - timedelta(seconds=settle)))) == []


def test_the_stack_only_warns_when_the_archive_no_longer_holds_a_range(published):
    b = Backfill.model_validate(_entry(source="archive", **{"from": _z(NOW - timedelta(days=900))}))
    jobs = load_jobs(published.topology, published.kafka)
    static = list(check_backfills([b], REGION, jobs, published.topology, published.kafka, NOW))
    assert static == []
    warned = list(retention_issues([b], REGION, jobs, published.topology, published.kafka, NOW))
    assert len(warned) == 1 and "older than the archive keeps" in warned[0][2]


def test_rtdi_backfill_reads_the_archive_when_kafka_no_longer_holds_the_range(tmp_path):
    code, out, err = _cli(
        "surge-pricing",
        "--from",
        _z(OLD_START),
        "--to",
        _z(OLD_END),
        "--region",
        REGION,
        "--out",
        str(tmp_path),
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].endswith(f"in {REGION}, from archive")
    assert "trips -> s3a://" in lines[2] and "(archive, the range's hour partitions)" in lines[2]
    assert lines[-1].endswith("'rtdi:backfills[0].source' archive")
    # The run checks like every plan: the policy pack passes it.
    import contextlib
    import io

    from infra.cli import main as cli_main

    with contextlib.redirect_stdout(io.StringIO()) as checked:
        assert cli_main(["check", "--plan", str(tmp_path)]) == 0, checked.getvalue()


def test_rtdi_backfill_reads_kafka_while_it_holds_the_range(tmp_path):
    code, out, _ = _cli(
        "surge-pricing", "--from", _z(START), "--to", _z(END), "--out", str(tmp_path)
    )
    assert code == 0 and out.splitlines()[0].endswith("from kafka")
    code, out, _ = _cli(
        "surge-pricing",
        "--from",
        _z(START),
        "--to",
        _z(END),
        "--source",
        "archive",
        "--out",
        str(tmp_path / "a"),
    )
    assert code == 0 and out.splitlines()[0].endswith("from archive")


def test_neither_source_holding_the_range_gives_both_reasons(tmp_path, published):
    days = published.kafka.data_classes["operational"].archive_retention_days
    old = NOW - timedelta(days=days + 2)
    code, out, err = _cli(
        "surge-pricing", "--from", _z(old), "--to", _z(OLD_END), "--out", str(tmp_path / "x")
    )
    assert (code, out) == (EXIT_BAD_INPUT, "")
    kafka, archive = err.strip().splitlines()
    assert "left in Kafka" in kafka and "older than the archive keeps" in archive
    assert not (tmp_path / "x").exists()


def test_a_bad_source_is_one_line(tmp_path):
    code, out, err = _cli(
        "surge-pricing",
        "--from",
        _z(START),
        "--to",
        _z(END),
        "--source",
        "hive",
        "--out",
        str(tmp_path / "x"),
    )
    assert (code, out) == (EXIT_BAD_INPUT, "")
    assert err.strip() == (
        "rtdi backfill: --source = 'hive': not a backfill source; allowed: kafka or archive"
    )


def test_the_deployment_is_the_kafka_backfills_but_for_its_name_and_identity(both):
    deployments = _by_name(both, FLINK)
    kafka = deployments["surge-pricing-backfill-kafka"]
    arch = deployments["surge-pricing-backfill-arch"]
    assert kafka["spec"]["flinkConfiguration"].keys() == arch["spec"]["flinkConfiguration"].keys()
    assert kafka["spec"]["job"] == arch["spec"]["job"]
    env = {e["name"] for e in arch["spec"]["podTemplate"]["spec"]["containers"][0]["env"]}
    # The regional cluster's password only: it reads no Kafka.
    assert not any("AGGREGATE" in n for n in env) and any("REGIONAL" in n for n in env)


def test_the_archive_backfill_only_reads_the_archive(both):
    """Its identity reads the archive and keeps its own state; the Kafka backfill has no access
    to the archive at all."""
    rw = S3_READ_WRITE
    arch = s3_rights(both, REGION, "flink-surge-pricing-backfill-arch")
    assert arch == {"flink-state": rw, "archive": {"s3:GetObject"}}
    assert s3_rights(both, REGION, "flink-surge-pricing-backfill-kafka") == {"flink-state": rw}
