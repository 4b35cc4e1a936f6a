"""Data placement: the files a Flink job reads and writes stay in its region.

A job's records leave Kafka as files through Flink's FileSystem connector: the archive job writes
every aggregate topic as Parquet through FileSystem sink tables, and a backfill over the archive
reads FileSystem tables over the same paths. The files are the FileSystem tables (``connector``
``filesystem``) of the SQL script the job's runner reads (followed from ``--sql-file`` through the
JobManager's mounts to the ConfigMap, see `_flink`), each at its ``path`` option, the directory
Flink reads and writes whatever the program says about the job. Every table the script creates
counts, read or written: declaring one is naming a directory the job may open. ``CREATE
TEMPORARY VIEW`` statements (a backfill's views over the archive) open nothing of their own; the
tables they select from do. A table's path is the one Flink uses: its WITH options, those it
inherits through ``LIKE``, ``ALTER TABLE ... SET`` on top, and every
``/*+ OPTIONS('path' = ...) */`` hint on a reference to it (dynamic table options, on by
default, override a table's path for that query).

Which stores are the region's is decided as for the job's state (`_flink.outside_region`, shared
with `flink-state-in-region`): a bucket the stack declares located in its region, or, where the
stack declares no bucket of that kind (on-prem HDFS, a shared S3-compatible bucket), a path under
the stack's own object-store roots; another stack's bucket or root is another region's. The job's
region is its stack's.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.engine import Context
from policies.rules._flink import (
    DeploymentRule,
    name_of,
    outside_region,
    sql_script,
    store_of,
)
from policies.view import Resource, StackView


def is_filesystem(options: Mapping[str, str]) -> bool:
    """Options of Flink's FileSystem connector (factory identifier ``filesystem``)."""
    return options.get("connector", "").strip().lower() == "filesystem"


class FlinkFilesInRegion(DeploymentRule):
    id = "flink-files-in-region"
    category = "data placement"
    description = (
        "Every FlinkDeployment reads and writes files only in a store of its own region: the "
        "path option of every FileSystem table (connector filesystem) of the SQL script its "
        "runner reads (followed from --sql-file through its mounts to the ConfigMap; WITH, "
        "LIKE and ALTER TABLE options as Flink's catalog holds them, and every OPTIONS hint "
        "that sets a path) is an "
        "s3/s3a/s3p, gs or hdfs URI in a bucket its stack declares located in that region, or "
        "(on-prem HDFS, a shared S3-compatible bucket) under the stack's own object-store roots. "
        "Another scheme (file://, a path without a scheme), a table without a path and a job "
        "whose script cannot be read (a jar job, a missing ConfigMap) are violations."
    )
    why = (
        "The archive job writes every record of the region as Parquet, and a backfill over the "
        "archive reads them back: files written to, or read from, another region's bucket move "
        "those records across a jurisdiction as surely as mirroring would; a node-local path "
        "keeps them nowhere the region's retention and recovery reach."
    )
    severity = "critical"

    def deployment(self, ctx: Context, view: StackView, dep: Resource) -> None:
        name = name_of(dep)
        source = sql_script(view, dep)
        if source.script is None:
            ctx.report(
                dep,
                f"FlinkDeployment {name}: cannot tell which files it reads and writes: it "
                f"{source.problem}"
                if source.jar
                else f"FlinkDeployment {name}: cannot read its SQL script: {source.problem}",
            )
            return
        script = source.script
        places = [
            (f"FileSystem table {t.name}", t.options)
            for t in script.tables.values()
            if is_filesystem(t.options)
        ]
        for hint in script.hints:
            # A hint overrides the table's options for one query. One that sets a path opens
            # that path whatever the table is (only a file connector takes a path), even a table
            # of a catalog the script does not create.
            table = script.tables.get(hint.name)
            merged = {**(table.options if table else {}), **hint.options}
            changes = "path" in hint.options or (table is not None and "connector" in hint.options)
            if changes and (is_filesystem(merged) or "path" in hint.options):
                places.append((f"the OPTIONS hint on table {hint.name}", merged))
        region = view.region_id
        for what, options in places:
            path = options.get("path", "").strip()
            where = f"FlinkDeployment {name}: {what}"
            if not path:
                ctx.report(dep, f"{where} has no path (Flink requires one); set one in the region")
                continue
            why = outside_region(view, region, path)
            if why:
                ctx.report(
                    dep,
                    f"{where}: path {path!r} {why}; keep the job's files in its own region's "
                    f"archive store ({store_of(view, 'archive')})",
                )


RULE = FlinkFilesInRegion()
