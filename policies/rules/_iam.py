"""AWS resource policies (S3 bucket policies, KMS key policies): which statements grant to anyone.

A statement is public when it allows (``Effect: Allow``) a principal of ``*`` (``"*"``,
``{"AWS": "*"}``, a list holding ``"*"``) or uses ``NotPrincipal`` with Allow, unless one of its
conditions pins the caller to fixed values of a key that names an account, organization, VPC,
endpoint or source. The keys are those S3 itself treats as making a policy non-public
("The meaning of public" in the S3 user guide, which is what ``BlockPublicPolicy`` enforces),
plus ``kms:CallerAccount`` for key policies. A condition counts only with a positive operator
(``StringEquals``, ``ArnLike``, ``IpAddress``...; not ``...IfExists``, not ``StringNotEquals``,
which admit callers lacking or differing from the value), with no value that is or starts with a
wildcard, and for ``aws:SourceIp`` with ranges that do not together cover the internet.
Deny statements (rtdi's TLS-only policy) restrict and are never public.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policies.rules._cidrs import covers_internet
from policies.view import is_list, items, plain

RESTRICTING_KEYS = {
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceowner",
    "aws:sourceaccount",
    "aws:sourceorgid",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
    "kms:calleraccount",
}
POSITIVE_OPERATORS = {
    "stringequals",
    "stringequalsignorecase",
    "stringlike",
    "arnequals",
    "arnlike",
    "ipaddress",
    "forallvalues:stringequals",
    "foranyvalue:stringequals",
}


def document(value: Any) -> Mapping[str, Any] | None:
    """A policy document: a JSON string or a mapping; None when it is neither."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    value = plain(value) if isinstance(value, Mapping) else value
    return value if isinstance(value, Mapping) else None


def statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = doc.get("Statement")
    listed: list[Any] = items(found) if is_list(found) else [found]
    return [s for s in listed if isinstance(s, Mapping)]


def _values(value: Any) -> list[Any]:
    return list(value) if is_list(value) else [value]


def public_principal(statement: Mapping[str, Any]) -> bool:
    """Allow to ``*`` (in any of its spellings) or to everyone but a NotPrincipal."""
    if statement.get("Effect") != "Allow":
        return False
    if "NotPrincipal" in statement:
        return True
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in _values(principal.get(k)) for k in principal)
    return False


def restricting_condition(statement: Mapping[str, Any]) -> bool:
    """Does a condition pin the caller to a fixed account, organization, VPC or source?"""
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    for operator, clauses in condition.items():
        if str(operator).lower() not in POSITIVE_OPERATORS or not isinstance(clauses, Mapping):
            continue
        for key, value in clauses.items():
            values = _values(value)
            if not values or any(not isinstance(v, str) for v in values):
                continue
            name = str(key).lower()
            if name == "aws:sourceip":
                if str(operator).lower() == "ipaddress" and not covers_internet(values):
                    return True
                continue
            if name in RESTRICTING_KEYS and not any(v.startswith("*") for v in values):
                return True
    return False


def public_statements(doc: Mapping[str, Any]) -> list[str]:
    """The Sid (or position) of every statement that grants to anyone without a restriction."""
    return [
        str(s.get("Sid") or f"#{i}")
        for i, s in enumerate(statements(doc))
        if public_principal(s) and not restricting_condition(s)
    ]
