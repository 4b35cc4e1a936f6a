"""How an active-passive job's state follows a primary flip (paper 6; issue 10, item 4).

The decision: **the region that becomes primary rebuilds the job's state from its aggregate
cluster**. It starts with empty state, and its Kafka source reads the `flink-<job>` group offsets
the DR drill committed in that cluster. A savepoint of the old primary is never restored by
default, because its Kafka source state holds offsets of the *old* region's aggregate cluster:
restored elsewhere, they point at other records.

Which offsets: the old primary's *savepoint* holds where it stopped; its group offsets do not. The
Kafka source commits them asynchronously once a checkpoint completes, and after a
stop-with-savepoint the task ends before that last commit lands, so the group keeps an earlier
checkpoint's offsets (tests/integration/test_flink_flip.py measures the lag; MirrorMaker 2 would
translate those stale offsets). The drill reads the savepoint's offsets with
``io.rtdi.flink.Handover`` (jobs/runner), translates them into the new primary's aggregate
cluster and commits them to `flink-<job>` there before that region's `pulumi up`.

An active-passive **jar** job may instead start from a handover savepoint named in the new
primary's stack config (``rtdi:flinkHandover: {<job>: {savepoint: URI, nonce: N}}``) if the
operator uids of its Kafka source *and its Kafka sinks* name the region (rtdi passes
``RTDI_REGION``): the old region's source state (its offsets) and sink state (its pending
transactions, which the new cluster cannot commit: `InvalidPidMappingException`, measured by
tests/integration/test_flink_flip.py) are then unclaimed, dropped under ``allowNonRestoredState``;
the source starts from the translated group offsets while every other operator keeps its state.
SQL jobs get no handover: the planner generates their operator ids, so the Kafka operators' state
cannot be left behind that way.

Why this takes a replacement of the FlinkDeployment (read from the operator's 1.15 code,
``AbstractJobReconciler``/``AbstractFlinkResourceReconciler``/``ApplicationReconciler``):

* A suspended-to-running change of ``job.state`` in place restores, under ``upgradeMode:
  savepoint``, ``status.jobStatus.upgradeSavepointPath`` (else ``savepointInfo.lastSavepoint``):
  the savepoint *this* resource took when it was last suspended. In a region that was primary
  before (a flip back) that is a stale savepoint, and the job would re-read what the other region
  produced since. Under ``last-state`` it restores the HA metadata's checkpoint, just as stale.
  ``initialSavepointPath`` is read only on a first deployment or a ``savepointRedeployNonce``
  change, and the validator refuses a nonce without a path, so no spec field asks for "no state".
* A *new* resource is a first deployment: suspended, the operator deploys nothing; running, it
  deploys from ``initialSavepointPath`` when set, else with no savepoint at all. Deleting a
  never-deployed or terminal resource deletes its cluster with its HA metadata.
* Deleting a running resource with ``kubernetes.operator.job.savepoint-on-deletion: true``
  (dynamic, read from the resource's own ``flinkConfiguration``) stops the job with a savepoint,
  synchronously (``stopWithSavepoint(...).get(checkpoint timeout)``), before the finalizer goes:
  the sink's transactions are committed and the job ends globally (Flink drops its HA entries);
  Kubernetes then collects the cluster the resource owns. (The group offsets are *not* reliably
  committed: see above.)

So rtdi declares each active-passive FlinkDeployment with ``replaceOnChanges: [spec.job.state]``
and ``deleteBeforeReplace``: the old primary's ``pulumi up`` deletes the running resource (stop
with savepoint) and creates it suspended; the new primary's deletes the suspended one and creates
it running, which starts fresh (or from the handover). No flip, plain or with a handover, can
restore a savepoint of an earlier tenure. The savepoint the old primary took is in its own
``flink-state`` bucket under ``<job>/savepoints/`` (the newest ``savepoint-*``), not in a status.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from infra.topology.errors import Issue
from infra.topology.jobs import Job
from infra.topology.model import FlinkHandover

KEY = "rtdi:flinkHandover"
# Dynamic operator option, honoured from the FlinkDeployment's flinkConfiguration (1.15).
SAVEPOINT_ON_DELETION = "kubernetes.operator.job.savepoint-on-deletion"
# The resource options that make a change of job.state a new FlinkDeployment (module doc).
REPLACE_ON_CHANGES = ["spec.job.state"]
REGION_ENV = "RTDI_REGION"  # what a jar job names its Kafka source's and sinks' uids after


def handover_issues(
    handovers: Mapping[str, FlinkHandover],
    jobs: Sequence[Job],
    region_id: str,
    primary: str,
    file: str,
    schemes: Sequence[str],
) -> Iterator[Issue]:
    """What is wrong with this regional stack's ``rtdi:flinkHandover``, one line each.

    ``jobs`` are the jobs this region declares, ``schemes`` the URI schemes that reach its
    flink-state bucket."""
    ap = sorted(j.name for j in jobs if j.mode == "active-passive" and j.jar is not None)
    by_name = {j.name: j for j in jobs}
    for name, h in sorted(handovers.items()):
        where = f"{KEY}.{name}"
        job = by_name.get(name)
        if job is None:
            yield Issue(
                file,
                KEY,
                f"not a job of region {region_id}; allowed: its active-passive jar jobs "
                f"({', '.join(ap) or 'none'})",
                name,
            )
        elif job.mode != "active-passive":
            yield Issue(
                file,
                KEY,
                "an all-active job runs in every region and never moves; allowed: an "
                f"active-passive jar job ({', '.join(ap) or 'none'})",
                name,
            )
        elif job.jar is None:
            yield Issue(
                file,
                KEY,
                "an SQL job starts from the translated group offsets with empty state: its "
                "planner-generated source uid would restore the old region's offsets; allowed: "
                f"an active-passive jar job ({', '.join(ap) or 'none'})",
                name,
            )
        elif region_id != primary:
            yield Issue(
                file,
                where,
                f"region {region_id} is not the primary ({primary}), and a handover left here "
                "would be restored at the next flip back; allowed: remove it",
                h.savepoint,
            )
        elif h.savepoint.split("://", 1)[0] not in schemes:
            yield Issue(
                file,
                f"{where}.savepoint",
                "not in this region's flink-state bucket; allowed: a URI in it, starting "
                f"{' or '.join(f'{s}://' for s in schemes)} (copy the savepoint there first)",
                h.savepoint,
            )


def store_schemes(kind: str) -> list[str]:
    """The URI schemes that reach a flink-state bucket of an object store of ``kind`` (the
    regional stack's `objectStore.kind`): S3 through either Flink plugin, GCS, HDFS."""
    return {"s3": ["s3", "s3p"], "gcs": ["gs"]}.get(kind, [kind])


def in_bucket(savepoint: str, bucket_uri: str) -> bool:
    """Whether ``savepoint`` lies in the bucket (and key prefix) ``bucket_uri`` names, whatever
    scheme reaches it (s3p:// and s3:// are the same S3 bucket)."""
    path = savepoint.split("://", 1)[1]
    base = bucket_uri.split("://", 1)[1].rstrip("/")
    return path.startswith(base + "/")


def job_fields(handover: FlinkHandover | None) -> dict[str, Any]:
    """The FlinkDeployment `job` fields a handover sets: the savepoint, honoured on the first
    deployment and on every new nonce, and the region-named source state left unclaimed."""
    if handover is None:
        return {}
    return {
        "initialSavepointPath": handover.savepoint,
        "savepointRedeployNonce": handover.nonce,
        "allowNonRestoredState": True,
    }
