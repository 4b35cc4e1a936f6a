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
import yaml
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from infra.topology.errors import NO_VALUE, ConfigError, Issue, key_path
from infra.topology.model import Flag, Kafka, Strict, Topology, _whole, matching

# The project root's jobs/flink, wherever the program runs from.
JOBS_DIR = Path(__file__).resolve().parents[2] / "jobs" / "flink"

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


# The longest Kafka transaction a broker grants by default (transaction.max.timeout.ms, the same
# on Strimzi, MSK and Google's Kafka): what rtdi's exactly-once sinks ask for.
TRANSACTION_SECONDS = 15 * 60


def _cpu(value: Any) -> float:
    allowed = "allowed: a number of CPUs from 0.1 to 64"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"not a number; {allowed}")
    if not 0.1 <= value <= 64:
        raise ValueError(f"out of range; {allowed}")
    return float(value)


Cpu = Annotated[float, BeforeValidator(_cpu)]
MemoryMib = Annotated[int, AfterValidator(_whole(512, 262_144, "MiB of a Flink process"))]
Parallelism = Annotated[int, AfterValidator(_whole(1, 32_768, "Flink's maximum parallelism"))]
Slots = Annotated[int, AfterValidator(_whole(1, 64, "task slots per TaskManager"))]
IntervalSeconds = Annotated[
    int, AfterValidator(_whole(1, 86_400, "seconds between checkpoints, at most a day"))
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
    int, AfterValidator(_whole(0, 86_400, "seconds events may arrive late, at most a day"))
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


class Job(Strict):
    name: JobName
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
    # The SQL text, filled in by `load_jobs` from ``sql``; published, never written by a person.
    sql_text: str | None = None

    @model_validator(mode="after")
    def _one_program(self) -> Job:
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
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        # As the project names it (jobs/flink/<file>), wherever the project lies.
        shown = f"{path.parent.parent.name}/{path.parent.name}/{path.name}"
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            issues.append(Issue(shown, "", f"cannot read the job spec: {_first_line(exc)}"))
            continue
        if not isinstance(data, dict):
            issues.append(Issue(shown, "", "a job spec must be a mapping of keys to values"))
            continue
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
    """(key, value, message) for every rule a valid job spec still breaks against the topology."""
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
    if job.exactly_once and job.sinks and job.checkpoint_interval_seconds >= TRANSACTION_SECONDS:
        yield (
            "checkpointIntervalSeconds",
            job.checkpoint_interval_seconds,
            f"an exactly-once job commits its Kafka transactions at each checkpoint, and brokers "
            f"abort them after {TRANSACTION_SECONDS // 60} minutes (transaction.max.timeout.ms); "
            f"allowed: at most {TRANSACTION_SECONDS - 1}, or exactlyOnce: false",
        )
    if job.sql is not None and not job.sinks and "INSERT" not in (job.sql_text or "").upper():
        yield "sql", job.sql, "the SQL has no INSERT INTO; allowed: one or more INSERT statements"


def _issue(file: str, err: Any) -> Issue:
    loc = [p for p in err["loc"] if p != "[key]"]
    if not loc:  # the one whole-spec rule: which program the job runs
        return Issue(file, "sql", err["msg"].removeprefix("Value error, "))
    key = key_path(str(loc[0]), loc[1:])
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = [f.alias or n for n, f in Job.model_fields.items() if n != "sql_text"]
        hint = "" if len(loc) > 1 else f"; allowed here: {', '.join(allowed)}"
        return Issue(file, key, f"unknown key{hint}")
    if kind == "missing":
        return Issue(file, key, "required key is missing")
    message = err["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "allowed:")
    return Issue(file, key, message, err.get("input"))


def _first_line(exc: Exception) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()[:160]
