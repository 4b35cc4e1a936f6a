"""Load the rule fixtures (tests/policies/fixtures/<rule-id>/{pass,fail}*.json) into stack views.

A fixture is a small, hand-written set of resources in normalized form, checked through BOTH
adapters:

* as an offline plan: resources.json entries ``{urn, type, name, parent, provider, inputs}`` fed to
  `policies.view.from_plan` (provider references are ``"<provider urn>::<id>"``);
* as a Pulumi preview: pulumi_policy ``PolicyResource`` objects with props behind the SDK's
  unknown-checking proxy, fed to `policies.view.from_policy_args`.

Fixture document::

    {
      "description": "what this case shows",
      "params": {"minZones": 3},                       # optional: rule parameters
      "topology": {...}, "kafka": {...},               # optional: what the global stack publishes
      "flinkJobs": [{"name": ..., "mode": ...}],       # optional: published job specs too
      "outputs": {...},                                # optional: the stack's outputs
      "resources": [                                   # one stack ("stack": name, default "test")
        {"type": "pulumi:providers:aws", "name": "aws", "props": {"region": "us-east-1"}},
        {"type": "aws:s3/bucket:Bucket", "name": "b", "provider": "aws", "props": {"bucket": "b"},
         "refs": {"bucket": ["other-resource-name"]}}  # optional: preview property dependencies
      ],
      # ... or several stacks instead of "resources":
      "stacks": [{"stack": ..., "resources": [...], "outputs": ..., "topology": ...}],
      # expected; "<stack>" = the stack itself:
      "violations": [{"resource": "b", "message": "substring"}]
    }

The string "<unknown>" in props stands for a value unknown until deploy (preview form only).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policies.view import STACK, STACK_REFERENCE, StackView, from_plan, from_policy_args

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
UNKNOWN = "<unknown>"
OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def stacks_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if "stacks" in doc:
        return doc["stacks"]
    keys = ("stack", "resources", "outputs", "topology", "kafka", "flinkJobs")
    return [{k: doc[k] for k in keys if k in doc}]


def urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::rtdi::{type_}::{name}"


def stack_urn(stack: str) -> str:
    return urn(stack, STACK, f"rtdi-{stack}")


def _resources(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The stack's resources with the root stack and, if it reads a topology, its StackReference."""
    stack = spec.get("stack", "test")
    out = [{"type": STACK, "name": f"rtdi-{stack}", "props": spec.get("outputs") or {}}]
    if "topology" in spec or "kafka" in spec:
        published = {"topology": spec.get("topology"), "kafka": spec.get("kafka", {})}
        if "flinkJobs" in spec:
            published["flinkJobs"] = spec["flinkJobs"]
        out.append(
            {
                "type": STACK_REFERENCE,
                "name": "organization/rtdi/global",
                "props": {"name": "organization/rtdi/global", "outputs": {"rtdi": published}},
            }
        )
    return out + list(spec.get("resources") or [])


def _known(value: Any) -> Any:
    """Plan form: a plan never has unknowns; drop them."""
    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items() if v != UNKNOWN}
    if isinstance(value, list):
        return [_known(v) for v in value if v != UNKNOWN]
    return value


def _unknown(value: Any) -> Any:
    if value == UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: _unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknown(v) for v in value]
    return value


def as_plan(spec: dict[str, Any]) -> StackView:
    stack = spec.get("stack", "test")
    resources = _resources(spec)
    providers = {
        r["name"]: urn(stack, r["type"], r["name"])
        for r in resources
        if r["type"].startswith("pulumi:providers:")
    }
    entries = []
    for r in resources:
        entries.append(
            {
                "urn": urn(stack, r["type"], r["name"]),
                "type": r["type"],
                "name": r["name"],
                "parent": None if r["type"] == STACK else stack_urn(stack),
                "provider": f"{providers[r['provider']]}::{r['provider']}-plan-placeholder-id"
                if r.get("provider")
                else None,
                "inputs": {} if r["type"] == STACK else _known(r.get("props") or {}),
            }
        )
    return from_plan(entries, stack, spec.get("outputs"), None)


def as_policy_args(spec: dict[str, Any]) -> StackValidationArgs:
    stack = spec.get("stack", "test")
    resources = _resources(spec)
    providers = {
        r["name"]: PolicyProviderResource(
            r["type"], _unknown(r.get("props") or {}), urn(stack, r["type"], r["name"]), r["name"]
        )
        for r in resources
        if r["type"].startswith("pulumi:providers:")
    }
    built: dict[str, PolicyResource] = {}
    for r in resources:
        props = unknown_checking_proxy(_unknown(r.get("props") or {}))
        built[r["name"]] = PolicyResource(
            r["type"],
            props,
            urn(stack, r["type"], r["name"]),
            r["name"],
            OPTS,
            providers.get(r.get("provider")),
            None,
            [],
            {},
        )
    root = built[f"rtdi-{stack}"]
    for r in resources:
        res = built[r["name"]]
        if res is not root:
            res.parent = root
        for prop, names in (r.get("refs") or {}).items():
            res.property_dependencies[prop] = [built[n] for n in names]
            res.dependencies.extend(built[n] for n in names)
    return StackValidationArgs(list(built.values()), None)


def as_preview(spec: dict[str, Any]) -> StackView:
    return from_policy_args(as_policy_args(spec))


def resolve_target(expected: str, stacks: list[dict[str, Any]]) -> str:
    """``"<stack>"``/``"<stack:NAME>"``: the stack's URN; a resource name: the first such URN."""
    if expected.startswith("<stack"):
        name = expected[len("<stack:") : -1] if ":" in expected else stacks[0].get("stack", "test")
        return stack_urn(name)
    for spec in stacks:
        for r in _resources(spec):
            if r["name"] == expected:
                return urn(spec.get("stack", "test"), r["type"], r["name"])
    raise AssertionError(f"fixture expects a violation on {expected!r}, which it does not declare")


def fixture_files(kind: str | None = None) -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*/*.json") if kind is None or p.name.startswith(kind))


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``rtdi ARGV`` in process, from the repository root: (exit code, stdout, stderr)."""
    import pytest

    from infra.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    return code, out.getvalue(), err.getvalue()
