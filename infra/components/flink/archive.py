"""The region's Parquet archive (paper 4.4): what the `archive` kind of Flink job writes, and where.

Why a job spec and not a mechanism of its own: the archive is an ordinary Flink job of the layer
(jobs/flink/archive.yaml, ``kind: archive``), with its own service account, workload identity,
Kafka principal, checkpoints and upgrade mode like any other. Only its tables are rtdi's: one
Kafka source per *physical* topic of the region's aggregate cluster (every source region's copy
the federation registry lists for the region, so a topic whose data class the region may not
hold is never archived there), and one FileSystem sink per topic into the region's `archive`
bucket, in the layout the query layer reads (issue 13's contract):

    <archive bucket URI>/<physical topic>/dt=YYYY-MM-DD/hr=HH/part-<uuid>-<subtask>-<n>

Columns are schema-agnostic, the record as Kafka holds it: ``key`` and ``value`` (bytes),
``headers`` (map of string to bytes), ``kafka_partition``, ``kafka_offset`` and
``kafka_timestamp`` (UTC); ``dt`` and ``hr`` come from the record's Kafka timestamp in UTC.

Exactly-once: Parquet is a bulk format, so the sink rolls its part files on every checkpoint and
publishes them (an atomic rename of the in-progress file) only when the checkpoint completes; the
Kafka offsets are in the same checkpoint. A restart resumes from the last checkpoint, drops what
was in progress and writes it again. S3 goes through the hadoop S3 plugin (``s3a://``), the one
with the recoverable writer the sink needs (the presto plugin only checkpoints); GCS and HDFS
through their own file systems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.components.kafka.flows import topics_pattern
from infra.targets.base import Bucket
from infra.topology.model import Kafka, Topology

# The archive's columns (name, Flink SQL type) in the order they are written; the Hive table of
# the query layer declares the same names (key/value varbinary, headers map(varchar,
# varbinary), kafka_partition integer, kafka_offset bigint, kafka_timestamp timestamp(3)).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "BYTES"),
    ("value", "BYTES"),
    ("headers", "MAP<STRING, BYTES>"),
    ("kafka_partition", "INT"),
    ("kafka_offset", "BIGINT"),
    ("kafka_timestamp", "TIMESTAMP(3)"),
)
# Hive-style partition columns, from the record's Kafka timestamp in UTC.
PARTITION_COLUMNS = ("dt", "hr")
DT_FORMAT, HR_FORMAT = "yyyy-MM-dd", "HH"
# Parquet's own options for the sink. Timestamps are INT96 (what Hive, Trino and Presto all read)
# holding UTC: the job's session time zone is UTC, and the writer converts nothing.
PARQUET_OPTIONS = {
    "parquet.utc-timezone": "true",
    "parquet.compression": "SNAPPY",
}
SESSION = {"table.local-time-zone": "UTC"}


@dataclass(frozen=True)
class ArchiveTable:
    """One physical aggregate topic as the archive holds it; what the query layer declares."""

    topic: str  # the physical topic on the region's aggregate cluster (`<source>.<logical>`)
    logical: str  # the logical topic (rtdi:kafka topics)
    source_region: str  # the region whose regional cluster the copy comes from
    table: str  # the Hive/Flink table name: the physical topic with `.` and `-` as `_`
    data_class: str
    # `<archive bucket URI>/<topic>` (an Output while the bucket's name is unknown), or the path
    # below the bucket's URI (`<topic>`) when no bucket was given.
    location: pulumi.Input[str]
    prefix: str  # the object key prefix inside the bucket: bucket prefix + `<topic>/`


def table_name(topic: str) -> str:
    """The table of a physical topic: `aws-us-east-1.trips` -> `aws_us_east_1_trips`."""
    return re.sub(r"[.-]", "_", topic)


def archived_topics(region_id: str, registry: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(logical topic, physical topic, source region) of every copy the region's aggregate holds,
    as the federation registry resolved them (it lists only topics the region may hold)."""
    found = []
    for logical, entry in sorted(registry["topics"].items()):
        here = entry["regions"].get(region_id)
        if here is None:
            continue
        for physical in here["consume"]["topics"]:
            source = physical[: -len(logical) - 1]
            found.append((logical, physical, source))
    return found


def archive_tables(
    region_id: str,
    topology: Topology,
    registry: Mapping[str, Any],
    bucket: Bucket | str | None = None,
) -> list[ArchiveTable]:
    """The region's archive tables, one per physical aggregate topic. ``bucket`` (the region's
    `archive` bucket, or its URI) gives each table's location; ``registry`` may be the static
    federation registry (`federation_registry`): topic names never wait on a peer."""
    topology.region(region_id)  # an unknown region fails here, not as an empty archive
    classes = {name: entry["dataClass"] for name, entry in registry["topics"].items()}
    tables = []
    for logical, physical, source in archived_topics(region_id, registry):
        prefix = f"{bucket.prefix if isinstance(bucket, Bucket) else ''}{physical}/"
        tables.append(
            ArchiveTable(
                topic=physical,
                logical=logical,
                source_region=source,
                table=table_name(physical),
                data_class=classes[logical],
                location=table_location(bucket, physical),
                prefix=prefix,
            )
        )
    return tables


def table_location(bucket: Bucket | str | None, topic: str) -> pulumi.Input[str]:
    if bucket is None:
        return topic
    if isinstance(bucket, str):
        return f"{bucket.rstrip('/')}/{topic}"
    return bucket.uri.apply(lambda uri: f"{uri.rstrip('/')}/{topic}")


def sink_scheme(bucket: Bucket) -> str:
    """The URI scheme the FileSystem sink writes ``bucket`` with: on S3 the hadoop plugin's
    `s3a://` (the sink needs a recoverable writer, which the presto plugin lacks)."""
    return "s3a" if bucket.scheme == "s3" else bucket.scheme


def sink_path(bucket: Bucket, uri: str, topic: str) -> str:
    return f"{sink_scheme(bucket)}://{uri.split('://', 1)[1].rstrip('/')}/{topic}"


def expirations(
    region_id: str, topology: Topology, kafka: Kafka, registry: Mapping[str, Any]
) -> dict[str, int]:
    """Key prefix below the archive bucket's own -> days the archive keeps it: each physical
    topic's directory for as long as its data class says (`archiveRetentionDays`); a class
    without one keeps its data. The target turns them into the bucket's lifecycle rules."""
    days = {}
    for t in archive_tables(region_id, topology, registry):
        keep = kafka.data_classes[t.data_class].archive_retention_days
        if keep is not None:
            days[t.prefix] = keep
    return days


def _quote(value: str) -> str:
    return value.replace("'", "''")


def source_ddl(table: ArchiveTable, props: Mapping[str, str], group: str) -> str:
    """The Kafka table of one physical topic: the record as is (raw key and value) and its
    metadata. It subscribes by pattern, so a copy MirrorMaker 2 has not created yet is joined
    when it appears instead of failing the job."""
    options = {
        "connector": "kafka",
        "topic-pattern": topics_pattern((table.topic,)),
        "key.format": "raw",
        "key.fields": "key",
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        **{f"properties.{k}": _quote(v) for k, v in sorted(props.items())},
        "properties.group.id": group,
        "scan.startup.mode": "group-offsets",
        "properties.auto.offset.reset": "earliest",
        "scan.topic-partition-discovery.interval": "60 s",
        "properties.isolation.level": "read_committed",
    }
    columns = [
        "  `key` BYTES",
        "  `value` BYTES",
        "  `headers` MAP<STRING, BYTES> METADATA FROM 'headers' VIRTUAL",
        "  `kafka_partition` INT METADATA FROM 'partition' VIRTUAL",
        "  `kafka_offset` BIGINT METADATA FROM 'offset' VIRTUAL",
        "  `kafka_timestamp` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL",
    ]
    return _create(f"kafka_{table.table}", columns, options)


def sink_ddl(table: ArchiveTable, path: str) -> str:
    """The FileSystem table of one physical topic: Parquet, partitioned by hour."""
    columns = [f"  `{n}` {t}" for n, t in COLUMNS]
    columns += [f"  `{p}` STRING" for p in PARTITION_COLUMNS]
    options = {"connector": "filesystem", "path": path, "format": "parquet", **PARQUET_OPTIONS}
    parts = ", ".join(f"`{p}`" for p in PARTITION_COLUMNS)
    return _create(f"archive_{table.table}", columns, options, f"PARTITIONED BY ({parts}) ")


def insert(table: ArchiveTable) -> str:
    # The session time zone is UTC: the cast and the formats read the timestamp's UTC fields.
    return (
        f"INSERT INTO `archive_{table.table}`\n"
        f"SELECT `key`, `value`, `headers`, `kafka_partition`, `kafka_offset`,\n"
        f"  CAST(`kafka_timestamp` AS TIMESTAMP(3)),\n"
        f"  DATE_FORMAT(CAST(`kafka_timestamp` AS TIMESTAMP(3)), '{DT_FORMAT}'),\n"
        f"  DATE_FORMAT(CAST(`kafka_timestamp` AS TIMESTAMP(3)), '{HR_FORMAT}')\n"
        f"FROM `kafka_{table.table}`;\n"
    )


def archive_sql(
    job_name: str,
    region_id: str,
    tables: Sequence[ArchiveTable],
    props: Mapping[str, str],
    group: str,
    bucket: Bucket,
    uri: str,
) -> str:
    """The runner's script for the region's archive job: UTC session, then per physical topic
    its Kafka table, its Parquet table and the INSERT between them (one statement set)."""
    parts = [f"-- {job_name} in {region_id}: every aggregate topic into the archive bucket"]
    parts += [f"SET '{k}' = '{v}';" for k, v in SESSION.items()]
    for t in tables:
        parts.append(source_ddl(t, props, group))
        parts.append(sink_ddl(t, sink_path(bucket, uri, t.topic)))
    parts += [insert(t) for t in tables]
    return "\n".join(parts)


def _create(name: str, columns: list[str], options: Mapping[str, str], extra: str = "") -> str:
    body = ",\n".join(columns)
    opts = ",\n".join(f"  '{k}' = '{v}'" for k, v in options.items())
    return f"CREATE TABLE `{name}` (\n{body}\n) {extra}WITH (\n{opts}\n);\n"
