"""`rtdi backfill`: plan a region's stack with one more `rtdi:backfills` entry, offline.

A backfill is applied like everything else in rtdi, as stack config (`rtdi:backfills` in the
region's stack file): the program then declares, beside the job's own FlinkDeployment, a bounded
one (infra/components/flink/backfill.py). This planner runs that very program (`plan_stacks`)
with the entry added over the stack file (`Project.extra`, as `pulumi config set` would, without
editing it), writes the plan, and prints what the run reads and writes and the commands that
apply it. It also refuses what the program only warns about: a range Kafka no longer holds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic

from infra.components.flink.backfill import BackfillRun
from infra.plan import Project, StackPlan, plan_stacks, validate
from infra.topology.errors import ConfigError, Issue
from infra.topology.jobs import Job, backfill_name, check_backfills, job_regions, load_jobs
from infra.topology.model import Backfill, GlobalStack, RegionalBase, parse_time

FLINK_DEPLOYMENT = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
WHERE = "rtdi backfill"
# `check_backfills` names keys of the stack file; here the user typed command-line arguments.
_ARGS = {"job": "JOB", "from": "--from", "to": "--to", "id": "--id", "source": "--source"}
SOURCES = ("kafka", "archive")


@dataclass(frozen=True)
class Request:
    job: str
    start: str
    end: str
    region: str | None = None
    id: str | None = None
    # `kafka` or `archive`; left out: Kafka while it holds the range, else the archive.
    source: str | None = None


@dataclass
class BackfillPlan:
    stack: str
    job: Job
    backfill: Backfill
    index: int  # its place in the region's `rtdi:backfills`
    plan: StackPlan
    # The global stack's plan beside it: `rtdi check --plan` needs the topology it publishes.
    global_plan: StackPlan | None = None

    @property
    def name(self) -> str:
        return backfill_name(self.job.name, self.backfill.run_id)

    @property
    def principal(self) -> str:
        return BackfillRun(self.job, self.backfill).principal


def _bad(key: str, message: str, value: Any = None) -> ConfigError:
    return ConfigError(
        [Issue(WHERE, key, message, value) if value is not None else Issue(WHERE, key, message)]
    )


def plan_backfill(project: Project, req: Request, now: datetime | None = None) -> BackfillPlan:
    """Plan ``req``; ConfigError (one line per problem) for bad input, before anything runs."""
    now = now or datetime.now(UTC)
    entry: dict[str, Any] = {"job": req.job}
    for key, text in (("from", req.start), ("to", req.end)):
        try:
            entry[key] = _rfc3339(parse_time(text))
        except ValueError as exc:
            raise _bad(_ARGS[key], str(exc), text) from None
    if req.id is not None:
        entry["id"] = req.id
    if req.source is not None and req.source not in SOURCES:
        raise _bad(
            "--source", f"not a backfill source; allowed: {' or '.join(SOURCES)}", req.source
        )
    globals_ = [s for s in project.stack_names() if project.read(s).is_global]
    stacks = validate(project, globals_)
    published = [v.model for v in stacks.values() if isinstance(v.model, GlobalStack)]
    found = [(g, j) for g in published for j in load_jobs(g.topology, g.kafka) if j.name == req.job]
    if not found:
        names = sorted({j.name for g in published for j in load_jobs(g.topology, g.kafka)})
        raise _bad("JOB", f"no such Flink job; allowed: {', '.join(names) or 'none'}", req.job)
    topology_stack, job = found[0]
    regions = job_regions(job, topology_stack.topology)
    region = req.region or _default_region(project, job, topology_stack, regions)
    if region not in regions:
        raise _bad(
            "--region",
            f"{job.name} does not run there; allowed: a region of the job ({', '.join(regions)})",
            region,
        )
    if region not in stacks:
        stacks = validate(project, [region])
    model = stacks[region].model
    assert isinstance(model, RegionalBase)
    raw = stacks[region].config.values.get("rtdi:backfills")
    existing: list[Any] = json.loads(raw) if raw else []
    index = len(existing)
    try:
        backfill = Backfill.model_validate(entry)
    except pydantic.ValidationError as exc:  # the times parsed above: only the id is left
        raise _bad(
            "--id",
            "not a backfill id; allowed: 1 to 22 lower-case letters, digits and "
            "dashes, starting and ending with a letter or digit",
            req.id,
        ) from exc
    jobs = load_jobs(topology_stack.topology, topology_stack.kafka)

    def issues_of(source: str) -> list[Issue]:
        candidate = backfill.model_copy(update={"source": source})
        found = []
        for key, value, message in check_backfills(
            [*model.backfills, candidate],
            region,
            jobs,
            topology_stack.topology,
            topology_stack.kafka,
            now,
            retention=True,
        ):
            # Only what concerns the new entry: the stack's own entries are its file's business.
            prefix = f"rtdi:backfills[{index}]."
            if key.startswith(prefix):
                found.append(Issue(WHERE, _ARGS.get(key[len(prefix) :], key), message, value))
        return found

    # Unless told, Kafka while it holds the range, else the archive: both refusals when neither.
    source = req.source or "kafka"
    issues = issues_of(source)
    if req.source is None and issues and all(_past_kafka(i) for i in issues):
        source = "archive"
        archive_issues = issues_of(source)
        issues = [*issues, *archive_issues] if archive_issues else []
    if issues:
        raise ConfigError(issues)
    backfill = backfill.model_copy(update={"source": source})
    entry["source"] = source
    project.extra.setdefault(region, {})["rtdi:backfills"] = json.dumps([*existing, entry])
    global_name = stacks[region].global_stack
    assert global_name is not None
    plans = plan_stacks(project, [global_name, region])
    return BackfillPlan(region, job, backfill, index, plans[region], plans[global_name])


def _past_kafka(issue: Issue) -> bool:
    """A refusal only because Kafka no longer holds the range's start."""
    return issue.key == "--from" and "left in Kafka" in issue.message


def _default_region(
    project: Project, job: Job, topology_stack: GlobalStack, regions: list[str]
) -> str:
    """The primary region when the job runs there, else the first of the job's regions with a
    stack in this project: a backfill reads the aggregate, the same global view everywhere."""
    here = set(project.stack_names())
    order = sorted(regions, key=lambda r: r != topology_stack.topology.primary)
    for r in order:
        if r in here:
            return r
    raise _bad("--region", f"no stack of {job.name}'s regions here; allowed: {', '.join(regions)}")


def _rfc3339(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def config_lines(bp: BackfillPlan) -> list[str]:
    """The `pulumi config set` commands that add this backfill to the region's stack."""
    b = bp.backfill
    values = [("job", bp.job.name), ("from", _rfc3339(b.start)), ("to", _rfc3339(b.end))]
    values.append(("id", b.run_id))  # pinned: the default derives from `from`, and so must stay
    # Pinned too: chosen from the retention at planning time, which a later `up` must not redo.
    values.append(("source", b.source))
    return [
        f"pulumi config set --stack {bp.stack} --path 'rtdi:backfills[{bp.index}].{k}' {v}"
        for k, v in values
    ]


def summary(bp: BackfillPlan, out: Path) -> list[str]:
    """What the planned run reads, writes and how fast, read from the plan itself."""
    registry = bp.plan.outputs.get("kafkaFederation", {}).get("topics", {})
    region = bp.stack
    deployment = next(
        r for r in bp.plan.of_type(FLINK_DEPLOYMENT) if r.inputs["metadata"]["name"] == bp.name
    )
    spec = deployment.inputs["spec"]
    sql = next(
        r.inputs["data"]["job.sql"]
        for r in bp.plan.of_type(CONFIG_MAP)
        if r.inputs["metadata"]["name"] == f"{bp.name}-sql"
    )
    b = bp.backfill
    if b.source == "archive":
        sources = [
            f"{t.topic} -> {', '.join(_archive_paths(sql, t.table))} (archive, the range's "
            f"hour partitions)"
            for t in bp.job.sources
        ]
    else:
        sources = [
            f"{t.topic} -> {', '.join(registry[t.topic]['regions'][region]['consume']['topics'])}"
            f" (aggregate)"
            for t in bp.job.sources
        ]
    assert bp.job.backfill is not None
    produce = {
        name: entry["regions"][region]["produce"]["topic"]
        for name, entry in registry.items()
        if region in entry["regions"]
    }
    sinks = [
        f"{t.table} -> {produce[bp.job.backfill.sinks[t.table]]} (regional; the live job "
        f"writes {produce[t.topic]})"
        for t in bp.job.sinks
    ]
    rate = bp.job.backfill.max_bytes_per_second
    if b.source == "archive":
        throttle = (
            "none: no Kafka consumer, so no quota; the archive is read at the backfill's "
            "parallelism, and every window fires when the range is read (the files keep no order)"
        )
    elif "properties.fetch.max.bytes" in sql:
        throttle = (
            f"{rate} B/s per consumer NOT enforced as a quota here (the cluster has no quotas): "
            f"each fetch "
            f"is capped instead (fetch.max.bytes, max.partition.fetch.bytes)"
        )
    else:
        throttle = f"{rate} B/s per consumer, a Kafka consumer quota on principal {bp.principal}"
    return [
        f"backfill {bp.name}: job {bp.job.name} ({bp.job.mode}) in {region}, from {b.source}",
        f"  range: {_rfc3339(b.start)} to {_rfc3339(b.end)} (Kafka record timestamps, end "
        f"exclusive)",
        f"  sources: {'; '.join(sources)}",
        f"  sinks: {'; '.join(sinks)}",
        f"  parallelism: {spec['job']['parallelism']} (the live job: {bp.job.parallelism})",
        f"  throttle: {throttle}",
        f"  runtime: {spec['flinkConfiguration'].get('execution.runtime-mode')} with bounded "
        f"sources, state under {spec['flinkConfiguration']['execution.checkpointing.dir']}",
        f"  plan: {out}",
    ]


def _archive_paths(sql: str, table: str) -> list[str]:
    """The archive paths a backfill script reads for source ``table`` (archive_read.py)."""
    pattern = (
        rf"CREATE TABLE `archive_{table}_\w+` \([^;]*?\) PARTITIONED BY [^;]*?'path' = '([^']*)'"
    )
    return re.findall(pattern, sql)
