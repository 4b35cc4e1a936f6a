"""The sample stacks: they load as the engine would, validate, plan, and `rtdi plan` writes them."""

from __future__ import annotations

import json
import re

import pulumi
import pytest
import yaml

from infra.plan.engine import run_stack
from infra.plan.project import validate
from infra.plan.writer import HELM_RELEASE, is_k8s_object
from infra.topology.config import NAMESPACE, SECRET_PLACEHOLDER, from_engine
from infra.topology.model import REGIONAL_MODELS, GlobalStack
from plantools import STACK_NAMES, STACKS, sample_config

REGIONAL = [s for s in STACK_NAMES if s != "global"]


def test_sample_stacks_exist():
    assert "global" in STACK_NAMES
    clouds = {sample_config(s).values[f"{NAMESPACE}:cloud"] for s in REGIONAL}
    assert clouds == {"aws", "gcp", "onprem"}, "the samples should cover every target"


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_stack_file_loads_as_flat_engine_config(stack):
    """Each YAML key becomes ``rtdi:<key>``; scalars stay strings, structures become JSON."""
    doc = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    cfg = sample_config(stack)
    assert cfg.stack == stack
    assert cfg.file == f"stacks/Pulumi.{stack}.yaml"
    assert set(cfg.values) == {k if ":" in k else f"{NAMESPACE}:{k}" for k in doc["config"]}
    for key, value in doc["config"].items():
        raw = cfg.values[key if ":" in key else f"{NAMESPACE}:{key}"]
        assert isinstance(raw, str)
        if isinstance(value, dict) and set(value) == {"secure"}:
            assert raw == SECRET_PLACEHOLDER
        elif isinstance(value, str):
            assert raw == value
        else:
            assert json.loads(raw) == value
    assert cfg.is_global == (stack == "global")


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_engine_hands_the_program_the_same_config(stack):
    """Inside a (mock) `pulumi up`, `from_engine` sees exactly what `read_stack_file` produced."""
    cfg = sample_config(stack)
    seen = {}

    async def program():
        got = from_engine(pulumi.get_stack())
        seen.update(stack=got.stack, file=got.file, values=got.values, secrets=got.secret_keys)

    run_stack(cfg, program, {})
    assert seen == {
        "stack": stack,
        "file": cfg.file,
        "values": cfg.values,
        "secrets": cfg.secret_keys,
    }


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_stack_validates_against_the_global_topology(project, stack):
    validated = validate(project, [stack])
    v = validated[stack]
    if stack == "global":
        assert isinstance(v.model, GlobalStack)
        assert v.global_stack is None
        return
    cloud = v.config.values[f"{NAMESPACE}:cloud"]
    assert isinstance(v.model, REGIONAL_MODELS[cloud])
    assert v.global_stack == "global" and "global" in validated
    topology = validated["global"].model.topology
    assert v.model.region == stack, "a regional stack is named after its region id"
    assert topology.region(v.model.region).cloud == cloud


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_stack_plans(plans, topology, stack):
    plan = plans[stack]
    assert len(plan.of_type("pulumi:pulumi:Stack")) == 1
    if stack == "global":
        from infra.program import published_topology
        from infra.topology.config import parse_global

        assert plan.outputs["rtdi"] == published_topology(parse_global(sample_config("global")))
        assert plan.outputs["primaryRegion"] == topology.primary
        assert set(REGIONAL) <= set(topology.region_ids)
        assert not any(
            r.type.split(":")[0] in ("aws", "gcp", "kubernetes") for r in plan.resources
        ), "the global stack declares no cloud or cluster resources"
        return
    assert plan.outputs["region"] == stack
    assert plan.outputs["primary"] == (stack == topology.primary)
    assert plan.outputs["cloud"] == topology.region(stack).cloud
    assert "archive" in plan.outputs["buckets"]
    assert plan.outputs["archive"] == plan.outputs["buckets"]["archive"]
    assert len([r for r in plan.resources if r.custom]) >= 2


def test_regional_stacks_read_the_global_stack(plans):
    for stack in REGIONAL:
        refs = [
            r
            for r in plans[stack].of_type("pulumi:pulumi:StackReference")
            if r.name.endswith("/rtdi/global")
        ]
        assert len(refs) == 1, stack
        assert refs[0].parent == plans[stack].of_type("pulumi:pulumi:Stack")[0].urn


# --------------------------------------------------------------------------- rtdi plan --all


def test_cli_plan_all_exits_zero(cli_plan):
    assert cli_plan.code == 0, cli_plan.stderr
    assert cli_plan.stderr == ""
    lines = cli_plan.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == STACK_NAMES


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_cli_writes_resources_json(cli_plan, plans, stack):
    folder = cli_plan.out / stack
    entries = json.loads((folder / "resources.json").read_text())
    assert isinstance(entries, list) and entries
    for e in entries:
        base = {"urn", "type", "name", "parent", "provider", "inputs"}
        # `options` only where a resource option changes what an input change does (a replace).
        assert set(e) in (base, base | {"options"}), set(e)
        assert isinstance(e["inputs"], dict)
        if "options" in e:
            assert e["options"] and set(e["options"]) <= {"replaceOnChanges", "deleteBeforeReplace"}
    assert [e["urn"] for e in entries] == sorted(e["urn"] for e in entries), (
        "written in a stable order"
    )
    assert {e["urn"] for e in entries} == set(plans[stack].registered), (
        "the CLI plans what plan_stacks plans"
    )
    assert json.loads((folder / "outputs.json").read_text()) == plans[stack].outputs


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_cli_writes_manifests(cli_plan, plans, stack):
    manifests = cli_plan.out / stack / "manifests"
    assert manifests.is_dir()
    written = {p.name for p in manifests.iterdir()}
    objects = [r for r in plans[stack].resources if is_k8s_object(r)]
    releases = plans[stack].of_type(HELM_RELEASE)
    expected = {f"{r.inputs['kind']}-{_slug(r.name)}.yaml" for r in objects} | {
        f"helm-{_slug(r.name)}.yaml" for r in releases
    }
    assert written == expected
    assert len(expected) == len(objects) + len(releases), (
        "two objects would overwrite one manifest file"
    )
    for r in objects:
        doc = yaml.safe_load((manifests / f"{r.inputs['kind']}-{_slug(r.name)}.yaml").read_text())
        assert doc["apiVersion"] == r.inputs["apiVersion"] and doc["kind"] == r.inputs["kind"]
        assert doc["metadata"] == r.inputs.get("metadata", {})
    for r in releases:
        doc = yaml.safe_load((manifests / f"helm-{_slug(r.name)}.yaml").read_text())
        assert {k: doc[k] for k in ("chart", "version")} == {
            k: r.inputs[k] for k in ("chart", "version")
        }
        assert doc.get("values", {}) == r.inputs.get("values", {})


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def test_cli_rejects_an_unknown_stack(project, capsys, monkeypatch, tmp_path):
    from infra.cli import main

    monkeypatch.chdir(project.root)
    assert main(["plan", "nosuch", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    known = ", ".join(STACK_NAMES)
    assert err == f"stacks/Pulumi.nosuch.yaml: no such stack 'nosuch'; stacks here: {known}"
    assert not (tmp_path / "out").exists()
