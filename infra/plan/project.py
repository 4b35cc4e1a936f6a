"""Find the Pulumi project and its stacks, and validate stacks together before planning them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from infra.topology import stackyaml
from infra.topology.config import StackConfig, parse_global, parse_regional, read_stack_file
from infra.topology.errors import ConfigError, Issue
from infra.topology.model import GlobalStack, RegionalBase


@dataclass
class Project:
    root: Path
    stacks_dir: Path

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
        return read_stack_file(path, self.display(path))


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

    def load_global(name: str) -> GlobalStack | None:
        if name not in globals_:
            cfg = load(name)
            globals_[name] = None
            if cfg is not None:
                try:
                    model = parse_global(cfg)
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
            out[name] = Validated(cfg, parse_regional(cfg, topology_stack.topology), global_name)
        except ConfigError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ConfigError(_unique(issues))
    return out


def _unique(issues: list[Issue]) -> list[Issue]:
    seen, out = set(), []
    for issue in issues:
        if str(issue) not in seen:
            seen.add(str(issue))
            out.append(issue)
    return out
