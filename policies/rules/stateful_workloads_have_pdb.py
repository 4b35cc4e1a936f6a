"""Availability: stateful workloads are protected by PodDisruptionBudgets."""

from __future__ import annotations

from typing import Any

from policies.engine import Context, Param, Rule
from policies.rules._common import kafkas
from policies.view import as_int, dig, items, show, str_map, text

STATEFUL_SET = ("apps", "StatefulSet")
PDB = ("policy", "PodDisruptionBudget")


class StatefulWorkloadsHavePdb(Rule):
    id = "stateful-workloads-have-pdb"
    category = "availability"
    description = (
        "Every StatefulSet has a PodDisruptionBudget in its namespace whose selector matches its "
        "pod labels; every Strimzi Kafka keeps its PodDisruptionBudget at maxUnavailable <= "
        "maxUnavailable (Strimzi creates one with maxUnavailable 1 when "
        "spec.kafka.template.podDisruptionBudget is unset). StatefulSets inside Helm releases are "
        "not visible to the rule."
    )
    why = (
        "Node drains during upgrades evict pods freely without a budget: draining two brokers (or "
        "two replicas of any quorum) at once takes partitions offline or loses the quorum."
    )
    severity = "medium"
    enforcement = "advisory"
    params = (
        Param(
            "maxUnavailable",
            1,
            "Most Kafka broker pods a voluntary disruption may take at once.",
            {"type": "integer", "minimum": 0},
        ),
    )

    def check(self, ctx: Context) -> None:
        budgets = ctx.view.of_kind(*PDB)
        for sts in ctx.view.of_kind(*STATEFUL_SET):
            with ctx.guard(sts):
                labels = str_map(dig(sts.props, "spec", "template", "metadata", "labels"))
                if not any(
                    b.k8s_namespace == sts.k8s_namespace
                    and _selects(dig(b.props, "spec", "selector"), labels)
                    for b in budgets
                ):
                    ctx.report(
                        sts,
                        f"StatefulSet {sts.k8s_name} has no PodDisruptionBudget selecting its pods "
                        f"({_show(labels)}); add one with maxUnavailable: 1 in namespace "
                        f"{sts.k8s_namespace}",
                    )
        most = ctx["maxUnavailable"]
        for kafka in kafkas(ctx.view):
            with ctx.guard(kafka):
                raw = dig(
                    kafka.props,
                    "spec",
                    "kafka",
                    "template",
                    "podDisruptionBudget",
                    "maxUnavailable",
                )
                value = as_int(raw)
                if raw is not None and (value is None or value > most):
                    ctx.report(
                        kafka,
                        f"Kafka {kafka.k8s_name}: podDisruptionBudget.maxUnavailable is "
                        f"{show(raw)}; set spec.kafka.template.podDisruptionBudget.maxUnavailable "
                        f"to at most {most}",
                    )


def _selects(selector: Any, labels: dict[str, str]) -> bool:
    """policy/v1 selectors: a missing one selects no pod, an empty one selects every pod."""
    if selector is None:
        return False
    match = str_map(dig(selector, "matchLabels"))
    expressions = items(dig(selector, "matchExpressions"))
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in expressions:
        key, op = text(dig(expr, "key")), text(dig(expr, "operator"))
        values = [v for v in items(dig(expr, "values")) if isinstance(v, str)]
        present = key is not None and key in labels
        value = labels.get(key) if key is not None else None
        if op == "In" and value not in values:
            return False
        if op == "NotIn" and value in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _show(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"


RULE = StatefulWorkloadsHavePdb()
