"""The rules as pulumi_policy policies: one StackValidationPolicy per rule, named by its id.

Building them has no side effects; only ``policies/__main__.py`` hands them to a ``PolicyPack``
(whose constructor starts the analyzer's gRPC server and never returns).

In a ``pulumi preview`` a policy sees one stack: the props of its resources are their outputs (known
ones; unknown values skip the resource, see `engine.Context.guard`), its providers' props their
inputs, and the StackReference's outputs carry the global topology. Cross-stack rules check what
one stack can show (see each rule's ``check``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.config import check_value
from policies.engine import Rule, run_rule
from policies.view import from_policy_args

PACK_NAME = "rtdi"


def params_from(rule: Rule, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The rule's defaults overlaid with the config Pulumi passes (numbers arrive as floats)."""
    params = dict(rule.defaults)
    schema = {p.name: p.schema for p in rule.params}
    for key, value in (config or {}).items():
        if key in schema:
            params[key] = check_value(value, schema[key], f"{rule.id}.{key}")
    return params


def make_validate(rule: Rule) -> Callable[[StackValidationArgs, Callable[..., None]], None]:
    def validate(args: StackValidationArgs, report_violation) -> None:
        view = from_policy_args(args)
        ctx = run_rule(rule, params_from(rule, args.get_config()), [view], single=view)
        stack_urn = view.stack_urn
        seen = set()
        for urn, message, _ in ctx.found:
            if (urn, message) not in seen:
                seen.add((urn, message))
                report_violation(message, None if urn == stack_urn else urn)

    validate.__name__ = f"validate_{rule.id.replace('-', '_')}"
    return validate


def config_schema(rule: Rule) -> PolicyConfigSchema | None:
    if not rule.params:
        return None
    return PolicyConfigSchema(
        properties={
            p.name: {**p.schema, "default": p.default, "description": p.description}
            for p in rule.params
        }
    )


def build_policies(rules: Iterable[Rule] | None = None) -> list[Policy]:
    from policies.rules import ALL_RULES

    return [
        StackValidationPolicy(
            name=rule.id,
            description=rule.description,
            validate=make_validate(rule),
            enforcement_level=EnforcementLevel(rule.enforcement),
            config_schema=config_schema(rule),
            severity=Severity(rule.severity),
            tags=[rule.category],
        )
        for rule in (rules if rules is not None else ALL_RULES)
    ]
