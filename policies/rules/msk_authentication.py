"""Security: every MSK cluster authenticates its clients."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import MSK_CLUSTER
from policies.view import as_bool, dig, items, text

MSK_SERVERLESS = "aws:msk/serverlessCluster:ServerlessCluster"


class MskAuthentication(Rule):
    id = "msk-authentication"
    category = "security"
    description = (
        "Every MSK cluster authenticates clients: clientAuthentication.unauthenticated is not "
        "true and at least one of sasl.scram, sasl.iam or tls.certificateAuthorityArns (mTLS) is "
        "on (no clientAuthentication at all is AWS's unauthenticated default); a serverless "
        "cluster has clientAuthentication.sasl.iam.enabled true."
    )
    why = (
        "Unauthenticated access lets anything that reaches a broker read every topic and write "
        "into any of them; ACLs mean nothing without an identity to apply them to."
    )
    severity = "critical"

    def check(self, ctx: Context) -> None:
        for msk in ctx.view.of_type(MSK_CLUSTER):
            with ctx.guard(msk):
                auth = dig(msk.props, "clientAuthentication")
                if as_bool(dig(auth, "unauthenticated")) is True:
                    ctx.report(
                        msk,
                        "clientAuthentication.unauthenticated is true: any client that reaches "
                        "a broker is admitted; set it false",
                    )
                methods = [
                    name
                    for name, on in (
                        ("SASL/SCRAM", as_bool(dig(auth, "sasl", "scram")) is True),
                        ("SASL/IAM", as_bool(dig(auth, "sasl", "iam")) is True),
                        (
                            "mTLS",
                            any(
                                text(a) for a in items(dig(auth, "tls", "certificateAuthorityArns"))
                            ),
                        ),
                    )
                    if on
                ]
                if not methods:
                    ctx.report(
                        msk,
                        "no client authentication method is on (clientAuthentication.sasl.scram, "
                        "sasl.iam, tls.certificateAuthorityArns); turn on SASL/SCRAM, SASL/IAM or "
                        "mTLS",
                    )
        for msk in ctx.view.of_type(MSK_SERVERLESS):
            with ctx.guard(msk):
                iam = dig(msk.props, "clientAuthentication", "sasl", "iam", "enabled")
                if as_bool(iam) is not True:
                    ctx.report(
                        msk,
                        "serverless cluster without clientAuthentication.sasl.iam.enabled true; "
                        "turn on IAM authentication",
                    )


RULE = MskAuthentication()
