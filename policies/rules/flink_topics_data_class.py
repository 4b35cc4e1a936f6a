"""Data placement: a Flink job reads and writes only topics whose data class its region allows.

The topics are the ones the job will actually open: the Kafka tables (``connector`` kafka or
upsert-kafka) of the SQL script its runner reads (followed from ``--sql-file`` through the
JobManager's volume mounts to the ConfigMap, see `_flink`), their ``topic`` lists and their
``topic-pattern`` regexes. A pattern is a ``java.util.regex`` the Kafka source matches against
whole topic names, so it is translated as `_javaregex` does and matched against every topic name
the topology can put on a cluster (each topic, its retry and dead-letter topics, and the
``<region>.<topic>`` copies MirrorMaker 2 makes). Each name's data class is the topology's, never
a label; the region is the job's stack's.
"""

from __future__ import annotations

import re

from policies.engine import Context
from policies.rules._common import (
    DATA_CLASSES,
    FALLBACK_TO_PUBLISHED,
    class_jurisdictions,
    class_of_topic,
    region_ids,
    topic_classes,
    unknown_class,
)
from policies.rules._flink import (
    DeploymentRule,
    is_kafka,
    kafka_topics,
    name_of,
    sql_script,
)
from policies.rules._javaregex import Untranslatable, translate
from policies.view import Resource, StackView


class FlinkTopicsDataClass(DeploymentRule):
    id = "flink-topics-data-class"
    category = "data placement"
    description = (
        "Every FlinkDeployment reads and writes only topics whose data class (the topology's) "
        "may live in its region's jurisdiction: every topic its SQL script's Kafka tables name "
        "(topic, ;-separated) or match (topic-pattern, as java.util.regex over the topology's "
        "topic, retry, dlq and <region>.<topic> names). A topic the topology does not know, a "
        "pattern that matches none or cannot be read, and a job whose script cannot be read "
        "(a jar job, a missing ConfigMap) are violations."
    )
    why = (
        "A job processes and keeps in its state every record it reads, and writes its results "
        "where its sinks say: reading a personal-eu topic from a us region moves EU personal "
        "data out of the EU as surely as mirroring it would. Only the tables the job opens say "
        "what it reads, not the labels or spec it was declared from."
    )
    severity = "critical"
    params = (DATA_CLASSES, FALLBACK_TO_PUBLISHED)

    def deployment(self, ctx: Context, view: StackView, dep: Resource) -> None:
        name = name_of(dep)
        source = sql_script(view, dep)
        if source.script is None:
            ctx.report(
                dep,
                f"FlinkDeployment {name}: cannot tell which topics it reads: it {source.problem}"
                if source.jar
                else f"FlinkDeployment {name}: cannot read its SQL script: {source.problem}",
            )
            return
        if view.published is None:
            ctx.report(
                dep,
                f"FlinkDeployment {name}: cannot tell the data classes of its topics: the global "
                "topology is not available (check this stack with its global stack's plan)",
            )
            return
        region = view.region_id
        jurisdiction = view.jurisdiction_of_region(region)
        known = _all_names(view)
        for table in source.script.tables.values():
            if not is_kafka(table):
                continue
            topics, pattern = kafka_topics(table)
            named: list[tuple[str, str | None]] = [(t, class_of_topic(view, t)) for t in topics]
            if pattern is not None:
                try:
                    compiled = re.compile(translate(pattern))
                except (Untranslatable, re.error) as exc:
                    ctx.report(
                        dep,
                        f"FlinkDeployment {name}: table {table.name}'s topic-pattern "
                        f"{pattern!r} cannot be read as Kafka reads it ({exc}); name its topics",
                    )
                    continue
                matched = sorted(n for n in known if compiled.fullmatch(n))
                if not matched:
                    ctx.report(
                        dep,
                        f"FlinkDeployment {name}: table {table.name}'s topic-pattern "
                        f"{pattern!r} matches no topic of the topology; name topics it knows",
                    )
                named += [(n, known[n]) for n in matched]
            if not topics and pattern is None:
                ctx.report(dep, f"FlinkDeployment {name}: Kafka table {table.name} names no topic")
            for topic, data_class in named:
                where = f"FlinkDeployment {name} (table {table.name}) uses topic {topic!r}"
                if data_class is None:
                    ctx.report(
                        dep,
                        f"{where}, which is not a topic of the topology, so its data class is "
                        "unknown; use topics declared in the global stack",
                    )
                    continue
                allowed = class_jurisdictions(view, ctx.params, data_class)
                if allowed is None:
                    ctx.report(dep, f"{where}: {unknown_class(view, self.id, data_class)}")
                elif jurisdiction is None:
                    ctx.report(
                        dep,
                        f"{where}: cannot tell the jurisdiction of region {region}; it is not a "
                        "region of the global topology",
                    )
                elif jurisdiction not in allowed:
                    ctx.report(
                        dep,
                        f"{where} of data class {data_class!r} in region {region} (jurisdiction "
                        f"{jurisdiction!r}); {data_class!r} may only be processed in "
                        f"{', '.join(allowed)}: run the job only where its topics may live",
                    )


def _all_names(view: StackView) -> dict[str, str]:
    """Every topic name the topology can put on a cluster, with its data class."""
    classes = topic_classes(view) or {}
    out = dict(classes)
    for region in region_ids(view):
        out.update({f"{region}.{name}": c for name, c in classes.items()})
    return out


RULE = FlinkTopicsDataClass()
