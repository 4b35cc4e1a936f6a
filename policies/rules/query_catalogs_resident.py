"""Data placement: a region's query engine reads only what its jurisdiction may read.

Read from what decides it, never from labels:

* the engine is a Helm release of the `trino` or `presto` chart; its catalogs are the chart's
  ``catalogs`` (Trino) or ``catalog`` (Presto) values, the very properties files the engine
  loads. Every catalog must be one this rule can place: a Hive catalog whose metastore is a
  Service of the region's own cluster (``*.svc``), a Pinot catalog whose controllers are; any
  other connector (a database, another region's Pinot by its public name) is a violation, since
  nothing here says where its data lives;
* the archive's tables are the ``CREATE TABLE ... external_location = '...'`` statements of the
  scripts the stack's ConfigMaps hold (what the partition job runs): each location must be in a
  store of the region (as `flink-state-in-region` places a URI), and its last path segment, the
  physical topic the archival job wrote there, must be a topology topic whose data class the
  region's jurisdiction may hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policies.engine import Context, Rule
from policies.rules._common import (
    DATA_CLASSES,
    FALLBACK_TO_PUBLISHED,
    class_jurisdictions,
    class_of_topic,
    unknown_class,
)
from policies.rules._flink import outside_region
from policies.view import Resource, StackView, dig, text

RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
ENGINE_CHARTS = ("trino", "presto")
HIVE = ("hive", "hive-hadoop2")
TABLE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.\"]+)\s*\(.*?"
    r"external_location\s*=\s*'([^']*)'",
    re.S | re.I,
)


def chart_name(chart: str) -> str:
    return chart.rstrip("/").rsplit("/", 1)[-1].removesuffix(".tgz")


def parse_properties(body: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in body.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def engine_catalogs(release: Resource) -> dict[str, dict[str, str]] | None:
    """The catalogs of an engine release (name -> properties); None if not an engine."""
    if chart_name(text(release.props.get("chart")) or "") not in ENGINE_CHARTS:
        return None
    values = release.props.get("values")
    if not isinstance(values, Mapping):
        return {}
    raw = values.get("catalogs", values.get("catalog")) or {}
    extra = values.get("additionalCatalogs") or {}
    found: dict[str, dict[str, str]] = {}
    for source in (raw, extra):
        if isinstance(source, Mapping):
            for name, body in source.items():
                found[str(name)] = parse_properties(body if isinstance(body, str) else "")
    return found


def in_cluster(address: str) -> bool:
    """A Kubernetes Service address of the cluster itself: `<svc>.<ns>.svc[.cluster.local]`."""
    host = re.sub(r"^\w+://", "", address.strip()).split("/", 1)[0].rsplit(":", 1)[0]
    return bool(host) and (host.endswith(".svc") or host.endswith(".svc.cluster.local"))


def tables(view: StackView) -> Iterator[tuple[Resource, str, str]]:
    """(ConfigMap, table, location) of every external table a ConfigMap's script declares."""
    for cm in view.of_type(CONFIGMAP):
        data = dig(cm.props, "data")
        if not isinstance(data, Mapping):
            continue
        for body in data.values():
            if isinstance(body, str):
                for name, location in TABLE.findall(body):
                    yield cm, name, location


class QueryCatalogsResident(Rule):
    id = "query-catalogs-resident"
    category = "data placement"
    description = (
        "A region's query engine (a Helm release of the trino or presto chart) has only catalogs "
        "it can place in its region: Hive with its metastore a Service of the region's cluster, "
        "Pinot with its controllers a Service of the region's cluster; and every external table "
        "a ConfigMap's script declares (CREATE TABLE ... external_location) lies in a store of "
        "the region and holds a topology topic (its location's last segment) whose data class "
        "the region's jurisdiction may hold."
    )
    why = (
        "An engine reads whatever its catalogs reach: a catalog over another region's metastore, "
        "Pinot or bucket, or a table over a personal-eu topic's archive in a us region, lets a "
        "query move data out of its jurisdiction as surely as a mirror would."
    )
    severity = "critical"
    params = (DATA_CLASSES, FALLBACK_TO_PUBLISHED)

    def check(self, ctx: Context) -> None:
        view = ctx.view
        for release in view.of_type(RELEASE):
            with ctx.guard(release):
                found = engine_catalogs(release)
                if found is not None:
                    self._catalogs(ctx, release, found)
        for cm, table, location in tables(view):
            with ctx.guard(cm):
                self._table(ctx, view, cm, table, location)

    def _catalogs(
        self, ctx: Context, release: Resource, catalogs: Mapping[str, Mapping[str, Any]]
    ) -> None:
        for name, props in sorted(catalogs.items()):
            connector = str(props.get("connector.name", ""))
            if connector in HIVE:
                kind = str(props.get("hive.metastore", "thrift"))
                uris = [u for u in str(props.get("hive.metastore.uri", "")).split(",") if u]
                if kind != "thrift" or not uris:
                    ctx.report(
                        release,
                        f"catalog {name!r}: metastore {kind!r} without a Thrift URI of the "
                        "region's cluster cannot be placed; use the region's Hive metastore",
                    )
                for uri in uris:
                    if not in_cluster(uri):
                        ctx.report(
                            release,
                            f"catalog {name!r}: metastore {uri!r} is not a Service of the "
                            "region's cluster",
                        )
            elif connector == "pinot":
                urls = [u for u in str(props.get("pinot.controller-urls", "")).split(",") if u]
                for url in urls or ["(none)"]:
                    if not in_cluster(url):
                        ctx.report(
                            release,
                            f"catalog {name!r}: Pinot controller {url!r} is not a Service of "
                            "the region's cluster",
                        )
            else:
                ctx.report(
                    release,
                    f"catalog {name!r}: connector {connector or '(none)'!r} is not one this rule "
                    "can place in the region (allowed: hive, hive-hadoop2, pinot)",
                )

    def _table(
        self, ctx: Context, view: StackView, cm: Resource, table: str, location: str
    ) -> None:
        region = view.region_id
        where = outside_region(view, region, location)
        if where:
            ctx.report(cm, f"table {table}: location {location!r} {where}")
        topic = location.rstrip("/").rsplit("/", 1)[-1]
        if view.published is None:
            ctx.report(
                cm,
                f"table {table}: cannot tell the data class of {topic!r}: the global topology "
                "is not available",
            )
            return
        data_class = class_of_topic(view, topic)
        if data_class is None:
            ctx.report(
                cm,
                f"table {table}: {topic!r} (its location's last segment) is not a topic of the "
                "topology, so its data class is unknown",
            )
            return
        allowed = class_jurisdictions(view, ctx.params, data_class)
        jurisdiction = view.jurisdiction_of_region(region)
        if allowed is None:
            ctx.report(cm, unknown_class(view, self.id, data_class))
        elif jurisdiction not in allowed:
            ctx.report(
                cm,
                f"table {table}: topic {topic!r} of data class {data_class!r} in region "
                f"{region} (jurisdiction {jurisdiction!r}); {data_class!r} may only be read in "
                f"{', '.join(allowed)}",
            )


RULE = QueryCatalogsResident()
