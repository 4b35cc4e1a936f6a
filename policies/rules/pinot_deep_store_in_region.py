"""Data placement: a region's Pinot keeps its deep store (every committed segment) in the region.

Where the deep store is comes from the configuration the chart writes into each component's
``.conf`` file (``<component>.extra.configs``): the controller's ``controller.data.dir`` and the
servers' ``pinot.server.instance.segment.store.uri``, where committing servers upload segments
themselves. Which stores are the region's is decided as for Flink state (see
`flink-state-in-region`): a bucket the stack declares located in its region, or a store under
the stack's own object-store roots (on-prem HDFS, a shared S3-compatible bucket's prefix).
"""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules import _pinot
from policies.rules._flink import outside_region

KEYS = {
    "controller": "controller.data.dir",
    "server": "pinot.server.instance.segment.store.uri",
}


class PinotDeepStoreInRegion(Rule):
    id = "pinot-deep-store-in-region"
    category = "data placement"
    description = (
        "Every Pinot Helm release (the apache/pinot chart) whose controllers or servers run keeps "
        "its deep store in a store of its stack's region: controller.data.dir in "
        "controller.extra.configs (required where controllers run) and "
        "pinot.server.instance.segment.store.uri in server.extra.configs (where servers run) are "
        "s3, gs or hdfs URIs in a bucket the stack declares located in its region, or under the "
        "stack's own object-store roots."
    )
    why = (
        "The deep store holds every committed segment, i.e. every row the region's tables "
        "serve: a deep store in another region moves that data across a jurisdiction and ties "
        "the region's recovery (a replaced server downloads its segments from it) to a second "
        "region being up; a controller with no deep store keeps segments on its own disk only."
    )
    severity = "critical"

    def check(self, ctx: Context) -> None:
        view = ctx.view
        for release in _pinot.releases(view):
            with ctx.guard(release):
                name = _pinot.release_name(release)
                for component, key in KEYS.items():
                    if _pinot.replicas(release, component) <= 0:
                        continue
                    uri = _pinot.configs(release, component).get(key)
                    if uri is None:
                        if component == "controller":
                            ctx.report(
                                release,
                                f"Pinot release {name}: its controllers have no deep store "
                                f"({key} is not in controller.extra.configs); set it to the "
                                "region's pinot-deep-store bucket",
                            )
                        continue
                    why = outside_region(view, view.region_id, uri)
                    if why:
                        ctx.report(
                            release,
                            f"Pinot release {name}: {component} {key} {uri!r} {why}; use the "
                            "region's own pinot-deep-store bucket",
                        )


RULE = PinotDeepStoreInRegion()
