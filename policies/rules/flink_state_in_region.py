"""Data placement: a Flink job's checkpoints, savepoints and HA metadata stay in its region.

Which stores are the region's is decided by `_flink.outside_region` (shared with
`flink-files-in-region`, `pinot-deep-store-in-region` and `query-catalogs-resident`): a bucket the
stack declares located in its region, or, where the stack declares no bucket of that kind
(on-prem HDFS, a site's shared S3-compatible bucket), a path under the stack's own object-store
roots; another stack's bucket or root is another region's.

The job's region is its stack's (a Kubernetes object runs where its stack's cluster is).
"""

from __future__ import annotations

from policies.engine import Context
from policies.rules._flink import (
    CHECKPOINT_DIR,
    HA_STORAGE_DIR,
    RECOVERY_PATH,
    SAVEPOINT_DIR,
    DeploymentRule,
    configuration,
    job,
    name_of,
    outside_region,
    setting,
    store_of,
)
from policies.view import Resource, StackView, text


class FlinkStateInRegion(DeploymentRule):
    id = "flink-state-in-region"
    category = "data placement"
    description = (
        "Every FlinkDeployment keeps its checkpoints (execution.checkpointing.dir), savepoints "
        "(execution.checkpointing.savepoint-dir), HA metadata (high-availability.storageDir), "
        "the state it restores from (job.initialSavepointPath, execution.state-recovery.path) "
        "and their Flink 2.2 fallback keys, including SET statements of its SQL script, on "
        "s3/s3a/s3p, gs or hdfs URIs in a store of its own region: a bucket its stack declares "
        "located in that region, or (on-prem HDFS, a shared S3-compatible bucket) under the "
        "stack's own object-store roots."
    )
    why = (
        "Checkpoints and savepoints hold the job's whole state, records included: state written "
        "to another region's bucket crosses a jurisdiction, adds cross-region latency to every "
        "checkpoint, and ties the region's recovery to a second region being up."
    )
    severity = "critical"

    def deployment(self, ctx: Context, view: StackView, dep: Resource) -> None:
        conf = configuration(view, dep)
        places: list[tuple[str, str]] = []
        for keys in (CHECKPOINT_DIR, SAVEPOINT_DIR, HA_STORAGE_DIR, RECOVERY_PATH):
            found = setting(conf, keys)
            if found:
                places.append(found)
        initial = text(job(dep).get("initialSavepointPath"))
        if initial and initial.strip():
            places.append(("job.initialSavepointPath", initial.strip()))
        region = view.region_id
        for key, uri in places:
            why = outside_region(view, region, uri)
            if why:
                ctx.report(
                    dep,
                    f"FlinkDeployment {name_of(dep)}: {key} {uri!r} {why}; keep the job's state "
                    f"in its own region's flink-state store ({store_of(view, 'flink-state')})",
                )


RULE = FlinkStateInRegion()
