"""Bad stack configuration: exit code 2, one line naming file, key path, bad value, what is allowed.

Each case edits a copy of the sample project (Pulumi.yaml + stacks/) in a temporary folder and runs
``rtdi plan --all`` there, in process. The same edited file is then run as a `pulumi up` would run
it (the real program under the mock engine), which must fail with a RunError carrying the same line.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pytest
import yaml

from infra.cli import EXIT_BAD_INPUT
from infra.cli import main as cli_main
from infra.plan.engine import run_stack
from infra.program import main as program_main
from infra.topology.config import read_stack_file
from plantools import ROOT, STACK_NAMES

Edit = Callable[[dict], None]


@dataclass(frozen=True)
class Case:
    id: str
    stack: str  # the stack file the edit breaks
    edit: Edit | None  # edits the parsed `config:` mapping
    head: str  # the exact start of the one line: "<file>: <key path> = <value>: "
    allowed: str  # what the line must say is allowed
    text: str | None = None  # replaces the file's text instead (for YAML syntax errors)
    xfail: str | None = None


def regions(c: dict) -> list[dict]:
    return c["rtdi:topology"]["regions"]


def _rename_zones(c: dict) -> None:
    regions(c)[0]["zonez"] = regions(c)[0].pop("zones")


def _add_zonez(c: dict) -> None:
    regions(c)[0]["zonez"] = ["us-east-1a"]


def _rename_network(c: dict) -> None:
    c["rtdi:netwrok"] = c.pop("rtdi:network")


def _duplicate_region(c: dict) -> None:
    regions(c).append(dict(regions(c)[0]))


def topics(c: dict) -> list[dict]:
    return c["rtdi:kafka"]["topics"]


def _add_topic(name: str, groups: list[dict] | None = None) -> Edit:
    def edit(c: dict) -> None:
        topics(c).append(
            {
                "name": name,
                "partitions": 3,
                "dataClass": "operational",
                "consumerGroups": groups or [],
            }
        )

    return edit


LONG_TOPIC, LONG_GROUP = "t" * 200, "g" * 43  # retry: 200 + 1 + 43 + 6 = 250 characters
MID_TOPIC, MID_GROUP = "m" * 170, "h" * 70  # dlq: 245; copied from gcp-europe-west4: 262


def _long_zone(c: dict) -> None:
    regions(c)[3]["zones"][0] = "dc1-rack-a-" + "z" * 25  # 36 characters, a valid label


def _gcp_stack_for_aws_region(c: dict) -> None:
    c.clear()
    c.update(
        {"rtdi:cloud": "gcp", "rtdi:region": "aws-eu-west-1", "rtdi:gcpProject": "acme-rtdi-prod"}
    )


G = "stacks/Pulumi.global.yaml"
USE1 = "stacks/Pulumi.aws-us-east-1.yaml"
ALL_REGIONS = "aws-us-east-1, aws-eu-west-1, gcp-europe-west4, onprem-dc1"

CASES = [
    Case(
        "yaml-syntax",
        "aws-us-east-1",
        None,
        f"{USE1}:6:4: invalid YAML: ",
        "expected <block end>",
        text="config:\n  rtdi:cloud: aws\n  rtdi:region: aws-us-east-1\n  rtdi:network:\n"
        "    mode: create\n   cidr: 10.10.0.0/16\n",
    ),
    Case(
        "duplicate-nested-key",
        "aws-us-east-1",
        None,
        f"{USE1}:6: rtdi:network.mode: key written twice in one mapping (first at line 5); ",
        "allowed: each key once",
        text="config:\n  rtdi:cloud: aws\n  rtdi:region: aws-us-east-1\n  rtdi:network:\n"
        "    mode: create\n    mode: existing\n",
    ),
    Case(
        "yaml-1.1-boolean-stays-a-string",
        "global",
        None,
        f"{G}: rtdi:topology.primary = 'no': ",
        f"allowed: {ALL_REGIONS}",
        text=(ROOT / "stacks" / "Pulumi.global.yaml")
        .read_text()
        .replace("primary: aws-us-east-1", "primary: no"),
    ),
    Case(
        "unknown-top-level-key",
        "aws-us-east-1",
        _rename_network,
        f"{USE1}: rtdi:netwrok: unknown key (did you mean rtdi:network?); ",
        "rtdi:network",
    ),
    Case(
        "unknown-nested-key-added",
        "global",
        _add_zonez,
        f"{G}: rtdi:topology.regions[0].zonez: unknown key (did you mean zones?); ",
        "cloud, name, zones",
    ),
    Case(
        "unknown-nested-key-typo",
        "global",
        _rename_zones,
        f"{G}: rtdi:topology.regions[0].zonez: unknown key (did you mean zones?); ",
        "cloud, name, zones",
    ),
    Case(
        "provider-key",
        "aws-us-east-1",
        lambda c: c.update({"aws:region": "us-east-1"}),
        f"{USE1}: aws:region: rtdi configures every provider explicitly",
        "allowed keys: rtdi:region",
    ),
    Case(
        "unknown-cloud-in-topology",
        "global",
        lambda c: regions(c)[2].update(cloud="azure"),
        f"{G}: rtdi:topology.regions[2].cloud = 'azure': ",
        "allowed: 'aws', 'gcp' or 'onprem'",
    ),
    Case(
        "unknown-cloud-in-regional-stack",
        "aws-us-east-1",
        lambda c: c.update({"rtdi:cloud": "azure"}),
        f"{USE1}: rtdi:cloud = 'azure': ",
        "allowed: aws, gcp, onprem",
    ),
    Case(
        "no-zones",
        "global",
        lambda c: regions(c)[0].update(zones=[]),
        f"{G}: rtdi:topology.regions[0].zones = []: ",
        "at least 1 item",
    ),
    Case(
        "zone-outside-region",
        "global",
        lambda c: regions(c)[0]["zones"].__setitem__(0, "us-west-2a"),
        f"{G}: rtdi:topology.regions[0].zones[0] = 'us-west-2a': ",
        "allowed: us-east-1 followed by one letter",
    ),
    Case(
        "primary-not-a-region",
        "global",
        lambda c: c["rtdi:topology"].update(primary="aws-us-west-2"),
        f"{G}: rtdi:topology.primary = 'aws-us-west-2': ",
        f"allowed: {ALL_REGIONS}",
    ),
    Case(
        "region-listed-twice",
        "global",
        _duplicate_region,
        f"{G}: rtdi:topology.regions[4] = 'aws-us-east-1': ",
        "each cloud region may appear once",
    ),
    Case(
        "regional-stack-region-absent",
        "aws-us-east-1",
        lambda c: c.update({"rtdi:region": "aws-us-west-2"}),
        f"{USE1}: rtdi:region = 'aws-us-west-2': ",
        f"allowed: {ALL_REGIONS}",
    ),
    Case(
        "regional-stack-cloud-differs",
        "aws-eu-west-1",
        _gcp_stack_for_aws_region,
        "stacks/Pulumi.aws-eu-west-1.yaml: rtdi:cloud = 'gcp': ",
        "allowed: aws",
    ),
    Case(
        "zero-nodes-per-zone",
        "aws-us-east-1",
        lambda c: c["rtdi:kubernetes"].update(nodesPerZone=0),
        f"{USE1}: rtdi:kubernetes.nodesPerZone = 0: ",
        "allowed: greater than 0",
    ),
    Case(
        "negative-disk",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(diskGib=-5),
        "stacks/Pulumi.gcp-europe-west4.yaml: rtdi:kubernetes.diskGib = -5: ",
        "allowed: greater than 0",
    ),
    Case(
        "topic-name-characters",
        "global",
        lambda c: topics(c)[0].update(name="trips!"),
        f"{G}: rtdi:kafka.topics[0].name = 'trips!': ",
        "allowed: 1 to 200 letters, digits, '.', '_' and '-'",
    ),
    Case(
        "topic-name-dots",
        "global",
        lambda c: topics(c)[1].update(name=".."),
        f"{G}: rtdi:kafka.topics[1].name = '..': ",
        "not starting with '.'",
    ),
    Case(
        "retry-topic-over-kafka-limit",
        "global",
        _add_topic(LONG_TOPIC, [{"name": LONG_GROUP, "deadLetter": False}]),
        f"{G}: rtdi:kafka.topics[2].consumerGroups[0].name = '{LONG_GROUP}': the retry topic ",
        "(250 characters); Kafka allows at most 249",
    ),
    Case(
        "mirrored-topic-over-kafka-limit",
        "global",
        _add_topic(MID_TOPIC, [{"name": MID_GROUP, "retry": False}]),
        f"{G}: rtdi:kafka.topics[2].consumerGroups[0].name = '{MID_GROUP}': the copy of ",
        "from gcp-europe-west4 in aggregate clusters is named 'gcp-europe-west4.mmm",
    ),
    Case(
        "topics-collide-once-dot-is-underscore",
        "global",
        lambda c: [_add_topic("trips.v2")(c), _add_topic("trips_v2")(c)],
        f"{G}: rtdi:kafka.topics[3].name = 'trips_v2': the topic is named 'trips_v2', ",
        "collides with the topic 'trips.v2' (at rtdi:kafka.topics[2].name) once '.' is replaced",
    ),
    Case(
        "declared-topic-is-a-retry-topic",
        "global",
        _add_topic("trips.eta-service.retry"),
        f"{G}: rtdi:kafka.topics[2].name = 'trips.eta-service.retry': ",
        "also the name of the retry topic of topics[0] 'trips' "
        "(at rtdi:kafka.topics[0].consumerGroups[0].name)",
    ),
    Case(
        "retry-topic-is-a-declared-topic",
        "global",
        lambda c: [
            _add_topic("rides.pricing.dlq")(c),
            _add_topic("rides", [{"name": "pricing"}])(c),
        ],
        f"{G}: rtdi:kafka.topics[3].consumerGroups[0].name = 'pricing': the dead-letter topic ",
        "also the name of the topic (at rtdi:kafka.topics[2].name)",
    ),
    Case(
        "declared-topic-looks-mirrored",
        "global",
        _add_topic("aws-us-east-1.trips"),
        f"{G}: rtdi:kafka.topics[2].name = 'aws-us-east-1.trips': the topic is named ",
        "never copies it into aws-us-east-1's aggregate cluster; allowed: a name in which no "
        "region id is followed by '.'",
    ),
    Case(
        "consumer-group-named-like-a-region",
        "global",
        lambda c: topics(c)[0]["consumerGroups"].append({"name": "onprem-dc1"}),
        f"{G}: rtdi:kafka.topics[0].consumerGroups[2].name = 'onprem-dc1': the retry topic ",
        "reads 'onprem-dc1.' in a name as 'mirrored from onprem-dc1'",
    ),
    Case(
        "topic-mirrormaker-never-mirrors",
        "global",
        _add_topic("audit.replica"),
        f"{G}: rtdi:kafka.topics[2].name = 'audit.replica': MirrorMaker 2 never mirrors ",
        "allowed: a name without that prefix or suffix",
    ),
    Case(
        "zone-makes-strimzi-pod-name-too-long",
        "global",
        _long_zone,
        f"{G}: rtdi:topology.regions[3].zones[0] = 'dc1-rack-a-{'z' * 25}': Strimzi would name ",
        "Kubernetes allows at most 63 in a pod hostname and a label value; allowed: a zone name "
        "of at most 29 characters",
    ),
    Case(
        "max-below-min-nodes",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(maxNodesPerZone=1),
        "stacks/Pulumi.gcp-europe-west4.yaml: rtdi:kubernetes.maxNodesPerZone = 1: ",
        "allowed: 2 or more",
    ),
]


def _params(cases):
    return [
        pytest.param(
            c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        )
        for c in cases
    ]


def broken_project(tmp_path: Path, case: Case) -> Path:
    """A copy of the sample project with ``case`` applied to one stack file."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    path = tmp_path / "stacks" / f"Pulumi.{case.stack}.yaml"
    if case.text is not None:
        path.write_text(case.text)
    else:
        doc = yaml.safe_load(path.read_text())
        case.edit(doc["config"])
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_line(text: str, case: Case) -> None:
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one message, got:\n{text}"
    line = lines[0]
    assert line.startswith(case.head), f"{line!r} does not start with {case.head!r}"
    assert case.allowed in line[len(case.head) :], (
        f"{line!r} does not say what is allowed ({case.allowed!r})"
    )


@pytest.mark.parametrize("case", _params(CASES))
def test_cli_rejects_bad_config(tmp_path, monkeypatch, case):
    monkeypatch.chdir(broken_project(tmp_path, case))
    code, stdout, stderr = run_cli(["plan", "--all", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT
    assert stdout == "", "nothing is planned when any stack is bad"
    assert not (tmp_path / "out").exists(), "nothing is written when any stack is bad"
    assert_one_line(stderr, case)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.text is None]))
def test_pulumi_up_raises_run_error_with_the_same_line(tmp_path, monkeypatch, plans, case):
    """The program itself (what `pulumi up` runs) validates the same way: a RunError, no trace."""
    project = broken_project(tmp_path, case)
    monkeypatch.chdir(project)
    _, _, cli_stderr = run_cli(["plan", case.stack, "--out", str(tmp_path / "out")])
    cfg = read_stack_file(
        project / "stacks" / f"Pulumi.{case.stack}.yaml", f"stacks/Pulumi.{case.stack}.yaml"
    )
    outputs = {} if cfg.is_global else {"global": plans["global"].values}
    with pytest.raises(pulumi.RunError) as info:
        run_stack(cfg, program_main, outputs)
    message = str(info.value)
    assert_one_line(message, case)
    assert message == cli_stderr.strip(), "`rtdi plan` and `pulumi up` must print the same message"


def test_regional_stack_before_the_global_stack_is_up(plans):
    """`pulumi up` on a regional stack whose global stack exports nothing: one actionable line."""
    cfg = read_stack_file(ROOT / "stacks" / "Pulumi.aws-us-east-1.yaml", USE1)
    with pytest.raises(pulumi.RunError) as info:
        run_stack(cfg, program_main, {})
    lines = str(info.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{USE1}: rtdi:globalStack = ")
    assert "exports no `rtdi` output; run `pulumi up` on the global stack first" in lines[0]


def test_sample_project_copy_is_valid(tmp_path, monkeypatch):
    """Control for the cases above: the unedited copy plans, so each failure is the edit's."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    from infra.plan import Project
    from infra.plan.project import validate

    assert sorted(validate(Project.find(), STACK_NAMES)) == STACK_NAMES


def test_no_stack_named_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, stdout, stderr = run_cli(["plan", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr.strip() == "rtdi: name at least one stack, or pass --all"
