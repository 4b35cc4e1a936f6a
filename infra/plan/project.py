"""Find the Pulumi project and its stacks, and validate stacks together before planning them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import IPv4Network
from pathlib import Path

from infra.components.flink.handover import handover_issues, store_schemes
from infra.topology import stackyaml
from infra.topology.config import StackConfig, parse_global, parse_regional, read_stack_file
from infra.topology.errors import ConfigError, Issue
from infra.topology.jobs import Job, check_backfills, job_regions, load_jobs
from infra.topology.model import AwsStack, GcpStack, GlobalStack, RegionalBase
from infra.topology.pinot import load_tables


@dataclass
class Project:
    root: Path
    stacks_dir: Path
    # Config values set over the stack files, per stack (`rtdi backfill` plans a stack with a
    # backfill added, as `pulumi config set` would, without editing the file).
    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "Pulumi.yaml").is_file():
                path = folder / "Pulumi.yaml"
                meta = stackyaml.load(path.read_text(), str(path)) or {}
                if not isinstance(meta, dict):
                    raise ConfigError([Issue(str(path), "", "Pulumi.yaml must be a mapping")])
                return cls(folder, folder / str(meta.get("stackConfigDir") or "."))
        raise ConfigError(
            [Issue(str(here), "", "no Pulumi.yaml here or above; run rtdi inside the project")]
        )

    def stack_names(self) -> list[str]:
        return sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in self.stacks_dir.glob("Pulumi.*.yaml")
        )

    def display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def read(self, stack: str) -> StackConfig:
        path = self.stacks_dir / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            known = ", ".join(self.stack_names()) or "none"
            raise ConfigError(
                [Issue(self.display(path), "", f"no such stack {stack!r}; stacks here: {known}")]
            )
        cfg = read_stack_file(path, self.display(path))
        cfg.values.update(self.extra.get(stack, {}))
        return cfg


@dataclass
class Validated:
    config: StackConfig
    model: GlobalStack | RegionalBase
    global_stack: str | None  # for a regional stack: the short name of the global stack it reads


def validate(project: Project, stacks: Iterable[str]) -> dict[str, Validated]:
    """Validate ``stacks`` and the global stacks they read; one ConfigError with every issue."""
    issues: list[Issue] = []
    configs: dict[str, StackConfig] = {}
    out: dict[str, Validated] = {}

    def load(name: str) -> StackConfig | None:
        if name not in configs:
            try:
                configs[name] = project.read(name)
            except ConfigError as exc:
                issues.extend(exc.issues)
                return None
        return configs[name]

    globals_: dict[str, GlobalStack | None] = {}
    jobs: dict[str, list[Job]] = {}

    def load_global(name: str) -> GlobalStack | None:
        if name not in globals_:
            cfg = load(name)
            globals_[name] = None
            if cfg is not None:
                try:
                    model = parse_global(cfg)
                    # The global stack publishes the Flink jobs; a bad spec is bad input too.
                    jobs[name] = load_jobs(model.topology, model.kafka)
                    # And the Pinot tables (infra/topology/pinot.py), as the program does.
                    load_tables(model.topology, model.kafka)
                    globals_[name] = model
                    out[name] = Validated(cfg, model, None)
                except ConfigError as exc:
                    issues.extend(exc.issues)
        return globals_[name]

    for name in stacks:
        cfg = load(name)
        if cfg is None:
            continue
        if cfg.is_global:
            load_global(name)
            continue
        try:
            first = parse_regional(cfg, None)
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        global_name = (first.global_stack or "global").rsplit("/", 1)[-1]
        topology_stack = load_global(global_name)
        if topology_stack is None:
            continue
        try:
            model = parse_regional(cfg, topology_stack.topology)
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        out[name] = Validated(cfg, model, global_name)
        # As the program does (infra/program.py `backfill_issues`), before anything runs.
        found = check_backfills(
            model.backfills,
            model.region,
            jobs[global_name],
            topology_stack.topology,
            topology_stack.kafka,
            datetime.now(UTC),
        )
        issues.extend(Issue(cfg.file, key, message, value) for key, value, message in found)
        issues.extend(_handover_issues(cfg, model, topology_stack, jobs[global_name]))
    issues.extend(overlapping_ranges(_with_siblings(project, out, globals_), set(out)))
    issues.extend(outside_peer_cidrs(out, globals_))
    if issues:
        raise ConfigError(_unique(issues))
    return out


def _handover_issues(
    cfg: StackConfig, model: RegionalBase, top: GlobalStack, published: list[Job]
) -> list[Issue]:
    """A regional stack's flip handovers against the jobs its global stack publishes: bad
    input before anything is planned, as the Flink layer would refuse it under `pulumi up`."""
    if not model.flink_handover:
        return []
    jobs = [j for j in published if model.region in job_regions(j, top.topology)]
    kind = model.object_store.kind  # type: ignore[attr-defined]  # every concrete one has it
    return list(
        handover_issues(
            model.flink_handover,
            jobs,
            model.region,
            top.topology.primary,
            cfg.file,
            store_schemes(kind),
        )
    )


def _with_siblings(
    project: Project, out: dict[str, Validated], globals_: dict[str, GlobalStack | None]
) -> dict[str, Validated]:
    """``out`` and every other regional stack of the project that reads one of the same global
    stacks and is valid on its own, in stack name order: planning one stack still compares its
    networks with its peers'. A sibling with errors of its own is left to its own plan."""
    every: dict[str, Validated] = {}
    for name in sorted({*project.stack_names(), *out}):
        if name in out:
            every[name] = out[name]
            continue
        try:
            cfg = project.read(name)
            if cfg.is_global:
                continue
            model = parse_regional(cfg, None)
            global_name = (model.global_stack or "global").rsplit("/", 1)[-1]
            topology = globals_.get(global_name)
            if topology is None:
                continue
            every[name] = Validated(cfg, parse_regional(cfg, topology.topology), global_name)
        except ConfigError:
            continue
    return every


def _ranges(model: GlobalStack | RegionalBase) -> dict[str, IPv4Network]:
    """The address ranges a regional stack creates, by config key. A network that exists already
    (``mode: existing``, an on-prem site) states no range here, so it cannot be compared."""
    if isinstance(model, AwsStack) and model.network.mode == "create":
        return {"rtdi:network.cidr": model.network.cidr}
    if isinstance(model, GcpStack) and model.network.mode == "create":
        net = model.network
        return {
            "rtdi:network.cidr": net.cidr,
            "rtdi:network.podsCidr": net.pods_cidr,
            "rtdi:network.servicesCidr": net.services_cidr,
        }
    return {}


def overlapping_ranges(validated: dict[str, Validated], wanted: set[str]) -> list[Issue]:
    """Regions of one topology route to each other (MirrorMaker 2 reads every region's Kafka), so
    no two of their networks may overlap; each overlap that involves a ``wanted`` stack is
    reported on the later of the two stack files."""
    issues: list[Issue] = []
    seen: list[tuple[str, Validated, str, IPv4Network]] = []
    for name, v in validated.items():
        if v.global_stack is None:
            continue
        mine = _ranges(v.model)
        for key, cidr in mine.items():
            for other_name, other, other_key, other_cidr in seen:
                if {name, other_name}.isdisjoint(wanted):
                    continue
                if other.global_stack == v.global_stack and cidr.overlaps(other_cidr):
                    issues.append(
                        Issue(
                            v.config.file,
                            key,
                            f"overlaps {other_key} {other_cidr} of {other.config.file}; regions "
                            "of one topology route to each other, so their networks must not "
                            "overlap; allowed: a range disjoint from every other region's",
                            str(cidr),
                        )
                    )
        seen.extend((name, v, key, cidr) for key, cidr in mine.items())
    return issues


# Ranges that send traffic to other regions: nodes, and pods (VPC-native GKE and EKS's VPC CNI
# give pods addresses of their own); service addresses are only ever destinations.
_SOURCES = ("rtdi:network.cidr", "rtdi:network.podsCidr")


def outside_peer_cidrs(
    validated: dict[str, Validated], globals_: dict[str, GlobalStack | None]
) -> list[Issue]:
    """An MSK cluster's security group admits other regions by `rtdi:kafka.peerCidrs`; a region
    whose network no entry holds cannot reach it, and MirrorMaker 2 would fail after `pulumi up`.
    """
    issues = []
    for v in validated.values():
        g = globals_.get(v.global_stack or "")
        if g is None or not isinstance(v.model, RegionalBase):
            continue
        msk = [
            r.id
            for r in g.topology.regions
            if r.id != v.model.region
            and "msk" in (r.kafka.regional.engine, r.kafka.aggregate.engine)
        ]
        peers = g.kafka.peer_cidrs
        for key, cidr in _ranges(v.model).items():
            if msk and key in _SOURCES and not any(cidr.subnet_of(p) for p in peers):
                issues.append(
                    Issue(
                        v.config.file,
                        key,
                        "not inside rtdi:kafka.peerCidrs of the global stack "
                        f"({', '.join(map(str, peers))}), the networks the MSK clusters of "
                        f"{', '.join(msk)} admit; allowed: a range inside one of them, or add it "
                        "to peerCidrs",
                        str(cidr),
                    )
                )
    return issues


def _unique(issues: list[Issue]) -> list[Issue]:
    seen, out = set(), []
    for issue in issues:
        if str(issue) not in seen:
            seen.add(str(issue))
            out.append(issue)
    return out
