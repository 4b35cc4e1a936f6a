"""`infra.peers.read_stack_outputs` against the real engine (a local backend in a temp folder).

A regional stack reads its peers with the builtin invoke `pulumi:pulumi:readStackOutputs`
instead of a StackReference, because a StackReference to a stack that does not exist yet fails
the whole update. This pins down, with the real CLI, what the design and the offline plan's
mocks assume: (a) a missing stack is reported to the program and the update still succeeds,
(b) a stack that exists without outputs reads as empty, (c) outputs read back with their values
and secrets stay secret in the reader's outputs and state; and the engine's error text for a
missing stack is the one the mocks give.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from infra.peers import READ_STACK_OUTPUTS
from infra.plan.mocks import EngineError, read_stack
from plantools import ROOT
from pulumi_cli import pulumi_cli

PROJECT = "peers"
SECRET_VALUE = "s3cret-value-for-the-test"

PROGRAM = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})

import pulumi
from pulumi.runtime import invoke_async

from infra.peers import READ_STACK_OUTPUTS, read_stack_outputs


async def main():
    if pulumi.Config().get("mode") == "publish":
        pulumi.export("plain", {{"bootstrap": "b-1.example:9096"}})
        pulumi.export("hidden", pulumi.Output.secret({{"password": {SECRET_VALUE!r}}}))
        return
    for name in ("missing", "empty", "full"):
        read = await read_stack_outputs(f"organization/{PROJECT}/{{name}}")
        pulumi.export(name, {{
            "exists": read.exists,
            "names": sorted(read.values),
            "secretNames": sorted(read.secret_names),
            "plainMissing": read.missing("plain") or "",
        }})
        if read.exists and read.values:
            pulumi.export("plainRead", read.output("plain"))
            pulumi.export("hiddenRead", read.output("hidden"))
    try:
        await invoke_async(READ_STACK_OUTPUTS, {{"name": "organization/{PROJECT}/missing"}})
    except Exception as exc:
        pulumi.export("missingError", str(exc))


pulumi.run(main)
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """`full` published (plain + secret), `empty` created without an update, `reader` up."""
    base = tmp_path_factory.mktemp("peers")
    cli = pulumi_cli(base / "state")
    prog = base / "prog"
    prog.mkdir()
    venv = f"\n  options:\n    virtualenv: {sys.prefix}" if sys.prefix != sys.base_prefix else ""
    (prog / "Pulumi.yaml").write_text(f"name: {PROJECT}\nruntime:\n  name: python{venv}\n")
    (prog / "__main__.py").write_text(textwrap.dedent(PROGRAM))
    for stack in ("full", "empty", "reader"):
        cli.run("stack", "init", f"organization/{PROJECT}/{stack}", cwd=prog)
    cli.run("config", "set", "mode", "publish", "-s", "full", cwd=prog)
    cli.run("up", "--yes", "--skip-preview", "-s", "full", cwd=prog)
    up = cli.run("up", "--yes", "--skip-preview", "-s", "reader", cwd=prog)
    hidden = json.loads(cli.run("stack", "output", "--json", "-s", "reader", cwd=prog).stdout)
    shown = json.loads(
        cli.run("stack", "output", "--json", "--show-secrets", "-s", "reader", cwd=prog).stdout
    )
    state = cli.run("stack", "export", "-s", "reader", cwd=prog).stdout
    return up, hidden, shown, state


def test_a_missing_peer_is_reported_and_the_update_succeeds(deployed):
    up, outputs, _, _ = deployed
    assert up.returncode == 0
    assert outputs["missing"] == {
        "exists": False,
        "names": [],
        "secretNames": [],
        "plainMissing": "stack does not exist yet",
    }


def test_a_peer_without_outputs_reads_as_empty(deployed):
    assert deployed[1]["empty"] == {
        "exists": True,
        "names": [],
        "secretNames": [],
        "plainMissing": "stack has no output plain yet",
    }


def test_a_peer_with_outputs_reads_back_and_its_secrets_stay_secret(deployed):
    _, outputs, shown, state = deployed
    assert outputs["full"] == {
        "exists": True,
        "names": ["hidden", "plain"],
        "secretNames": ["hidden"],
        "plainMissing": "",
    }
    assert outputs["plainRead"] == {"bootstrap": "b-1.example:9096"}
    assert outputs["hiddenRead"] == "[secret]"
    assert shown["hiddenRead"] == {"password": SECRET_VALUE}
    assert SECRET_VALUE not in state  # encrypted in the reader's state, not in the clear


def test_the_mocks_fail_a_missing_stack_with_the_engines_words(deployed):
    name = f"organization/{PROJECT}/missing"
    with pytest.raises(EngineError) as mocked:
        read_stack({}, name)
    assert deployed[1]["missingError"] == (
        f"invoke of {READ_STACK_OUTPUTS} failed: {mocked.value.details()}"
    )
