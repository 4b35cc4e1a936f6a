"""Security: no bucket policy grants to anyone."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._iam import document, public_statements
from policies.view import dig, items

S3_BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
GCS_IAM_POLICY = "gcp:storage/bucketIAMPolicy:BucketIAMPolicy"
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


class BucketPolicyNoPublicPrincipal(Rule):
    id = "bucket-policy-no-public-principal"
    category = "security"
    description = (
        'No S3 BucketPolicy statement allows Principal * ({"AWS": "*"}, a list holding *, '
        "or NotPrincipal) unless a condition pins the caller with fixed values of an account, "
        "organization, VPC, VPC endpoint or source key (S3's own test of a public policy; "
        "aws:SourceIp counts only with ranges that are not the whole internet); Deny statements "
        "are fine. A GCS BucketIAMPolicy grants nothing to allUsers/allAuthenticatedUsers "
        "(BucketIAMMember/Binding grants are bucket-not-public's)."
    )
    why = (
        "A bucket policy open to * publishes the bucket to every AWS account, or to anyone, "
        "whatever the ACLs say; a public access block stops it only while it stays in place."
    )
    severity = "critical"

    def check(self, ctx: Context) -> None:
        for policy in ctx.view.of_type(S3_BUCKET_POLICY):
            with ctx.guard(policy):
                doc = document(dig(policy.props, "policy"))
                if doc is None:
                    continue
                public = public_statements(doc)
                if public:
                    ctx.report(
                        policy,
                        f"statement {', '.join(public)} allows Principal * with no condition "
                        "that pins an account, organization or VPC; name the principals, or add "
                        "such a condition (aws:PrincipalAccount, aws:PrincipalOrgID, "
                        "aws:SourceVpce)",
                    )
        for policy in ctx.view.of_type(GCS_IAM_POLICY):
            with ctx.guard(policy):
                doc = document(dig(policy.props, "policyData")) or {}
                public = sorted(
                    {
                        m
                        for b in items(doc.get("bindings"))
                        for m in items(dig(b, "members"))
                        if m in PUBLIC_MEMBERS
                    }
                )
                if public:
                    ctx.report(
                        policy,
                        f"policyData grants {', '.join(public)} access to the bucket; remove "
                        "those members",
                    )


RULE = BucketPolicyNoPublicPrincipal()
