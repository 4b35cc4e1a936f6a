"""``rtdi diff``: what changed between two offline plans, in terms a reviewer reads at a glance.

A plain ``diff -r`` of two plans is unreadable: resources.json holds long lines and JSON embedded
in strings (the federation registry), and lists shift when one element is inserted. This module
compares plans the way Pulumi would: resources by URN, values key by key (JSON embedded in a
string is parsed and compared key by key too), list elements matched by a natural key (``name``,
``alias``...) when they have one, and outputs the same way. Manifests are not compared: they are
rendered from resources.json, so every change in them shows there already.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.plan.paths import shown
from infra.topology.errors import ConfigError, Issue

# Keys that name a list element. Tried in order; the first one every element of both lists carries,
# as a distinct scalar, matches the elements, so inserting one element changes only that one.
NATURAL_KEYS = ("name", "alias", "source.alias", "id", "key", "rangeName", "secretName")
WIDTH = 100  # a value longer than this is cut in the text format (never in the JSON format)
_MISSING = object()


@dataclass
class Change:
    """One difference at ``path``: ``added``/``removed`` (``old``/``new`` absent) or ``changed``."""

    path: str
    kind: str
    old: Any = None
    new: Any = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.kind != "added":
            out["old"] = self.old
        if self.kind != "removed":
            out["new"] = self.new
        return out


@dataclass
class ResourceDiff:
    urn: str
    type: str
    name: str
    changes: list[Change] = field(default_factory=list)
    # `pulumi up` replaces the resource (delete, then create) instead of updating it: a changed
    # input is one of its replaceOnChanges paths.
    replace: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"urn": self.urn, "type": self.type, "name": self.name}
        if self.changes:
            out["changes"] = [c.as_json() for c in self.changes]
        if self.replace:
            out["replace"] = True
        return out


@dataclass
class StackDiff:
    stack: str
    status: str  # "added", "removed", "changed" or "unchanged"
    added: list[ResourceDiff] = field(default_factory=list)
    removed: list[ResourceDiff] = field(default_factory=list)
    changed: list[ResourceDiff] = field(default_factory=list)
    outputs: list[Change] = field(default_factory=list)
    outputs_changed: int = 0  # top-level outputs that differ (one output may hold many changes)

    def summary(self) -> str:
        if self.status in ("added", "removed"):
            count = len(self.added if self.status == "added" else self.removed)
            return f"{self.stack}: stack {self.status} ({_n(count, 'resource')})"
        return (
            f"{self.stack}: {len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.changed)} changed, {_n(self.outputs_changed, 'output')} changed"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "status": self.status,
            "summary": self.summary(),
            "added": [r.as_json() for r in self.added],
            "removed": [r.as_json() for r in self.removed],
            "changed": [r.as_json() for r in self.changed],
            "outputs": [c.as_json() for c in self.outputs],
        }


@dataclass
class StackPlanFiles:
    """One stack's plan as written: resources.json (a list) and outputs.json (an object)."""

    resources: list[dict[str, Any]]
    outputs: dict[str, Any]


# --------------------------------------------------------------------------- reading


def load(path: Path) -> dict[str, StackPlanFiles]:
    """A plan root (``<stack>/resources.json`` per stack) or one stack's plan folder."""
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "no such plan folder"
        raise ConfigError([Issue(shown(path), "", f"{what}; pass a folder written by `rtdi plan`")])
    if (path / "resources.json").is_file():
        return {path.resolve().name: load_stack(path)}
    stacks = sorted(p.parent for p in path.glob("*/resources.json"))
    if not stacks:
        raise ConfigError(
            [Issue(shown(path), "", "holds no plan (no <stack>/resources.json); run `rtdi plan`")]
        )
    return {folder.name: load_stack(folder) for folder in stacks}


def load_stack(folder: Path) -> StackPlanFiles:
    resources = _read_json(folder / "resources.json")
    if not isinstance(resources, list) or not all(
        isinstance(r, dict) and isinstance(r.get("urn"), str) for r in resources
    ):
        raise ConfigError(
            [
                Issue(
                    shown(folder / "resources.json"),
                    "",
                    "not an rtdi plan: expected a list of resources with a urn",
                )
            ]
        )
    outputs_file = folder / "outputs.json"
    outputs = _read_json(outputs_file) if outputs_file.is_file() else {}
    if not isinstance(outputs, dict):
        raise ConfigError([Issue(shown(outputs_file), "", "not an rtdi plan: expected an object")])
    return StackPlanFiles(resources, outputs)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError([Issue(shown(path), "", f"cannot read: {exc.strerror}")]) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([Issue(shown(path), "", f"invalid JSON: {exc}")]) from None


# --------------------------------------------------------------------------- comparing


def is_stack_folder(path: Path) -> bool:
    return (path / "resources.json").is_file()


def diff_plans(old: dict[str, StackPlanFiles], new: dict[str, StackPlanFiles]) -> list[StackDiff]:
    """Every stack of either plan, in name order."""
    return [diff_stack(s, old.get(s), new.get(s)) for s in sorted(old.keys() | new.keys())]


def diff_stack(stack: str, old: StackPlanFiles | None, new: StackPlanFiles | None) -> StackDiff:
    if old is None or new is None:
        present = new if old is None else old
        assert present is not None
        refs = [_ref(r) for r in sorted(present.resources, key=lambda r: r["urn"])]
        if old is None:
            return StackDiff(stack, "added", added=refs)
        return StackDiff(stack, "removed", removed=refs)
    before = {r["urn"]: r for r in old.resources}
    after = {r["urn"]: r for r in new.resources}
    out = StackDiff(stack, "changed")
    out.added = [_ref(after[u]) for u in sorted(after.keys() - before.keys())]
    out.removed = [_ref(before[u]) for u in sorted(before.keys() - after.keys())]
    for urn in sorted(before.keys() & after.keys()):
        changes = diff_resource(before[urn], after[urn])
        if changes:
            ref = _ref(after[urn])
            ref.changes = changes
            ref.replace = _replaces(after[urn], changes)
            out.changed.append(ref)
    out.outputs = diff_values(old.outputs, new.outputs, "")
    out.outputs_changed = len({_top(c.path) for c in out.outputs})
    if not (out.added or out.removed or out.changed or out.outputs):
        out.status = "unchanged"
    return out


def diff_resource(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Inputs key by key; parent and provider (a change of either replaces the resource)."""
    changes = diff_values(old.get("inputs") or {}, new.get("inputs") or {}, "")
    for key in ("parent", "provider"):
        if old.get(key) != new.get(key):
            changes.append(Change(f"<{key}>", "changed", old.get(key), new.get(key)))
    return changes


def _replaces(new: dict[str, Any], changes: list[Change]) -> bool:
    """Whether a change touches one of the resource's replaceOnChanges paths (or lies below)."""
    paths = (new.get("options") or {}).get("replaceOnChanges") or []
    return any(c.path == p or c.path.startswith(f"{p}.") for c in changes for p in paths)


def diff_values(old: Any, new: Any, path: str) -> list[Change]:
    return list(_walk(old, new, path))


def _walk(old: Any, new: Any, path: str) -> Iterator[Change]:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys(), key=str):
            sub = _key(path, key)
            if key not in new:
                yield Change(sub, "removed", old[key])
            elif key not in old:
                yield Change(sub, "added", new=new[key])
            else:
                yield from _walk(old[key], new[key], sub)
    elif isinstance(old, list) and isinstance(new, list):
        yield from _walk_list(old, new, path)
    elif isinstance(old, str) and isinstance(new, str):
        old_doc, new_doc = _embedded(old), _embedded(new)
        if old_doc is not _MISSING and new_doc is not _MISSING:
            yield from _walk(old_doc, new_doc, path)
        elif "\n" in old.strip() and "\n" in new.strip():
            yield from _walk_lines(old.splitlines(), new.splitlines(), path)
        else:
            yield Change(path, "changed", old, new)
    else:
        yield Change(path, "changed", old, new)


def _walk_list(old: list, new: list, path: str) -> Iterator[Change]:
    key = _natural_key(old, new)
    if key is not None:
        before = {_get(e, key): e for e in old}
        after = {_get(e, key): e for e in new}
        for k, e in before.items():
            if k not in after:
                yield Change(f"{path}[{key}={k}]", "removed", e)
        for k, e in after.items():
            sub = f"{path}[{key}={k}]"
            if k not in before:
                yield Change(sub, "added", new=e)
            else:
                yield from _walk(before[k], e, sub)
        common_old = [k for k in before if k in after]
        common_new = [k for k in after if k in before]
        if common_old != common_new:
            yield Change(f"{path} order", "changed", common_old, common_new)
        return
    # No natural key: align equal elements (as difflib aligns lines), pair what was replaced one
    # for one, and report the rest as removed or added, so one insertion is one change.
    encode = (
        [json.dumps(e, sort_keys=True) for e in old],
        [json.dumps(e, sort_keys=True) for e in new],
    )
    matcher = difflib.SequenceMatcher(None, *encode, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                yield from _walk(old[i], new[j], f"{path}[{j}]")
            continue
        for i in range(i1, i2):
            yield Change(f"{path}[{i}]", "removed", old[i])
        for j in range(j1, j2):
            yield Change(f"{path}[{j}]", "added", new=new[j])


def _walk_lines(old: list[str], new: list[str], path: str) -> Iterator[Change]:
    """A multi-line string (a properties file, a certificate) line by line, numbered from 1."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                yield Change(f"{path} line {j + 1}", "changed", old[i], new[j])
            continue
        for i in range(i1, i2):
            yield Change(f"{path} line {i + 1}", "removed", old[i])
        for j in range(j1, j2):
            yield Change(f"{path} line {j + 1}", "added", new=new[j])


def _natural_key(old: list, new: list) -> str | None:
    items = old + new
    if not items or not all(isinstance(e, dict) for e in items):
        return None
    for key in NATURAL_KEYS:
        for side in (old, new):
            values = [_get(e, key) for e in side]
            if any(not isinstance(v, str | int) or isinstance(v, bool) for v in values):
                break
            if len(set(values)) != len(values):
                break
        else:
            return key
    return None


def _get(element: dict, dotted: str) -> Any:
    value: Any = element
    for part in dotted.split("."):
        value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
    return value


def _embedded(text: str) -> Any:
    """The JSON object or array a string holds (a ConfigMap's registry.json), else _MISSING."""
    stripped = text.lstrip()
    if not stripped.startswith(("{", "[")):
        return _MISSING
    try:
        doc = json.loads(text)
    except ValueError:
        return _MISSING
    return doc if isinstance(doc, dict | list) else _MISSING


def _key(path: str, key: Any) -> str:
    key = str(key)
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _top(path: str) -> str:
    for i, ch in enumerate(path):
        if ch in ".[ " and i:
            return path[:i]
    return path


def _ref(r: dict[str, Any]) -> ResourceDiff:
    return ResourceDiff(r["urn"], str(r.get("type", "")), str(r.get("name", "")))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --------------------------------------------------------------------------- rendering


def changed(diffs: list[StackDiff]) -> bool:
    return any(d.status != "unchanged" for d in diffs)


def render_text(diffs: list[StackDiff]) -> str:
    """One summary line per stack that differs, then its resources and outputs; nothing if none."""
    lines: list[str] = []
    for d in diffs:
        if d.status == "unchanged":
            continue
        lines.append(d.summary())
        if d.status != "changed":
            continue
        lines += [f"  + {r.type} {r.name}" for r in d.added]
        lines += [f"  - {r.type} {r.name}" for r in d.removed]
        for r in d.changed:
            lines.append(f"  {'+-' if r.replace else '~'} {r.type} {r.name}")
            lines += [f"      {_line(c)}" for c in r.changes]
        by_output: dict[str, list[Change]] = {}
        for c in d.outputs:
            by_output.setdefault(_top(c.path), []).append(c)
        for name, changes in by_output.items():
            if len(changes) == 1 and changes[0].path == name:
                c = changes[0]
                if c.kind == "changed":
                    lines.append(f"  ~ output {_line(c)}")
                else:
                    mark, value = ("+", c.new) if c.kind == "added" else ("-", c.old)
                    lines.append(f"  {mark} output {name}: {_show(value)}")
            else:
                lines.append(f"  ~ output {name}")
                lines += [f"      {_line(c, name)}" for c in changes]
    return "\n".join(lines)


def render_json(diffs: list[StackDiff]) -> str:
    return json.dumps(
        {
            "changed": changed(diffs),
            "stacks": [d.as_json() for d in diffs if d.status != "unchanged"],
        },
        indent=1,
    )


def _line(c: Change, under: str = "") -> str:
    path = c.path[len(under) :].lstrip(".") if under else c.path
    if c.kind == "added":
        return f"{path}: added {_show(c.new)}"
    if c.kind == "removed":
        return f"{path}: removed {_show(c.old)}"
    return f"{path}: {_show(c.old)} -> {_show(c.new)}"


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if len(text) <= WIDTH:
        return text
    return f"{text[: WIDTH - 20]}... ({len(text)} chars)"
