"""Every rule against its fixtures: tests/policies/fixtures/<rule-id>/{pass,fail}*.json.

Like checkov's, trivy's and KICS's rule tests, each rule has at least one passing and one violating
case, kept beside each other. Each fixture runs through both adapters (an offline plan's
resources.json and a Pulumi preview's StackValidationArgs), which must agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.config import PolicyConfig, resolve
from policies.engine import evaluate
from policies.rules import ALL_RULES, BY_ID
from policyfixtures import (
    FIXTURES,
    as_plan,
    as_preview,
    fixture_files,
    load,
    resolve_target,
    stacks_of,
)


def _run(path: Path, adapter) -> list[tuple[str, str]]:
    doc = load(path)
    rule = BY_ID[path.parent.name]
    config = (
        resolve({rule.id: doc.get("params", {})}) if doc.get("params") else PolicyConfig.defaults()
    )
    views = [adapter(spec) for spec in stacks_of(doc)]
    report = evaluate(views, config, rules=[rule])
    assert not report.skipped, report.skipped
    return sorted((v.urn, v.message) for v in report.violations)


def _ids(paths):
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def test_every_rule_has_a_passing_and_a_violating_fixture():
    for rule in ALL_RULES:
        folder = FIXTURES / rule.id
        assert list(folder.glob("pass*.json")), f"{rule.id}: no pass fixture in {folder}"
        assert list(folder.glob("fail*.json")), f"{rule.id}: no fail fixture in {folder}"
    assert {p.name for p in FIXTURES.iterdir()} == set(BY_ID), "a fixture folder names no rule"


@pytest.mark.parametrize("path", fixture_files("pass"), ids=_ids(fixture_files("pass")))
@pytest.mark.parametrize("adapter", [as_plan, as_preview], ids=["plan", "preview"])
def test_passing_fixture_has_no_violation(path, adapter):
    assert _run(path, adapter) == []


@pytest.mark.parametrize("path", fixture_files("fail"), ids=_ids(fixture_files("fail")))
@pytest.mark.parametrize("adapter", [as_plan, as_preview], ids=["plan", "preview"])
def test_violating_fixture_reports_exactly_what_it_expects(path, adapter):
    doc = load(path)
    found = _run(path, adapter)
    expected = [
        (resolve_target(e["resource"], stacks_of(doc)), e["message"]) for e in doc["violations"]
    ]
    assert expected, f"{path}: a fail fixture must list its violations"
    unmatched = list(found)
    for urn, fragment in expected:
        hit = next((f for f in unmatched if f[0] == urn and fragment in f[1]), None)
        assert hit, f"expected on {urn}: ...{fragment}...\nfound:\n" + "\n".join(
            f"  {u}: {m}" for u, m in found
        )
        unmatched.remove(hit)
    assert not unmatched, "unexpected violations:\n" + "\n".join(
        f"  {u}: {m}" for u, m in unmatched
    )


@pytest.mark.parametrize("path", fixture_files(), ids=_ids(fixture_files()))
def test_plan_and_preview_adapters_agree(path):
    assert _run(path, as_plan) == _run(path, as_preview)


def test_rule_metadata_is_complete():
    ids = [r.id for r in ALL_RULES]
    assert len(ids) == len(set(ids))
    for rule in ALL_RULES:
        assert rule.id and rule.id == rule.id.lower() and " " not in rule.id and rule.id != "all"
        assert rule.description and rule.why and rule.category
        assert rule.severity in ("low", "medium", "high", "critical")
        assert rule.enforcement in ("advisory", "mandatory", "disabled")
        for p in rule.params:
            assert p.description and p.schema.get("type")
