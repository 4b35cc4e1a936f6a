"""Topology: exactly one primary region."""

from __future__ import annotations

from typing import Any

from policies.engine import Context, Rule
from policies.view import StackView, as_bool, output


class SinglePrimaryRegion(Rule):
    id = "single-primary-region"
    category = "topology"
    description = (
        "Exactly one region is primary. Across regional stacks checked together: at most one "
        "exports primary: true, exactly one when they cover every region of the topology, and "
        "they agree on the topology's primary. In each stack: the topology's primary names one of "
        "its regions, and a regional stack's primary output is true exactly when its region is "
        "that primary."
    )
    why = (
        "Active-passive consumers (payments, the ledger) run only in the primary region; two "
        "primaries process every event twice, none processes nothing."
    )
    severity = "critical"
    cross_stack = True

    def check(self, ctx: Context) -> None:
        view = ctx.view
        topology = view.topology
        if topology is None:
            return
        ids = _region_ids(topology)
        primary = topology.get("primary")
        if primary not in ids:
            ctx.report(
                view,
                f"the topology's primary {primary!r} is not one of its regions ({', '.join(ids)}); "
                "set rtdi:topology.primary in the global stack to one of them",
            )
        flag = _primary_output(view)
        region = view.region_id
        if flag is not None and region is not None and flag != (region == primary):
            ctx.report(
                view,
                f"stack exports primary: {str(flag).lower()} for region {region}, but the "
                f"topology's primary is {primary}; run `pulumi up` on this stack after changing "
                "the global topology",
            )

    def check_stacks(self, ctx: Context) -> None:
        regional = [v for v in ctx.views if v.is_regional]
        if not regional:
            return
        primaries = [v for v in regional if _primary_output(v) is True]
        named = sorted(
            {v.topology["primary"] for v in regional if v.topology and v.topology.get("primary")}
        )
        if len(named) > 1:
            for v in regional:
                ctx.report(
                    v,
                    f"regional stacks read different primaries ({', '.join(named)}); run `pulumi "
                    "up` on every regional stack after changing the global topology",
                )
        if len(primaries) > 1:
            for v in primaries:
                ctx.report(
                    v,
                    f"{len(primaries)} regional stacks export primary: true "
                    f"({', '.join(p.region_id or p.stack for p in primaries)}); exactly one region "
                    "may be primary",
                )
        covered = {v.region_id for v in regional}
        topology = next((v.topology for v in regional if v.topology), None)
        if not primaries and topology and set(_region_ids(topology)) <= covered:
            ctx.report(
                regional[0],
                "no regional stack exports primary: true (checked: "
                f"{', '.join(sorted(filter(None, covered)))}); set rtdi:topology.primary to one "
                "region and `pulumi up` every regional stack",
            )


def _region_ids(topology: dict[str, Any]) -> list[str]:
    return [
        f"{r.get('cloud')}-{r.get('name')}"
        for r in topology.get("regions") or []
        if isinstance(r, dict)
    ]


def _primary_output(view: StackView) -> bool | None:
    return as_bool(output(view, "primary"))


RULE = SinglePrimaryRegion()
