"""Deploy as the README says, with the real Pulumi CLI, from a fresh copy of the tracked files.

`make plan` run first used to hide that `pulumi install` made an empty .venv; so these tests start
from `git ls-files` copied to a temporary folder (`pulumi stack init` also rewrites stack files),
run `pulumi install` there, and use only the virtualenv it made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from locks import RUNTIME_LOCK, expected_versions, read_lock

from plantools import ROOT
from policies.pack import PACK_NAME, build_policies
from pulumi_cli import PulumiCli, pulumi_cli

# What the installed virtualenv reports: where `infra` comes from, its distributions and the
# environment markers are evaluated against (the venv's Python may differ from this one's).
PROBE = textwrap.dedent(
    """
    import importlib.metadata, json
    from packaging.markers import default_environment
    import infra, infra.program
    print(json.dumps({
        "infra": infra.__file__,
        "environment": default_environment(),
        "installed": {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()},
    }))
    """
)


def fresh_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():  # deleted in the working tree but not yet in the index
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def venv_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def probe(copy: Path) -> dict:
    """Import the program with the venv's Python from the project folder, as Pulumi runs it."""
    out = subprocess.run(
        [str(copy / ".venv" / "bin" / "python"), "-c", PROBE],
        cwd=copy,
        env=venv_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def assert_installed_the_lock(copy: Path) -> None:
    from packaging.utils import canonicalize_name

    seen = probe(copy)
    assert Path(seen["infra"]).resolve() == (copy / "infra" / "__init__.py").resolve()
    expected = expected_versions(read_lock(RUNTIME_LOCK), seen["environment"])
    installed = {canonicalize_name(n): v for n, v in seen["installed"].items()}
    differ = {n: (v, installed.get(n)) for n, v in expected.items() if installed.get(n) != v}
    assert differ == {}, "locked vs installed by pulumi install"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> tuple[Path, PulumiCli]:
    """A fresh copy after `pulumi install`. Plugins are skipped: the aws, gcp and kubernetes
    providers cannot be downloaded here (random and tls come from PATH)."""
    cli = pulumi_cli(tmp_path_factory.mktemp("pulumi-state"))
    copy = fresh_copy(tmp_path_factory.mktemp("fresh-clone"))
    assert not (copy / ".venv").exists()
    cli.run("install", "--no-plugins", cwd=copy, timeout=900)
    return copy, cli


def test_pulumi_install_makes_the_venv_from_the_lock(deployed):
    copy, _ = deployed
    assert_installed_the_lock(copy)


def test_pulumi_up_of_the_global_stack(deployed, plans):
    copy, cli = deployed
    cli.run("stack", "init", "global", cwd=copy)
    cli.run("up", "--yes", "--stack", "global", cwd=copy, timeout=600)
    shown = json.loads(cli.run("stack", "output", "--json", "-s", "global", cwd=copy).stdout)
    secret = json.loads(
        cli.run("stack", "output", "--json", "--show-secrets", "-s", "global", cwd=copy).stdout
    )
    # What the engine applied is what the offline plan published.
    planned = plans["global"].outputs
    assert sorted(shown) == sorted(planned)
    assert shown["rtdi"] == planned["rtdi"]
    topology = yaml.safe_load((ROOT / "stacks" / "Pulumi.global.yaml").read_text())["config"]
    assert shown["rtdi"]["topology"]["name"] == topology["rtdi:topology"]["name"]
    # The mesh CA and the mirror passwords are secrets, real ones once applied.
    assert shown["kafkaMesh"] == "[secret]"
    mesh = secret["kafkaMesh"]
    assert mesh["caCert"].startswith("-----BEGIN CERTIFICATE-----")
    regions = {f"{r['cloud']}-{r['name']}" for r in topology["rtdi:topology"]["regions"]}
    assert set(mesh["mirrorPasswords"]) == regions
    assert all(len(p) >= 16 for p in mesh["mirrorPasswords"].values())


def test_policy_pack_runs_in_the_project_venv(deployed):
    """The analyzer plugin that runs packs is not available here; what it starts is: the pack's
    `pulumi install` (into ../.venv), then `python -m pulumi.policy ENGINE policies`, whose gRPC
    server must list every rule."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    copy, cli = deployed
    cli.run("install", "--no-plugins", cwd=copy / "policies", timeout=900)
    assert not (copy / "policies" / ".venv").exists()
    assert_installed_the_lock(copy)

    pack = subprocess.Popen(
        [str(copy / ".venv" / "bin" / "python"), "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=copy / "policies",
        env=venv_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert pack.stdout is not None
        port = pack.stdout.readline().strip()
        assert port.isdigit(), pack.stderr.read() if pack.poll() is not None else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=60)
    finally:
        pack.terminate()
        pack.wait(timeout=30)
    assert info.name == PACK_NAME
    assert [p.name for p in info.policies] == [p.name for p in build_policies()]
