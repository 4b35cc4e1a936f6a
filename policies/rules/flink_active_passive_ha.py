"""Availability: an active/passive Flink job has Kubernetes HA and a standby JobManager.

What makes a job active/passive, in the order of how directly it decides behaviour:

1. the job spec the global stack publishes (``rtdi.flinkJobs[].mode``): every regional stack
   builds its FlinkDeployments, their states and their HA from it, so it is the one source the
   deployments are derived from (not a label the program writes about them); and
2. what the deployments themselves declare: a FlinkDeployment that some checked stack declares
   ``job.state: suspended`` is the passive side of a job that runs elsewhere, whatever the spec
   says (a spec edited by hand, a stack built from an older global stack).

Either makes the job active/passive, so neither can hide the other. A bounded backfill run of a
job (``<job>-backfill-...``) is its own FlinkDeployment, neither named in the specs nor suspended
anywhere, and needs no standby. Across stacks checked together, an active/passive job runs in at
most one region: two running copies are two writers of the same exactly-once output.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.engine import Context, Param, Rule
from policies.rules._flink import (
    HA_STORAGE_DIR,
    configuration,
    deployments,
    job_state,
    kubernetes_ha,
    name_of,
    replicas,
    setting,
)
from policies.view import Resource, StackView, items, text

ACTIVE_PASSIVE = "active-passive"


class FlinkActivePassiveHa(Rule):
    id = "flink-active-passive-ha"
    category = "availability"
    description = (
        "Every FlinkDeployment of an active/passive job (mode active-passive in the global "
        "stack's published job specs, or declared job.state: suspended by some checked stack) "
        "has Kubernetes HA (high-availability.type kubernetes or its factory class, with "
        "high-availability.storageDir) and at least minJobManagers JobManagers; across the "
        "stacks checked together such a job runs in at most one region."
    )
    why = (
        "An active/passive job is the only writer of its output: when its JobManager dies "
        "without a standby and HA metadata, the job stops until Kubernetes reschedules it and "
        "restarts from the last savepoint rather than the last checkpoint, and a second running "
        "copy writes every result twice."
    )
    severity = "high"
    cross_stack = True
    params = (
        Param(
            "minJobManagers",
            2,
            "Fewest JobManager replicas (one leader, the rest standbys) of an active/passive job.",
            {"type": "integer", "minimum": 2},
        ),
    )

    def check(self, ctx: Context) -> None:
        view = ctx.view
        specs = published_modes(view)
        suspended = {
            name_of(d)
            for d in view.everywhere()
            if d.is_kind("flink.apache.org", "FlinkDeployment") and job_state(d) == "suspended"
        }
        for dep in deployments(view):
            with ctx.guard(dep):
                name = name_of(dep)
                if specs.get(name) != ACTIVE_PASSIVE and name not in suspended:
                    continue
                why = (
                    "active/passive in the global stack's job specs"
                    if specs.get(name) == ACTIVE_PASSIVE
                    else "suspended in a region, so active/passive"
                )
                conf = configuration(view, dep)
                missing = []
                if not kubernetes_ha(conf):
                    missing.append("high-availability.type: kubernetes")
                if setting(conf, HA_STORAGE_DIR) is None:
                    missing.append("high-availability.storageDir")
                if replicas(dep) < ctx["minJobManagers"]:
                    missing.append(
                        f"jobManager.replicas >= {ctx['minJobManagers']} (has {replicas(dep)})"
                    )
                if missing:
                    ctx.report(
                        dep,
                        f"FlinkDeployment {name} is {why}, but lacks {', '.join(missing)}; a "
                        "passive job's standby JobManager takes over only with Kubernetes HA",
                    )

    def check_stacks(self, ctx: Context) -> None:
        running: dict[str, list[tuple[StackView, Resource]]] = {}
        modes: dict[str, str] = {}
        for view in ctx.views:
            modes.update(published_modes(view))
        suspended = {
            name_of(d)
            for view in ctx.views
            for d in deployments(view)
            if job_state(d) == "suspended"
        }
        for view in ctx.views:
            for dep in deployments(view):
                if job_state(dep) == "running":
                    running.setdefault(name_of(dep), []).append((view, dep))
        for name, where in sorted(running.items()):
            passive = modes.get(name) == ACTIVE_PASSIVE or name in suspended
            if passive and len(where) > 1:
                regions = ", ".join(v.region_id or v.stack for v, _ in where)
                for _, dep in where:
                    ctx.report(
                        dep,
                        f"active/passive job {name} runs in {len(where)} regions ({regions}); "
                        "it may run only in the primary and be suspended elsewhere",
                    )


def published_modes(view: StackView) -> dict[str, str]:
    """Job name -> mode, from the global stack's published job specs."""
    out: dict[str, str] = {}
    for spec in items((view.published or {}).get("flinkJobs")):
        if isinstance(spec, Mapping):
            name, mode = text(spec.get("name")), text(spec.get("mode"))
            if name and mode:
                out[name] = mode
    return out


RULE = FlinkActivePassiveHa()
