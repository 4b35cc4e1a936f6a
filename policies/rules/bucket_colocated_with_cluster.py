"""Data placement: a region's buckets sit in the region of its Kubernetes cluster."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import EKS_CLUSTER, GCS_BUCKET, GKE_CLUSTER, S3_BUCKETS
from policies.view import location


class BucketColocatedWithCluster(Rule):
    id = "bucket-colocated-with-cluster"
    category = "data placement"
    description = (
        "Every object-store bucket a regional stack creates (S3, GCS) is in the same region as "
        "the stack's EKS or GKE cluster: an S3 bucket's region (its own or its provider's) equals "
        "the cluster's, a GCS bucket's location is that region (not a multi-region)."
    )
    why = (
        "Tiered storage, checkpoints and deep store sit on the hot path: a bucket in another "
        "region adds cross-region latency and egress cost to every read, and ties the region's "
        "recovery to a second region."
    )
    severity = "high"

    def check(self, ctx: Context) -> None:
        regions = set()
        for cluster in ctx.view.of_type(EKS_CLUSTER, GKE_CLUSTER):
            with ctx.guard(cluster):
                where = location(cluster)
                if where:
                    regions.add(where)
        if not regions:
            return
        shown = ", ".join(f"{c} {r}" for c, r in sorted(regions))
        for bucket in ctx.view.of_type(*S3_BUCKETS, GCS_BUCKET):
            with ctx.guard(bucket):
                where = location(bucket)
                if where is None:
                    ctx.report(
                        bucket,
                        f"region unknown; give the bucket an explicit region/location ({shown})",
                    )
                elif where not in regions:
                    gcs = bucket.type == GCS_BUCKET
                    ctx.report(
                        bucket,
                        f"is in {where[0]} {where[1]} but the stack's cluster is in {shown}; "
                        "create it in the cluster's region"
                        f"{' (location = the region, not a multi-region)' if gcs else ''}",
                    )


RULE = BucketColocatedWithCluster()
