"""The archive's tables as the query engine sees them (issue 13's contract with the archival job).

The archival Flink job writes every aggregate topic of a region as Parquet under the region's
`archive` bucket, ``<physical topic>/dt=YYYY-MM-DD/hr=HH/part-*.parquet``; the engine declares one
Hive table per physical topic over it. This module derives that list from the federation
registry, the same static registry the Flink layer resolves its topics from, so the archive and
its catalog can only name the same topics: those the region's aggregate cluster holds, which are
exactly those whose data class the region's jurisdiction may hold.

Until the archival job's own `archive_tables` (branch wt-archive) is merged, this is the one
implementation of the contract; the program then imports that one and this module goes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pulumi

from infra.topology.model import Topology


@dataclass(frozen=True)
class ArchiveTable:
    topic: str  # the physical aggregate topic, `<source region>.<topic>`
    table: str  # its Hive table name: the topic with `.` and `-` as `_`
    location: pulumi.Input[str]  # `<archive bucket URI>/<topic>`
    data_class: str


def table_name(topic: str) -> str:
    return re.sub(r"[.-]", "_", topic).lower()


def archive_tables(
    region_id: str, topology: Topology, registry: dict, root: pulumi.Input[str]
) -> list[ArchiveTable]:
    """Every physical topic of ``region_id``'s aggregate cluster, sorted, under ``root`` (the
    region's archive bucket URI, prefix included). ``topology`` names the region; a region the
    registry does not list for a topic (its data class may not live there) gets no table."""
    topology.region(region_id)  # a region of the topology, or StopIteration: a caller's bug
    out: list[ArchiveTable] = []
    for entry in registry["topics"].values():
        here = entry["regions"].get(region_id)
        if here is None:
            continue
        for topic in here["consume"]["topics"]:
            location = pulumi.Output.from_input(root).apply(_under(topic))
            out.append(ArchiveTable(topic, table_name(topic), location, entry["dataClass"]))
    return sorted(out, key=lambda t: t.topic)


def _under(topic: str) -> Callable[[str], str]:
    return lambda root: f"{root.rstrip('/')}/{topic}"
