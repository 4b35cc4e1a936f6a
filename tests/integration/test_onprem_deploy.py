"""`pulumi up` of the on-prem sample stack against a real Kubernetes API server: the offline plan
and a real deployment agree.

The API server (../shared/kubernetes, etcd behind it) validates every object as a cluster would
(strict field validation, the CRD schemas the Strimzi chart installs, admission) but runs no
kubelet, so pods never start. On a fresh copy of the tracked files, with the real Pulumi CLI and
the real Kubernetes provider, the global stack and then `onprem-dc1` are deployed as a first
deployment (its peers aws-eu-west-1 and gcp-europe-west4 do not exist). The stack file of the copy
changes only where this machine needs it: the kubeconfig of the test's API server, the Strimzi
chart from a local folder (an air-gapped site's chart source) and a Helm release that does not
wait for readiness (nothing would ever become ready).

Then: every Kubernetes object of the offline plan of that same configuration
(`plan_stacks(..., rounds=1)` on the copy) is live with every planned field; the Helm release's
objects carry the planned values; a second `pulumi up` changes nothing; `pulumi destroy` removes
everything.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kube_local as kl
from test_deploy import fresh_copy

from infra import versions
from plantools import ROOT, SHARED
from pulumi_cli import PulumiCli, pulumi_cli

pytestmark = pytest.mark.integration

STACK = "onprem-dc1"
PEERS_ABSENT = {"aws-eu-west-1", "gcp-europe-west4"}
CHART = SHARED / "charts" / "strimzi-kafka-operator-1.2.0"
# The Flink operator's CRDs as the chart installs them (../shared holds the CRDs, not the chart).
FLINK_CRDS = (
    SHARED / "schemas" / "crds" / f"flink-kubernetes-operator-{versions.FLINK_OPERATOR_VERSION}"
)
RELEASE = "kubernetes:helm.sh/v3:Release"
# Declared by the plan but not Kubernetes objects: the provider and the Helm release (whose
# objects are checked from the chart's side in test_helm_release_objects_carry_the_planned_values).
NOT_OBJECTS = {RELEASE, "pulumi:providers:kubernetes"}


class Deployment:
    """The copy, its CLI, the API server and the offline plan of the same configuration."""

    def __init__(self, copy: Path, cli: PulumiCli, server: kl.ApiServer, plan, seconds: dict):
        self.copy, self.cli, self.server, self.plan, self.seconds = copy, cli, server, plan, seconds

    def pulumi(self, *args: str, timeout: float = 600):
        return self.cli.run(*args, "--stack", STACK, cwd=self.copy, timeout=timeout)

    def planned_objects(self) -> list[dict[str, Any]]:
        return [
            r.inputs
            for r in self.plan.resources
            if r.type.startswith("kubernetes:") and r.type not in NOT_OBJECTS
        ]

    def release(self) -> dict[str, Any]:
        """The Strimzi release (the Flink layer's operator release is the other one)."""
        (found,) = [r.inputs for r in self.plan.of_type(RELEASE) if r.name.endswith("-strimzi")]
        return found


def flink_crd_chart(folder: Path) -> Path:
    """A local chart named and versioned as the Flink operator's that installs only its CRDs.

    The real chart is fetched from archive.apache.org, which this test must not need; its CRDs
    (the shared copy) are what makes the API server check every FlinkDeployment the plan
    declares against the operator's schema. The operator itself would never run here anyway:
    the API server has no kubelet.
    """
    (folder / "crds").mkdir(parents=True)
    (folder / "templates").mkdir()
    (folder / "Chart.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": versions.FLINK_OPERATOR_CHART_NAME,
                "version": versions.FLINK_OPERATOR_VERSION,
            }
        )
    )
    (folder / "values.yaml").write_text(
        (SHARED / "schemas" / "helm-values" / f"{folder.name}.values.yaml").read_text()
    )
    for crd in FLINK_CRDS.glob("*.yml"):
        (folder / "crds" / crd.name).write_text(crd.read_text())
    return folder


def values_chart(folder: Path, name: str, version: str, values: str) -> Path:
    """A local chart named and versioned as ``name`` ``version`` with its values and no templates.

    The real Pinot and Trino charts are fetched from github.com and trinodb.github.io, which this
    test must not need (and cannot reach here), so those releases install nothing: their pods
    would never run on an API server without a kubelet anyway. Everything else of those layers
    (namespaces, service accounts, Kafka identity, ConfigMaps, Jobs, the metastore and its
    database, budgets) is deployed and compared like every other object. The charts' own objects
    are not validated here.
    """
    folder.mkdir(parents=True)
    (folder / "templates").mkdir()
    (folder / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version})
    )
    defaults = SHARED / "schemas" / "helm-values" / f"{name}-{values}.values.yaml"
    (folder / "values.yaml").write_text(defaults.read_text())
    return folder


def local_config(copy: Path, kubeconfig: Path) -> None:
    """The stack file of the copy, changed only where this machine needs it."""
    path = copy / "stacks" / f"Pulumi.{STACK}.yaml"
    doc = yaml.safe_load(path.read_text())
    config = doc["config"]
    config["rtdi:kubernetes"]["kubeconfig"] = str(kubeconfig)
    flink = flink_crd_chart(
        copy / ".charts" / f"{versions.FLINK_OPERATOR_CHART_NAME}-{versions.FLINK_OPERATOR_VERSION}"
    )
    pinot = values_chart(
        copy / ".charts" / f"{versions.PINOT_CHART_NAME}-{versions.PINOT_CHART_VERSION}",
        versions.PINOT_CHART_NAME,
        versions.PINOT_CHART_VERSION,
        versions.PINOT_CHART_VALUES,
    )
    trino = values_chart(
        copy / ".charts" / f"{versions.TRINO_CHART_NAME}-{versions.TRINO_CHART_VERSION}",
        versions.TRINO_CHART_NAME,
        versions.TRINO_CHART_VERSION,
        versions.TRINO_CHART_VERSION,
    )
    config["rtdi:charts"] = {
        "strimzi-kafka-operator": {"source": "local", "path": str(CHART)},
        versions.FLINK_OPERATOR_CHART_NAME: {"source": "local", "path": str(flink)},
        versions.PINOT_CHART_NAME: {"source": "local", "path": str(pinot)},
        versions.TRINO_CHART_NAME: {"source": "local", "path": str(trino)},
    }
    config["rtdi:helm"] = {"wait": False, "atomic": False}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def apiserver():
    """etcd + the API server, once for the module; the binaries stay unpacked in .cache/k8s."""
    kl.require_kube(CHART, FLINK_CRDS)
    server = kl.start(ROOT / ".cache" / "k8s")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def deployment(apiserver, tmp_path_factory) -> Deployment:
    from infra.plan import Project, plan_stacks

    seconds: dict[str, float] = {}
    copy = fresh_copy(tmp_path_factory.mktemp("onprem-copy"))
    # test_deploy.py proves that `pulumi install` makes this virtualenv from the lock; here the
    # project's own (the same lock) saves that minute. The program imports `infra` from the copy.
    (copy / ".venv").symlink_to(ROOT / ".venv")
    local_config(copy, apiserver.kubeconfig)
    plan = plan_stacks(Project.find(copy), [STACK], rounds=1)[STACK]

    cli = pulumi_cli(tmp_path_factory.mktemp("onprem-state"))
    cli.env.update(apiserver.env(cli.env))
    for stack in ("global", STACK):
        start = time.monotonic()
        cli.run("stack", "init", stack, cwd=copy)
        cli.run("up", "--yes", "--skip-preview", "--stack", stack, cwd=copy, timeout=900)
        seconds[f"up {stack}"] = time.monotonic() - start
    return Deployment(copy, cli, apiserver, plan, seconds)


def test_first_deployment_leaves_the_absent_peers_pending(deployment):
    pending = json.loads(deployment.pulumi("stack", "output", "pending", "--json").stdout)
    assert pending == deployment.plan.outputs["pending"]
    assert {p["stack"] for p in pending} == PEERS_ABSENT
    assert all(p["reason"] == "stack does not exist yet" for p in pending)


def test_the_engine_declared_what_the_plan_declared(deployment):
    """The real state holds the same resources (type and name) as the offline plan."""
    state = json.loads(deployment.pulumi("stack", "export").stdout)
    real = {
        (r["type"], r["urn"].rsplit("::", 1)[1])
        for r in state["deployment"]["resources"]
        if not r["type"].startswith("pulumi:providers:") or not r["urn"].endswith("::default")
    }
    planned = {(r.type, r.name) for r in deployment.plan.resources}
    assert sorted(planned - real) == [] and sorted(real - planned) == []
    # And with the same inputs: the provider, the Helm release (chart source, wait) and every
    # object as the engine recorded them.
    inputs = {
        (r["type"], r["urn"].rsplit("::", 1)[1]): r.get("inputs", {})
        for r in state["deployment"]["resources"]
    }
    differences = [
        f"{r.type} {r.name}{d}"
        for r in deployment.plan.resources
        if r.custom
        for d in kl.subset_differences(recorded(r), inputs[(r.type, r.name)])
    ]
    assert differences == []


def recorded(resource) -> dict[str, Any]:
    """The planned inputs the engine records. The SDK sends every Release `compat: "true"` (a
    marker of the Python SDK's calling convention) and the provider's Check drops it, so the
    state never holds it: the one input the plan shows and the state cannot."""
    if resource.type == RELEASE:
        assert resource.inputs["compat"] == "true"
        return {k: v for k, v in resource.inputs.items() if k != "compat"}
    return resource.inputs


def test_every_planned_object_is_live_as_planned(deployment):
    planned = deployment.planned_objects()
    live = deployment.server.get([kl.identity_of(o) for o in planned])
    differences = []
    for obj in planned:
        key = kl.identity(obj)
        name = "/".join(filter(None, key[1:]))
        if key not in live:
            differences.append(f"{name}: planned, not on the API server")
            continue
        differences += [f"{name}{d}" for d in kl.subset_differences(obj, live[key])]
        if obj["kind"] == "Secret" and sorted(obj["data"]) != sorted(live[key].get("data", {})):
            differences.append(f"{name}.data: keys {sorted(live[key].get('data', {}))} live")
    print(f"\ncompared {len(planned)} planned objects with the API server")
    assert len(planned) == len(live)
    assert differences == []


def test_the_release_is_the_local_chart_without_waiting(deployment):
    """What this test's stack file asks of the release, as the program declares it."""
    release = deployment.release()
    assert release["chart"] == str(CHART)
    assert release["skipAwait"] is True
    assert release["atomic"] is False


def release_objects(deployment) -> dict[str, Any]:
    release = deployment.release()
    namespace, name = release["namespace"], "strimzi-cluster-operator"
    return deployment.server.get(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace},
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": f"sh.helm.release.v1.{release['name']}.v1",
                    "namespace": namespace,
                },
            },
        ]
    )


def test_helm_release_objects_carry_the_planned_values(deployment):
    """No `helm template` here: the facts the planned values and the pinned version fix."""
    release = deployment.release()
    values = release["values"]
    assert release["version"] == CHART.name.rsplit("-", 1)[1]
    live = release_objects(deployment)
    assert len(live) == 3, sorted(live)
    (operator,) = [o for o in live.values() if o["kind"] == "Deployment"]
    assert operator["spec"]["replicas"] == values["replicas"]
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    assert kl.subset_differences(values["resources"], container["resources"]) == []
    env = {e["name"]: e.get("value") for e in container["env"]}
    # The chart watches its own namespace besides the planned ones.
    watched = env["STRIMZI_NAMESPACE"].split(",")
    assert sorted(watched) == sorted({*values["watchNamespaces"], release["namespace"]})
    assert env["STRIMZI_LEADER_ELECTION_ENABLED"] == str(values["leaderElection"]["enable"]).lower()
    assert container["image"].endswith(f":{release['version']}")
    # Every custom resource kind the plan declares is served by a CRD the release installed.
    kinds = {o["kind"] for o in deployment.planned_objects() if "strimzi.io" in o["apiVersion"]}
    crds = json.loads(deployment.server.kubectl("get", "crd", "-o", "json").stdout)["items"]
    served = {c["spec"]["names"]["kind"] for c in crds if c["spec"]["group"] == "kafka.strimzi.io"}
    assert kinds <= served


def test_a_second_up_changes_nothing(deployment):
    start = time.monotonic()
    deployment.pulumi("up", "--yes", "--expect-no-changes")
    deployment.seconds[f"up {STACK} again"] = time.monotonic() - start


def test_destroy_removes_everything(deployment):
    planned = deployment.planned_objects()
    start = time.monotonic()
    with kl.Finalizers(deployment.server, [kl.identity_of(o) for o in planned]) as finalizers:
        deployment.pulumi("destroy", "--yes", timeout=300)
    deployment.seconds[f"destroy {STACK}"] = time.monotonic() - start
    # What the missing controllers would have finalized: every object Pulumi deleted.
    assert sorted(finalizers.completed) == sorted(
        f"{o['kind']}/{o['metadata']['name']}" for o in planned
    )
    assert deployment.server.get([kl.identity_of(o) for o in planned]) == {}
    assert release_objects(deployment) == {}
    state = json.loads(deployment.pulumi("stack", "export").stdout)
    assert [r["type"] for r in state["deployment"].get("resources") or []] == []
    print(f"\nseconds: {json.dumps({k: round(v, 1) for k, v in deployment.seconds.items()})}")


def test_the_comparison_reports_what_the_server_lacks_or_changed():
    """The comparison itself, without a server: what would make the deployment test fail."""
    planned = {
        "metadata": {"name": "a", "labels": {"x": "1"}},
        "data": {"k": kl.SECRET, "plain": "v"},
        "spec": {"items": [{"n": 1}]},
    }
    live = {
        "metadata": {"name": "a", "labels": {"x": "1"}, "uid": "u", "annotations": {}},
        "data": {"k": "c2VjcmV0", "plain": "v"},
        "spec": {"items": [{"n": 1, "default": True}]},
        "status": {},
    }
    assert kl.subset_differences(planned, live) == []
    live["metadata"]["labels"]["x"] = "2"
    del live["data"]["k"]
    live["spec"]["items"].append({"n": 2})
    assert kl.subset_differences(planned, live) == [
        '.metadata.labels.x: planned "1", live "2"',
        '.data.k: planned "[secret]", not live',
        '.spec.items: planned [{"n": 1}], live [{"n": 1, "default": true}, {"n": 2}]',
    ]
    assert kl.subset_differences({"n": 1}, {"n": "1"}) == ['.n: planned 1, live "1"']
