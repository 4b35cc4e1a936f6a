"""Durability: peer-to-peer segment download only where a peer exists (replication >= 2).

Read from the table configs the apply Job sends to the controller (`_pinot.tables`): a table
with ``segmentsConfig.peerSegmentDownloadScheme`` must keep at least two replicas of each
segment (``replication``, else ``replicasPerPartition``), and the scheme must be one Pinot
accepts (http or https). Pinot 1.5's TableConfigUtils refuses the same table at creation; the
rule catches it in the plan, before the Job fails in the cluster.
"""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.rules import _pinot
from policies.view import dig, show, text


class PinotPeerDownloadReplicated(Rule):
    id = "pinot-peer-download-replicated"
    category = "durability"
    description = (
        "Every Pinot table config a Job applies (JSON with tableName and tableType in a "
        "ConfigMap a Job mounts) that sets segmentsConfig.peerSegmentDownloadScheme sets it to "
        "http or https and keeps at least minReplication replicas (segmentsConfig.replication, "
        "else replicasPerPartition)."
    )
    why = (
        "With peer download a committed segment may exist only on the servers that built it "
        "until the deep store has it (the deep store may be down when it commits): with one "
        "replica, losing that server loses the segment's rows, and no peer can serve it."
    )
    severity = "high"
    params = (
        Param(
            "minReplication",
            2,
            "Fewest replicas of a table with peer segment download.",
            {"type": "integer", "minimum": 2},
        ),
    )

    def check(self, ctx: Context) -> None:
        for table in _pinot.tables(ctx.view):
            with ctx.guard(table.configmap):
                scheme = text(dig(table.config, "segmentsConfig", "peerSegmentDownloadScheme"))
                if scheme is None:
                    continue
                where = f"Pinot table {table.name} (ConfigMap {table.configmap.k8s_name})"
                if scheme.lower() not in ("http", "https"):
                    ctx.report(
                        table.configmap,
                        f"{where}: peerSegmentDownloadScheme {scheme!r} is not http or https",
                    )
                replicas = _pinot.replication(table.config)
                if replicas is None or replicas < ctx["minReplication"]:
                    raw = dig(table.config, "segmentsConfig", "replication")
                    ctx.report(
                        table.configmap,
                        f"{where}: peer segment download with replication "
                        f"{replicas if replicas is not None else show(raw)}; keep at least "
                        f"{ctx['minReplication']} replicas or drop peerSegmentDownloadScheme",
                    )


RULE = PinotPeerDownloadReplicated()
