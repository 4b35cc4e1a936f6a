"""Security: no bucket is public."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import GCS_BUCKET, S3_BUCKETS, guards_of
from policies.view import as_bool, dig, items, references, text

PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_ACLS = ("aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucketAcl:BucketAcl")
GCS_IAM = (
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
)
FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


class BucketNotPublic(Rule):
    id = "bucket-not-public"
    category = "security"
    description = (
        "No bucket can be made public: every S3 bucket has a BucketPublicAccessBlock (matched by "
        "its bucket input) with all four flags true and no public canned ACL; every GCS bucket "
        "enforces public access prevention and uniform bucket-level access and grants nothing to "
        "allUsers/allAuthenticatedUsers."
    )
    why = (
        "Buckets hold Kafka tiered segments, Flink state and the archive: every event the company "
        "has. One public ACL or policy publishes all of it."
    )
    severity = "critical"

    def check(self, ctx: Context) -> None:
        view = ctx.view
        for bucket in view.of_type(*S3_BUCKETS):
            with ctx.guard(bucket):
                blocks = guards_of(view, bucket, PUBLIC_ACCESS_BLOCK)
                if not blocks:
                    ctx.report(
                        bucket,
                        "has no BucketPublicAccessBlock; add aws.s3.BucketPublicAccessBlock for "
                        "it with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and "
                        "restrictPublicBuckets true",
                    )
                for block in blocks:
                    off = [f for f in FLAGS if as_bool(dig(block.props, f)) is not True]
                    if off:
                        ctx.report(
                            block,
                            f"leaves bucket {bucket.name} open to public access: {', '.join(off)} "
                            "not true; set all four flags to true",
                        )
                acl = text(dig(bucket.props, "acl"))
                if acl in PUBLIC_ACLS:
                    ctx.report(
                        bucket,
                        f"canned ACL {acl!r} makes it public; remove the ACL (use "
                        "BucketOwnerEnforced ownership)",
                    )
        for acl_config in view.of_type(*S3_ACLS):
            with ctx.guard(acl_config):
                if text(dig(acl_config.props, "acl")) in PUBLIC_ACLS:
                    ctx.report(
                        acl_config,
                        f"canned ACL {dig(acl_config.props, 'acl')!r} makes the bucket public; "
                        "remove it",
                    )
        for bucket in view.of_type(GCS_BUCKET):
            with ctx.guard(bucket):
                pap = text(dig(bucket.props, "publicAccessPrevention"))
                if pap != "enforced":
                    ctx.report(
                        bucket,
                        f"publicAccessPrevention is {pap or 'unset (inherited)'}; set it to "
                        '"enforced"',
                    )
                if as_bool(dig(bucket.props, "uniformBucketLevelAccess")) is not True:
                    ctx.report(
                        bucket,
                        "uniformBucketLevelAccess is not true: object ACLs can grant public "
                        "reads; set it to true",
                    )
                for grant in view.of_type(*GCS_IAM):
                    if references(grant, "bucket", bucket):
                        members = [dig(grant.props, "member"), *items(dig(grant.props, "members"))]
                        public = [m for m in members if m in PUBLIC_MEMBERS]
                        if public:
                            ctx.report(
                                grant,
                                f"grants {', '.join(public)} access to bucket {bucket.name}; "
                                "remove the grant",
                            )


RULE = BucketNotPublic()
