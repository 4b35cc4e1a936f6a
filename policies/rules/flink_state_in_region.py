"""Data placement: a Flink job's checkpoints, savepoints and HA metadata stay in its region.

Which stores are the region's is read from what decides it:

* a cloud bucket (S3 ``bucket``, GCS ``name``) declared by a stack is that region's only if its
  location (its own region or its provider's, as `bucket-colocated-with-cluster` reads it) is
  the job's region; a bucket another checked stack declares is that stack's region's;
* a store no stack declares as a resource (on-prem HDFS, or a site's S3-compatible bucket
  shared by regions under per-region prefixes) is the region's when the state URI lies under
  one of the object-store roots the stack is built with (its ``buckets`` output: the
  ``rtdi:objectStore`` the whole region's storage is derived from); a prefix of another region
  of the same bucket is not.

The job's region is its stack's (a Kubernetes object runs where its stack's cluster is).
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.engine import Context
from policies.rules._common import GCS_BUCKET, S3_BUCKETS
from policies.rules._flink import (
    CHECKPOINT_DIR,
    HA_STORAGE_DIR,
    RECOVERY_PATH,
    SAVEPOINT_DIR,
    DeploymentRule,
    Location,
    configuration,
    job,
    location_of,
    name_of,
    setting,
)
from policies.view import Resource, StackView, location, output, text


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
            why = self._outside(view, region, uri)
            if why:
                ctx.report(
                    dep,
                    f"FlinkDeployment {name_of(dep)}: {key} {uri!r} {why}; keep the job's state "
                    f"in its own region's flink-state store ({_roots(view) or 'none found'})",
                )

    def _outside(self, view: StackView, region: str | None, uri: str) -> str | None:
        """Why ``uri`` is not a store of ``region``; None when it is."""
        loc = location_of(uri)
        if loc is None:
            return "is not an s3/s3a/s3p, gs or hdfs URI with a bucket or namenode"
        if region is None:
            return "cannot be placed: the stack's region is unknown (no region output)"
        for stack in [view, *(p for p in view.peers if p is not view)]:
            for bucket in stack.of_type(*S3_BUCKETS, GCS_BUCKET):
                family = "gs" if bucket.type == GCS_BUCKET else "s3"
                name = text(bucket.props.get("name" if family == "gs" else "bucket"))
                if (family, name) != (loc.family, loc.authority):
                    continue
                where = location(bucket)
                if stack is not view:
                    return f"is in bucket {name} of stack {stack.stack}, not of region {region}"
                if where is None:
                    return f"is in bucket {name}, whose region is unknown"
                if f"{where[0]}-{where[1]}" != region:
                    return f"is in bucket {name} in {where[0]} {where[1]}, not in region {region}"
                return None
        declared = {
            "gs" if b.type == GCS_BUCKET else "s3" for b in view.of_type(*S3_BUCKETS, GCS_BUCKET)
        }
        if loc.family not in declared and any(loc.under(root) for root in _store_roots(view)):
            return None
        for peer in view.peers:
            if peer is not view and any(loc.under(root) for root in _store_roots(peer)):
                return f"is in the object store of stack {peer.stack}, not of region {region}"
        return f"is in no bucket or object store of region {region}"


def _store_roots(view: StackView) -> list[Location]:
    """The stack's object-store roots (its ``buckets`` output). They vouch for a store only where
    the stack declares no bucket of that kind (on-prem): a cloud stack's buckets are resources."""
    buckets = output(view, "buckets")
    if not isinstance(buckets, Mapping):
        return []
    roots = [location_of(v) for v in buckets.values() if isinstance(v, str)]
    return [r for r in roots if r is not None]


def _roots(view: StackView) -> str:
    buckets = output(view, "buckets")
    if isinstance(buckets, Mapping) and isinstance(buckets.get("flink-state"), str):
        return str(buckets["flink-state"])
    return ", ".join(str(r) for r in _store_roots(view))


RULE = FlinkStateInRegion()
