"""Security: buckets are encrypted at rest with the region's key."""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.rules._common import GCS_BUCKET, S3_BUCKETS, guards_of
from policies.view import dig, items, references, text

SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
S3_LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")

REQUIRE_CMK = Param(
    "requireCustomerManagedKey",
    True,
    "Require a customer-managed KMS key (S3 aws:kms with kmsMasterKeyId; GCS "
    "encryption.defaultKmsKeyName; MSK encryptionAtRestKmsKeyArn; Managed Kafka gcpConfig.kmsKey; "
    "a KMS key on the Kafka volumes' StorageClass). With false, provider-managed encryption (S3 "
    "AES256, Google's default) passes.",
    {"type": "boolean"},
)


class BucketEncrypted(Rule):
    id = "bucket-encrypted"
    category = "security"
    description = (
        "Every S3 bucket has a server-side encryption configuration (matched by its bucket input) "
        "using aws:kms with a customer-managed key; every GCS bucket sets "
        "encryption.defaultKmsKeyName. GCS always encrypts with Google-managed keys, so with "
        "requireCustomerManagedKey (the default) the rule asks for CMEK, which lets the region's "
        "key holder revoke access and keeps the key in the region."
    )
    why = (
        "A customer-managed key makes decryption an auditable, revocable IAM grant in the "
        "bucket's own region; without it, anyone with storage read permissions reads the data."
    )
    severity = "high"
    params = (REQUIRE_CMK,)

    def check(self, ctx: Context) -> None:
        cmk = ctx["requireCustomerManagedKey"]
        for bucket in ctx.view.of_type(*S3_BUCKETS):
            with ctx.guard(bucket):
                rules = [
                    rule
                    for conf in guards_of(ctx.view, bucket, *SSE)
                    for rule in items(dig(conf.props, "rules"))
                ]
                rules += items(
                    dig(bucket.props, "serverSideEncryptionConfiguration", "rule")
                )  # legacy inline form
                if not rules:
                    ctx.report(
                        bucket,
                        "has no server-side encryption configuration; add "
                        "aws.s3.BucketServerSideEncryptionConfiguration with sse_algorithm "
                        "aws:kms and the region's KMS key",
                    )
                    continue
                default = [dig(r, "applyServerSideEncryptionByDefault") for r in rules]
                # AWS delivers server access logs only into an SSE-S3 bucket: a bucket that some
                # BucketLogging targets may (and must) use AES256.
                log_destination = any(
                    references(g, "targetBucket", bucket) for g in ctx.view.of_type(*S3_LOGGING)
                )
                ok = [
                    d
                    for d in default
                    if d is not None
                    and (
                        not cmk
                        or (log_destination and dig(d, "sseAlgorithm") == "AES256")
                        or (
                            dig(d, "sseAlgorithm") in KMS_ALGORITHMS
                            and text(dig(d, "kmsMasterKeyId"))
                        )
                    )
                ]
                if not ok:
                    shown = (
                        ", ".join(str(dig(d, "sseAlgorithm")) for d in default if d is not None)
                        or "none"
                    )
                    ctx.report(
                        bucket,
                        f"encrypts with {shown} and no customer-managed key; set sse_algorithm "
                        "aws:kms and kms_master_key_id to the region's KMS key",
                    )
        if not cmk:
            return
        for bucket in ctx.view.of_type(GCS_BUCKET):
            with ctx.guard(bucket):
                if not text(dig(bucket.props, "encryption", "defaultKmsKeyName")):
                    ctx.report(
                        bucket,
                        "uses Google-managed encryption keys; set encryption.default_kms_key_name "
                        "to the region's Cloud KMS key (CMEK)",
                    )


RULE = BucketEncrypted()
