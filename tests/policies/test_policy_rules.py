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
from policies.rules._cidrs import covers_internet, grant, openings, public_ranges
from policies.rules._iam import public_statements, restricting_condition
from policies.view import from_plan
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


# --------------------------------------------------------------------------- shared helpers


@pytest.mark.parametrize(
    "cidrs",
    [
        ["0.0.0.0/0"],
        ["::/0"],
        ["0.0.0.0/1", "128.0.0.0/1"],
        ["2000::/4", "3000::/4"],  # all of global unicast IPv6
        ["::/1"],  # holds 2000::/3
        # everything but private space: still every public address
        ["0.0.0.0/5", "8.0.0.0/7", "11.0.0.0/8", "12.0.0.0/6", "16.0.0.0/4", "32.0.0.0/3"]
        + ["64.0.0.0/2", "128.0.0.0/1"],
        ["10.0.0.1/0"],  # host bits, as the clouds normalize them
    ],
)
def test_cidr_sets_that_cover_the_internet(cidrs):
    assert covers_internet(cidrs)


@pytest.mark.parametrize(
    "cidrs",
    [
        [],
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        ["0.0.0.0/1"],
        ["0.0.0.0/1", "128.0.0.0/2"],
        ["0.0.0.0/1", "2000::/4"],  # half of each family is neither family whole
        ["2000::/4", "fc00::/7"],
        ["not-a-cidr", None, 7],
    ],
)
def test_cidr_sets_that_leave_public_addresses_out(cidrs):
    assert not covers_internet(cidrs)


def test_public_ranges_names_only_the_entries_that_reach_public_space():
    assert public_ranges(["10.0.0.0/8", "0.0.0.0/1", "fd00::/8", "::/0", "junk"]) == [
        "0.0.0.0/1",
        "::/0",
    ]


@pytest.mark.parametrize(
    ("condition", "restricts"),
    [
        ({"StringEquals": {"aws:PrincipalOrgID": "o-1"}}, True),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:s3:::b"}}, True),
        ({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}, True),
        ({"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}, False),
        ({"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}}, False),
        ({"StringNotEquals": {"aws:PrincipalAccount": "1"}}, False),
        ({"StringLike": {"aws:PrincipalArn": "*"}}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, False),
        ({"StringEquals": {"aws:PrincipalOrgID": []}}, False),
        (None, False),
    ],
)
def test_which_conditions_pin_a_public_principal(condition, restricts):
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    if condition is not None:
        statement["Condition"] = condition
    assert restricting_condition(statement) is restricts
    assert public_statements({"Statement": statement}) == ([] if restricts else ["#0"])


def test_deny_statements_are_never_public():
    deny = {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*"}
    assert public_statements({"Statement": [deny]}) == []


def test_a_plan_without_its_stack_resource_is_a_violation():
    """A resources.json of [] (or without the root stack) is no plan at all: the fixtures always
    add the root, so this case is built here."""
    rule = BY_ID["plan-not-empty"]
    report = evaluate([from_plan([])], PolicyConfig.defaults(), rules=[rule])
    assert [v.rule for v in report.violations] == ["plan-not-empty"]
    assert "has no pulumi:pulumi:Stack resource (0 resources)" in report.violations[0].message
    assert report.violations[0].enforcement == "mandatory"


def test_openings_are_per_protocol_and_port():
    halves_apart = [
        grant("tcp", 9096, 9096, ["0.0.0.0/1"]),
        grant("tcp", 9098, 9098, ["128.0.0.0/1"]),
    ]
    assert openings(halves_apart) == []
    udp_and_tcp = [grant("udp", 53, 53, ["0.0.0.0/1"]), grant("tcp", 53, 53, ["128.0.0.0/1"])]
    assert openings(udp_and_tcp) == []
    overlapping = [
        grant("tcp", 9000, 9100, ["0.0.0.0/1"], "a"),
        grant("6", "9096", "9098", ["128.0.0.0/1", "10.0.0.0/8"], "b"),
    ]
    (found,) = openings(overlapping)
    assert (found.where, found.cidrs, found.sources) == (
        "tcp 9096-9098",
        ("0.0.0.0/1", "128.0.0.0/1"),
        ("a", "b"),
    )
    any_protocol = [grant("-1", 0, 0, ["0.0.0.0/1"]), grant("udp", None, None, ["128.0.0.0/1"])]
    assert [o.where for o in openings(any_protocol)] == ["udp all ports"]
    assert [o.where for o in openings([grant("all", 22, 22, ["::/0"])])] == ["all traffic"]
    icmp_any = [grant("icmp", -1, -1, ["0.0.0.0/0"])]
    assert [o.where for o in openings(icmp_any)] == ["icmp all ports"]
