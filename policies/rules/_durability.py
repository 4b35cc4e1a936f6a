"""What the durability rules share: the parameters and the replication-factor/ISR arithmetic."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from policies.engine import Param
from policies.view import as_bool, as_int, show

MIN_RF = Param(
    "minReplicationFactor",
    3,
    "Fewest replicas of every partition (and of Kafka's internal topics).",
    {"type": "integer", "minimum": 1},
)
MIN_ISR = Param(
    "minInsyncReplicas",
    2,
    "Fewest in-sync replicas an acks=all write needs; must also stay below the "
    "replication factor so one broker can be down.",
    {"type": "integer", "minimum": 1},
)

# Kafka's own defaults for what a cluster leaves unset, and MSK's (for a 3-AZ cluster).
KAFKA_DEFAULTS = {
    "default.replication.factor": 1,
    "min.insync.replicas": 1,
    "unclean.leader.election.enable": False,
    "offsets.topic.replication.factor": 3,
    "transaction.state.log.replication.factor": 3,
    "transaction.state.log.min.isr": 2,
}
MSK_DEFAULTS = {**KAFKA_DEFAULTS, "default.replication.factor": 3, "min.insync.replicas": 2}


def cluster_problems(
    get: Callable[[str], Any],
    defaults: Mapping[str, Any],
    params: Mapping[str, Any],
    where: str,
    who: str,
) -> list[str]:
    """Problems with a cluster's broker settings. ``get(key)`` reads a setting (None if unset)."""
    min_rf, min_isr = params["minReplicationFactor"], params["minInsyncReplicas"]
    out = []

    def value(key: str, convert=as_int) -> tuple[Any, str]:
        raw = get(key)
        if raw is None:
            return defaults[key], f" ({who}'s default when unset)"
        return convert(raw), ""

    rf, rf_note = value("default.replication.factor")
    isr, isr_note = value("min.insync.replicas")
    if rf is None or rf < min_rf:
        out.append(
            f"default.replication.factor is {rf}{rf_note}; set {where}default.replication.factor "
            f"to at least {min_rf}"
        )
    if isr is None or isr < min_isr:
        out.append(
            f"min.insync.replicas is {isr}{isr_note}; set {where}min.insync.replicas to at least "
            f"{min_isr}"
        )
    elif rf is not None and isr >= rf:
        out.append(
            f"min.insync.replicas ({isr}) is not below default.replication.factor ({rf}): one "
            f"broker down stops every acks=all producer; set {where}min.insync.replicas to at most "
            f"{rf - 1}"
        )
    unclean, _ = value("unclean.leader.election.enable", as_bool)
    if unclean is not False:
        out.append(
            f"unclean.leader.election.enable is {show(get('unclean.leader.election.enable'))}: an "
            "out-of-sync replica may become leader and drop acknowledged writes; set "
            f"{where}unclean.leader.election.enable to false"
        )
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor"):
        v, note = value(key)
        if v is None or v < min_rf:
            out.append(f"{key} is {v}{note}; set {where}{key} to at least {min_rf}")
    v, note = value("transaction.state.log.min.isr")
    if v is None or v < min_isr:
        out.append(
            f"transaction.state.log.min.isr is {v}{note}; set {where}transaction.state.log.min.isr "
            f"to at least {min_isr}"
        )
    return out


def topic_problems(
    rf: int | None,
    isr: int | None,
    unclean: Any,
    effective_rf: int | None,
    effective_isr: int | None,
    params: Mapping[str, Any],
    where: Mapping[str, str],
) -> list[str]:
    """A topic's override problems; ``rf``/``isr``/``unclean``: what it sets (None: inherits)."""
    min_rf, min_isr = params["minReplicationFactor"], params["minInsyncReplicas"]
    out = []
    if rf is not None and rf < min_rf:
        out.append(f"replication factor {rf}; set {where['rf']} to at least {min_rf}")
    if isr is not None and isr < min_isr:
        out.append(
            f"min.insync.replicas {isr}; set {where['config']}min.insync.replicas to at least "
            f"{min_isr}"
        )
    if (
        (rf is not None or isr is not None)
        and effective_rf is not None
        and effective_isr is not None
        and effective_isr >= effective_rf
        and effective_isr >= min_isr
    ):
        out.append(
            f"min.insync.replicas ({effective_isr}) is not below the replication factor "
            f"({effective_rf}): one broker down stops acks=all producers; lower "
            f"{where['config']}min.insync.replicas or raise {where['rf']}"
        )
    if unclean is not None and as_bool(unclean) is not False:
        out.append(
            f"unclean.leader.election.enable is {show(unclean)}; set "
            f"{where['config']}unclean.leader.election.enable to false (or remove the override)"
        )
    return out
