"""Data placement: a topic of a data class exists only in regions whose jurisdiction may hold it."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import (
    DATA_CLASSES,
    FALLBACK_TO_PUBLISHED,
    GMK_TOPIC,
    MSK_TOPIC,
    STRIMZI,
    class_jurisdictions,
    class_of_topic,
    label_disagrees,
    region_of,
    unknown_class,
)
from policies.view import LABEL_DATA_CLASS, LABEL_REGION, Resource, text


class DataClassResidency(Rule):
    id = "data-class-residency"
    category = "data placement"
    description = (
        "Every topic (Strimzi KafkaTopic spec.topicName, MSK Topic name, Managed Kafka Topic "
        "topicId) lives in a region whose jurisdiction its data class allows; the class is the "
        "topology's (rtdi:kafka.topics, retry/dlq and mirrored <region>.<topic> names mapped back "
        "to their topic), the region the provider's or the stack's. A topic the topology does not "
        "know, and an rtdi-data-class or rtdi-region label that disagrees, are violations."
    )
    why = (
        "A topic is where records of its class are written and retained; creating a personal-eu "
        "topic in a us region invites producers there to store EU personal data outside the EU. "
        "Labels are written by the same code that may be wrong, so they are checked, not trusted."
    )
    severity = "critical"
    params = (DATA_CLASSES, FALLBACK_TO_PUBLISHED)

    def check(self, ctx: Context) -> None:
        view = ctx.view
        topics = [
            *view.of_kind(STRIMZI, "KafkaTopic"),
            *view.of_type(MSK_TOPIC),
            *view.of_type(GMK_TOPIC),
        ]
        for topic in topics:
            with ctx.guard(topic):
                self._topic(ctx, topic)

    def _topic(self, ctx: Context, topic: Resource) -> None:
        view = ctx.view
        name = topic_name(topic)
        if view.published is None:
            ctx.report(
                topic,
                f"cannot tell the data class of topic {name!r}: the global topology is not "
                "available (check this stack together with its global stack's plan or outputs)",
            )
            return
        data_class = class_of_topic(view, name) if name else None
        region_id = region_of(view, topic)
        for key, fact in ((LABEL_DATA_CLASS, data_class), (LABEL_REGION, region_id)):
            lie = label_disagrees(topic, key, fact)
            if lie:
                ctx.report(topic, f"topic {name!r} {lie}")
        if data_class is None:
            ctx.report(
                topic,
                f"topic {name!r} is not a topic of the topology (rtdi:kafka.topics, their retry "
                "and dlq topics, or <region>.<topic> copies), so its data class and allowed "
                "regions are unknown; declare it in the global stack or remove it",
            )
            return
        jurisdiction = view.jurisdiction_of_region(region_id)
        allowed = class_jurisdictions(view, ctx.params, data_class)
        if allowed is None:
            ctx.report(topic, unknown_class(view, self.id, data_class))
        elif jurisdiction is None:
            ctx.report(
                topic,
                f"topic {name!r}: cannot tell the jurisdiction of region {region_id}; it is not a "
                "region of the global topology",
            )
        elif jurisdiction not in allowed:
            ctx.report(
                topic,
                f"topic {name!r} of data class {data_class!r} in region {region_id} (jurisdiction "
                f"{jurisdiction!r}); {data_class!r} may only live in {', '.join(allowed)}: "
                "remove the topic from this region",
            )


def topic_name(topic: Resource) -> str | None:
    """The name Kafka knows: KafkaTopic spec.topicName (else metadata.name), MSK ``name``,
    Managed Kafka ``topicId``."""
    if topic.package == "kubernetes":
        from policies.view import dig

        return text(dig(topic.props, "spec", "topicName")) or topic.k8s_name
    for key in ("topicId", "name"):
        value = text(topic.props.get(key))
        if value:
            return value
    return None


RULE = DataClassResidency()
