"""Policy configuration: which rules run at which enforcement level, with which parameters.

The format is Pulumi's ``--policy-pack-config`` format, so one file serves ``rtdi check --config``
and ``pulumi preview --policy-pack policies --policy-pack-config``::

    {
      "all": "advisory",                                   # optional: one level for every rule
      "kafka-topic-durability": "disabled",                # a level alone
      "kafka-cluster-durability": {"enforcementLevel": "mandatory", "minReplicationFactor": 3}
    }

``rtdi check --config`` also reads the same structure from YAML. Defaults live in one place, the
rules' metadata; ``policies/config.json`` and ``policies/config.default.yaml`` are rendered from it
(``python -m policies.config`` rewrites both; a test fails when they drift).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from policies.engine import LEVELS, Rule

HERE = Path(__file__).resolve().parent
JSON_FILE = HERE / "config.json"
YAML_FILE = HERE / "config.default.yaml"
RESERVED = ("all", "environments")


class PolicyConfigError(ValueError):
    """A policy config naming an unknown rule or parameter, or with a value of the wrong shape."""

    def __init__(self, where: str, message: str):
        self.where, self.message = where, message
        super().__init__(f"{where}: {message}")


def _rules() -> list[Rule]:
    from policies.rules import ALL_RULES

    return list(ALL_RULES)


class PolicyConfig:
    """Levels and parameters per rule: code defaults, overridden by a configuration document."""

    def __init__(self, levels: Mapping[str, str], params: Mapping[str, Mapping[str, Any]]):
        self._levels = dict(levels)
        self._params = {k: dict(v) for k, v in params.items()}

    def level(self, rule: Rule) -> str:
        return self._levels.get(rule.id, rule.enforcement)

    def params(self, rule: Rule) -> dict[str, Any]:
        return {**rule.defaults, **self._params.get(rule.id, {})}

    @classmethod
    def defaults(cls) -> PolicyConfig:
        return cls({}, {})


def resolve(
    doc: Any, source: str = "policy config", rules: Sequence[Rule] | None = None
) -> PolicyConfig:
    """Validate a configuration against the rules; raise PolicyConfigError on the first problem."""
    rules = list(rules) if rules is not None else _rules()
    by_id = {r.id: r for r in rules}
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise PolicyConfigError(source, "must be an object whose keys are rule ids")
    levels: dict[str, str] = {}
    params: dict[str, dict[str, Any]] = {}
    if "all" in doc:
        level = _level(doc["all"], f"{source}: all")
        levels.update({r.id: level for r in rules})
    for key, value in doc.items():
        if key in RESERVED:
            continue
        rule = by_id.get(key)
        if rule is None:
            raise PolicyConfigError(
                f"{source}: {key}", f"unknown rule; allowed: all, {', '.join(sorted(by_id))}"
            )
        where = f"{source}: {key}"
        if isinstance(value, str):
            levels[key] = _level(value, where)
            continue
        if not isinstance(value, Mapping):
            raise PolicyConfigError(
                where,
                "must be an enforcement level or an object with enforcementLevel and parameters",
            )
        known = {p.name: p for p in rule.params}
        for name, setting in value.items():
            if name == "enforcementLevel":
                levels[key] = _level(setting, f"{where}.enforcementLevel")
                continue
            param = known.get(name)
            if param is None:
                allowed = ", ".join(["enforcementLevel", *known]) or "enforcementLevel"
                raise PolicyConfigError(f"{where}.{name}", f"unknown parameter; allowed: {allowed}")
            params.setdefault(key, {})[name] = check_value(setting, param.schema, f"{where}.{name}")
    return PolicyConfig(levels, params)


def _level(value: Any, where: str) -> str:
    if value == "remediate":  # Pulumi reports a stack policy's remediate as mandatory
        return "mandatory"
    if value not in LEVELS:
        raise PolicyConfigError(
            where, f"unknown enforcement level {value!r}; allowed: {', '.join(LEVELS)}"
        )
    return str(value)


_TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def check_value(value: Any, schema: Mapping[str, Any], where: str) -> Any:
    """The value checked against the subset of JSON Schema the rules use; integral floats become
    ints (Pulumi hands policy config numbers over as floats)."""
    kind = schema.get("type")
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if kind and not _TYPES[kind](value):
        raise PolicyConfigError(
            where, f"must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not {json.dumps(value)}"
        )
    if "enum" in schema and value not in schema["enum"]:
        raise PolicyConfigError(
            where,
            f"{json.dumps(value)} is not allowed; allowed: {', '.join(map(str, schema['enum']))}",
        )
    if "minimum" in schema and value < schema["minimum"]:
        raise PolicyConfigError(where, f"must be at least {schema['minimum']}")
    if kind == "array" and "items" in schema:
        value = [check_value(v, schema["items"], f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        out = {}
        for k, v in value.items():
            if k in props:
                out[k] = check_value(v, props[k], f"{where}.{k}")
            elif isinstance(extra, Mapping):
                out[k] = check_value(v, extra, f"{where}.{k}")
            elif extra is False:
                raise PolicyConfigError(f"{where}.{k}", f"unknown key; allowed: {', '.join(props)}")
            else:
                out[k] = v
        value = out
    return value


def load(path: str | Path) -> PolicyConfig:
    """Read and validate a JSON or YAML policy configuration file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyConfigError(
            str(path), f"cannot read the policy config: {exc.strerror}"
        ) from None
    try:
        doc = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyConfigError(
            f"{path}:{exc.lineno}:{exc.colno}", f"invalid JSON: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise PolicyConfigError(
            where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    return resolve(doc, str(path))


# --------------------------------------------------------------------------- the shipped files


def render_json(rules: Iterable[Rule] | None = None) -> dict[str, Any]:
    """Every rule's default level and parameters, as ``--policy-pack-config`` reads them."""
    return {
        r.id: {"enforcementLevel": r.enforcement, **r.defaults}
        for r in (rules if rules is not None else _rules())
    }


def render_yaml(rules: Iterable[Rule] | None = None) -> str:
    rules = list(rules) if rules is not None else _rules()
    out = [
        "# rtdi policy configuration: every rule with its default enforcement level and "
        "parameters.",
        "#",
        "# Rendered from the rule metadata in policies/rules/ by `python -m policies.config`: "
        "change a",
        "# default there, never here (tests/policies checks that this file matches the code).",
        "#",
        "# To configure: copy this file, keep only what you change, and pass it to",
        "#   rtdi check --all --config my-policy.yaml",
        "# `pulumi preview --policy-pack policies --policy-pack-config FILE` takes the same "
        "structure as",
        "# JSON (policies/config.json is this file's JSON twin).",
        "# Enforcement levels: advisory (reported), mandatory (fails `rtdi check` and `pulumi "
        "up`),",
        "# disabled (not run). A top-level `all: <level>` sets every rule's level.",
        "",
    ]
    for rule in rules:
        out.append(f"# {rule.id} ({rule.category}; severity {rule.severity})")
        out += _comment(rule.description)
        out += _comment(f"Why: {rule.why}")
        out.append(f"{rule.id}:")
        out.append(f"  enforcementLevel: {rule.enforcement}")
        for p in rule.params:
            out += ["  " + line for line in _comment(p.description)]
            dumped = yaml.safe_dump(
                {p.name: p.default}, default_flow_style=False, sort_keys=False, width=100
            ).rstrip("\n")
            out += ["  " + line for line in dumped.splitlines()]
        out.append("")
    return "\n".join(out)


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, width=96)]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m policies.config``: rewrite config.json and config.default.yaml from the rules."""
    JSON_FILE.write_text(json.dumps(render_json(), indent=2) + "\n")
    YAML_FILE.write_text(render_yaml())
    print(f"wrote {JSON_FILE} and {YAML_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
