"""Data placement: a topic of a data class exists only in regions whose jurisdiction may hold it."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import (
    DATA_CLASSES,
    FALLBACK_TO_PUBLISHED,
    STRIMZI,
    class_jurisdictions,
    region_jurisdiction,
    unknown_class,
)
from policies.view import LABEL_DATA_CLASS, LABEL_REGION


class DataClassResidency(Rule):
    id = "data-class-residency"
    category = "data placement"
    description = (
        "Every KafkaTopic labelled rtdi-data-class lives in a region whose jurisdiction that data "
        "class allows (the policy's dataClasses, else the classes the global stack publishes)."
    )
    why = (
        "A topic is where records of its class are written and retained; creating a personal-eu "
        "topic in a us region invites producers there to store EU personal data outside the EU."
    )
    severity = "critical"
    params = (DATA_CLASSES, FALLBACK_TO_PUBLISHED)

    def check(self, ctx: Context) -> None:
        for topic in ctx.view.of_kind(STRIMZI, "KafkaTopic"):
            with ctx.guard(topic):
                data_class = topic.labels.get(LABEL_DATA_CLASS)
                if not data_class:
                    continue
                region_id = topic.labels.get(LABEL_REGION) or ctx.view.region_id
                jurisdiction = region_jurisdiction(ctx.view, region_id, topic)
                allowed = class_jurisdictions(ctx.view, ctx.params, data_class)
                if allowed is None:
                    ctx.report(topic, unknown_class(ctx.view, self.id, data_class))
                elif jurisdiction is None:
                    ctx.report(
                        topic,
                        f"cannot tell the jurisdiction of region {region_id}; label the topic "
                        "rtdi-jurisdiction or make sure the stack reads the global topology",
                    )
                elif jurisdiction not in allowed:
                    ctx.report(
                        topic,
                        f"topic of data class {data_class!r} in region {region_id} (jurisdiction "
                        f"{jurisdiction!r}); {data_class!r} may only live in {', '.join(allowed)}: "
                        "remove the topic from this region",
                    )


RULE = DataClassResidency()
