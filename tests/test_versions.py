"""infra/versions.py is the only file under infra/ that spells a chart, image or Kubernetes version.

The check reads every string literal of infra/**/*.py (docstrings and comments excepted) with `ast`
and flags: three-part versions (1.2.0, v1.20.4), EKS add-on builds (eksbuild), image tags
(repo/name:1.20), Kafka metadata versions (4.3-IV0), and any version-looking value (1.33) given
to a name such as ``version``, ``addon_version``, ``kafkaVersion`` or ``tag``. IPv4 addresses and
CIDRs are removed first; Kubernetes ``apiVersion`` values are not versions of anything rtdi deploys.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from plantools import ROOT

INFRA = ROOT / "infra"
VERSIONS = INFRA / "versions.py"

IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?(?![\w.])")
PATTERNS = {
    "three-part version": re.compile(r"(?<![\w.])v?\d+\.\d+\.\d+(?![\d])"),
    "EKS add-on build": re.compile(r"eksbuild", re.I),
    "image tag": re.compile(r"[\w.-]+/[\w.-]+:v?\d+(?:\.\d+)+"),
    "Kafka metadata version": re.compile(r"(?<![\w.])\d+\.\d+-IV\d+\b"),
    "wildcard version": re.compile(r"(?<![\w.])\d+\.\d+\.x\b"),
}
VERSION_NAME = re.compile(r"(?i)(?:^|_)(?:version|tag)$|[a-z]Version$|^VERSION$")
NOT_A_VERSION_NAME = re.compile(r"(?i)^api_?version$")
VERSION_VALUE = re.compile(r"^v?\d+\.\d+")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                ids.add(id(body[0].value))
    return ids


def _name_for(node: ast.AST, parents: dict[int, ast.AST]) -> str | None:
    """The name a string literal is given to: keyword argument, dict key, or assignment target."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.keyword):
        return parent.arg
    if isinstance(parent, ast.Dict) and node in parent.values:
        key = parent.keys[parent.values.index(node)]
        return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        for t in targets:
            if isinstance(t, ast.Name):
                return t.id
            if isinstance(t, ast.Attribute):
                return t.attr
    return None


def version_strings(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: 'literal' (why)`` for every version-like string literal of ``source``."""
    tree = ast.parse(source, filename)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skip:
            continue
        text = IPV4.sub(" ", node.value)
        reasons = [why for why, pattern in PATTERNS.items() if pattern.search(text)]
        name = _name_for(node, parents)
        if (
            name
            and VERSION_NAME.search(name)
            and not NOT_A_VERSION_NAME.match(name)
            and VERSION_VALUE.match(text.strip())
        ):
            reasons.append(f"version given to {name}")
        if reasons:
            found.append(f"{filename}:{node.lineno}: {node.value!r} ({', '.join(reasons)})")
    return found


def infra_sources() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*.py") if p != VERSIONS)


# --------------------------------------------------------------------------- the checker itself

FLAGGED = """
import x
IMAGE = "apache/flink:1.20"
x.Addon(addon_version="v1.20.4-eksbuild.1")
x.Cluster(version="1.33")
spec = {"kafkaVersion": "4.3", "metadataVersion": "4.3-IV0", "note": f"needs kafka 3.9.0 or newer"}
tag = "2.1"
x.Msk(kafka_versions=["3.9.x.kraft"])
x.Release(chart="strimzi-kafka-operator", version="1.2.0")
"""

CLEAN = '''
"""Docstrings may say Strimzi 1.2.0 supports Kafka 4.3.1."""
import x
VPC = "10.0.0.0/16"
ROUTE = {"cidrBlock": "0.0.0.0/0", "master": "172.16.0.0/28", "server": "https://10.0.0.2:443"}
POLICY = {"Version": "2012-10-17", "apiVersion": "client.authentication.k8s.io/v1beta1"}
x.CustomResource(api_version="kafka.strimzi.io/v1", kind="Kafka")
registry = {"version": 1, "uri": "hdfs://namenode.dc1.acme.internal:8020/rtdi"}
x.Subnet(flow_sampling=0.5, name="eu-west-1a", rotation="7776000s",
         config={"retention.ms": "604800000"})
def f():
    """Pinned to 1.33 in versions.py."""
    return "log.message.format.version"
'''


def test_checker_flags_every_way_of_spelling_a_version():
    found = version_strings(FLAGGED)
    lines = sorted(int(f.split(":")[1]) for f in found)
    assert lines == [3, 4, 5, 6, 6, 6, 7, 8, 9], "\n".join(found)


def test_checker_ignores_cidrs_ips_policy_dates_api_versions_and_docstrings():
    assert version_strings(CLEAN) == []


def test_versions_py_is_where_the_versions_are():
    found = version_strings(VERSIONS.read_text(), "infra/versions.py")
    assert len(found) >= 6, (
        "the checker must recognise the versions that versions.py pins:\n" + "\n".join(found)
    )
    assert any("eksbuild" in f for f in found) and any(
        "EKS_VERSION" in f or "'1.33'" in f for f in found
    )


@pytest.mark.parametrize("path", infra_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_version_outside_versions_py(path):
    assert version_strings(path.read_text(), str(path.relative_to(ROOT))) == []


def test_every_infra_module_is_checked():
    names = {str(p.relative_to(ROOT)) for p in infra_sources()}
    assert {
        "infra/targets/aws.py",
        "infra/targets/gcp.py",
        "infra/topology/model.py",
        "infra/program.py",
    } <= names
    assert "infra/versions.py" not in names
