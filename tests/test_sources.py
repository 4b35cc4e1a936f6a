"""Charts and images from where the site keeps them: per-chart sources, Helm wait settings and
the image registry mirror, as the plan declares them (air-gapped sites pull from no public
registry)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import versions
from infra.plan.engine import Declared, run_stack
from infra.plan.writer import helm_release
from infra.program import main
from infra.targets.sources import mirrored, split_reference
from infra.topology import checks
from infra.topology.config import StackConfig
from plantools import ROOT, SHARED, require_shared, sample_config

RELEASE = "kubernetes:helm.sh/v3:Release"
STRIMZI = versions.STRIMZI_CHART_NAME
MIRROR = "registry.dc1.acme.internal/mirror"
LOCAL_CHART = SHARED / "charts" / f"{STRIMZI}-{versions.STRIMZI_VERSION}"


def with_values(stack: str, **values: Any) -> StackConfig:
    """The sample stack with ``rtdi:<key>`` values added (structures as the engine passes them)."""
    cfg = sample_config(stack)
    flat = dict(cfg.values)
    for key, value in values.items():
        flat[f"rtdi:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return StackConfig(cfg.stack, cfg.file, flat, set(cfg.secret_keys))


def release_of(plans, cfg: StackConfig) -> Declared:
    plan = run_stack(cfg, main, {"global": plans["global"].values})
    return _strimzi(plan)


def _strimzi(plan):
    """The Strimzi release of a plan (the Flink layer has its own)."""
    (release,) = [r for r in plan.of_type(RELEASE) if r.name.endswith("-kafka-strimzi")]
    return release


def test_public_chart_by_default_waits_atomically(plans):
    for stack in ("onprem-dc1", "aws-us-east-1", "gcp-europe-west4"):
        inputs = _strimzi(plans[stack]).inputs
        assert inputs["chart"] == versions.STRIMZI_CHART
        assert inputs["version"] == versions.STRIMZI_VERSION
        assert "repositoryOpts" not in inputs
        assert (inputs["atomic"], inputs["skipAwait"], inputs["timeout"]) == (True, False, 600)
        assert "defaultImageRegistry" not in inputs["values"]


def test_local_chart_without_waiting(plans):
    require_shared()
    cfg = with_values(
        "onprem-dc1",
        charts={STRIMZI: {"source": "local", "path": str(LOCAL_CHART)}},
        helm={"wait": False},
    )
    release = release_of(plans, cfg)
    inputs = release.inputs
    assert inputs["chart"] == str(LOCAL_CHART)
    assert inputs["version"] == versions.STRIMZI_VERSION
    # Nothing waits: a cluster without kubelets (or one still pulling images) accepts it.
    assert (inputs["skipAwait"], inputs["atomic"]) == (True, False)
    assert "repositoryOpts" not in inputs
    # and the plan's helm-*.yaml says so, for the reviewer
    written = helm_release(release)
    assert (written["chart"], written["skipAwait"], written["atomic"]) == (
        str(LOCAL_CHART),
        True,
        False,
    )


def test_local_chart_path_relative_to_the_project_root(plans, monkeypatch):
    require_shared()
    monkeypatch.chdir(ROOT / "stacks")  # the project root is found upwards, as pulumi does
    relative = f"../shared/charts/{LOCAL_CHART.name}"
    cfg = with_values("onprem-dc1", charts={STRIMZI: {"source": "local", "path": relative}})
    inputs = release_of(plans, cfg).inputs
    # As written: the provider resolves it in the project root, and the state stays portable.
    assert inputs["chart"] == relative
    assert (inputs["skipAwait"], inputs["atomic"]) == (False, True)


def test_oci_mirror_appends_the_chart_name(plans):
    repo = "oci://registry.dc1.acme.internal:5000/charts"
    cfg = with_values("onprem-dc1", charts={STRIMZI: {"source": "oci", "repository": repo}})
    inputs = release_of(plans, cfg).inputs
    assert inputs["chart"] == f"{repo}/{STRIMZI}"
    assert inputs["version"] == versions.STRIMZI_VERSION
    assert "repositoryOpts" not in inputs


def test_http_mirror_is_a_helm_repository(plans):
    repo = "https://charts.dc1.acme.internal/strimzi"
    # valid on every cloud: an air-gapped site may be a cloud region too
    cfg = with_values("gcp-europe-west4", charts={STRIMZI: {"source": "http", "repository": repo}})
    inputs = release_of(plans, cfg).inputs
    assert inputs["chart"] == STRIMZI
    assert inputs["repositoryOpts"] == {"repo": repo}


def test_helm_settings(plans):
    cfg = with_values("onprem-dc1", helm={"atomic": False, "timeoutSeconds": 1800})
    inputs = release_of(plans, cfg).inputs
    assert (inputs["atomic"], inputs["skipAwait"], inputs["timeout"]) == (False, False, 1800)


def test_image_registry_mirrors_the_operator_and_every_image_it_derives(plans):
    cfg = with_values("onprem-dc1", imageRegistry=MIRROR)
    values = release_of(plans, cfg).inputs["values"]
    assert values["defaultImageRegistry"] == MIRROR
    assert values["watchNamespaces"] == ["kafka"]


def test_every_strimzi_image_falls_back_to_the_default_registry():
    """Why `defaultImageRegistry` alone mirrors them all: the operator and each image it derives
    (Kafka, Cruise Control, MirrorMaker 2, entity operators...) leave their own registry empty
    in the pinned chart, and the chart's repository is the public one's path."""
    shared = require_shared()
    path = shared / "schemas" / "helm-values" / f"{STRIMZI}-{versions.STRIMZI_VERSION}.values.yaml"
    defaults = yaml.safe_load(path.read_text())
    assert defaults["defaultImageRegistry"] == "quay.io"
    assert defaults["defaultImageRepository"] == "strimzi"
    images = {"image": defaults["image"]}
    images |= {k: v["image"] for k, v in defaults.items() if isinstance(v, dict) and "image" in v}
    assert {"image", "kafka", "kafkaMirrorMaker2", "cruiseControl", "topicOperator"} <= set(images)
    for key, image in images.items():
        assert not image.get("registry"), f"{key}.image.registry would escape the mirror"


def test_tiered_storage_image_is_mirrored(plans):
    cfg = with_values("aws-us-east-1", imageRegistry=MIRROR)
    plan = run_stack(cfg, main, {"global": plans["global"].values})
    (kafka,) = [
        r.inputs
        for r in plan.of_type("kubernetes:kafka.strimzi.io/v1:Kafka")
        if r.inputs["metadata"]["name"] == "regional"
    ]
    (before,) = [
        r.inputs
        for r in plans["aws-us-east-1"].of_type("kubernetes:kafka.strimzi.io/v1:Kafka")
        if r.inputs["metadata"]["name"] == "regional"
    ]
    assert before["spec"]["kafka"]["image"] == (
        "registry.acme.internal/kafka/strimzi-tiered:1.2.0-kafka-4.3.1"
    )
    assert kafka["spec"]["kafka"]["image"] == f"{MIRROR}/kafka/strimzi-tiered:1.2.0-kafka-4.3.1"


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("quay.io/strimzi/kafka:1.2.0-kafka-4.3.1", f"{MIRROR}/strimzi/kafka:1.2.0-kafka-4.3.1"),
        # a port is the registry's, not a tag
        ("registry.acme.internal:5000/kafka/tiered:1.0", f"{MIRROR}/kafka/tiered:1.0"),
        ("localhost:5000/tiered:1.0", f"{MIRROR}/tiered:1.0"),
        ("localhost/tiered", f"{MIRROR}/tiered"),
        # no registry is Docker Hub; a one-component path there is library/<name>
        ("apache/kafka:4.1.0", f"{MIRROR}/apache/kafka:4.1.0"),
        ("kafka:4.1.0", f"{MIRROR}/library/kafka:4.1.0"),
        ("docker.io/kafka", f"{MIRROR}/library/kafka"),
        ("index.docker.io/apache/kafka", f"{MIRROR}/apache/kafka"),
        # digests (alone or with a tag) are kept, so the same bytes are pulled
        (f"quay.io/strimzi/kafka@{DIGEST}", f"{MIRROR}/strimzi/kafka@{DIGEST}"),
        (f"quay.io/strimzi/kafka:1.2.0@{DIGEST}", f"{MIRROR}/strimzi/kafka:1.2.0@{DIGEST}"),
        # already in the mirror: kept
        (f"{MIRROR}/strimzi/kafka:1.2.0", f"{MIRROR}/strimzi/kafka:1.2.0"),
    ],
)
def test_mirror_rewrite_rule(reference, expected):
    assert mirrored(reference, MIRROR) == expected
    assert mirrored(reference, None) == reference


def test_split_reference_names_the_registry():
    assert split_reference("kafka") == ("docker.io", "library/kafka")
    assert split_reference("my.registry:443/a/b:1") == ("my.registry:443", "a/b:1")
    assert split_reference("strimzi/kafka:1") == ("docker.io", "strimzi/kafka:1")


def _chart(folder: Path, name: str, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    return folder


def _problems(charts: dict, root: Path) -> list[tuple[Any, ...]]:
    from infra.topology.model import OnpremStack

    stack = OnpremStack.model_validate(
        {
            "region": "onprem-dc1",
            "cloud": "onprem",
            "kubernetes": {"kubeconfig": "k", "context": "c", "storageClass": "s"},
            "objectStore": {"kind": "hdfs", "uri": "hdfs://nn:8020/x"},
            "charts": charts,
        }
    )
    return list(checks.check_sources(stack, root))


def test_a_local_chart_must_be_the_pinned_one(tmp_path):
    pinned = versions.STRIMZI_VERSION
    _chart(tmp_path / "good", STRIMZI, pinned)
    _chart(tmp_path / "old", STRIMZI, "0.45.0")
    _chart(tmp_path / "other", "flink-kubernetes-operator", pinned)
    assert _problems({STRIMZI: {"source": "local", "path": "good"}}, tmp_path) == []
    assert _problems({STRIMZI: {"source": "local", "path": str(tmp_path / "good")}}, ROOT) == []
    ((loc, value, message),) = _problems({STRIMZI: {"source": "local", "path": "old"}}, tmp_path)
    assert (loc, value) == (("charts", STRIMZI, "path"), "old")
    assert message.startswith(f"holds {STRIMZI} 0.45.0, and rtdi pins {pinned}")
    ((_, _, message),) = _problems({STRIMZI: {"source": "local", "path": "other"}}, tmp_path)
    assert message.startswith(f"holds chart flink-kubernetes-operator, not {STRIMZI}")


def test_every_helm_release_is_a_chart_rtdi_charts_can_name(plans):
    """A release whose chart is not in versions.HELM_CHARTS could not be pointed at a mirror."""
    public = {chart: name for name, (chart, _) in versions.HELM_CHARTS.items()}
    releases = [r for plan in plans.values() for r in plan.of_type(RELEASE)]
    assert releases
    for release in releases:
        # A public Helm repository is named by repositoryOpts, its chart by name.
        source = release.inputs.get("repositoryOpts", {}).get("repo") or release.inputs["chart"]
        assert source in public, release.name
        name = public[source]
        assert release.inputs["version"] == versions.HELM_CHARTS[name][1]
