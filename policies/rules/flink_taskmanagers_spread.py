"""Availability: a Flink job's TaskManagers spread over zones and have a PodDisruptionBudget.

Both are matched against the labels TaskManager pods actually get, not the ones rtdi means to
give them: the pod templates' labels (``spec.podTemplate``, then ``spec.taskManager.podTemplate``)
overlaid with Flink's own (``app: <FlinkDeployment name>``, ``component: taskmanager``,
``type: flink-native-kubernetes``). A spread constraint or a budget whose selector misses those
pods constrains nothing.
"""

from __future__ import annotations

from policies.engine import Context, Param
from policies.rules._flink import (
    DeploymentRule,
    name_of,
    selects,
    taskmanager_labels,
    template_value,
)
from policies.view import ZONE_KEY, Resource, StackView, as_int, dig, items, show, text

PDB = ("policy", "PodDisruptionBudget")


class FlinkTaskmanagersSpread(DeploymentRule):
    id = "flink-taskmanagers-spread"
    category = "availability"
    description = (
        "Every FlinkDeployment's TaskManager pod template (spec.taskManager.podTemplate, else "
        "spec.podTemplate) has a topologySpreadConstraint on topology.kubernetes.io/zone with "
        "maxSkew <= maxSkew whose labelSelector selects the TaskManager pods, and a "
        "PodDisruptionBudget in its namespace selects those pods with maxUnavailable <= "
        "maxUnavailable (when set as a number). Pods are matched by the labels they get: the "
        "templates' plus Flink's app: <name>, component: taskmanager, type: "
        "flink-native-kubernetes."
    )
    why = (
        "TaskManagers packed into one zone all go with it, and a node drain without a budget "
        "evicts them together: the job fails and replays from its last checkpoint, or, for an "
        "active/passive job, stops until the zone or the nodes come back."
    )
    severity = "medium"
    params = (
        Param(
            "maxSkew",
            1,
            "Largest maxSkew of the zone spread constraint.",
            {"type": "integer", "minimum": 1},
        ),
        Param(
            "maxUnavailable",
            1,
            "Most TaskManager pods a voluntary disruption may take at once.",
            {"type": "integer", "minimum": 1},
        ),
    )

    def deployment(self, ctx: Context, view: StackView, dep: Resource) -> None:
        name = name_of(dep)
        labels = taskmanager_labels(dep)
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        constraints = items(template_value(dep, "taskManager", "spec", "topologySpreadConstraints"))
        zonal = [c for c in constraints if dig(c, "topologyKey") == ZONE_KEY]
        spread = [c for c in zonal if selects(dig(c, "labelSelector"), labels)]
        skews = [as_int(dig(c, "maxSkew")) for c in spread]
        if not zonal:
            ctx.report(
                dep,
                f"FlinkDeployment {name}: its TaskManagers have no topologySpreadConstraint on "
                f"{ZONE_KEY}; add one to spec.taskManager.podTemplate selecting {shown}",
            )
        elif not spread:
            ctx.report(
                dep,
                f"FlinkDeployment {name}: its zone spread constraint selects none of its "
                f"TaskManager pods ({shown}); select app: {name}, component: taskmanager",
            )
        elif not any(s is not None and 1 <= s <= ctx["maxSkew"] for s in skews):
            ctx.report(
                dep,
                f"FlinkDeployment {name}: its zone spread maxSkew is "
                f"{', '.join(show(dig(c, 'maxSkew')) for c in spread)}; set at most "
                f"{ctx['maxSkew']}",
            )
        budgets = [
            b
            for b in view.of_kind(*PDB)
            if b.k8s_namespace == dep.k8s_namespace
            and selects(dig(b.props, "spec", "selector"), labels)
        ]
        if not budgets:
            ctx.report(
                dep,
                f"FlinkDeployment {name}: no PodDisruptionBudget in namespace "
                f"{dep.k8s_namespace} selects its TaskManager pods ({shown}); add one with "
                f"maxUnavailable: {ctx['maxUnavailable']}",
            )
        for b in budgets:
            raw = dig(b.props, "spec", "maxUnavailable")
            value = as_int(raw)
            too_many = value is None or value > ctx["maxUnavailable"]
            if raw is not None and text(raw) is None and too_many:
                ctx.report(
                    b,
                    f"PodDisruptionBudget {b.k8s_name} of FlinkDeployment {name}'s TaskManagers "
                    f"allows {show(raw)} unavailable; set maxUnavailable to at most "
                    f"{ctx['maxUnavailable']}",
                )


RULE = FlinkTaskmanagersSpread()
