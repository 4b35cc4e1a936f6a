"""Data placement: the files a Flink job reads and writes stay in its region.

A job's records leave Kafka as files through Flink's FileSystem connector: the archive job writes
every aggregate topic as Parquet through FileSystem sink tables, and a backfill over the archive
reads FileSystem tables over the same paths. The files are the FileSystem tables (``connector``
``filesystem``) of the SQL script the job's runner reads (followed from ``--sql-file`` through the
JobManager's mounts to the ConfigMap, see `_flink`), each at its ``path`` option, the directory
Flink reads and writes whatever the program says about the job. Every table the script creates
counts, read or written: declaring one is naming a directory the job may open. ``CREATE
TEMPORARY VIEW`` statements (a backfill's views over the archive) open nothing of their own; the
tables they select from do.

Which stores are the region's is decided as for the job's state (`_flink.outside_region`, shared
with `flink-state-in-region`): a bucket the stack declares located in its region, or, where the
stack declares no bucket of that kind (on-prem HDFS, a shared S3-compatible bucket), a path under
the stack's own object-store roots; another stack's bucket or root is another region's. The job's
region is its stack's.
"""

from __future__ import annotations

from policies.engine import Context
from policies.rules._flink import (
    DeploymentRule,
    Table,
    name_of,
    outside_region,
    sql_script,
    store_of,
)
from policies.view import Resource, StackView


def is_filesystem(table: Table) -> bool:
    """A table of Flink's FileSystem connector (factory identifier ``filesystem``)."""
    return table.options.get("connector", "").strip().lower() == "filesystem"


class FlinkFilesInRegion(DeploymentRule):
    id = "flink-files-in-region"
    category = "data placement"
    description = (
        "Every FlinkDeployment reads and writes files only in a store of its own region: the "
        "path option of every FileSystem table (connector filesystem) of the SQL script its "
        "runner reads (followed from --sql-file through its mounts to the ConfigMap) is an "
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
        region = view.region_id
        for table in source.script.tables.values():
            if not is_filesystem(table):
                continue
            path = table.options.get("path", "").strip()
            where = f"FlinkDeployment {name}: FileSystem table {table.name}"
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
