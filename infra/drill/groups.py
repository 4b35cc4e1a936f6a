"""Which consumer groups a DR drill moves: the active/passive ones (paper 6).

All-active consumers read the aggregate cluster of every region and never move. Active/passive
consumers (payments-like: one reader, strong consistency) run in the primary region only, so a
primary flip stops them in the old primary and resumes them in the new one at translated offsets.

They are the consumer groups the topology marks ``mode: active-passive`` and the active-passive
Flink jobs' groups ``flink-<job>`` (``infra.components.flink.group_id``): the offset sync job's
answer (``infra.components.kafka.offset_sync.active_passive_groups``), so the drill's steps, its
preflight and the offset sync job agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.topology.jobs import Job
from infra.topology.model import Kafka, Topology


@dataclass(frozen=True)
class ActivePassiveGroup:
    """A consumer group that runs in the primary region only.

    ``topics``: the logical topics it reads (on the aggregate cluster, every region's copy).
    ``job``: the Flink job that owns it, whose offsets at the flip are in its savepoint (not in
    the group, see infra/components/flink/handover.py); None for a plain consumer group, whose
    committed offsets are where it stopped.
    """

    name: str
    topics: tuple[str, ...]
    job: str | None = None

    @property
    def owner(self) -> str:
        return f"Flink job {self.job}" if self.job else "consumer group"


def active_passive_groups(
    topology: Topology, kafka: Kafka, jobs: Sequence[Job]
) -> list[ActivePassiveGroup]:
    """The active/passive groups of a topology, by name: the groups the topology marks
    `mode: active-passive` and the active-passive Flink jobs' groups, exactly those the offset
    sync job keeps translated (`offset_sync.active_passive_groups`, the one answer to "which
    groups"); a group named both by a job and by a mark is the job's (its offsets come from the
    savepoint).
    """
    from infra.components.flink import group_id
    from infra.components.kafka.offset_sync import active_passive_groups as synced

    del topology  # the marks and the jobs say it all; kept for the drill's callers
    owners = {group_id(j): j.name for j in jobs if j.mode == "active-passive"}
    return [ActivePassiveGroup(g.name, g.topics, owners.get(g.name)) for g in synced(kafka, jobs)]
