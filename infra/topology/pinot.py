"""Pinot tables and schemas as code: one YAML spec per table under ``jobs/pinot/``, validated like
the topology and the Flink jobs.

A spec holds a table and its schema. Its kind is ``realtime`` (consumes a logical topic from the
region's aggregate cluster), ``upsert`` (a realtime table keeping the latest row per primary key,
paper 4.3.1) or ``offline`` (segments pushed by batch jobs). Topics are *logical* topics of
``rtdi:kafka``; each region resolves them through the federation registry, so a spec never names
a cluster and the same spec runs in every region.

Why refuse here what Pinot refuses: the controller checks a table only when the Job that applies
it runs, after `pulumi up` has declared everything, and its refusal then sits in a Job's log. The
model refuses the same configurations first, one line each naming the file, the key, the value
and what is allowed, before anything is declared. Each Pinot rule below cites the check of Pinot
1.5 it mirrors (``TableConfigUtils.validate`` and ``SchemaUtils.validate`` of pinot-segment-local,
which the controller runs on every table and schema it is given); the tests run that very
validator over everything the model renders, and over each refused case with the model bypassed,
so the model and Pinot cannot drift apart. A few rules are rtdi's own (a tier older than the
retention, tiers out of order, more replicas than zones): Pinot accepts those and then does
something other than the spec says; they say so in their message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BeforeValidator, Field

from infra.topology.errors import NO_VALUE, ConfigError, Issue, key_path
from infra.topology.model import Flag, Kafka, Strict, Topology, _whole, matching

# The project root's jobs/pinot, wherever the program runs from.
TABLES_DIR = Path(__file__).resolve().parents[2] / "jobs" / "pinot"

# Pinot's Kafka 4 client plugin (pinot-kafka-4.0): the aggregate clusters run Kafka 4.
KAFKA_CONSUMER_FACTORY = "org.apache.pinot.plugin.stream.kafka40.KafkaConsumerFactory"
JSON_DECODER = "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder"
# How a server fetches a segment from a peer replica when the deep store has none (or is down):
# the servers' admin API, inside the cluster's network (`peerSegmentDownloadScheme`: http/https).
PEER_DOWNLOAD_SCHEME = "http"
# The broker tenant every table is served by (the chart's brokers join DefaultTenant_BROKER).
BROKER_TENANT = "DefaultTenant"
# Pinot's "Murmur" partition function is Kafka's default partitioner (murmur2 of the key bytes,
# positive, modulo the partitions), so a topic keyed by a column is partitioned by that column.
PARTITION_FUNCTION = "Murmur"
# Server pools (P2's server StatefulSets) a table or tier may name; `hot` consumes.
POOLS = ("hot", "cold")

# ConfigMap keys ([-._a-zA-Z0-9], <= 253) and SQL identifiers without quotes; at most 63 so a
# table's name also fits a Kubernetes label value and a DNS label wherever it is used.
TABLE_NAME_PATTERN = r"[a-z][a-z0-9_]{0,62}\Z"
TableName = Annotated[
    str,
    matching(
        TABLE_NAME_PATTERN,
        "a Pinot table name; allowed: 1 to 63 lower-case letters, digits and '_', starting with "
        "a letter (a name SQL needs no quotes for, that fits a Kubernetes label)",
    ),
]
# Pinot refuses whitespace in a column name (SchemaUtils.validate: "should not contain blank
# space"); rtdi also keeps names SQL needs no quotes for.
ColumnName = Annotated[
    str,
    matching(
        r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z",
        "a column name; allowed: 1 to 128 letters, digits and '_', not starting with a digit",
    ),
]
TierName = Annotated[
    str,
    matching(
        r"[a-z][a-z0-9_]{0,31}\Z",
        "a tier name; allowed: 1 to 32 lower-case letters, digits and '_', starting with a letter",
    ),
]
# Pinot's period format (TimeUtils.PERIOD_FORMATTER: days, hours, minutes, seconds); rtdi keeps
# one unit, whole days or hours, which is what segment ages are measured in.
SegmentAge = Annotated[
    str,
    matching(
        r"[1-9][0-9]{0,4}[dh]\Z",
        "a segment age; allowed: a whole number of days or hours, e.g. 3d or 36h",
    ),
]

DataType = Literal[
    "INT",
    "LONG",
    "FLOAT",
    "DOUBLE",
    "BIG_DECIMAL",
    "BOOLEAN",
    "TIMESTAMP",
    "STRING",
    "JSON",
    "BYTES",
]
# Pinot's metric columns: numbers, or BYTES for serialized sketches (Schema.validate).
MetricType = Literal["INT", "LONG", "FLOAT", "DOUBLE", "BIG_DECIMAL", "BYTES"]
# Event time, in milliseconds: epoch millis in a LONG or a TIMESTAMP.
TimeType = Literal["LONG", "TIMESTAMP"]
TIME_FORMATS = {"LONG": "1:MILLISECONDS:EPOCH", "TIMESTAMP": "1:MILLISECONDS:TIMESTAMP"}
NUMERIC = {"INT", "LONG", "FLOAT", "DOUBLE", "BIG_DECIMAL"}
SINGLE = "allowed: a single-valued column"

RetentionDays = Annotated[
    int, BeforeValidator(_whole(1, 36_500, "days a segment is kept, at most a hundred years"))
]
Replication = Annotated[
    int, BeforeValidator(_whole(1, 16, "replicas of every segment, one per zone of the region"))
]
FlushHours = Annotated[
    int, BeforeValidator(_whole(1, 24, "hours a consuming segment stays open, at most a day"))
]
SegmentMib = Annotated[
    int, BeforeValidator(_whole(10, 2048, "MiB of a completed segment: 10 MiB to 2 GiB"))
]
LeafRecords = Annotated[
    int, BeforeValidator(_whole(1, 1_000_000, "records in a star-tree leaf, at most a million"))
]


class Dimension(Strict):
    name: ColumnName
    type: DataType
    multi_value: Flag = False


class Metric(Strict):
    name: ColumnName
    type: MetricType


class DateTime(Strict):
    """An event-time column in milliseconds (its Pinot format and granularity follow the type)."""

    name: ColumnName
    type: TimeType = "TIMESTAMP"


class PinotSchema(Strict):
    dimensions: list[Dimension] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list)
    date_times: list[DateTime] = Field(default_factory=list)
    primary_key: list[ColumnName] = Field(
        default_factory=list, description="Upsert and dedup tables: the columns of the key."
    )


class Tier(Strict):
    """Segments older than ``segment_age`` move to the servers of ``pool`` (Pinot's tierConfigs,
    a time segment selector)."""

    name: TierName
    segment_age: SegmentAge
    pool: str = "cold"
    storage: str = Field(
        default="pinot_server",
        description="Pinot 1.5 stores tiers on servers only "
        "(TierFactory.PINOT_SERVER_STORAGE_TYPE).",
    )


class Aggregation(Strict):
    function: Literal["COUNT", "SUM", "MIN", "MAX", "AVG"]
    column: str = "*"


class StarTree(Strict):
    dimensions: list[ColumnName] = Field(min_length=1)
    aggregations: list[Aggregation] = Field(min_length=1)
    max_leaf_records: LeafRecords = 10_000


class Upsert(Strict):
    """Full upsert: the latest row per primary key wins, by ``comparison_column`` (the time
    column when left out); ``delete_column`` true marks a key deleted."""

    mode: Literal["full"] = "full"
    comparison_column: ColumnName | None = None
    delete_column: ColumnName | None = None


Kind = Literal["realtime", "upsert", "offline"]
Routing = Literal["balanced", "replicaGroup", "strictReplicaGroup"]


class PinotTable(Strict):
    name: TableName
    kind: Kind
    topic: str | None = Field(
        default=None, description="Realtime and upsert tables: the logical topic consumed."
    )
    regions: list[str] | None = Field(
        default=None, description="Regions the table is declared in; all regions when left out."
    )
    copies: Literal["all", "local"] = Field(
        default="all",
        description="all: every source region's copy on the aggregate (the global view); "
        "local: the region's own copy only.",
    )
    table_schema: PinotSchema = Field(alias="schema")
    time_column: ColumnName | None = None
    retention_days: RetentionDays = 30
    replication: Replication | None = Field(
        default=None, description="Replicas per segment; one per zone of the region when left out."
    )
    peer_download: Flag = True
    tiers: list[Tier] = Field(default_factory=list)
    inverted_index: list[ColumnName] = Field(default_factory=list)
    sorted_column: ColumnName | None = None
    star_tree: list[StarTree] = Field(default_factory=list)
    upsert: Upsert | None = None
    dedup: Flag = False
    routing: Routing | None = Field(
        default=None,
        description="Pinot's instance selector; strictReplicaGroup for upsert and dedup tables, "
        "replicaGroup otherwise, when left out.",
    )
    partition_column: ColumnName | None = Field(
        default=None,
        description="The column the topic is keyed by (Kafka's default partitioner); upsert "
        "tables: a primary key column, the key's only column when left out.",
    )
    flush_hours: FlushHours = 6
    segment_size_mib: SegmentMib = 200
    # The topic's partitions, filled in by `load_tables` from rtdi:kafka; never written by a
    # person (a partitioned table states them, and they are the topic's, not the spec's).
    topic_partitions: int | None = None

    @property
    def realtime(self) -> bool:
        return self.kind != "offline"

    @property
    def upsert_config(self) -> Upsert | None:
        """The upsert an upsert table runs with (its section, or the defaults)."""
        if self.kind != "upsert":
            return None
        return self.upsert if self.upsert is not None else Upsert()

    @property
    def selector(self) -> str:
        if self.routing is not None:
            return self.routing
        return "strictReplicaGroup" if self.kind == "upsert" or self.dedup else "replicaGroup"

    @property
    def partitioned_by(self) -> str | None:
        if self.partition_column is not None:
            return self.partition_column
        key = self.table_schema.primary_key
        return key[0] if self.kind == "upsert" and len(key) == 1 else None


@dataclass(frozen=True)
class PinotStream:
    """What a region gives a table (built by the Pinot component, infra/components/pinot):

    - ``topics``: the physical topics on the region's aggregate the table consumes
      (`stream_topics`: the federation registry's copies);
    - ``consumer_properties``: the Kafka client properties of the table's identity on the
      aggregate, ``bootstrap.servers`` included (secrets as placeholders the servers fill in);
    - ``server_tags``: pool (``hot``, ``cold``) -> Pinot server tenant name; the table consumes
      on ``<hot>_REALTIME`` (``<hot>_OFFLINE`` for offline tables), a tier moves segments to
      ``<pool>_OFFLINE``;
    - ``replication``: the region's replica groups (one per zone, `region_replication`);
    - ``peer_download``: whether the region's servers upload segments themselves and serve
      them to peers.
    """

    topics: tuple[str, ...]
    consumer_properties: Mapping[str, str]
    server_tags: Mapping[str, str]
    replication: int
    peer_download: bool = True


def load_tables(topology: Topology, kafka: Kafka, root: Path | None = None) -> list[PinotTable]:
    """Every table spec of ``root`` (jobs/pinot), validated and checked against the topology;
    all issues of all files raised together."""
    directory = TABLES_DIR if root is None else root
    issues: list[Issue] = []
    tables: list[PinotTable] = []
    names: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        # As the project names it (jobs/pinot/<file>), wherever the project lies.
        shown = f"{path.parent.parent.name}/{path.parent.name}/{path.name}"
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            issues.append(Issue(shown, "", f"cannot read the table spec: {_first_line(exc)}"))
            continue
        if not isinstance(data, dict):
            issues.append(Issue(shown, "", "a table spec must be a mapping of keys to values"))
            continue
        if "topicPartitions" in data:
            issues.append(
                Issue(shown, "topicPartitions", "set by rtdi from the topic; allowed: no such key")
            )
            continue
        try:
            table = PinotTable.model_validate(data)
        except pydantic.ValidationError as exc:
            issues += [_issue(shown, err) for err in exc.errors()]
            continue
        if table.name in names:
            issues.append(
                Issue(
                    shown,
                    "name",
                    f"already the name of the table in {names[table.name]}; allowed: a new name",
                    table.name,
                )
            )
            continue
        names[table.name] = shown
        found = list(check_table(table, topology, kafka))
        issues += [Issue(shown, key, message, value) for key, value, message in found]
        if not found:
            topic = next((t for t in kafka.topics if t.name == table.topic), None)
            if topic is not None:
                table = table.model_copy(update={"topic_partitions": topic.partitions})
            tables.append(table)
    if issues:
        raise ConfigError(issues)
    return tables


def table_regions(table: PinotTable, topology: Topology) -> list[str]:
    return list(table.regions) if table.regions is not None else topology.region_ids


def region_replication(topology: Topology, region_id: str) -> int:
    """A region's replica groups: one per zone, so a zone lost leaves a replica of every
    segment in each other zone."""
    return len(topology.region(region_id).zones)


def stream_topics(
    table: PinotTable, registry: Mapping[str, Any], region_id: str
) -> tuple[str, ...]:
    """The physical topics ``table`` consumes in ``region_id``: from the federation registry,
    the aggregate's copy of every source region (``copies: all``) or of the region itself
    (``copies: local``). Empty for offline tables."""
    if table.topic is None:
        return ()
    names = registry["topics"][table.topic]["regions"][region_id]["consume"]["topics"]
    if table.copies == "local":
        names = [n for n in names if n == f"{region_id}.{table.topic}"]
    return tuple(names)


# --------------------------------------------------------------------------------- the checks


def check_table(
    table: PinotTable, topology: Topology, kafka: Kafka
) -> Iterator[tuple[str, Any, str]]:
    """(key, value, message) for every rule a valid table spec still breaks: Pinot 1.5's own
    rules (each cites its check), then rtdi's (against the topology and the topics)."""
    yield from _check_schema(table)
    yield from _check_kind(table)
    yield from _check_columns(table)
    yield from _check_upsert(table)
    yield from _check_tiers(table)
    yield from _check_regions(table, topology, kafka)


def _columns(table: PinotTable) -> dict[str, tuple[str, str, bool]]:
    """column -> (field type, data type, single-valued)."""
    s = table.table_schema
    out: dict[str, tuple[str, str, bool]] = {}
    for d in s.dimensions:
        out.setdefault(d.name, ("dimension", d.type, not d.multi_value))
    for m in s.metrics:
        out.setdefault(m.name, ("metric", m.type, True))
    for t in s.date_times:
        out.setdefault(t.name, ("dateTime", t.type, True))
    return out


def _check_schema(table: PinotTable) -> Iterator[tuple[str, Any, str]]:
    s = table.table_schema
    seen: set[str] = set()
    sides: list[tuple[str, list[str]]] = [
        ("dimensions", [d.name for d in s.dimensions]),
        ("metrics", [m.name for m in s.metrics]),
        ("dateTimes", [t.name for t in s.date_times]),
    ]
    for side, names in sides:
        for i, name in enumerate(names):
            # Schema.addField: a column is one field spec.
            if name in seen:
                yield (
                    key_path("schema", [side, i, "name"]),
                    name,
                    "a column named twice in the schema (Pinot); allowed: a new name",
                )
            seen.add(name)
    if not (s.dimensions or s.metrics or s.date_times):
        yield "schema", NO_VALUE, "the schema has no columns; allowed: at least one column"
    for i, d in enumerate(s.dimensions):
        # SchemaUtils.validateMultiValueCompatibility: JSON and BIG_DECIMAL are single-valued.
        if d.multi_value and d.type in ("JSON", "BIG_DECIMAL"):
            yield (
                key_path("schema", ["dimensions", i, "multiValue"]),
                True,
                f"{d.type} columns cannot be multi-valued (Pinot); allowed: false",
            )
    columns = _columns(table)
    for i, name in enumerate(s.primary_key):
        where = key_path("schema", ["primaryKey", i])
        # SchemaUtils.validate: "The primary key column must exist".
        if name not in columns:
            yield where, name, f"not a column of the schema (Pinot); allowed: {_names(columns)}"
        # TableConfigUtils.validateUpsertAndDedupConfig: "cannot be of multi-value type".
        elif not columns[name][2]:
            yield where, name, f"a multi-valued column cannot be in a primary key (Pinot); {SINGLE}"
    if len(set(s.primary_key)) != len(s.primary_key):
        yield "schema.primaryKey", s.primary_key, "a column listed twice; allowed: each once"


def _check_kind(table: PinotTable) -> Iterator[tuple[str, Any, str]]:
    if table.realtime and table.topic is None:
        yield "topic", NO_VALUE, f"a {table.kind} table consumes a topic; allowed: a logical topic"
    if not table.realtime:
        if table.topic is not None:
            yield (
                "topic",
                table.topic,
                "an offline table is loaded by batch jobs, it consumes no topic; allowed: "
                "kind: realtime, or no topic",
            )
        # TableConfigUtils.validateUpsertAndDedupConfig: "Dedup is not supported for OFFLINE
        # table"; rtdi's offline upsert is not offered (an upsert table is realtime).
        if table.dedup:
            yield "dedup", True, "dedup is for realtime tables only (Pinot); allowed: false"
    if table.upsert is not None and table.kind != "upsert":
        yield "upsert", NO_VALUE, "an upsert section needs kind: upsert; allowed: no upsert key"
    if table.copies == "local" and not table.realtime:
        yield "copies", table.copies, "an offline table consumes no copies; allowed: no copies key"
    # TableConfigUtils.validateValidationConfig: "'timeColumnName' cannot be null in REALTIME
    # table config".
    if table.realtime and table.time_column is None:
        yield (
            "timeColumn",
            NO_VALUE,
            f"a {table.kind} table needs its time column (Pinot); allowed: a dateTimes column",
        )


def _check_columns(table: PinotTable) -> Iterator[tuple[str, Any, str]]:
    columns = _columns(table)
    times = [t.name for t in table.table_schema.date_times]
    dims = [d.name for d in table.table_schema.dimensions]
    metrics = [m.name for m in table.table_schema.metrics]
    # TableConfigUtils.validateValidationConfig: "Cannot find valid fieldSpec for timeColumn".
    if table.time_column is not None and table.time_column not in times:
        allowed = ", ".join(times) or "none: add one under schema.dateTimes"
        yield (
            "timeColumn",
            table.time_column,
            f"not a dateTimes column of the schema (Pinot); allowed: {allowed}",
        )
    # TableConfigUtils.validateIndexingConfigAndFieldConfigList: "Failed to find column".
    for i, name in enumerate(table.inverted_index):
        if name not in columns:
            yield (
                key_path("invertedIndex", [i]),
                name,
                f"not a column (Pinot); allowed: {_names(columns)}",
            )
    if len(set(table.inverted_index)) != len(table.inverted_index):
        yield "invertedIndex", table.inverted_index, "a column listed twice; allowed: each once"
    # ... "Failed to find sorted column", "Cannot sort on multi-value column".
    if table.sorted_column is not None:
        found = columns.get(table.sorted_column)
        if found is None:
            yield (
                "sortedColumn",
                table.sorted_column,
                f"not a column (Pinot); allowed: {_names(columns)}",
            )
        elif not found[2]:
            yield (
                "sortedColumn",
                table.sorted_column,
                f"a multi-valued column cannot be sorted (Pinot); {SINGLE}",
            )
    # ... "Failed to find partition column", "Cannot partition on multi-value column".
    if table.partition_column is not None:
        found = columns.get(table.partition_column)
        if found is None:
            yield (
                "partitionColumn",
                table.partition_column,
                f"not a column (Pinot); allowed: {_names(columns)}",
            )
        elif not found[2]:
            yield (
                "partitionColumn",
                table.partition_column,
                f"a multi-valued column cannot key a topic (Pinot); {SINGLE}",
            )
        elif not table.realtime:
            yield (
                "partitionColumn",
                table.partition_column,
                "an offline table has no topic to be keyed by; allowed: no partitionColumn",
            )
    # TableConfigUtils.validateStarTreeIndexConfigs: dimensions are existing, dictionary-encoded
    # single-valued columns. rtdi: COUNT counts rows (*), and SUM, MIN, MAX and AVG need a
    # numeric metric; Pinot's validator accepts a SUM of text, which fails the segment build.
    for i, tree in enumerate(table.star_tree):
        for j, name in enumerate(tree.dimensions):
            where = key_path("starTree", [i, "dimensions", j])
            if name not in dims:
                yield (
                    where,
                    name,
                    f"not a dimension column (Pinot); allowed: {', '.join(dims) or 'none'}",
                )
            elif not columns[name][2]:
                yield where, name, f"a star-tree dimension must be single-valued (Pinot); {SINGLE}"
        for j, agg in enumerate(tree.aggregations):
            where = key_path("starTree", [i, "aggregations", j, "column"])
            if agg.function == "COUNT":
                if agg.column != "*":
                    yield where, agg.column, "COUNT counts rows; allowed: * (or no column)"
            elif agg.column not in metrics or columns[agg.column][1] not in NUMERIC:
                numeric = [m for m in metrics if columns[m][1] in NUMERIC]
                yield (
                    where,
                    agg.column,
                    f"{agg.function} needs a numeric metric column; allowed: "
                    f"{', '.join(numeric) or 'none'}",
                )


def _check_upsert(table: PinotTable) -> Iterator[tuple[str, Any, str]]:
    upsert = table.upsert_config
    columns = _columns(table)
    key = table.table_schema.primary_key
    keyed = upsert is not None or table.dedup
    what = "an upsert" if upsert is not None else "a dedup"
    # TableConfigUtils.validateUpsertAndDedupConfig: "A table can have either Upsert or Dedup
    # enabled, but not both".
    if upsert is not None and table.dedup:
        yield "dedup", True, "a table upserts or dedups, never both (Pinot); allowed: false"
    # ...: "Upsert/Dedup table must have primary key columns in the schema".
    if keyed and not key:
        yield (
            "schema.primaryKey",
            NO_VALUE,
            f"{what} table needs a primary key (Pinot); allowed: a list of its columns",
        )
    # ...: "Upsert/Dedup table must use strict replica-group (i.e. strictReplicaGroup) based
    # routing": every segment of a partition is on the same servers, so a query sees one
    # version of a key.
    if keyed and table.selector != "strictReplicaGroup":
        yield (
            "routing",
            table.routing,
            f"{what} table must route by strict replica groups (Pinot); allowed: "
            f"strictReplicaGroup (or no routing key)",
        )
    if upsert is None:
        return
    # ...: "The upsert table cannot have multi-tiers": its segments stay where the keys'
    # metadata is.
    if table.tiers:
        yield (
            "tiers",
            NO_VALUE,
            "an upsert table cannot move segments to tiers (Pinot); allowed: no tiers",
        )
    # ...: "The upsert table cannot have star-tree index".
    if table.star_tree:
        yield (
            "starTree",
            NO_VALUE,
            "an upsert table cannot have a star-tree index (Pinot); allowed: no starTree",
        )
    # ...: "The comparison column does not exist on schema".
    if upsert.comparison_column is not None and upsert.comparison_column not in columns:
        yield (
            "upsert.comparisonColumn",
            upsert.comparison_column,
            f"not a column (Pinot); allowed: {_names(columns)}",
        )
    # ...: deleteRecordColumn exists, single-valued, BOOLEAN, STRING or numeric.
    if upsert.delete_column is not None:
        found = columns.get(upsert.delete_column)
        if found is None or not found[2] or found[1] not in {"BOOLEAN", "STRING", *NUMERIC}:
            fit = [c for c, (_, t, sv) in columns.items() if sv and t in {"BOOLEAN", "STRING"}]
            yield (
                "upsert.deleteColumn",
                upsert.delete_column,
                f"not a single-valued BOOLEAN, STRING or numeric column (Pinot); allowed: "
                f"{', '.join(fit) or 'none'}",
            )
    # rtdi: the rows of a key must all be in one partition, which Pinot assumes and cannot
    # check; a topic keyed by a primary key column gives that.
    partition = table.partitioned_by
    if not key:
        return  # the missing key is the problem
    if partition is None:
        yield (
            "partitionColumn",
            NO_VALUE,
            "an upsert table needs the column its topic is keyed by, and its key has several "
            f"columns; allowed: one of {', '.join(key)}",
        )
    elif partition not in key:
        yield (
            "partitionColumn",
            partition,
            "rows of one key must be in one partition, so the topic is keyed by a primary key "
            f"column; allowed: one of {', '.join(key)}",
        )


def _age_hours(age: str) -> int:
    return int(age[:-1]) * (24 if age.endswith("d") else 1)


def _check_tiers(table: PinotTable) -> Iterator[tuple[str, Any, str]]:
    names: set[str] = set()
    previous = 0
    for i, tier in enumerate(table.tiers):
        # TableConfigUtils.validateTierConfigList: "Tier name: %s already exists".
        if tier.name in names:
            yield (
                key_path("tiers", [i, "name"]),
                tier.name,
                "a tier named twice (Pinot); allowed: a new name",
            )
        names.add(tier.name)
        # ...: "Unsupported storageType" (TierFactory: pinot_server only).
        if tier.storage != "pinot_server":
            yield (
                key_path("tiers", [i, "storage"]),
                tier.storage,
                "tiers are stored on servers only (Pinot); allowed: pinot_server",
            )
        if tier.pool not in POOLS or tier.pool == "hot":
            yield (
                key_path("tiers", [i, "pool"]),
                tier.pool,
                "not a server pool a tier moves to; allowed: cold (hot consumes)",
            )
        hours = _age_hours(tier.segment_age)
        # rtdi: Pinot sorts tiers by age, so a list out of order means something else than it
        # reads; two tiers of one age would race for the same segments.
        if hours <= previous:
            yield (
                key_path("tiers", [i, "segmentAge"]),
                tier.segment_age,
                "not older than the tier before it; allowed: tiers in increasing segment age",
            )
        previous = max(previous, hours)
        # rtdi: retention deletes a segment before it would move.
        if hours >= table.retention_days * 24:
            yield (
                key_path("tiers", [i, "segmentAge"]),
                tier.segment_age,
                f"segments are deleted after retentionDays ({table.retention_days}) and never "
                f"reach this tier; allowed: an age under {table.retention_days}d",
            )


def _check_regions(
    table: PinotTable, topology: Topology, kafka: Kafka
) -> Iterator[tuple[str, Any, str]]:
    from infra.components.kafka.flows import federation_registry

    known = topology.region_ids
    for i, region_id in enumerate(table.regions or []):
        if region_id not in known:
            yield (
                key_path("regions", [i]),
                region_id,
                f"no such region; allowed: {', '.join(known)}",
            )
    regions = [r for r in table_regions(table, topology) if r in known]
    zones = {r: region_replication(topology, r) for r in regions}
    # rtdi: one replica group per zone; more replicas than zones puts two in one zone.
    crowded = [r for r in regions if table.replication is not None and table.replication > zones[r]]
    if crowded:
        yield (
            "replication",
            table.replication,
            f"more replicas than zones in {', '.join(f'{r} ({zones[r]})' for r in crowded)}, "
            f"a replica group per zone; allowed: 1 to {min(zones[r] for r in crowded)}",
        )
    # TableConfigUtils.validateValidationConfig: "peerSegmentDownloadScheme can't be used
    # when replication is < 2": with one replica there is no peer to download from.
    alone = [r for r in regions if (table.replication or zones[r]) < 2]
    if table.peer_download and alone:
        yield (
            "replication",
            table.replication if table.replication is not None else NO_VALUE,
            f"peer segment download needs a peer, and a segment has one replica in "
            f"{', '.join(alone)} (Pinot); allowed: replication 2 or more, or peerDownload: false",
        )
    if table.topic is None:
        return
    topic = next((t for t in kafka.topics if t.name == table.topic), None)
    if topic is None:
        yield "topic", table.topic, "not a logical topic; allowed: a name in rtdi:kafka topics"
        return
    registry = federation_registry(topology, kafka)["topics"][topic.name]["regions"]
    refused = [r for r in regions if r not in registry]
    if refused:
        ids = ", ".join(refused)
        jurisdictions = sorted({topology.region(r).jurisdiction for r in refused})
        yield (
            "topic",
            table.topic,
            f"data class {topic.data_class} may not be held in {ids} (jurisdictions "
            f"{', '.join(jurisdictions)}), so no copy is consumable there; allowed: a topic "
            f"whose data class every region of the table may hold, or `regions` without {ids}",
        )
    for region_id in regions:
        if region_id not in registry:
            continue
        copies = registry[region_id]["consume"]["topics"]
        if table.copies == "local":
            copies = [c for c in copies if c == f"{region_id}.{table.topic}"]
        if not copies:
            yield (
                "copies",
                table.copies,
                f"no copy of {table.topic} reaches the aggregate of {region_id}; allowed: all",
            )
        # TableConfigUtils.validateStreamConfigMaps: "Multiple stream configs are not
        # supported for upsert table": an upsert table reads one topic.
        elif table.kind == "upsert" and len(copies) > 1:
            yield (
                "copies",
                table.copies,
                f"an upsert table reads one topic (Pinot), and {region_id}'s aggregate holds "
                f"{len(copies)} copies of {table.topic}; allowed: local (the region's own copy)",
            )
            break


def _names(columns: Mapping[str, Any]) -> str:
    return ", ".join(columns) or "none"


# ------------------------------------------------------------------------------- the rendering


def render_schema(table: PinotTable) -> dict:
    """The table's Pinot Schema JSON (what ``POST /schemas`` takes)."""
    s = table.table_schema
    out: dict[str, Any] = {"schemaName": table.name}
    if s.dimensions:
        out["dimensionFieldSpecs"] = [
            {
                "name": d.name,
                "dataType": d.type,
                **({"singleValueField": False} if d.multi_value else {}),
            }
            for d in s.dimensions
        ]
    if s.metrics:
        out["metricFieldSpecs"] = [{"name": m.name, "dataType": m.type} for m in s.metrics]
    if s.date_times:
        out["dateTimeFieldSpecs"] = [
            {
                "name": t.name,
                "dataType": t.type,
                "format": TIME_FORMATS[t.type],
                "granularity": "1:MILLISECONDS",
            }
            for t in s.date_times
        ]
    if s.primary_key:
        out["primaryKeyColumns"] = list(s.primary_key)
    return out


def render_table(table: PinotTable, stream: PinotStream) -> list[dict]:
    """The table's TableConfig JSON for one region (what ``POST /tables`` takes): one REALTIME
    config for realtime and upsert tables, one OFFLINE config for offline tables.

    ``stream`` is what the region gives (see PinotStream). ValueError when it contradicts what
    `load_tables` checked (a caller's mistake, never a spec's)."""
    replication = table.replication if table.replication is not None else stream.replication
    peer = table.peer_download and stream.peer_download
    if peer and replication < 2:
        raise ValueError(f"{table.name}: peer download with replication {replication}")
    if table.realtime and not stream.topics:
        raise ValueError(f"{table.name}: a {table.kind} table without topics")
    if table.kind == "upsert" and len(stream.topics) != 1:
        raise ValueError(f"{table.name}: an upsert table reads one topic, not {stream.topics}")
    hot = stream.server_tags["hot"]
    table_type = "REALTIME" if table.realtime else "OFFLINE"
    segments: dict[str, Any] = {
        "schemaName": table.name,
        "replication": str(replication),
        "retentionTimeUnit": "DAYS",
        "retentionTimeValue": str(table.retention_days),
    }
    if table.time_column is not None:
        segments["timeColumnName"] = table.time_column
    if peer:
        segments["peerSegmentDownloadScheme"] = PEER_DOWNLOAD_SCHEME
    indexing: dict[str, Any] = {"loadMode": "MMAP"}
    if table.inverted_index:
        indexing["invertedIndexColumns"] = list(table.inverted_index)
    if table.sorted_column is not None:
        indexing["sortedColumn"] = [table.sorted_column]
    if table.star_tree:
        indexing["starTreeIndexConfigs"] = [
            {
                "dimensionsSplitOrder": list(tree.dimensions),
                "functionColumnPairs": [f"{a.function}__{a.column}" for a in tree.aggregations],
                "maxLeafRecords": tree.max_leaf_records,
            }
            for tree in table.star_tree
        ]
    routing: dict[str, Any] = {"instanceSelectorType": table.selector}
    partition = table.partitioned_by
    if partition is not None and table.topic_partitions is not None:
        indexing["segmentPartitionConfig"] = {
            "columnPartitionMap": {
                partition: {
                    "functionName": PARTITION_FUNCTION,
                    "numPartitions": table.topic_partitions,
                }
            }
        }
        routing["segmentPrunerTypes"] = ["partition"]
    config: dict[str, Any] = {
        "tableName": table.name,
        "tableType": table_type,
        "segmentsConfig": segments,
        "tenants": {"broker": BROKER_TENANT, "server": hot},
        "tableIndexConfig": indexing,
        "routing": routing,
        "metadata": {"customConfigs": {"rtdi.kind": table.kind}},
    }
    # One replica group per zone: the servers of a zone form a pool, and each replica group
    # takes its servers from one pool, so every segment has a replica in `replication` zones.
    assignment = {
        ("CONSUMING" if table.realtime else "OFFLINE"): _replica_groups(
            f"{hot}_{table_type}", replication
        )
    }
    if table.realtime:
        config["ingestionConfig"] = {
            "streamIngestionConfig": {
                "streamConfigMaps": [
                    _stream_config(table, topic, stream, peer) for topic in stream.topics
                ]
            }
        }
    else:
        config["ingestionConfig"] = {
            "batchIngestionConfig": {
                "segmentIngestionType": "APPEND",
                "segmentIngestionFrequency": "DAILY",
            }
        }
    if table.tiers:
        config["tierConfigs"] = []
        for tier in table.tiers:
            tag = f"{stream.server_tags[tier.pool]}_OFFLINE"
            config["tierConfigs"].append(
                {
                    "name": tier.name,
                    "segmentSelectorType": "time",
                    "segmentAge": tier.segment_age,
                    "storageType": tier.storage,
                    "serverTag": tag,
                }
            )
            assignment[tier.name] = _replica_groups(tag, replication)
    config["instanceAssignmentConfigMap"] = assignment
    upsert = table.upsert_config
    if upsert is not None:
        up: dict[str, Any] = {
            "mode": upsert.mode.upper(),
            "comparisonColumns": [upsert.comparison_column or table.time_column],
        }
        if upsert.delete_column is not None:
            up["deleteRecordColumn"] = upsert.delete_column
        config["upsertConfig"] = up
    if table.dedup:
        config["dedupConfig"] = {"dedupEnabled": True, "hashFunction": "NONE"}
    return [config]


def _replica_groups(tag: str, replication: int) -> dict[str, Any]:
    return {
        "tagPoolConfig": {"tag": tag, "poolBased": True, "numPools": replication},
        "replicaGroupPartitionConfig": {
            "replicaGroupBased": True,
            "numReplicaGroups": replication,
        },
    }


def _stream_config(
    table: PinotTable, topic: str, stream: PinotStream, peer: bool
) -> dict[str, str]:
    """One Kafka stream of the table: Pinot's own keys, then the identity's client properties
    (Pinot hands the whole map to the Kafka consumer)."""
    props = dict(stream.consumer_properties)
    bootstrap = props.pop("bootstrap.servers")
    out = {
        "streamType": "kafka",
        "stream.kafka.topic.name": topic,
        "stream.kafka.broker.list": bootstrap,
        "stream.kafka.consumer.factory.class.name": KAFKA_CONSUMER_FACTORY,
        "stream.kafka.decoder.class.name": JSON_DECODER,
        "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
        # Read only what the producers committed (exactly-once Flink sinks write in
        # transactions).
        "stream.kafka.isolation.level": "read_committed",
        "realtime.segment.flush.threshold.rows": "0",
        "realtime.segment.flush.threshold.time": f"{table.flush_hours}h",
        "realtime.segment.flush.threshold.segment.size": f"{table.segment_size_mib}M",
    }
    if peer:
        # The committing server uploads the segment to the deep store itself; when the deep
        # store is down the segment stays downloadable from the replicas (peer download).
        out["realtime.segment.serverUploadToDeepStore"] = "true"
    clash = sorted(set(props) & set(out))
    if clash:
        raise ValueError(f"{table.name}: consumer properties override Pinot's keys {clash}")
    out.update(props)
    return out


# ------------------------------------------------------------------------------------- errors


def _issue(file: str, err: Any) -> Issue:
    loc = [p for p in err["loc"] if p != "[key]"]
    if not loc:
        return Issue(file, "", err["msg"].removeprefix("Value error, "))
    key = key_path(str(loc[0]), loc[1:])
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = [
            f.alias or n for n, f in PinotTable.model_fields.items() if n != "topic_partitions"
        ]
        hint = "" if len(loc) > 1 else f"; allowed here: {', '.join(allowed)}"
        return Issue(file, key, f"unknown key{hint}")
    if kind == "missing":
        return Issue(file, key, "required key is missing")
    message = err["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "allowed:")
    return Issue(file, key, message, err.get("input"))


def _first_line(exc: Exception) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()[:160]
