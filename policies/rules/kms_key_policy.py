"""Security: every encryption key has an explicit policy that grants nothing to anyone."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policies.engine import Context, Rule
from policies.rules._iam import document, public_statements, statements
from policies.view import Resource, StackView, dig, is_list, items, references

KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
GCP_KMS_IAM = (
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    "gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
    "gcp:kms/cryptoKeyIAMPolicy:CryptoKeyIAMPolicy",
    "gcp:kms/keyRingIAMMember:KeyRingIAMMember",
    "gcp:kms/keyRingIAMBinding:KeyRingIAMBinding",
    "gcp:kms/keyRingIAMPolicy:KeyRingIAMPolicy",
)
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
# An account's root principal, as an ARN or as the bare account id.
ACCOUNT_ROOT = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:root|\d{12}")


class KmsKeyPolicy(Rule):
    id = "kms-key-policy"
    category = "security"
    description = (
        "Every AWS KMS key has an explicit key policy (its policy input, or an "
        "aws.kms.KeyPolicy whose keyId is the key) that is not AWS's default (only kms:* to the "
        "account root, which delegates the key to every IAM identity of the account); no "
        "statement allows Principal * "
        "without a condition pinning the account, organization or VPC. GCP KMS key and key ring "
        "IAM members, bindings and policies grant nothing to allUsers/allAuthenticatedUsers."
    )
    why = (
        "The key decides who can read the buckets, volumes and secrets it encrypts; a default "
        "policy makes every IAM policy of the account a key grant, and a public one lets anyone "
        "decrypt."
    )
    severity = "high"

    def check(self, ctx: Context) -> None:
        view = ctx.view
        for key in view.of_type(KMS_KEY):
            with ctx.guard(key):
                policies = [dig(key.props, "policy")] + [
                    dig(p.props, "policy") for p in _key_policies(view, key)
                ]
                docs = [document(p) for p in policies if p is not None]
                if not docs:
                    ctx.report(
                        key,
                        "has no explicit key policy, so AWS's default lets every IAM identity "
                        "of the account use it; set policy to grant the roles that need it",
                    )
                    continue
                if any(d is None for d in docs):
                    ctx.report(key, "policy is not a JSON policy document; write one")
                known = [d for d in docs if d is not None]
                if known and all(_only_delegates_to_account(d) for d in known):
                    ctx.report(
                        key,
                        "key policy only grants kms:* to the account root, which is AWS's "
                        "default: every IAM identity of the account with kms:* may use it; grant "
                        "the roles that administer and use the key instead",
                    )
                for doc in known:
                    public = public_statements(doc)
                    if public:
                        ctx.report(
                            key,
                            f"key policy statement {', '.join(public)} allows Principal * with "
                            "no condition pinning the account, organization or VPC; name the "
                            "principals or add kms:CallerAccount / aws:PrincipalOrgID",
                        )
        for grant in view.of_type(*GCP_KMS_IAM):
            with ctx.guard(grant):
                members = [dig(grant.props, "member"), *items(dig(grant.props, "members"))]
                doc = document(dig(grant.props, "policyData")) or {}
                members += [m for b in items(doc.get("bindings")) for m in items(dig(b, "members"))]
                public = sorted({m for m in members if m in PUBLIC_MEMBERS})
                if public:
                    ctx.report(
                        grant,
                        f"grants {', '.join(public)} use of the key; grant named service "
                        "accounts only",
                    )


def _only_delegates_to_account(doc: Mapping[str, Any]) -> bool:
    """Is this AWS's default key policy: every statement allows kms:* to an account root?"""
    found = statements(doc)
    return bool(found) and all(
        s.get("Effect") == "Allow"
        and "Condition" not in s
        and set(_values(s.get("Action"))) == {"kms:*"}
        and isinstance(s.get("Principal"), Mapping)
        and set(s["Principal"]) == {"AWS"}
        and all(
            isinstance(p, str) and bool(ACCOUNT_ROOT.fullmatch(p))
            for p in _values(s["Principal"]["AWS"])
        )
        for s in found
    )


def _values(value: Any) -> list[Any]:
    return items(value) if is_list(value) else [value]


def _key_policies(view: StackView, key: Resource) -> list[Resource]:
    return [p for p in view.of_type(KMS_KEY_POLICY) if references(p, "keyId", key)]


RULE = KmsKeyPolicy()
