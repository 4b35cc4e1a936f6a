"""Correctness: an upsert table routes to strict replica groups and keeps no tiers or star-tree.

Read from the table configs the apply Job sends to the controller (`_pinot.tables`). Pinot
keeps an upsert table's latest-row bookkeeping per server: queries must go to one replica group
for all of a partition's segments (``routing.instanceSelectorType: strictReplicaGroup``), its
segments may not move to other servers by age (``tierConfigs``) and may not be pre-aggregated
(star-tree), or queries return superseded rows. Pinot 1.5 refuses these at table creation; the
rule catches them in the plan.
"""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules import _pinot
from policies.view import as_bool, dig, items, text


def is_upsert(config) -> bool:
    mode = text(dig(config, "upsertConfig", "mode"))
    return dig(config, "upsertConfig") is not None and (mode or "FULL").upper() != "NONE"


class PinotUpsertStrict(Rule):
    id = "pinot-upsert-strict"
    category = "correctness"
    description = (
        "Every Pinot upsert table config a Job applies (upsertConfig with a mode other than "
        "NONE) routes with routing.instanceSelectorType strictReplicaGroup, has no tierConfigs, "
        "no tableIndexConfig.starTreeIndexConfigs and no enableDefaultStarTree."
    )
    why = (
        "Upsert keeps the valid row of each key on the server holding its partition's segments: "
        "routing a query to servers of different replica groups, moving old segments to another "
        "tier's servers, or answering from a star-tree built before later rows replaced its "
        "rows returns stale or duplicate rows."
    )
    severity = "high"

    def check(self, ctx: Context) -> None:
        for table in _pinot.tables(ctx.view):
            with ctx.guard(table.configmap):
                if not is_upsert(table.config):
                    continue
                where = f"Pinot upsert table {table.name} (ConfigMap {table.configmap.k8s_name})"
                selector = text(dig(table.config, "routing", "instanceSelectorType"))
                if selector != "strictReplicaGroup":
                    ctx.report(
                        table.configmap,
                        f"{where}: routing.instanceSelectorType is {selector or 'unset'}; set "
                        "strictReplicaGroup",
                    )
                if items(dig(table.config, "tierConfigs")):
                    ctx.report(
                        table.configmap,
                        f"{where}: has tierConfigs; an upsert table keeps its segments on its "
                        "consuming servers",
                    )
                index = dig(table.config, "tableIndexConfig")
                if items(dig(index, "starTreeIndexConfigs")) or as_bool(
                    dig(index, "enableDefaultStarTree")
                ):
                    ctx.report(table.configmap, f"{where}: has a star-tree index; drop it")


RULE = PinotUpsertStrict()
