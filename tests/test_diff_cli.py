"""``rtdi diff``, ``rtdi plan --diff`` and what the CLI shows a reviewer: progress, version, paths,
long manifest names and write errors.

The sample plans (``cli_plan``) are compared with copies edited the way a change would edit them,
and with the plans of a copy of the project whose primary region is flipped, planned once.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from infra.plan.diff import NATURAL_KEYS
from infra.plan.engine import Declared, StackPlan
from infra.plan.writer import NAME_MAX, file_name, summary, write
from infra.topology.errors import ConfigError
from plantools import ROOT, STACK_NAMES

MM2 = "kubernetes:kafka.strimzi.io/v1:KafkaMirrorMaker2"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
FLIP_TO = "gcp-europe-west4"


class Terminal(io.StringIO):
    """A captured stderr that says it is a terminal, where rtdi shows progress."""

    def isatty(self) -> bool:
        return True


def run_cli(argv: list[str], cwd: Path = ROOT, stderr: io.StringIO | None = None):
    from infra.cli import main

    out, err = io.StringIO(), stderr if stderr is not None else io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2 and out == "" and "Traceback" not in err, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def flipped(cli_plan, tmp_path_factory):
    """A copy of the project with ``primary`` flipped, whose .rtdi/plan holds the sample plans,
    planned again with ``rtdi plan --all --diff`` (from the copy, stderr a terminal)."""
    project = tmp_path_factory.mktemp("flipped")
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", project / "stacks")
    path = project / "stacks" / "Pulumi.global.yaml"
    doc = yaml.safe_load(path.read_text())
    assert doc["config"]["rtdi:topology"]["primary"] != FLIP_TO
    doc["config"]["rtdi:topology"]["primary"] = FLIP_TO
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(cli_plan.out, project / ".rtdi" / "plan")
    code, out, err = run_cli(["plan", "--all", "--diff"], cwd=project, stderr=Terminal())
    assert code == 0, err
    return project, out, err


def edited(cli_plan, tmp_path: Path, stack: str, edit) -> Path:
    """A copy of the sample plans with ``edit(resources, outputs)`` applied to one stack."""
    root = tmp_path / "new"
    shutil.copytree(cli_plan.out, root)
    res, outs = root / stack / "resources.json", root / stack / "outputs.json"
    resources, outputs = json.loads(res.read_text()), json.loads(outs.read_text())
    edit(resources, outputs)
    res.write_text(json.dumps(resources, indent=1))
    outs.write_text(json.dumps(outputs, indent=1))
    return root


def of_type(resources: list[dict], type_: str, suffix: str = "") -> dict:
    return next(r for r in resources if r["type"] == type_ and r["name"].endswith(suffix))


# --------------------------------------------------------------------------- rtdi diff


def test_identical_plans_have_an_empty_diff(cli_plan):
    for fmt in ("text", "json"):
        code, out, err = run_cli(
            ["diff", str(cli_plan.out), str(cli_plan.out), "--format", fmt, "--exit-code"]
        )
        assert code == 0 and err == ""
        if fmt == "text":
            assert out == ""
        else:
            assert json.loads(out) == {"changed": False, "stacks": []}


def test_added_removed_and_changed_resources_and_outputs(cli_plan, tmp_path):
    stack = "aws-us-east-1"
    gone, new_res = {}, {}

    def edit(resources, outputs):
        gone.update(resources.pop(-1))
        new_res.update(copy.deepcopy(of_type(resources, CONFIGMAP, "-kafka-federation")))
        new_res["urn"] += "-copy"
        new_res["name"] += "-copy"
        resources.append(new_res)
        of_type(resources, MM2)["inputs"]["spec"]["replicas"] = 7
        outputs["archive"] = "s3://elsewhere"
        outputs["extra"] = {"a": 1}

    new = edited(cli_plan, tmp_path, stack, edit)
    code, out, err = run_cli(["diff", str(cli_plan.out), str(new), "--exit-code"])
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"{stack}: 1 added, 1 removed, 1 changed, 2 outputs changed"
    assert f"  + {CONFIGMAP} {new_res['name']}" in lines
    assert f"  - {gone['type']} {gone['name']}" in lines
    mm2 = lines.index(f"  ~ {MM2} {stack}-kafka-mirror")
    assert lines[mm2 + 1].strip().startswith("spec.replicas: ") and lines[mm2 + 1].endswith(" -> 7")
    assert '  ~ output archive: "s3://acme-rtdi-aws-us-east-1-archive" -> "s3://elsewhere"' in lines
    assert '  + output extra: {"a": 1}' in lines
    assert not any(line.startswith(("aws-eu-west-1", "global")) for line in lines)


def test_embedded_json_is_diffed_key_by_key(cli_plan, tmp_path):
    def edit(resources, outputs):
        data = of_type(resources, CONFIGMAP, "-kafka-federation")["inputs"]["data"]
        registry = json.loads(data["registry.json"])
        registry["topics"]["trips"]["partitions"] = 99
        data["registry.json"] = json.dumps(registry)  # one line, other key order kept

    new = edited(cli_plan, tmp_path, "aws-us-east-1", edit)
    _, out, _ = run_cli(["diff", str(cli_plan.out), str(new)])
    changes = [line.strip() for line in out.splitlines() if line.startswith("      ")]
    assert len(changes) == 1, out
    assert changes[0].startswith('data["registry.json"].topics.trips.partitions: ')
    assert changes[0].endswith(" -> 99")


def test_list_elements_match_by_natural_key(cli_plan, tmp_path):
    """A mirror inserted first changes that mirror only, not every later one by index."""

    def edit(resources, outputs):
        mirrors = of_type(resources, MM2)["inputs"]["spec"]["mirrors"]
        extra = copy.deepcopy(mirrors[0])
        extra["source"]["alias"] = "aws-ap-south-1"
        mirrors.insert(0, extra)
        mirrors[-1]["sourceConnector"]["tasksMax"] = 9

    new = edited(cli_plan, tmp_path, "aws-us-east-1", edit)
    _, out, _ = run_cli(["diff", str(cli_plan.out), str(new)])
    changes = [line.strip() for line in out.splitlines() if line.startswith("      ")]
    assert "source.alias" in NATURAL_KEYS
    assert len(changes) == 2, out
    assert changes[0].startswith("spec.mirrors[source.alias=aws-ap-south-1]: added {")
    assert changes[1].startswith("spec.mirrors[source.alias=") and changes[1].endswith(" -> 9")
    assert "].sourceConnector.tasksMax: " in changes[1]


def test_list_without_natural_key_shows_one_insertion(tmp_path):
    from infra.plan.diff import diff_values

    old = {"xs": [{"p": 1}, {"p": 2}, {"p": 3}], "names": [{"name": "a"}, {"name": "b"}]}
    new = {"xs": [{"p": 0}, {"p": 1}, {"p": 2}, {"p": 3}], "names": [{"name": "b"}, {"name": "a"}]}
    changes = [c.as_json() for c in diff_values(old, new, "")]
    assert changes == [
        {"path": "names order", "kind": "changed", "old": ["a", "b"], "new": ["b", "a"]},
        {"path": "xs[0]", "kind": "added", "new": {"p": 0}},
    ]


def test_multi_line_strings_are_diffed_line_by_line():
    from infra.plan.diff import diff_values

    old = {"serverProperties": "a=1\nmin.insync.replicas=2\nb=3\n"}
    new = {"serverProperties": "a=1\nmin.insync.replicas=1\nb=3\nc=4\n"}
    assert [c.as_json() for c in diff_values(old, new, "")] == [
        {
            "path": "serverProperties line 2",
            "kind": "changed",
            "old": "min.insync.replicas=2",
            "new": "min.insync.replicas=1",
        },
        {"path": "serverProperties line 4", "kind": "added", "new": "c=4"},
    ]


def test_stacks_added_and_removed(cli_plan, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(cli_plan.out, old)
    shutil.copytree(cli_plan.out, new)
    shutil.rmtree(old / "onprem-dc1")
    shutil.rmtree(new / "global")
    _, out, _ = run_cli(["diff", str(old), str(new)])
    count = len(json.loads((cli_plan.out / "global" / "resources.json").read_text()))
    assert out.splitlines() == [
        f"global: stack removed ({count} resources)",
        f"onprem-dc1: stack added ({len(json.loads((new / 'onprem-dc1' / 'resources.json').read_text()))} resources)",  # noqa: E501
    ]


def test_two_stack_folders_compare_with_each_other(cli_plan, tmp_path):
    shutil.copytree(cli_plan.out / "aws-us-east-1", tmp_path / "renamed")
    code, out, _ = run_cli(
        ["diff", str(cli_plan.out / "aws-us-east-1"), str(tmp_path / "renamed"), "--exit-code"]
    )
    assert code == 0 and out == ""
    only_global = tmp_path / "root"
    shutil.copytree(cli_plan.out / "global", only_global / "global")
    _, out, _ = run_cli(["diff", str(only_global), str(cli_plan.out / "aws-us-east-1")])
    assert out.splitlines()[0].startswith("aws-us-east-1: stack added")
    assert out.splitlines()[1].startswith("global: stack removed")


def test_json_format_carries_the_same_content(flipped, cli_plan):
    project, _, _ = flipped
    args = ["diff", str(cli_plan.out), str(project / ".rtdi" / "plan")]
    _, text, _ = run_cli(args)
    _, out, _ = run_cli([*args, "--format", "json"])
    doc = json.loads(out)
    assert doc["changed"] is True
    assert [s["summary"] for s in doc["stacks"]] == [
        line for line in text.splitlines() if not line.startswith(" ")
    ]
    regional = next(s for s in doc["stacks"] if s["stack"] == "aws-us-east-1")
    (configmap,) = [r for r in regional["changed"] if r["type"] == CONFIGMAP]
    assert configmap["urn"] and configmap["urn"].endswith("-kafka-federation")
    assert configmap["changes"] == [
        {
            "path": 'data["registry.json"].primary',
            "kind": "changed",
            "old": "aws-us-east-1",
            "new": FLIP_TO,
        }
    ]
    assert {"path": "primary", "kind": "changed", "old": True, "new": False} in regional["outputs"]


def test_primary_flip_is_a_short_diff_naming_the_primary(flipped, cli_plan):
    project, _, _ = flipped
    code, out, _ = run_cli(
        ["diff", str(cli_plan.out), str(project / ".rtdi" / "plan"), "--exit-code"]
    )
    assert code == 1
    lines = out.splitlines()
    # 28 lines for the 5 samples' Kafka, 4 in each of the two regions a job moves between, 2 in
    # each regional stack for its offset sync job's primary and 1 where it starts or stops.
    assert len(lines) <= 6 * len(STACK_NAMES) + 2 * 4 + 2 * (len(STACK_NAMES) - 1) + 2, out
    assert max(len(line) for line in lines) <= 130, out
    heads = [line for line in lines if not line.startswith(" ")]
    assert [h.split(":")[0] for h in heads] == STACK_NAMES
    assert all(": 0 added, 0 removed, " in h for h in heads), heads
    values = [line for line in lines if "->" in line]
    # The primary, the active-passive Flink job that follows it (jobs/flink/payments.yaml), and
    # the offset sync job: the primary it reads, and where it runs.
    assert values and all(
        line.split(":")[0].strip().endswith(("primary", "primaryRegion", "spec.job.state"))
        or line.strip().startswith(
            ("spec.replicas: ", "spec.template.spec.containers[name=offset-sync].args[5]: ")
        )
        or line.startswith("  ~ output primary")
        or line.strip().startswith("payments: ")
        for line in values
    ), out
    moved = [line.strip() for line in lines if "spec.job.state" in line]
    assert moved == [
        'spec.job.state: "running" -> "suspended"',
        'spec.job.state: "suspended" -> "running"',
    ], out
    # Replaced, not updated: job.state is the FlinkDeployment's replaceOnChanges path
    # (infra/components/flink/handover.py says why).
    assert f"  +- {FLINK} aws-us-east-1-flink-payments" in lines
    assert f"  +- {FLINK} {FLIP_TO}-flink-payments" in lines
    for stack in STACK_NAMES:
        if stack != "global":
            assert f"  ~ {CONFIGMAP} {stack}-kafka-federation" in lines
    assert f'      data["registry.json"].primary: "aws-us-east-1" -> "{FLIP_TO}"' in lines


def test_readme_shows_the_real_primary_flip(flipped, cli_plan):
    project, _, _ = flipped
    _, out, _ = run_cli(["diff", str(cli_plan.out), str(project / ".rtdi" / "plan")])
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- primary-flip -->\n```\n", 1)[1].split("```", 1)[0]
    assert block == out
    lines = len(out.splitlines())
    assert f"prints these {lines} lines" in readme


def test_plan_diff_compares_with_the_previous_plan(flipped, cli_plan):
    project, out, _ = flipped
    summaries, _, diff = out.partition("\n\n")
    assert [line.split(":")[0] for line in summaries.splitlines()] == STACK_NAMES
    _, expected, _ = run_cli(["diff", str(cli_plan.out), str(project / ".rtdi" / "plan")])
    assert diff == expected and "primary" in diff


def test_plan_diff_without_changes_says_so(cli_plan, tmp_path):
    out_dir = tmp_path / "plan"
    shutil.copytree(cli_plan.out / "global", out_dir / "global")
    code, out, err = run_cli(["plan", "global", "--diff", "--out", str(out_dir)])
    assert code == 0, err
    assert out.splitlines()[-1] == f"no changes against the previous plan in {out_dir}"


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda p: p, "no such plan folder"),
        (lambda p: (p.mkdir(), p)[1], "holds no plan (no <stack>/resources.json)"),
        (lambda p: (p.mkdir(), (p / "resources.json").write_text("{oops"), p)[2], "invalid JSON"),
        (lambda p: (p.mkdir(), (p / "resources.json").write_text("{}"), p)[2], "not an rtdi plan"),
    ],
)
def test_diff_bad_input_exits_2_in_one_line(cli_plan, tmp_path, make, says):
    bad = make(tmp_path / "bad")
    line = one_line_error(*run_cli(["diff", str(cli_plan.out), str(bad)]))
    assert says in line


# --------------------------------------------------------------------------- rtdi check --plan ROOT


def test_check_accepts_a_plan_root(cli_plan):
    code, out, err = run_cli(["check", "--plan", str(cli_plan.out)])
    assert code == 0, out + err
    assert f"in {len(STACK_NAMES)} stacks ({', '.join(STACK_NAMES)})" in out.splitlines()[-1]


# --------------------------------------------------------------------------- progress, paths


def test_progress_on_a_terminal_is_erased_when_done(flipped):
    _, _, err = flipped
    # Global first (others read it); then, as a first deployment, the peers whose outputs the
    # regional stacks read (the managed regional clusters); then every regional stack, converged.
    peers = [f"{s} as a peer, first deployment" for s in ("aws-eu-west-1", "gcp-europe-west4")]
    order = ["global", *peers] + [s for s in STACK_NAMES if s != "global"]
    shown = [part.removesuffix("\x1b[K") for part in err.split("\r") if part.strip("\x1b[K")]
    assert shown == [f"planning {s} ({n}/{len(order)})" for n, s in enumerate(order, 1)]
    assert err.endswith("\r\x1b[K")


def test_no_progress_when_stderr_is_not_a_terminal(cli_plan):
    assert cli_plan.stderr == ""


def test_version_is_the_package_version():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        from infra.cli import main

        main(["--version"])
    assert exc.value.code == 0 and out.getvalue() == f"rtdi {version('rtdi')}\n"


def test_paths_are_relative_to_the_project(flipped):
    project, out, _ = flipped
    summaries = out.partition("\n\n")[0].splitlines()
    assert [line.rsplit(" -> ", 1)[1] for line in summaries] == [
        f".rtdi/plan/{s}" for s in STACK_NAMES
    ]
    assert str(project) not in out


def test_error_paths_are_relative_to_the_project(tmp_path):
    code, out, err = run_cli(["check", "--plan", str(ROOT / "no" / "such" / "resources.json")])
    assert one_line_error(code, out, err).startswith("no/such/resources.json: no such plan file")


# --------------------------------------------------------------------------- writer


def configmap(stack: str, name: str) -> Declared:
    return Declared(
        urn=f"urn:pulumi:{stack}::rtdi::{CONFIGMAP}::{name}",
        type=CONFIGMAP,
        name=name,
        parent=None,
        provider=None,
        custom=True,
        inputs={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
    )


def test_long_manifest_names_fit_the_filesystem(tmp_path):
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    plan = StackPlan("s", {r.urn: r for r in (configmap("s", long_a), configmap("s", long_b))})
    counts = write(plan, tmp_path)
    names = sorted(p.name for p in (tmp_path / "s" / "manifests").iterdir())
    assert counts["k8s objects"] == 2 and len(names) == 2
    assert all(len(n.encode()) <= NAME_MAX and n.startswith("ConfigMap-aaa") for n in names)
    assert file_name(f"ConfigMap-{long_a}") in names  # stable: the same name every time
    assert len(file_name("é" * 200).encode()) <= NAME_MAX
    assert file_name("short") == "short.yaml"


def test_write_error_is_one_line(tmp_path, monkeypatch):
    plan = StackPlan("s", {"u": configmap("s", "cm")})
    blocker = tmp_path / "out"
    blocker.mkdir()
    (blocker / "s").write_text("a file where the stack's folder should be")
    with pytest.raises(ConfigError) as exc:
        write(plan, blocker)
    assert str(exc.value).startswith(f"rtdi: cannot write {blocker / 's'}: Not a directory")

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(ConfigError) as exc:
        write(plan, tmp_path / "ok")
    assert str(exc.value) == (
        f"rtdi: cannot write {tmp_path / 'ok' / 's' / 'resources.json'}: No space left on device"
    )


def test_plan_into_a_file_exits_2_before_planning(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_line_error(*run_cli(["plan", "global", "--out", str(blocker / "plan")]))
    assert line.startswith(f"rtdi: cannot write {blocker / 'plan'}: a file is in the way")


# --------------------------------------------------------------------------- pending flows


def test_summary_names_the_stacks_to_bring_up():
    counts = {"resources": 3, "aws": 2}
    pending = [
        {"stack": "gcp-europe-west4", "output": "kafkaRegional", "reason": "r", "waiting": "w"},
        {"stack": "aws-eu-west-1", "output": "kafkaRegional", "reason": "r", "waiting": "w2"},
        {"stack": "aws-eu-west-1", "output": "other", "reason": "r", "waiting": "w3"},
    ]
    base = "s: 3 resources (2 aws), 0 Kubernetes objects, 0 Helm releases"
    out = ROOT / ".rtdi" / "plan" / "s"
    assert summary("s", counts, out, pending) == (
        f"{base}, 3 pending (pulumi up aws-eu-west-1, gcp-europe-west4) -> .rtdi/plan/s"
    )
    assert summary("s", counts, out, []) == f"{base} -> .rtdi/plan/s"
    assert summary("s", counts, out) == f"{base} -> .rtdi/plan/s"


def test_plan_lines_show_pending_exactly_when_the_stack_exports_it(cli_plan):
    for line in cli_plan.stdout.splitlines():
        stack = line.split(":")[0]
        pending = json.loads((cli_plan.out / stack / "outputs.json").read_text()).get("pending")
        assert (" pending (pulumi up " in line) == bool(pending), line


def test_first_deployment_plan_shows_what_is_pending(tmp_path):
    """`rtdi plan --first-deployment` plans round one: flows from managed peers are pending."""
    code, out, _ = run_cli(["plan", "--all", "--first-deployment", "--out", str(tmp_path)])
    assert code == 0
    lines = {line.split(":", 1)[0]: line for line in out.splitlines()}
    waits = {}
    for stack in STACK_NAMES:
        outputs = json.loads((tmp_path / stack / "outputs.json").read_text())
        waits[stack] = sorted({p["stack"] for p in outputs.get("pending", [])})
    # The managed regional clusters (MSK in aws-eu-west-1, GCP Managed Kafka in
    # gcp-europe-west4) are what every other region waits for; nothing waits for global.
    assert waits == {
        "aws-eu-west-1": ["gcp-europe-west4"],
        "aws-us-east-1": ["aws-eu-west-1", "gcp-europe-west4"],
        "gcp-europe-west4": ["aws-eu-west-1"],
        "global": [],
        "onprem-dc1": ["aws-eu-west-1", "gcp-europe-west4"],
    }
    for stack, peers in waits.items():
        if peers:
            assert f"pending (pulumi up {', '.join(peers)})" in lines[stack]
        else:
            assert "pending" not in lines[stack]
