"""Data placement: every regional resource sits in a region its jurisdiction allows."""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.view import glob_any, jurisdiction_of, location

DEFAULT_ALLOWED = {
    "us": {"aws": ["us-*"], "gcp": ["us-*", "us"], "onprem": ["*"]},
    "eu": {"aws": ["eu-*"], "gcp": ["europe-*", "eu"], "onprem": ["*"]},
}
DEFAULT_GLOBAL_TYPES = [
    "aws:iam/*",
    "aws:organizations/*",
    "aws:route53/*",
    "aws:cloudfront/*",
    "aws:budgets/*",
    "aws:shield/*",
    "gcp:projects/*",
    "gcp:serviceaccount/*",
    "gcp:organizations/*",
    "gcp:folder/*",
    "gcp:dns/*",
    "gcp:compute/network:Network",
    "gcp:compute/firewall:Firewall",
    "gcp:compute/route:Route",
]


class RegionAllowedForJurisdiction(Rule):
    id = "region-allowed-for-jurisdiction"
    category = "data placement"
    description = (
        "Every regional resource (AWS and GCP resources by their provider's or their own "
        "region/location, Kubernetes objects by their rtdi-region label) sits in a region allowed "
        "for its jurisdiction (its rtdi-jurisdiction label or tag, its provider's default tags or "
        "labels, else the topology)."
    )
    why = (
        "Data-residency law binds where data is stored and processed: a bucket or cluster of the "
        "eu jurisdiction created in us-east-1 is a compliance breach the moment it holds data."
    )
    severity = "critical"
    params = (
        Param(
            "allowedRegions",
            DEFAULT_ALLOWED,
            "Jurisdiction -> cloud -> region name patterns (shell globs) allowed for it. On-prem "
            "sites carry no geography in their names, so each jurisdiction allows any site by "
            "default; list site names to pin them.",
            {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        ),
        Param(
            "globalResourceTypes",
            DEFAULT_GLOBAL_TYPES,
            "Resource type patterns that are global, not regional (IAM, DNS, VPC networks on "
            "GCP); they are not checked.",
            {"type": "array", "items": {"type": "string"}},
        ),
    )

    def check(self, ctx: Context) -> None:
        allowed_by = ctx["allowedRegions"]
        global_types = ctx["globalResourceTypes"]
        for r in ctx.view.resources:
            if r.package not in ("aws", "gcp", "kubernetes") or glob_any(r.type, global_types):
                continue
            with ctx.guard(r):
                where = location(r)
                if where is None:
                    continue  # not regional, or its region is not known: nothing to hold it to
                cloud, region = where
                jurisdiction = jurisdiction_of(r, ctx.view)
                if jurisdiction is None:
                    ctx.report(
                        r,
                        f"{cloud} region {region}: no jurisdiction known for this resource; tag or "
                        "label it rtdi-jurisdiction (or set it in the provider's default "
                        "tags/labels)",
                    )
                    continue
                allowed = allowed_by.get(jurisdiction)
                if allowed is None:
                    ctx.report(
                        r,
                        f"jurisdiction {jurisdiction!r} has no allowed regions in the policy "
                        f"configuration; add it under {self.id}.allowedRegions (known: "
                        f"{', '.join(sorted(allowed_by))})",
                    )
                    continue
                patterns = allowed.get(cloud, [])
                if not glob_any(region, patterns):
                    ctx.report(
                        r,
                        f"sits in {cloud} region {region}, which jurisdiction {jurisdiction!r} "
                        f"does not allow (allowed {cloud} regions: "
                        f"{', '.join(patterns) or 'none'}); move it to an allowed region or "
                        "correct its rtdi-jurisdiction",
                    )


RULE = RegionAllowedForJurisdiction()
