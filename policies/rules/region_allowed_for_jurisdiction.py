"""Data placement: every regional resource sits in a region its jurisdiction allows."""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.view import (
    LABEL_JURISDICTION,
    LABEL_REGION,
    Resource,
    StackView,
    glob_any,
    location,
    provider_labels,
    split_region_id,
)

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
        "region/location, Kubernetes objects by their stack's region) sits in a region allowed "
        "for its jurisdiction: the topology's jurisdiction of the region its stack builds (an "
        "rtdi-jurisdiction or rtdi-region label or default tag that disagrees is a violation); "
        "only without a topology (the global stack, a plan checked alone) its label or tag."
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
                where = _where(ctx.view, r)
                if where is None:
                    continue  # not regional, or its region is not known: nothing to hold it to
                cloud, region = where
                jurisdiction = _jurisdiction(ctx, r)
                if jurisdiction is None:
                    ctx.report(
                        r,
                        f"{cloud} region {region}: no jurisdiction known for this resource; check "
                        "it with its global stack (the topology gives its stack's region's), or "
                        "tag or label it rtdi-jurisdiction",
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


def _where(view: StackView, r: Resource) -> tuple[str, str] | None:
    """Where ``r`` is: a cloud resource's own or provider region; a Kubernetes object's stack
    region (its provider is that stack's cluster), not its rtdi-region label."""
    if r.package != "kubernetes":
        return location(r)
    return split_region_id(view.region_id) if view.region_id else None


def _jurisdiction(ctx: Context, r: Resource) -> str | None:
    """The topology's jurisdiction of the stack's region; a label that disagrees is reported.
    Without a topology, the resource's rtdi-jurisdiction label or tag, or its provider's."""
    view = ctx.view
    labels = {**provider_labels(r), **r.labels}
    fact = view.jurisdiction_of_region(view.region_id) if view.region_id else None
    if fact is None:
        where = _where(view, r)
        return labels.get(LABEL_JURISDICTION) or (
            view.jurisdiction_of_region(f"{where[0]}-{where[1]}") if where else None
        )
    for key, value in ((LABEL_JURISDICTION, fact), (LABEL_REGION, view.region_id)):
        claimed = labels.get(key)
        if claimed is not None and claimed != value:
            ctx.report(
                r,
                f"is labelled {key}: {claimed!r}, but its stack builds {view.region_id} "
                f"(jurisdiction {fact!r}); fix or drop the label",
            )
    return fact


RULE = RegionAllowedForJurisdiction()
