"""Flink jobs as code: one YAML spec per job under ``jobs/flink/``, validated like the topology.

Why the global stack reads them: a job runs in several regions (all-active) or moves between them
(active-passive), so every regional stack must build the same applied set. The global stack reads
and validates ``jobs/flink/*.yaml`` (SQL files inlined), checks each against the topics and data
classes it already holds, and publishes the result in its `rtdi` output beside the topology;
regional stacks never read the files themselves, so a region cannot run a job version the others
do not know. Bad input is one line per problem naming the file, the key, the value and what is
allowed, before anything is declared.

Sources and sinks name *logical* topics (`rtdi:kafka` topics); each region resolves them through
the federation registry: a source reads the region's aggregate cluster (every source region's
copy), a sink writes the region's regional cluster.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BeforeValidator, Field, model_validator

from infra.topology.errors import NO_VALUE, ConfigError, Issue, key_path
from infra.topology.model import Backfill, Flag, Kafka, Strict, Topology, _whole, matching
from infra.topology.specs import field_issue, read_specs

# The project root's jobs/flink, wherever the program runs from.
JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs" / "flink"

# An exactly-once sink's Kafka transaction timeout: Kafka's default transaction.max.timeout.ms
# (MSK's too), the most a broker accepts unless reconfigured. A transaction stays open from one
# checkpoint to the next, so a longer checkpoint interval makes every transaction time out.
TRANSACTION_TIMEOUT_MS = 900_000

# The Flink operator's own rule for a FlinkDeployment's name (its validator, 1.15).
JOB_NAME_PATTERN = r"[a-z]([-a-z\d]{0,43}[a-z\d])?\Z"
JobName = Annotated[
    str,
    matching(
        JOB_NAME_PATTERN,
        "a Flink job name; allowed: 1 to 45 lower-case letters, digits and dashes, starting "
        "with a letter and not ending with a dash (the Flink operator's rule)",
    ),
]
TableName = Annotated[
    str,
    matching(
        r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z",
        "a SQL table name; allowed: letters, digits and '_', not starting with a digit",
    ),
]
SqlFile = Annotated[
    str,
    matching(
        r"[A-Za-z0-9_.-]+\.sql\Z",
        "a SQL file; allowed: a file name ending in .sql, beside the spec in jobs/flink/",
    ),
]
JarUri = Annotated[
    str,
    matching(
        r"(local|https?|s3|s3p|gs|hdfs)://\S+\.jar\Z",
        "a job jar; allowed: local:///path/in/image.jar or an http(s), s3, gs or hdfs URI of "
        "a .jar",
    ),
]


def _cpu(value: Any) -> float:
    allowed = "allowed: a number of CPUs from 0.1 to 64"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a number; {allowed}")
    if not 0.1 <= value <= 64:
        raise ValueError(f"out of range; {allowed}")
    return float(value)


Cpu = Annotated[float, BeforeValidator(_cpu)]
MemoryMib = Annotated[int, BeforeValidator(_whole(512, 262_144, "MiB of a Flink process"))]
Parallelism = Annotated[int, BeforeValidator(_whole(1, 32_768, "Flink's maximum parallelism"))]
Slots = Annotated[int, BeforeValidator(_whole(1, 64, "task slots per TaskManager"))]
# The longest checkpoint interval of an exactly-once job with Kafka sinks: its transactions must
# commit within the sink's 15-minute transaction timeout, with room for the checkpoint itself.
EXACTLY_ONCE_MAX_INTERVAL_SECONDS = 600
IntervalSeconds = Annotated[
    int, BeforeValidator(_whole(1, 86_400, "seconds between checkpoints, at most a day"))
]
Column = Annotated[
    str,
    matching(
        r"[A-Za-z_][A-Za-z0-9_]*\Z",
        "a column name; allowed: letters, digits and '_', not starting with a digit",
    ),
]

SqlType = Annotated[
    str,
    matching(
        r"[A-Za-z][A-Za-z0-9_ (),<>]*\Z",
        "a Flink SQL type; allowed: a type such as STRING, BIGINT, DECIMAL(10, 2) or TIMESTAMP(3)",
    ),
]

DelaySeconds = Annotated[
    int, BeforeValidator(_whole(0, 86_400, "seconds events may arrive late, at most a day"))
]


class Resources(Strict):
    cpu: Cpu = 1.0
    memory_mib: MemoryMib = 2048


class TaskManager(Resources):
    slots: Slots = 1


class TableColumn(Strict):
    name: Column
    type: SqlType


class Watermark(Strict):
    """Event time: a TIMESTAMP column, and how late its events may arrive."""

    column: Column
    delay_seconds: DelaySeconds = 0


class Table(Strict):
    """A SQL table over a logical topic; rtdi writes its CREATE TABLE with the region's
    cluster, physical topics and security, so the SQL never names a cluster."""

    table: TableName
    topic: str
    # A list, not a mapping: column order is the table's, and mappings lose it on the way
    # through the engine's outputs.
    columns: list[TableColumn] = Field(min_length=1)
    watermark: Watermark | None = Field(default=None, description="Event time, sources only.")
    format: Literal["json", "avro", "raw", "csv"] = "json"


# Strimzi's KafkaUser `quotas.consumerByteRate` is a 32-bit integer; below 1 KiB/s a consumer
# cannot fetch one ordinary batch per second.
ByteRate = Annotated[
    int, BeforeValidator(_whole(1024, 2**31 - 1, "bytes per second per consumer, a Kafka quota"))
]


class BackfillSpec(Strict):
    """How the job re-runs over a bounded range (`rtdi backfill`, paper 7 Kappa+): the same SQL
    and tables, but each sink table written to a separate logical topic, at a bounded rate."""

    sinks: dict[TableName, str] = Field(
        min_length=1, description="Per sink table of the job: the logical topic a backfill writes."
    )
    parallelism: Parallelism | None = Field(
        default=None,
        description="The backfill's parallelism, at most the job's; the job's when left out.",
    )
    max_bytes_per_second: ByteRate = Field(
        description="What each backfill consumer may fetch per second (a Kafka consumer quota)."
    )


class Job(Strict):
    name: JobName
    # `stream`: the job's own SQL or jar over the tables it lists. `archive` (paper 4.4): rtdi
    # writes the SQL itself, one Kafka source per physical aggregate topic the region holds
    # (from the federation registry) into Parquet under the region's `archive` bucket
    # (infra/components/flink/archive.py); the spec lists no tables and no program.
    kind: Literal["stream", "archive"] = "stream"
    mode: Literal["all-active", "active-passive"]
    sql: SqlFile | None = None
    jar: JarUri | None = None
    entry_class: str | None = None
    regions: list[str] | None = Field(
        default=None, description="Regions the job is declared in; all regions when left out."
    )
    sources: list[Table] = Field(default_factory=list)
    sinks: list[Table] = Field(default_factory=list)
    parallelism: Parallelism = 1
    job_manager: Resources = Resources()
    task_manager: TaskManager = TaskManager()
    upgrade_mode: Literal["stateless", "savepoint", "last-state"] = "last-state"
    checkpoint_interval_seconds: IntervalSeconds = 60
    exactly_once: Flag = True
    backfill: BackfillSpec | None = None
    # The SQL text, filled in by `load_jobs` from ``sql``; published, never written by a person.
    sql_text: str | None = None

    @model_validator(mode="after")
    def _one_program(self) -> Job:
        if self.kind == "archive":
            given = [
                k
                for k, v in (
                    ("sql", self.sql),
                    ("jar", self.jar),
                    ("entryClass", self.entry_class),
                    ("sources", self.sources),
                    ("sinks", self.sinks),
                    ("backfill", self.backfill),
                )
                if v
            ]
            if given:
                raise ValueError(
                    f"an archive job's program and tables are rtdi's (every aggregate topic of "
                    f"the region, into its archive bucket); allowed: leave out {', '.join(given)}"
                )
            return self
        if (self.sql is None) == (self.jar is None):
            raise ValueError("a job needs exactly one of `sql` (a file) or `jar`")
        return self

    @property
    def stateful(self) -> bool:
        return self.upgrade_mode != "stateless"


def load_jobs(topology: Topology, kafka: Kafka, directory: Path | None = None) -> list[Job]:
    """Every job spec of ``directory`` (jobs/flink), validated and checked against the topology;
    all issues of all files raised together."""
    directory = JOBS_DIR if directory is None else directory
    issues: list[Issue] = []
    jobs: list[Job] = []
    names: dict[str, str] = {}
    for path, shown, data in read_specs(directory, "job spec", issues):
        if "sqlText" in data:
            issues.append(Issue(shown, "sqlText", "set by rtdi from `sql`; allowed: `sql: FILE`"))
            continue
        try:
            job = Job.model_validate(data)
        except pydantic.ValidationError as exc:
            issues += [_issue(shown, err) for err in exc.errors()]
            continue
        if job.sql is not None:
            sql_path = path.parent / job.sql
            try:
                job = job.model_copy(update={"sql_text": sql_path.read_text()})
            except OSError as exc:
                issues.append(
                    Issue(shown, "sql", f"cannot read {sql_path}: {exc.strerror}", job.sql)
                )
                continue
        if job.name in names:
            issues.append(
                Issue(shown, "name", f"already the name of the job in {names[job.name]}", job.name)
            )
            continue
        names[job.name] = shown
        found = list(check_job(job, topology, kafka))
        issues += [Issue(shown, key, message, value) for key, value, message in found]
        if not found:
            jobs.append(job)
    if issues:
        raise ConfigError(issues)
    return jobs


def job_regions(job: Job, topology: Topology) -> list[str]:
    return list(job.regions) if job.regions is not None else topology.region_ids


def check_job(job: Job, topology: Topology, kafka: Kafka) -> Iterator[tuple[str, Any, str]]:
    """(key, value, message) for every rule a valid job spec still breaks against the topology.
    The backfill section is checked once the rest holds: it names the job's sink tables."""
    found = list(_check_live(job, topology, kafka))
    yield from found
    if not found:
        topics = {t.name: t for t in kafka.topics}
        regions = [topology.region(r) for r in job_regions(job, topology)]
        yield from _check_backfill_spec(job, topics, kafka, regions)


def _check_live(job: Job, topology: Topology, kafka: Kafka) -> Iterator[tuple[str, Any, str]]:
    from infra.components.kafka.flows import topic_allowed

    known = topology.region_ids
    for i, region_id in enumerate(job.regions or []):
        if region_id not in known:
            yield (
                key_path("regions", [i]),
                region_id,
                f"no such region; allowed: {', '.join(known)}",
            )
    regions = [topology.region(r) for r in job_regions(job, topology) if r in known]
    if job.mode == "active-passive" and topology.primary not in [r.id for r in regions]:
        yield (
            "regions",
            job.regions,
            f"an active-passive job runs in the primary region; allowed: a list with "
            f"{topology.primary}",
        )
    topics = {t.name: t for t in kafka.topics}
    tables: set[str] = set()
    for side in ("sources", "sinks"):
        for i, table in enumerate(getattr(job, side)):
            if table.table in tables:
                yield key_path(side, [i, "table"]), table.table, "table name used twice in the job"
            tables.add(table.table)
            if side == "sinks" and table.watermark is not None:
                yield key_path(side, [i, "watermark"]), NO_VALUE, "sinks have no watermark"
            names = [c.name for c in table.columns]
            if table.watermark is not None and table.watermark.column not in names:
                yield (
                    key_path(side, [i, "watermark", "column"]),
                    table.watermark.column,
                    f"not a column of the table; allowed: {', '.join(names)}",
                )
            topic = topics.get(table.topic)
            where = key_path(side, [i, "topic"])
            if topic is None:
                yield (
                    where,
                    table.topic,
                    "not a logical topic; allowed: a name in rtdi:kafka topics",
                )
                continue
            refused = [r for r in regions if not topic_allowed(kafka, topic, r)]
            if refused:
                ids = ", ".join(r.id for r in refused)
                yield (
                    where,
                    table.topic,
                    f"data class {topic.data_class} may not be held in {ids} (jurisdictions "
                    f"{', '.join(sorted({r.jurisdiction for r in refused}))}); allowed: a topic "
                    f"whose data class every region of the job may hold, or `regions` without "
                    f"{ids}",
                )
    # An exactly-once sink holds a Kafka transaction open from one checkpoint to the next; the
    # brokers abort one older than the sink's transaction timeout (the brokers' 15-minute
    # `transaction.max.timeout.ms`), so a longer interval loses committed-looking output.
    if (
        job.exactly_once
        and job.sinks
        and job.checkpoint_interval_seconds > EXACTLY_ONCE_MAX_INTERVAL_SECONDS
    ):
        yield (
            "checkpointIntervalSeconds",
            job.checkpoint_interval_seconds,
            "an exactly-once job commits its Kafka transactions at each checkpoint, and brokers "
            "abort a transaction after 15 minutes; allowed: at most "
            f"{EXACTLY_ONCE_MAX_INTERVAL_SECONDS} seconds, or exactlyOnce: false",
        )
    if job.sql is not None and not job.sinks and "INSERT" not in (job.sql_text or "").upper():
        yield "sql", job.sql, "the SQL has no INSERT INTO; allowed: one or more INSERT statements"


def _check_backfill_spec(
    job: Job, topics: dict[str, Any], kafka: Kafka, regions: list[Any]
) -> Iterator[tuple[str, Any, str]]:
    """A backfill must never write where the live job writes (paper 7: its own output), so
    every sink table maps to a separate topic the job's regions may hold."""
    from infra.components.kafka.flows import topic_allowed

    spec = job.backfill
    if spec is None:
        return
    sink_tables = [t.table for t in job.sinks]
    live = {t.topic for t in (*job.sources, *job.sinks)}
    for table in sink_tables:
        if table not in spec.sinks:
            yield (
                "backfill.sinks",
                NO_VALUE,
                f"sink table {table} has no backfill topic, so a backfill would write the live "
                f"topic; allowed: a mapping of every sink table ({', '.join(sink_tables)}) to a "
                f"separate logical topic",
            )
    for table, name in spec.sinks.items():
        where = key_path("backfill", ["sinks", table])
        if table not in sink_tables:
            yield (
                where,
                name,
                f"{table} is not a sink table of the job; allowed: {', '.join(sink_tables)}",
            )
            continue
        topic = topics.get(name)
        if topic is None:
            yield where, name, "not a logical topic; allowed: a name in rtdi:kafka topics"
        elif name in live:
            yield (
                where,
                name,
                "a topic the live job reads or writes; allowed: a separate logical topic, so "
                "the backfill's output never mixes with the live output",
            )
        else:
            refused = [r.id for r in regions if not topic_allowed(kafka, topic, r)]
            if refused:
                yield (
                    where,
                    name,
                    f"data class {topic.data_class} may not be held in {', '.join(refused)}; "
                    f"allowed: a topic whose data class every region of the job may hold",
                )
    if spec.parallelism is not None and spec.parallelism > job.parallelism:
        yield (
            "backfill.parallelism",
            spec.parallelism,
            f"more than the job's parallelism; allowed: 1 to {job.parallelism} (a backfill is "
            f"throttled, never wider than the live job)",
        )


def backfill_name(job: str, run_id: str) -> str:
    """The backfill's FlinkDeployment name: beside the job's own, never the same."""
    return f"{job}-backfill-{run_id}"


def check_backfills(
    backfills: list[Backfill],
    region_id: str,
    jobs: list[Job],
    topology: Topology,
    kafka: Kafka,
    now: Any,
    retention: bool = False,
) -> Iterator[tuple[str, Any, str]]:
    """(key, value, message) for every rule the backfills of region ``region_id`` break against
    the published jobs: the job exists, runs here and says how to backfill; the range is past
    and ordered; the name fits the Flink operator; no two share an id. With ``retention`` also
    that the range is still in Kafka (`rtdi backfill`; a stack keeps a finished backfill's entry
    after its range has expired, so the program only warns about that)."""
    by_name = {j.name: j for j in jobs}
    seen: dict[tuple[str, str], int] = {}
    for i, b in enumerate(backfills):
        job = by_name.get(b.job)
        if job is None:
            yield (
                key_path("rtdi:backfills", [i, "job"]),
                b.job,
                f"no such Flink job; allowed: {', '.join(sorted(by_name)) or 'none (jobs/flink)'}",
            )
            continue
        regions = job_regions(job, topology)
        if region_id not in regions:
            yield (
                key_path("rtdi:backfills", [i, "job"]),
                b.job,
                f"the job does not run in {region_id}; allowed: a backfill in a region of the "
                f"job ({', '.join(regions)})",
            )
        if job.backfill is None:
            yield (
                key_path("rtdi:backfills", [i, "job"]),
                b.job,
                "the job spec has no `backfill:` section; allowed: add one to its "
                "jobs/flink spec (backfill.sinks: a separate topic per sink table, "
                "backfill.maxBytesPerSecond)",
            )
        if b.start >= b.end:
            yield (
                key_path("rtdi:backfills", [i, "to"]),
                b.end.isoformat(),
                f"not after `from` ({b.start.isoformat()}); allowed: a later time",
            )
        if b.end > now:
            yield (
                key_path("rtdi:backfills", [i, "to"]),
                b.end.isoformat(),
                f"in the future (now {now.isoformat(timespec='seconds')}); allowed: a time "
                f"already past, so the run is bounded by data Kafka holds",
            )
        name = backfill_name(job.name, b.run_id)
        if not re.match(JOB_NAME_PATTERN, name):
            yield (
                key_path("rtdi:backfills", [i, "id" if b.id else "job"]),
                b.run_id,
                f"the backfill's FlinkDeployment name {name} does not fit the Flink operator's "
                f"45 characters; allowed: a shorter id",
            )
        if b.source == "archive":
            yield from _archive_source_issues(i, job, region_id, jobs, topology)
        first = seen.setdefault((job.name, b.run_id), i)
        if first != i:
            yield (
                key_path("rtdi:backfills", [i, "id"]),
                b.run_id,
                f"already the id of backfill [{first}] of {job.name}; allowed: a new id",
            )
    if retention:
        yield from retention_issues(backfills, region_id, jobs, topology, kafka, now)


def archive_job(region_id: str, jobs: list[Job], topology: Topology) -> Job | None:
    """The job that archives region ``region_id``'s aggregate (``kind: archive``), if any."""
    found = [j for j in jobs if j.kind == "archive" and region_id in job_regions(j, topology)]
    return found[0] if found else None


def _archive_source_issues(
    i: int, job: Job, region_id: str, jobs: list[Job], topology: Topology
) -> Iterator[tuple[str, Any, str]]:
    """A backfill over the archive needs an archive in its region and source tables the
    archive can give back (infra/components/flink/archive_read.py decodes them)."""
    from infra.components.flink.archive_read import decode_issues

    where = key_path("rtdi:backfills", [i, "source"])
    if archive_job(region_id, jobs, topology) is None:
        yield (
            where,
            "archive",
            f"no archive job runs in {region_id}, so it has no archive to read; allowed: kafka, "
            f"or a job of `kind: archive` in jobs/flink that runs there",
        )
    for key, value, message in decode_issues(job.sources):
        yield where, "archive", f"{job.name}'s {key} is {value}: {message}"


def retention_issues(
    backfills: list[Backfill],
    region_id: str,
    jobs: list[Job],
    topology: Topology,
    kafka: Kafka,
    now: Any,
) -> Iterator[tuple[str, Any, str]]:
    """Backfills whose range their source no longer (or not yet) holds. Kafka: the range starts
    before a source topic's retention (the run would silently start at the oldest record left).
    The archive: the range starts before a source's data class's `archiveRetentionDays`, or ends
    within two of the archive job's checkpoint intervals (its files are published at
    checkpoints, so the range's last records may not be there yet)."""
    from datetime import timedelta

    by_name = {j.name: j for j in jobs}
    topics = {t.name: t for t in kafka.topics}
    archiver = archive_job(region_id, jobs, topology)
    for i, b in enumerate(backfills):
        job = by_name.get(b.job)
        if job is None:
            continue
        if b.source == "archive" and archiver is not None:
            settle = timedelta(seconds=2 * archiver.checkpoint_interval_seconds)
            if b.end > now - settle:
                yield (
                    key_path("rtdi:backfills", [i, "to"]),
                    b.end.isoformat(),
                    f"too recent for the archive, which publishes its files at each checkpoint "
                    f"(every {archiver.checkpoint_interval_seconds} s); allowed: a time at least "
                    f"{int(settle.total_seconds())} s past, or the Kafka source",
                )
        for t in job.sources:
            topic = topics.get(t.topic)
            if topic is None:
                continue
            if b.source == "archive":
                days = kafka.data_classes[topic.data_class].archive_retention_days
                oldest = None if days is None else now - timedelta(days=days)
                if oldest is not None and b.start < oldest:
                    yield (
                        key_path("rtdi:backfills", [i, "from"]),
                        b.start.isoformat(),
                        f"older than the archive keeps source topic {topic.name} (data class "
                        f"{topic.data_class}: {days} days, nothing before "
                        f"{oldest.isoformat(timespec='seconds')}); allowed: a later time",
                    )
                continue
            oldest = now - timedelta(hours=topic.retention_hours)
            if b.start < oldest:
                yield (
                    key_path("rtdi:backfills", [i, "from"]),
                    b.start.isoformat(),
                    f"older than source topic {topic.name}'s retention ({topic.retention_hours} "
                    f"h: nothing before {oldest.isoformat(timespec='seconds')} is left in "
                    f"Kafka); allowed: a later time, or the region's Parquet archive as the "
                    f"source (`source: archive`)",
                )


def _issue(file: str, err: Any) -> Issue:
    loc = [p for p in err["loc"] if p != "[key]"]
    if not loc:  # the one whole-spec rule: which program the job runs
        message = err["msg"].removeprefix("Value error, ")
        if message.startswith("an archive job"):
            return Issue(file, "kind", message, "archive")
        return Issue(file, "sql", message)
    keys = [f.alias or n for n, f in Job.model_fields.items() if n != "sql_text"]
    return field_issue(file, loc, err, keys)
