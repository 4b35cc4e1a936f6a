"""`rtdi drill plan --to REGION`: what a DR drill to REGION will do, worked out offline.

A drill is a primary flip (README "A primary flip") with the consumers moved and the loss
measured. Its plan is made from the project's own plans, nothing else: the stacks planned as they
are, and again with ``rtdi:topology.primary`` set to REGION over the global stack file (as
`pulumi config set` would, through ``Project.extra``, without editing a file). From those two
it says which stacks each step brings up and what their outputs must read afterwards (the
``expect`` of a step, which the step runner and the tests assert through a Workspace), the
per-stack diffs (`rtdi diff`'s code), the preflight checks with their thresholds, and
`rtdi check` on the post-flip plans.

Why the flip comes before the demotion: a regional stack reads the primary from the global
stack's *applied* outputs (a StackReference), so the old primary suspends its active-passive
jobs only in a `pulumi up` that follows the global stack's. The order is handover.py's: global
up; old primary up (stop with savepoint); offsets translated and committed; new primary up; the
other regions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.drill.groups import ActivePassiveGroup, active_passive_groups
from infra.plan import Project, StackPlan, plan_stacks, validate
from infra.plan.diff import StackDiff, StackPlanFiles, diff_stack
from infra.topology.errors import ConfigError, Issue
from infra.topology.jobs import job_regions, load_jobs
from infra.topology.model import GlobalStack, RegionalBase

WHERE = "rtdi drill"
PRIMARY_KEY = "rtdi:topology.primary"  # a Pulumi config path (`pulumi config set --path`)
MIRROR_MAKER = "kubernetes:kafka.strimzi.io/v1:KafkaMirrorMaker2"
REPLICATOR = "aws:msk/replicator:Replicator"
FLINK_DEPLOYMENT = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
DEFAULT_MAX_LAG = 1000  # records per partition still to mirror into the new primary
OFFSET_LAG_MAX = 100  # MirrorMaker 2's default `offset.lag.max` (MirrorSourceConfig)
STEPS = ("preflight", "flip", "demote", "sync-offsets", "promote", "verify")


@dataclass(frozen=True)
class ConfigSet:
    stack: str
    key: str  # a config path, e.g. rtdi:topology.primary
    value: str

    def command(self) -> str:
        return f"pulumi config set --stack {self.stack} --path '{self.key}' {self.value}"


@dataclass
class Check:
    """A preflight check: what it measures, its bound and where the bound comes from.
    ``offline`` is its result when the plan alone decides it (the policies), else None: it is
    measured on the live clusters by `rtdi drill run`."""

    name: str
    what: str
    threshold: str
    offline: str | None = None
    passed: bool = True

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "what": self.what, "threshold": self.threshold}
        if self.offline is not None:
            out["offline"] = self.offline
            out["passed"] = self.passed
        return out


@dataclass
class Step:
    """One step of the drill. ``stacks`` are brought up in this order; ``expect`` is, per stack,
    every top-level output that the step changes with its value afterwards (from the post-flip
    plan): what the runner asserts through its Workspace once the step is done."""

    name: str
    does: str
    needs: str
    config: list[ConfigSet] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    expect: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "does": self.does,
            "needs": self.needs,
            "config": [{"stack": c.stack, "key": c.key, "value": c.value} for c in self.config],
            "up": self.stacks,
            "actions": self.actions,
            "expect": self.expect,
        }


@dataclass
class DrillPlan:
    source: str  # the primary region now
    target: str  # the primary region after the drill
    global_stack: str
    regions: list[str]  # every region of the topology
    stacks: dict[str, str]  # region id -> its stack in this project
    groups: list[ActivePassiveGroup]
    steps: list[Step]
    checks: list[Check]
    diffs: list[StackDiff]  # global, old primary, new primary, then the others
    report: Any  # policies.engine.Report over the post-flip plans
    before: dict[str, StackPlan]
    after: dict[str, StackPlan]

    @property
    def violates(self) -> bool:
        """The flip would break a mandatory policy, or a check the plan decides failed."""
        return bool(self.report.mandatory) or not all(c.passed for c in self.checks)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def _bad(key: str, message: str, value: Any = None) -> ConfigError:
    issue = Issue(WHERE, key, message, value) if value is not None else Issue(WHERE, key, message)
    return ConfigError([issue])


def global_stacks(project: Project) -> list[str]:
    return [s for s in project.stack_names() if project.read(s).is_global]


def choose_global(project: Project, name: str | None) -> str:
    found = global_stacks(project)
    if name is not None:
        if name not in found:
            raise _bad("--global", f"not a global stack; allowed: {', '.join(found)}", name)
        return name
    if len(found) != 1:
        raise _bad(
            "--global",
            f"{len(found)} global stacks here; allowed: name one of {', '.join(found) or 'none'}",
        )
    return found[0]


def flipped(project: Project, global_stack: str, target: str) -> Project:
    """The project with the global stack's primary set to ``target`` over its file, as
    `pulumi config set --path rtdi:topology.primary` would (the caller's project is left as is)."""
    out = Project(project.root, project.stacks_dir, copy.deepcopy(project.extra))
    topology = json.loads(out.read(global_stack).values["rtdi:topology"])
    topology["primary"] = target
    out.extra.setdefault(global_stack, {})["rtdi:topology"] = json.dumps(topology)
    return out


def plan_drill(
    project: Project,
    target: str,
    *,
    global_stack: str | None = None,
    max_lag: int = DEFAULT_MAX_LAG,
    max_sync_lag: int | None = None,
    policy_config: str | None = None,
    before: dict[str, StackPlan] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DrillPlan:
    """The drill to ``target``; ConfigError (one line) on bad input, before anything is planned.

    ``before``: the stacks' converged plans when the caller has them already (the tests' session
    plans); planned here otherwise."""
    from policies.checker import load_config

    if max_lag < 0:
        raise _bad("--max-lag", "a number of records; allowed: 0 or more", max_lag)
    if max_sync_lag is not None and max_sync_lag < 0:
        raise _bad("--max-sync-lag", "a number of records; allowed: 0 or more", max_sync_lag)
    settings = load_config(policy_config)
    g = choose_global(project, global_stack)
    published = validate(project, [g])[g].model
    assert isinstance(published, GlobalStack)
    topology, kafka = published.topology, published.kafka
    source = topology.primary
    if target not in topology.region_ids:
        raise _bad(
            "--to",
            f"not a region of the topology of stack {g}; allowed: {', '.join(topology.region_ids)}",
            target,
        )
    if target == source:
        others = [r for r in topology.region_ids if r != source]
        raise _bad(
            "--to",
            f"already the primary region; allowed: another region ({', '.join(others)})",
            target,
        )
    regional = [s for s in project.stack_names() if s != g and not project.read(s).is_global]
    valid = validate(project, regional)
    stacks: dict[str, str] = {}
    for name, v in valid.items():
        if v.global_stack == g and isinstance(v.model, RegionalBase):
            stacks[v.model.region] = name
    for region, role in ((source, "old"), (target, "new")):
        if region not in stacks:
            raise _bad(
                "--to",
                f"the {role} primary {region} has no stack in {project.display(project.stacks_dir)}"
                f" reading {g}, and the drill brings it up; allowed: a region with a stack here "
                f"({', '.join(sorted(stacks))})",
                target,
            )
    jobs = load_jobs(topology, kafka)
    for job in jobs:
        if job.mode == "active-passive" and target not in job_regions(job, topology):
            raise _bad(
                "--to",
                f"the active-passive job {job.name} does not run there, and it follows the "
                f"primary; allowed: one of its regions ({', '.join(job_regions(job, topology))})",
                target,
            )
    wanted = [g, *(stacks[r] for r in topology.region_ids if r in stacks)]
    if before is None:
        before = plan_stacks(project, wanted, progress=progress)

    def shown(stack: str, n: int, total: int) -> None:
        if progress is not None:
            progress(f"{stack} (flipped)", n, total)

    after = plan_stacks(flipped(project, g, target), wanted, progress=shown)
    old, new = stacks[source], stacks[target]
    others = [stacks[r] for r in topology.region_ids if r in stacks and r not in (source, target)]
    order = [g, old, new, *others]
    diffs = [diff_stack(s, _files(before[s]), _files(after[s])) for s in order]
    groups = active_passive_groups(topology, kafka, jobs)
    report = _policies(after, wanted, settings)
    drill = DrillPlan(
        source, target, g, topology.region_ids, stacks, groups, [], [], diffs, report, before, after
    )
    drill.checks = _checks(drill, max_lag, max_sync_lag, policy_config)
    drill.steps = _steps(drill, old, new, others)
    missing = [r for r in topology.region_ids if r not in stacks]
    if missing:
        drill.step("promote").actions.append(
            f"not in this project, bring up where their stacks live: {', '.join(missing)}"
        )
    return drill


def _files(plan: StackPlan) -> StackPlanFiles:
    """A plan in memory as `rtdi diff` reads it from resources.json and outputs.json."""
    resources = json.loads(json.dumps([r.as_json() for r in plan.resources]))
    return StackPlanFiles(resources, json.loads(json.dumps(plan.outputs)))


def _policies(plans: dict[str, StackPlan], wanted: list[str], settings: Any) -> Any:
    """`rtdi check` over the post-flip plans, as `rtdi check --all` runs it."""
    from policies.engine import evaluate
    from policies.view import from_plan

    outputs = {name: plan.outputs for name, plan in plans.items()}
    views = [
        from_plan([r.as_json() for r in plans[s].resources], s, plans[s].outputs, outputs)
        for s in wanted
    ]
    return evaluate(views, settings)


def _changed_outputs(d: StackDiff, after: StackPlan) -> dict[str, Any]:
    tops = {_top(c.path) for c in d.outputs}
    return {k: after.outputs[k] for k in sorted(tops) if k in after.outputs}


def _top(path: str) -> str:
    for i, ch in enumerate(path):
        if ch in ".[" and i:
            return path[:i]
    return path


def _mirrors_into(plan: StackPlan) -> dict[str, tuple[str, dict[str, Any]]]:
    """Source region -> (what copies it into this stack's aggregate, its offset-sync settings):
    the KafkaMirrorMaker2's mirrors, or an MSK Replicator (no MirrorMaker 2 offset syncs)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for r in plan.of_type(MIRROR_MAKER):
        spec = r.inputs.get("spec", {})
        for m in spec.get("mirrors", []):
            alias = m.get("source", {}).get("alias")
            if alias:
                config = m.get("sourceConnector", {}).get("config", {})
                out[alias] = (f"KafkaMirrorMaker2 {r.inputs['metadata']['name']}", config)
    for r in plan.of_type(REPLICATOR):
        source = r.name.rsplit("-kafka-replicator-", 1)[-1]
        out.setdefault(source, (f"MSK Replicator {r.name}", {}))
    return out


def _checks(
    drill: DrillPlan, max_lag: int, max_sync_lag: int | None, policy_config: str | None
) -> list[Check]:
    """Replication lag of every region's copies of the groups' topics into the new primary's
    aggregate (the old primary's first: its producers' last records are the ones at risk); the
    offset syncs both aggregates translate through; the policies on the post-flip plans.

    Offset syncs, not checkpoints: the groups commit on an aggregate cluster, which no mirror
    reads, so MirrorMaker 2 checkpoints none of them. An offset in the old primary's copy of
    ``X.topic`` maps back to X's regional cluster through the old aggregate's offset syncs of its
    mirror from X, and forward through the new aggregate's."""
    old, new = drill.stacks[drill.source], drill.stacks[drill.target]
    topics = sorted({t for grp in drill.groups for t in grp.topics})
    if not topics:
        return [_policy_check(drill, policy_config)]
    copies = {
        drill.source: _mirrors_into(drill.before[old]),
        drill.target: _mirrors_into(drill.before[new]),
    }
    checks: list[Check] = []
    for region in [drill.source, *(r for r in drill.regions if r != drill.source)]:
        names = ", ".join(f"{region}.{t}" for t in topics)
        mirror = copies[drill.target].get(region)
        if mirror is None:
            checks.append(
                Check(
                    "replication-lag",
                    f"{names} into {drill.target}'s aggregate",
                    "a mirror from that region",
                    f"nothing copies {region} into {drill.target}'s aggregate in the plan",
                    passed=False,
                )
            )
            continue
        checks.append(
            Check(
                "replication-lag",
                f"{names}: {region}'s records not yet in {drill.target}'s aggregate "
                f"({mirror[0]}), per partition",
                f"at most {max_lag} (--max-lag)",
            )
        )
    for where in (drill.source, drill.target):
        synced = {r: m for r, m in copies[where].items() if m[0].startswith("KafkaMirrorMaker2")}
        lacking = [r for r in drill.regions if r not in synced]
        if lacking:
            what = ", ".join(
                f"{r} ({copies[where][r][0] if r in copies[where] else 'no mirror'})"
                for r in lacking
            )
            checks.append(
                Check(
                    "offset-syncs",
                    f"copies in {where}'s aggregate of {what}",
                    "MirrorMaker 2 offset syncs",
                    "no MirrorMaker 2 offset syncs to translate through: not built for this copy",
                    passed=False,
                )
            )
        if not synced:
            continue
        lag_max = max(int(m[1].get("offset.lag.max", OFFSET_LAG_MAX)) for m in synced.values())
        bound = max_sync_lag if max_sync_lag is not None else lag_max
        source = "--max-sync-lag" if max_sync_lag is not None else "the mirrors' offset.lag.max"
        mirrors = ", ".join(sorted({m[0] for m in synced.values()}))
        checks.append(
            Check(
                "offset-syncs",
                f"newest offset sync behind each partition's end, copies of "
                f"{', '.join(synced)} in {where}'s aggregate ({mirrors})",
                f"at most {bound} records ({source}: what a translated offset may re-read)",
            )
        )
    checks.append(_policy_check(drill, policy_config))
    return checks


def _policy_check(drill: DrillPlan, policy_config: str | None) -> Check:
    report = drill.report
    state = "FAILED" if report.mandatory else "passed"
    return Check(
        "policies",
        f"rtdi check on the post-flip plans of {len(report.stacks)} stacks",
        f"no mandatory violation ({policy_config or 'default policy configuration'})",
        f"{state}: {len(report.mandatory)} mandatory, {len(report.advisory)} advisory",
        passed=not report.mandatory,
    )


def _savepoint_dir(plan: StackPlan, region: str, job: str) -> str:
    for r in plan.of_type(FLINK_DEPLOYMENT):
        if r.name == f"{region}-flink-{job}":
            conf = r.inputs.get("spec", {}).get("flinkConfiguration", {})
            return str(conf.get("execution.checkpointing.savepoint-dir", "its savepoint dir"))
    return "its savepoint dir"


def _copies(plan: StackPlan, region: str, topics: tuple[str, ...]) -> list[str]:
    registry = plan.outputs.get("kafkaFederation", {}).get("topics", {})
    out: list[str] = []
    for t in topics:
        out += (
            registry.get(t, {})
            .get("regions", {})
            .get(region, {})
            .get("consume", {})
            .get("topics", [])
        )
    return out


def _steps(drill: DrillPlan, old: str, new: str, others: list[str]) -> list[Step]:
    diffs = {d.stack: d for d in drill.diffs}
    after = drill.after

    def expect(*stacks: str) -> dict[str, dict[str, Any]]:
        return {s: _changed_outputs(diffs[s], after[s]) for s in stacks if diffs[s].outputs}

    src, dst, g = drill.source, drill.target, drill.global_stack
    preflight = Step(
        "preflight",
        "measure and refuse; changes nothing (`rtdi drill run --dry-run` stops here)",
        "Kafka admin clients of both regions' aggregate clusters",
        actions=[f"the {len(drill.checks)} preflight checks below"],
    )
    flip = Step(
        "flip",
        f"set the primary to {dst} in the global stack and bring it up; no data moves yet: "
        "regional stacks read it at their own `pulumi up`",
        "Pulumi (the global stack)",
        config=[ConfigSet(g, PRIMARY_KEY, dst)],
        stacks=[g],
        expect=expect(g),
    )
    demote = Step(
        "demote",
        f"bring up the old primary {old}: its active/passive consumers stop",
        "Pulumi; for plain consumer groups, their services' own deployments",
        stacks=[old],
        expect=expect(old),
    )
    sync = Step(
        "sync-offsets",
        f"translate where each active/passive group stopped in {src}'s aggregate into {dst}'s "
        f"and commit it to the group there, before {new} comes up",
        "Kafka admin clients of both aggregates; the Flink state bucket of the old primary",
    )
    promote = Step(
        "promote",
        f"bring up the new primary {new}, then the other regions (their federation registry)",
        "Pulumi",
        stacks=[new, *others],
        expect=expect(new, *others),
    )
    verify = Step(
        "verify",
        f"the groups consume in {dst} from the translated offsets, and nothing is lost",
        f"Kafka admin clients of {dst}'s aggregate",
    )
    for grp in drill.groups:
        copies = ", ".join(_copies(drill.before[new], dst, grp.topics))
        if grp.job:
            where = _savepoint_dir(drill.before[old], src, grp.job)
            demote.actions.append(
                f"{grp.name} ({grp.owner}): FlinkDeployment {src}-flink-{grp.job} replaced: "
                f"deleted with a savepoint (savepoint-on-deletion), newest {where}/savepoint-*, "
                "then created suspended"
            )
            sync.actions.append(
                f"{grp.name}: io.rtdi.flink.Handover reads that savepoint's offsets (not the "
                f"group's, which lag: handover.py); translate them through MirrorMaker 2's offset "
                f"syncs of {src}'s and {dst}'s aggregates; commit to {grp.name} in {dst}'s "
                f"aggregate on {copies}"
            )
            promote.actions.append(
                f"{grp.name}: FlinkDeployment {dst}-flink-{grp.job} replaced: created running, "
                "a first deployment, its source starting from the committed group offsets"
            )
        else:
            demote.actions.append(
                f"{grp.name} ({grp.owner}): stop its consumers in {src} (its service's own "
                "deployment, not rtdi's) and wait until the group has no member"
            )
            sync.actions.append(
                f"{grp.name}: translate its committed offsets in {src}'s aggregate through "
                f"MirrorMaker 2's offset syncs of both aggregates; commit to {grp.name} in "
                f"{dst}'s aggregate on {copies}"
            )
            promote.actions.append(f"{grp.name}: start its consumers in {dst}")
        verify.actions.append(
            f"{grp.name}: committed offsets in {dst}'s aggregate at or past the translated "
            f"ones and its lag falling; in {src}'s aggregate, no member; records lost: 0"
        )
    return [preflight, flip, demote, sync, promote, verify]


def render_text(drill: DrillPlan) -> str:
    from infra.plan.diff import render_text as render_diffs
    from policies.checker import render_text as render_report

    lines = [
        f"drill {drill.source} -> {drill.target} (global stack {drill.global_stack}; stacks "
        f"{', '.join(drill.stacks[r] for r in drill.regions if r in drill.stacks)})",
    ]
    if drill.groups:
        lines.append("active/passive consumer groups:")
        lines += [f"  {g.name} ({g.owner}; topics {', '.join(g.topics)})" for g in drill.groups]
    else:
        lines.append("active/passive consumer groups: none (the flip moves no consumer)")
    lines += ["", "steps:"]
    for i, step in enumerate(drill.steps, 1):
        lines.append(f"{i}. {step.name}: {step.does}")
        lines.append(f"   needs: {step.needs}")
        lines += [f"   $ {c.command()}" for c in step.config]
        lines += [f"   $ pulumi up --stack {s}" for s in step.stacks]
        lines += [f"   - {a}" for a in step.actions]
        diffs = {d.stack: d for d in drill.diffs}
        for stack in step.expect:
            shown = ", ".join(f"{c.path} = {_short(c.new)}" for c in diffs[stack].outputs)
            lines.append(f"   then {stack} outputs {shown}")
    lines += ["", "preflight checks:"]
    for c in drill.checks:
        result = f" -> {c.offline}" if c.offline is not None else " (measured by drill run)"
        lines.append(f"  {c.name}: {c.what}: {c.threshold}{result}")
    lines += ["", "diffs of the flip (the stacks in the order the drill brings them up):"]
    lines.append(render_diffs(drill.diffs) or "  none")
    lines += ["", "rtdi check on the post-flip plans:", render_report(drill.report)]
    lines += ["", verdict(drill)]
    return "\n".join(lines)


def verdict(drill: DrillPlan) -> str:
    """The last line: whether `rtdi drill run` would start, and if not, what stops it."""
    failed = [f"{c.name} ({c.offline})" for c in drill.checks if not c.passed]
    if failed:
        return f"drill to {drill.target} REFUSED: " + "; ".join(failed)
    return (
        f"drill to {drill.target} planned: {len(drill.steps)} steps, "
        f"{sum(len(s.stacks) for s in drill.steps)} stack updates, "
        f"{len(drill.groups)} active/passive group(s) moved"
    )


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} chars)"


def render_json(drill: DrillPlan) -> str:
    from policies.checker import groups as finding_groups
    from policies.checker import summary

    return json.dumps(
        {
            "from": drill.source,
            "to": drill.target,
            "globalStack": drill.global_stack,
            "stacks": drill.stacks,
            "groups": [
                {"name": g.name, "topics": list(g.topics), "job": g.job} for g in drill.groups
            ],
            "steps": [s.as_json() for s in drill.steps],
            "preflight": [c.as_json() for c in drill.checks],
            "diffs": [d.as_json() for d in drill.diffs if d.status != "unchanged"],
            "check": {
                "summary": summary(drill.report),
                "groups": [g.as_json() for g in finding_groups(drill.report)],
            },
            "violates": drill.violates,
            "verdict": verdict(drill),
        },
        indent=1,
    )
