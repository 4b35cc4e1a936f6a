"""Data placement: a Pinot table consumes only topics whose data class its region allows.

The topics are the ones the table's stream configs name (``stream.kafka.topic.name`` of each
config in ``ingestionConfig.streamIngestionConfig.streamConfigMaps``, in the table configs the
apply Job sends to the controller); each topic's data class is the topology's (a physical topic,
or a ``<region>.<topic>`` copy on an aggregate), never a label. The region is the stack's.
"""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules import _pinot
from policies.rules._common import (
    DATA_CLASSES,
    FALLBACK_TO_PUBLISHED,
    class_jurisdictions,
    class_of_topic,
    unknown_class,
)
from policies.view import dig, text


class PinotTopicsDataClass(Rule):
    id = "pinot-topics-data-class"
    category = "data placement"
    description = (
        "Every Pinot table config a Job applies consumes only topics "
        "(stream.kafka.topic.name of each stream config) whose data class (the topology's) may "
        "live in its stack's region's jurisdiction; a topic the topology does not know is a "
        "violation."
    )
    why = (
        "A table keeps every row it consumes in its segments, on its servers and in the deep "
        "store: consuming a personal-eu topic in a us region moves EU personal data out of the "
        "EU as surely as mirroring it would."
    )
    severity = "critical"
    params = (DATA_CLASSES, FALLBACK_TO_PUBLISHED)

    def check(self, ctx: Context) -> None:
        view = ctx.view
        region = view.region_id
        jurisdiction = view.jurisdiction_of_region(region)
        for table in _pinot.tables(view):
            with ctx.guard(table.configmap):
                topics = [
                    t
                    for s in _pinot.stream_configs(table.config)
                    if (t := text(dig(s, "stream.kafka.topic.name")))
                ]
                for topic in topics:
                    where = f"Pinot table {table.name} consumes topic {topic!r}"
                    if view.published is None:
                        ctx.report(
                            table.configmap,
                            f"{where}: cannot tell its data class: the global topology is not "
                            "available (check this stack with its global stack's plan)",
                        )
                        continue
                    data_class = class_of_topic(view, topic)
                    if data_class is None:
                        ctx.report(
                            table.configmap,
                            f"{where}, which is not a topic of the topology, so its data class "
                            "is unknown; consume topics declared in the global stack",
                        )
                        continue
                    allowed = class_jurisdictions(view, ctx.params, data_class)
                    if allowed is None:
                        ctx.report(
                            table.configmap, f"{where}: {unknown_class(view, self.id, data_class)}"
                        )
                    elif jurisdiction is None:
                        ctx.report(
                            table.configmap,
                            f"{where}: cannot tell the jurisdiction of region {region}",
                        )
                    elif jurisdiction not in allowed:
                        ctx.report(
                            table.configmap,
                            f"{where} of data class {data_class!r} in region {region} "
                            f"(jurisdiction {jurisdiction!r}); {data_class!r} may only be "
                            f"processed in {', '.join(allowed)}: serve the table only where its "
                            "topic may live",
                        )


RULE = PinotTopicsDataClass()
