"""Backfill (paper 7, Kappa+): the streaming job re-run over a bounded range of its sources.

A backfill is not a second program: `FlinkLayer` declares it through the very code that declares
the live job (`job_sql`, `table_ddl`, the deployment spec), and a `BackfillRun` only says what
differs, as overrides of the Kafka table options and of the deployment:

- sources start at the range's first instant and stop at its end (`scan.startup.mode` and
  `scan.bounded.mode` `timestamp`, on the Kafka record timestamps), so the job ends by itself;
- its own consumer group, so the live job's committed offsets are untouched;
- each sink table writes the separate topic of the job's `backfill.sinks`, with its own
  transactional-id prefix, so its transactions never fence the live job's;
- its own state directories (`<flink-state>/<job>/backfill-<id>/`), stateless upgrades (a
  changed backfill starts over from its range), and a bounded rate.

Runtime mode: STREAMING with bounded sources, not BATCH. The job runs with the semantics of the
live job (the same watermarks, so the same late events are dropped and each window holds what
the live job's held), its exactly-once sinks commit their transactions at checkpoints, and Flink
takes a final checkpoint when the bounded sources end (`checkpoints-after-tasks-finish`, on by
default), so every result is committed when the job finishes. BATCH would ignore watermarks and
so count late events the live job dropped: a different answer, not a re-run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.components.flink.archive import sink_path, table_name
from infra.components.flink.archive_read import ArchiveCopy, source_sql
from infra.targets.base import Bucket
from infra.topology.jobs import Job, backfill_name
from infra.topology.model import Backfill

# Kafka's consumer defaults (ConsumerConfig): the fallback throttle only ever lowers them.
FETCH_MAX_BYTES = 52_428_800
MAX_PARTITION_FETCH_BYTES = 1_048_576


@dataclass(frozen=True)
class BackfillRun:
    """One configured backfill of one job, as overrides of the live job's declaration."""

    job: Job
    backfill: Backfill
    # Whether the aggregate's engine enforces the run's consumer quota (`Engine.enforces_quotas`);
    # where it does not, `fallback_throttle` bounds the consumers instead.
    quota_enforced: bool = False

    @property
    def run_id(self) -> str:
        return self.backfill.run_id

    @property
    def name(self) -> str:
        return backfill_name(self.job.name, self.run_id)

    @property
    def source(self) -> str:
        """`kafka` (bounded Kafka sources) or `archive` (archive_read.py)."""
        return self.backfill.source

    @property
    def reads_kafka(self) -> bool:
        """Whether the run consumes Kafka at all: over the archive it needs no read grant,
        no group and no quota, only its sinks' writes."""
        return self.source == "kafka"

    def archive_sources(
        self, table: Any, topics: Sequence[str], bucket: Bucket, uri: str
    ) -> list[str]:
        """The statements that stand for source ``table`` over the archive: one FileSystem
        table per physical copy in ``topics``, at the path the archive job writes it, and the
        view named as the table (archive_read.py)."""
        copies = [
            ArchiveCopy(f"archive_{table.table}_{table_name(t)}", sink_path(bucket, uri, t))
            for t in topics
        ]
        return source_sql(table, copies, self.backfill.start, self.backfill.end)

    @property
    def group(self) -> str:
        return f"flink-{self.job.name}-backfill-{self.run_id}"

    @property
    def state_dir(self) -> str:
        """Under the job's own state directory: the live job's checkpoints stay its own."""
        return f"backfill-{self.run_id}"

    @property
    def parallelism(self) -> int:
        spec = self.job.backfill
        assert spec is not None  # check_backfills refused a job without one
        return spec.parallelism or self.job.parallelism

    @property
    def max_bytes_per_second(self) -> int:
        assert self.job.backfill is not None
        return self.job.backfill.max_bytes_per_second

    def sink_topic(self, table: str) -> str:
        assert self.job.backfill is not None
        return self.job.backfill.sinks[table]

    @property
    def principal(self) -> str:
        """Its own Kafka principal and service account: never the live job's, so its quota and
        rights are its own."""
        return f"flink-{self.name}"

    @property
    def transactional_prefix(self) -> str:
        """Dots end it, as the live job's (`rtdi.<job>.`), so neither prefix is the other's."""
        return f"rtdi.{self.name}."

    def transactional_id_prefix(self, table: str) -> str:
        return f"{self.transactional_prefix}{table}"

    def source_options(self) -> dict[str, str]:
        """What a source table of the backfill sets over the live job's options."""
        options = {
            "properties.group.id": self.group,
            "scan.startup.mode": "timestamp",
            "scan.startup.timestamp-millis": str(_millis(self.backfill.start)),
            "scan.bounded.mode": "timestamp",
            "scan.bounded.timestamp-millis": str(_millis(self.backfill.end)),
        }
        if not self.quota_enforced:
            options.update(
                {f"properties.{k}": v for k, v in fallback_throttle(self.max_bytes_per_second)}
            )
        return options

    def sink_options(self, table: str) -> dict[str, str]:
        return {"sink.transactional-id-prefix": self.transactional_id_prefix(table)}


def fallback_throttle(rate: int) -> list[tuple[str, str]]:
    """Where no quota is enforced: no consumer fetches more than ``rate`` bytes in one fetch.
    This bounds each request, not the bytes per second (Kafka clients have no rate setting);
    with the backfill's parallelism cap it bounds the load, but only a quota is a rate."""
    return [
        ("fetch.max.bytes", str(min(rate, FETCH_MAX_BYTES))),
        ("max.partition.fetch.bytes", str(min(rate, MAX_PARTITION_FETCH_BYTES))),
    ]


def _millis(instant: datetime) -> int:
    """Milliseconds since the epoch, exactly (a float timestamp may round the last one)."""
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
