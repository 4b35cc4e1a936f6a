"""Security: buckets keep overwritten and deleted objects."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import GCS_BUCKET, S3_BUCKETS, guards_of
from policies.view import as_bool, dig, text

VERSIONING = (
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
)


class BucketVersioned(Rule):
    id = "bucket-versioned"
    category = "security"
    description = (
        "Every S3 bucket has a BucketVersioning (matched by its bucket input) with status "
        "Enabled; every GCS bucket has versioning.enabled true."
    )
    why = (
        "Versioning is the undo for a buggy job or a compromised credential that overwrites or "
        "deletes state: Flink checkpoints, Kafka tiered segments and the archive cannot be "
        "rebuilt from anywhere else."
    )
    severity = "high"

    def check(self, ctx: Context) -> None:
        for bucket in ctx.view.of_type(*S3_BUCKETS):
            with ctx.guard(bucket):
                statuses = [
                    text(dig(v.props, "versioningConfiguration", "status"))
                    for v in guards_of(ctx.view, bucket, *VERSIONING)
                ]
                if (
                    as_bool(dig(bucket.props, "versioning", "enabled")) is True
                ):  # legacy inline form
                    statuses.append("Enabled")
                if "Enabled" not in statuses:
                    shown = ", ".join(s or "unset" for s in statuses) or "no BucketVersioning"
                    ctx.report(
                        bucket,
                        f"is not versioned ({shown}); add aws.s3.BucketVersioning for it with "
                        "status Enabled",
                    )
        for bucket in ctx.view.of_type(GCS_BUCKET):
            with ctx.guard(bucket):
                if as_bool(dig(bucket.props, "versioning", "enabled")) is not True:
                    ctx.report(bucket, "is not versioned; set versioning.enabled to true")


RULE = BucketVersioned()
