"""Read a stack's configuration the way the Pulumi engine hands it to the program, and validate it.

The engine gives the program flat ``namespace:key`` strings, with structured values as JSON.
`read_stack_file` produces exactly that from ``stacks/Pulumi.<stack>.yaml`` (for the offline
plan and the tests); `from_engine` reads it inside a real ``pulumi up``. Both feed `parse`, so a
bad value gets the same one-line message in either place.
"""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

import pydantic
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from infra.topology import checks, stackyaml
from infra.topology.errors import ConfigError, Issue, key_path
from infra.topology.model import (
    CLOUDS,
    REGIONAL_MODELS,
    GlobalStack,
    RegionalBase,
    Strict,
    Topology,
    secret_keys,
)

M = TypeVar("M", bound=Strict)
NAMESPACE = "rtdi"
SECRET_PLACEHOLDER = "[secret]"
_TOP_LEVEL_KEYS = {"config", "encryptionsalt", "secretsprovider", "encryptedkey", "environment"}


@dataclass
class StackConfig:
    """One stack's configuration as the engine would pass it: flat keys, string values."""

    stack: str
    file: str
    values: dict[str, str]
    secret_keys: set[str] = field(default_factory=set)

    @property
    def is_global(self) -> bool:
        return f"{NAMESPACE}:topology" in self.values


def stack_file(stack: str, stacks_dir: str = "stacks") -> str:
    return f"{stacks_dir}/Pulumi.{stack}.yaml"


def read_stack_file(path: Path, display: str | None = None) -> StackConfig:
    """Load ``Pulumi.<stack>.yaml`` as the engine reads it (yaml.v3 semantics, see `stackyaml`).

    Values are the strings the engine hands the program; YAML errors and duplicate keys become
    one `Issue` with the line.
    """
    shown = display or str(path)
    stack = path.name[len("Pulumi.") : -len(".yaml")]
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            [Issue(shown, "", f"cannot read the stack file: {exc.strerror}")]
        ) from None
    root = stackyaml.compose(text, shown)
    if root is None:
        return StackConfig(stack=stack, file=shown, values={}, secret_keys=set())
    if not isinstance(root, MappingNode):
        raise ConfigError([Issue(shown, "", "a stack file must be a mapping with a `config:` key")])
    top = dict(stackyaml.located(shown, "", lambda: list(stackyaml.pairs(root, ()))))
    extra = sorted(set(top) - _TOP_LEVEL_KEYS)
    if extra:
        raise ConfigError(
            [
                Issue(
                    shown,
                    extra[0],
                    f"unknown top-level key; allowed: {', '.join(sorted(_TOP_LEVEL_KEYS))}",
                )
            ]
        )
    config = top.get("config")
    if config is None or (isinstance(config, ScalarNode) and config.value in ("", "~", "null")):
        config_pairs: list[tuple[str, Node]] = []
    elif isinstance(config, MappingNode):
        config_pairs = stackyaml.located(shown, "", lambda: list(stackyaml.pairs(config, ())))
    else:
        raise ConfigError(
            [Issue(shown, "config", "must be a mapping of keys to values", config.value)]
        )
    values: dict[str, str] = {}
    secrets: set[str] = set()
    for raw_key, node in config_pairs:
        key = raw_key if ":" in raw_key else f"{NAMESPACE}:{raw_key}"
        if isinstance(node, MappingNode) and [k.value for k, _ in node.value] == ["secure"]:
            values[key] = SECRET_PLACEHOLDER
            secrets.add(key)
        else:
            values[key] = stackyaml.located(
                shown, key, lambda n=node: stackyaml.config_value(n, ())
            )
    return StackConfig(stack=stack, file=shown, values=values, secret_keys=secrets)


def from_engine(stack: str) -> StackConfig:
    """The configuration of the running ``pulumi up``, in the same shape as `read_stack_file`."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secrets = set(runtime_config.get_config_secret_keys_env()) | set(
        runtime_config._SECRET_KEYS.get()
    )
    return StackConfig(
        stack=stack, file=stack_file(stack), values=dict(values), secret_keys=secrets
    )


def parse_global(cfg: StackConfig) -> GlobalStack:
    data = _model_input(cfg, GlobalStack)
    model: GlobalStack = _validate(cfg, GlobalStack, data)
    _raise_found(cfg, "topology", checks.check_topology(model.topology))
    _raise_found(cfg, None, checks.check_kafka(model))
    return model


def parse_regional(cfg: StackConfig, topology: Topology | None) -> RegionalBase:
    """Validate a regional stack; with ``topology`` also check it against the global stack."""
    cloud = cfg.values.get(f"{NAMESPACE}:cloud")
    if cloud is None:
        raise ConfigError(
            [
                Issue(
                    cfg.file,
                    f"{NAMESPACE}:cloud",
                    f"required in a regional stack; allowed: {', '.join(CLOUDS)}",
                )
            ]
        )
    if cloud not in CLOUDS:
        raise ConfigError(
            [
                Issue(
                    cfg.file,
                    f"{NAMESPACE}:cloud",
                    f"unknown cloud; allowed: {', '.join(CLOUDS)}",
                    cloud,
                )
            ]
        )
    model_cls = REGIONAL_MODELS[cloud]
    model: RegionalBase = _validate(cfg, model_cls, _model_input(cfg, model_cls))
    _raise_found(cfg, None, checks.check_sources(model))
    if topology is not None:
        _raise_found(cfg, None, checks.check_regional(model, topology))
        if model.region != cfg.stack:
            raise ConfigError(
                [
                    Issue(
                        cfg.file,
                        f"{NAMESPACE}:region",
                        f"this stack is named {cfg.stack}, and peer stacks find a region's "
                        "stack by its region id, so one stack per region is named after it; "
                        f"allowed: {cfg.stack}, or name the stack (and its file) {model.region}",
                        model.region,
                    )
                ]
            )
    return model


def _model_input(cfg: StackConfig, model: type[Strict]) -> dict[str, Any]:
    issues, data = [], {}
    allowed = [f"{NAMESPACE}:{f.alias}" for f in model.model_fields.values()]
    secrets = {f"{NAMESPACE}:{name}" for name in secret_keys(model)}
    for key, raw in cfg.values.items():
        if key in secrets and key not in cfg.secret_keys:
            # the value is not shown: it is a secret, now in plain text in the stack file
            issues.append(
                Issue(
                    cfg.file,
                    key,
                    "a secret written in plain text; allowed: a `secure:` value, set with "
                    f"`pulumi config set --secret {key.partition(':')[2]}` (and rotate the "
                    "exposed one)",
                )
            )
            continue
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            issues.append(
                Issue(
                    cfg.file,
                    key,
                    "rtdi configures every provider explicitly, so provider defaults are never "
                    f"read; allowed keys: {', '.join(allowed)}",
                )
            )
            continue
        if key not in allowed:
            guess = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            issues.append(
                Issue(
                    cfg.file,
                    key,
                    f"unknown key{hint}; allowed keys in this stack: {', '.join(allowed)}",
                )
            )
            continue
        data[name] = _decode(raw)
    if issues:
        raise ConfigError(issues)
    return data


def _decode(raw: str) -> Any:
    if raw[:1] in "{[":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _validate(cfg: StackConfig, model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        # A misspelt key is both unknown and, under its right name, missing: say it once, as the
        # typo.
        typo_parents = {tuple(e["loc"][:-1]) for e in errors if e["type"] == "extra_forbidden"}
        errors = [
            e
            for e in errors
            if not (e["type"] == "missing" and tuple(e["loc"][:-1]) in typo_parents)
        ]
        raise ConfigError([_issue(cfg, model, err) for err in errors]) from None


def _issue(cfg: StackConfig, model: type[Strict], err: Any) -> Issue:
    loc = err["loc"]
    if loc[-1:] == ("[key]",):  # pydantic's place for a bad mapping key: name the mapping instead
        loc = loc[:-2]
    key = key_path(f"{NAMESPACE}:{loc[0]}", loc[1:])
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {guess[0]}?)" if guess else ""
        return Issue(cfg.file, key, f"unknown key{hint}; allowed here: {', '.join(allowed)}")
    if kind == "missing":
        return Issue(cfg.file, key, "required key is missing")
    if kind == "too_short":
        return Issue(
            cfg.file,
            key,
            f"too few items; allowed: at least {err['ctx']['min_length']} item(s)",
            err.get("input"),
        )
    message = err["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "allowed:").replace(
        "String should match pattern", "allowed: a value matching"
    )
    return Issue(cfg.file, key, message, err.get("input"))


def _allowed_keys(model: type[Strict], loc: Iterable[Any]) -> list[str]:
    """The keys a mapping at ``loc`` accepts, so a typo's message lists the right spellings."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap_model(current)
    return [f.alias or n for n, f in current.model_fields.items()] if current else []


def _step(annotation: Any, part: Any) -> Any:
    model = _unwrap_model(annotation)
    if isinstance(part, str) and model is not None:
        for name, info in model.model_fields.items():
            if (info.alias or name) == part:
                return info.annotation
        return None
    for arg in typing.get_args(annotation) or ():
        if typing.get_origin(annotation) in (list, tuple):
            return arg
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[1]
    for arg in typing.get_args(annotation):
        found = _step(arg, part)
        if found is not None:
            return found
    return None


def _unwrap_model(annotation: Any) -> type[Strict] | None:
    if isinstance(annotation, type) and issubclass(annotation, Strict):
        return annotation
    if typing.get_origin(annotation) is Union:
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
    return None


def _raise_found(cfg: StackConfig, top: str | None, found: Iterable[checks.Found]) -> None:
    issues = []
    for loc, value, message in found:
        head, rest = (top, loc) if top else (loc[0], loc[1:])
        issues.append(Issue(cfg.file, key_path(f"{NAMESPACE}:{head}", rest), message, value))
    if issues:
        raise ConfigError(issues)
