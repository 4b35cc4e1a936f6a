"""What the spec files under jobs/ (Flink jobs, Pinot tables) share: how a folder of YAML specs is
read and how pydantic's errors become one-line issues, so both kinds refuse in the same words."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from infra.topology.errors import Issue, key_path


def read_specs(directory: Path, what: str, issues: list[Issue]) -> list[tuple[Path, str, Any]]:
    """Every ``*.yaml`` of ``directory`` in name order as (path, name shown, mapping); a file that
    cannot be read or is not a mapping is an issue about ``what`` ("job spec", "table spec")."""
    out: list[tuple[Path, str, Any]] = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        # As the project names it (jobs/<kind>/<file>), wherever the project lies.
        shown = f"{path.parent.parent.name}/{path.parent.name}/{path.name}"
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            issues.append(Issue(shown, "", f"cannot read the {what}: {first_line(exc)}"))
            continue
        if not isinstance(data, dict):
            issues.append(Issue(shown, "", f"a {what} must be a mapping of keys to values"))
            continue
        out.append((path, shown, data))
    return out


def field_issue(file: str, loc: list[Any], err: Any, keys: Iterable[str]) -> Issue:
    """pydantic's error ``err`` at ``loc`` (non-empty, without "[key]") as one line; ``keys`` are
    the top-level keys a spec may have, named when an unknown one is found at the top."""
    key = key_path(str(loc[0]), loc[1:])
    kind = err["type"]
    if kind == "extra_forbidden":
        hint = "" if len(loc) > 1 else f"; allowed here: {', '.join(keys)}"
        return Issue(file, key, f"unknown key{hint}")
    if kind == "missing":
        return Issue(file, key, "required key is missing")
    message = err["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "allowed:")
    return Issue(file, key, message, err.get("input"))


def first_line(exc: Exception) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()[:160]
