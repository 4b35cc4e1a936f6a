"""What the plans hand Kubernetes and Helm, checked against upstream schemas in ../shared.

* Every custom resource in every sample stack's plan validates, strictly, against the upstream CRDs
  (../shared/tools/validate_crs.py, run as CI would run it, from the repo root).
* Every values key passed to a Helm chart exists in that chart's default values.

These tests skip when ../shared is absent (a user's own clone) and fail when CI is set and it is.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helm_keys import release_problems
from plantools import ROOT, STACK_NAMES, require_shared

VALIDATOR = [sys.executable, "../shared/tools/validate_crs.py", "../shared/schemas/crds"]
SUMMARY = re.compile(r"^validated=(\d+) failed=(\d+) unknown_kind=(\d+)$")
INVALID = re.compile(
    r"^INVALID (?P<file>.+?): (?P<kind>\w+) (?P<name>\S+): (?P<where>\S*): (?P<message>.*)$"
)


@dataclass
class Validation:
    code: int
    lines: list[str]
    validated: int
    failed: int
    unknown_kind: int

    def invalid(self) -> list[re.Match]:
        return [m for m in (INVALID.match(line) for line in self.lines) if m]


def _finish(proc: subprocess.Popen) -> Validation:
    out, err = proc.communicate(timeout=120)
    lines = out.splitlines()
    assert lines, f"validator printed nothing; stderr:\n{err}"
    summary = SUMMARY.match(lines[-1])
    assert summary, f"no summary line from the validator:\n{out}\n{err}"
    return Validation(proc.returncode, lines[:-1], *(int(g) for g in summary.groups()))


# --------------------------------------------------------------------------- fixtures

GOOD_TOPIC = {
    "apiVersion": "kafka.strimzi.io/v1",
    "kind": "KafkaTopic",
    "metadata": {"name": "good-topic", "labels": {"strimzi.io/cluster": "regional"}},
    "spec": {
        "topicName": "trips",
        "partitions": 3,
        "replicas": 3,
        "config": {"retention.ms": 3600000},
    },
}
BAD_TOPIC = {
    **GOOD_TOPIC,
    "metadata": {"name": "bad-topic"},
    "spec": {"partitions": 3, "replicas": 3, "partitionz": 6},
}
BRIDGE = {
    "apiVersion": "kafka.strimzi.io/v1",
    "kind": "KafkaBridge",
    "metadata": {"name": "bridge"},
    "spec": {
        "replicas": 1,
        "bootstrapServers": "regional-kafka-bootstrap:9093",
        "http": {"port": 8080},
        "tls": {
            "trustedCertificates": [
                {"secretName": "regional-cluster-ca-cert", "certificate": "ca.crt"}
            ]
        },
    },
}


@pytest.fixture(scope="module")
def shared():
    return require_shared()


@pytest.fixture(scope="module")
def validations(shared, cli_plan, tmp_path_factory):
    """The validator over the plans and some hand-written CRs at once (each run loads every CRD)."""
    selftest = tmp_path_factory.mktemp("crs")
    for name, obj in (("good-topic", GOOD_TOPIC), ("bad-topic", BAD_TOPIC), ("bridge", BRIDGE)):
        (selftest / f"{name}.yaml").write_text(yaml.safe_dump(obj))
    # A planned FlinkDeployment with one misspelt field: the validator must see FlinkDeployments
    # and refuse what the operator's CRD does not define.
    (planned,) = cli_plan.out.glob("onprem-dc1/manifests/FlinkDeployment-*-payments.yaml")
    flink = yaml.safe_load(planned.read_text())
    flink["metadata"]["name"] = "bad-flink"
    flink["spec"]["taskManager"]["replica"] = 2  # the CRD's field is `replicas`
    (selftest / "bad-flink.yaml").write_text(yaml.safe_dump(flink))
    procs = {
        "plans": subprocess.Popen(
            [*VALIDATOR, str(cli_plan.out)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        "selftest": subprocess.Popen(
            [*VALIDATOR, str(selftest)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    }
    return {k: _finish(p) for k, p in procs.items()}


def crd_groups(crd_dir: Path) -> set[str]:
    groups = set()
    for path in crd_dir.rglob("*"):
        if path.suffix in (".yaml", ".yml"):
            groups |= set(re.findall(r'^  group:\s*"?([\w.-]+)"?\s*$', path.read_text(), re.M))
    return groups


def is_builtin(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return group in ("", "apps", "batch", "policy", "autoscaling") or group.endswith(".k8s.io")


def plan_objects(plan_dir: Path) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(plan_dir.glob("*/manifests/*.yaml")):
        if not path.name.startswith("helm-"):
            found.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


# ------------------------------------------------------------------------- ../shared present or not


def test_require_shared_skips_in_a_users_clone(tmp_path):
    with pytest.raises(pytest.skip.Exception):
        require_shared(tmp_path / "shared", env={})


def test_require_shared_fails_in_ci(tmp_path):
    with pytest.raises(pytest.fail.Exception):
        require_shared(tmp_path / "shared", env={"CI": "true"})


def test_require_shared_returns_an_existing_folder(tmp_path):
    assert require_shared(tmp_path, env={"CI": "1"}) == tmp_path


# --------------------------------------------------------------------------- CRDs


def test_plan_custom_resources_validate(validations, cli_plan, shared):
    v = validations["plans"]
    assert cli_plan.code == 0
    groups = crd_groups(shared / "schemas" / "crds")
    assert {"kafka.strimzi.io", "flink.apache.org"} <= groups
    custom = [(p, o) for p, o in plan_objects(cli_plan.out) if not is_builtin(o["apiVersion"])]
    orphans = [
        f"{p.name}: {o['apiVersion']}"
        for p, o in custom
        if o["apiVersion"].rpartition("/")[0] not in groups
    ]
    assert orphans == [], "custom resources whose group has no upstream CRD in ../shared"
    assert v.unknown_kind == 0, "\n".join(v.lines)
    assert v.validated == len(custom), (
        "the validator must have seen every custom resource of the plans"
    )
    kinds = Counter(o["kind"] for _, o in custom)
    assert kinds["FlinkDeployment"] == 12, "three jobs in each of four regions, validated too"
    assert v.invalid() == [], "\n".join(m.string for m in v.invalid())
    assert [line for line in v.lines if not INVALID.match(line)] == []
    assert v.failed == 0 and v.code == 0


def test_validator_rejects_an_unknown_field(validations):
    v = validations["selftest"]
    assert v.code == 1
    assert v.validated == 4 and v.unknown_kind == 0
    by_name = {}
    for m in v.invalid():
        by_name.setdefault(m["name"], []).append(m)
    assert "good-topic" not in by_name, "the well-formed KafkaTopic must pass"
    (bad,) = by_name["bad-topic"]
    assert bad["file"].endswith("bad-topic.yaml") and "partitionz" in bad["message"]
    (flink,) = by_name["bad-flink"]
    assert flink["kind"] == "FlinkDeployment" and "replica" in flink["message"]


def test_validator_accepts_a_valid_cert_secret_source(validations):
    """Strimzi's CertSecretSource ({secretName, certificate}) sits in a oneOf: it must validate."""
    v = validations["selftest"]
    assert [m.string for m in v.invalid() if m["name"] == "bridge"] == []


# --------------------------------------------------------------------------- Helm values


SYNTHETIC_RELEASE = {
    "chart": "oci://quay.io/strimzi-helm/strimzi-kafka-operator",
    "version": "1.2.0",
    "values": {
        "replicas": 2,
        "watchNamespaces": ["kafka"],
        "leaderElection": {"enable": True},
        "resources": {"requests": {"cpu": "200m"}},
        "kafka": {"image": {"registry": "mirror.example"}},
    },
}


def test_walker_on_a_synthetic_release(shared):
    values_dir = shared / "schemas" / "helm-values"
    assert release_problems(SYNTHETIC_RELEASE, values_dir) == []
    typo = {
        **SYNTHETIC_RELEASE,
        "values": {
            **SYNTHETIC_RELEASE["values"],
            "watchNamespace": ["kafka"],
            "leaderElection": {"enabled": True},
        },
    }
    assert sorted(release_problems(typo, values_dir)) == [
        "strimzi-kafka-operator 1.2.0: leaderElection.enabled: not a key of the chart's default "
        "values",
        "strimzi-kafka-operator 1.2.0: watchNamespace: not a key of the chart's default values",
    ]


def test_every_helm_value_key_exists_in_the_chart(cli_plan, plans, shared):
    values_dir = shared / "schemas" / "helm-values"
    files = sorted(cli_plan.out.glob("*/manifests/helm-*.yaml"))
    releases = sum(len(plans[s].of_type("kubernetes:helm.sh/v3:Release")) for s in STACK_NAMES)
    assert len(files) == releases, (
        "every Helm release of the plans is written as a helm-*.yaml manifest"
    )
    problems = []
    for path in files:
        release = yaml.safe_load(path.read_text())
        assert {"chart", "version"} <= set(release), path
        problems += [
            f"{path.parent.parent.name}/{path.name}: {p}"
            for p in release_problems(release, values_dir)
        ]
    assert problems == []
