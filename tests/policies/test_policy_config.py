"""Policy configuration: defaults from the rules alone, shipped files in sync, clear errors."""

from __future__ import annotations

import json

import pytest
import yaml

from policies import config as policy_config
from policies.config import (
    JSON_FILE,
    YAML_FILE,
    PolicyConfigError,
    render_json,
    render_yaml,
    resolve,
)
from policies.rules import ALL_RULES, BY_ID


def test_shipped_json_matches_the_rules_defaults():
    assert json.loads(JSON_FILE.read_text()) == render_json(), (
        "run `python -m policies.config` to regenerate"
    )


def test_shipped_yaml_matches_the_rules_defaults():
    assert YAML_FILE.read_text() == render_yaml(), "run `python -m policies.config` to regenerate"
    assert yaml.safe_load(YAML_FILE.read_text()) == render_json()


def test_shipped_config_is_valid_and_changes_nothing():
    shipped = policy_config.load(JSON_FILE)
    for rule in ALL_RULES:
        assert shipped.level(rule) == rule.enforcement
        assert shipped.params(rule) == rule.defaults
    assert policy_config.load(YAML_FILE).params(BY_ID["kafka-cluster-durability"]) == {
        "minReplicationFactor": 3,
        "minInsyncReplicas": 2,
    }


def test_documented_defaults():
    """The defaults the README promises."""
    regions = BY_ID["region-allowed-for-jurisdiction"].defaults["allowedRegions"]
    assert regions["us"] == {"aws": ["us-*"], "gcp": ["us-*", "us"], "onprem": ["*"]}
    assert regions["eu"]["aws"] == ["eu-*"] and regions["eu"]["gcp"] == ["europe-*", "eu"]
    assert BY_ID["kafka-brokers-across-zones"].defaults["minZones"] == 3
    assert BY_ID["kubernetes-nodes-across-zones"].defaults["minZones"] == 3


def test_levels_params_and_all():
    cfg = resolve(
        {
            "all": "advisory",
            "bucket-versioned": "disabled",
            "kafka-cluster-durability": {
                "enforcementLevel": "mandatory",
                "minReplicationFactor": 5.0,
            },
        }
    )
    assert cfg.level(BY_ID["bucket-not-public"]) == "advisory"
    assert cfg.level(BY_ID["bucket-versioned"]) == "disabled"
    assert cfg.level(BY_ID["kafka-cluster-durability"]) == "mandatory"
    params = cfg.params(BY_ID["kafka-cluster-durability"])
    assert params == {"minReplicationFactor": 5, "minInsyncReplicas": 2} and isinstance(
        params["minReplicationFactor"], int
    )
    assert (
        resolve({"bucket-encrypted": "remediate"}).level(BY_ID["bucket-encrypted"]) == "mandatory"
    )


@pytest.mark.parametrize(
    "doc, where, says",
    [
        ({"no-such-rule": "advisory"}, "no-such-rule", "unknown rule"),
        ({"bucket-encrypted": "sometimes"}, "bucket-encrypted", "unknown enforcement level"),
        (
            {"bucket-encrypted": {"requireCMK": True}},
            "bucket-encrypted.requireCMK",
            "unknown parameter; allowed: enforcementLevel, requireCustomerManagedKey",
        ),
        (
            {"kafka-brokers-across-zones": {"minZones": "three"}},
            "kafka-brokers-across-zones.minZones",
            "must be an integer",
        ),
        (
            {"kafka-brokers-across-zones": {"minZones": 0}},
            "kafka-brokers-across-zones.minZones",
            "at least 1",
        ),
        (
            {"region-allowed-for-jurisdiction": {"allowedRegions": {"us": {"aws": "us-*"}}}},
            "region-allowed-for-jurisdiction.allowedRegions.us.aws",
            "must be an array",
        ),
        (["bucket-encrypted"], "cfg", "must be an object"),
    ],
)
def test_bad_config_names_the_key(doc, where, says):
    with pytest.raises(PolicyConfigError) as exc:
        resolve(doc, "cfg")
    assert exc.value.where.endswith(where) and says in exc.value.message


def test_config_file_errors(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text('{"bucket-encrypted": ')
    with pytest.raises(PolicyConfigError, match="invalid JSON"):
        policy_config.load(bad)
    with pytest.raises(PolicyConfigError, match="cannot read"):
        policy_config.load(tmp_path / "missing.yaml")


def test_readme_table_lists_every_rule_with_its_default():
    from pathlib import Path

    readme = (Path(policy_config.__file__).parent / "README.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[-2].strip()
        for line in readme.splitlines()
        if line.startswith("| `")
    }
    assert rows == {r.id: r.enforcement for r in ALL_RULES}
