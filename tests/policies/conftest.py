"""Fixtures of the policy tests: the sample stacks planned once to a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def planned_dir(tmp_path_factory) -> Path:
    """``rtdi plan --all --out TMP``: resources.json and outputs.json of every sample stack."""
    from policyfixtures import run_cli

    out = tmp_path_factory.mktemp("policy-plans")
    code, _, err = run_cli(["plan", "--all", "--out", str(out)])
    assert code == 0, err
    return out
