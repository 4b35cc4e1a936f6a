"""Which consumer groups a DR drill moves: the active/passive ones (paper 6).

All-active consumers read the aggregate cluster of every region and never move. Active/passive
consumers (payments-like: one reader, strong consistency) run in the primary region only, so a
primary flip stops them in the old primary and resumes them in the new one at translated offsets.

Today the only active/passive consumers rtdi knows are the active-passive Flink jobs, each with
its group ``flink-<job>`` (``infra.components.flink.group_id``). The topology's own per-group mark
(issue 11, item 3) adds plain consumer groups here: this function is the one place that answers
"which groups", so the drill's steps, its preflight and the offset sync job agree.
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
    """The active/passive groups of a topology, by name: the active-passive Flink jobs' groups.

    ``topology`` and ``kafka`` are where the per-group mark will be read from (item 3); a group
    named both by a job and by a mark is the job's (its offsets come from the savepoint).
    """
    from infra.components.flink import group_id

    del topology, kafka  # read once the topology marks groups (issue 11, item 3)
    found: dict[str, ActivePassiveGroup] = {}
    for job in jobs:
        if job.mode == "active-passive":
            name = group_id(job)
            found[name] = ActivePassiveGroup(name, tuple(t.topic for t in job.sources), job.name)
    return [found[n] for n in sorted(found)]
