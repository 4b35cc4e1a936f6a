"""Stack files mean to rtdi what they mean to Pulumi: the real CLI's `pulumi config --json` decides.

Every sample stack and a set of tricky files (YAML 1.1 booleans, octals, underscores, exponents,
timestamps, merge keys, tags) are read by `read_stack_file` and by the CLI; the values the
program would receive must be equal. Files Pulumi refuses (a duplicate key, `.inf`, `!!bool yes`)
must be refused by rtdi with one line naming the same line of the file.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from infra.topology.config import read_stack_file
from infra.topology.errors import ConfigError
from plantools import ROOT, STACK_NAMES
from pulumi_cli import pulumi_cli

TRICKY = {
    "tricky-scalars": """\
config:
  rtdi:no: no
  rtdi:yes: yes
  rtdi:on: on
  rtdi:off: OFF
  rtdi:octal: 0777
  rtdi:octal12: 0o777
  rtdi:under: 1_000
  rtdi:exp: 1e3
  rtdi:tilde: ~
  rtdi:empty:
  rtdi:true: True
  rtdi:date: 2001-12-14
  rtdi:stamp: 2001-12-14T21:59:43.10Z
  rtdi:spaced: 2001-12-14 21:59:43.10
  rtdi:str: !!str 0777
  rtdi:quoted: "0777"
  rtdi:hex: 0x1F
  rtdi:eight: 08
  rtdi:small: 1e-5
  rtdi:large: 1e21
  rtdi:huge: 123456789012345678901234
  rtdi:uint: 9223372036854775808
  rtdi:float: 1.50
  rtdi:custom: !local text
  rtdi:account: 012345678901
  rtdi:octal-ish: 0778
  rtdi:sexagesimal: 1:20
  rtdi:version: 1.30
  rtdi:negative: -1_0.5e1_0
""",
    "tricky-objects": """\
config:
  rtdi:topology:
    regions:
      - {cloud: aws, name: us-east-1, jurisdiction: no, zones: [on, off, yes, n, y]}
    numbers: [0777, 0o777, 0x1F, 0b101, 1_000, 1e3, 08, .5, 1.50, -0x1f, +12, 1E3, 1e-7]
    big: [9007199254740993, 9223372036854775807, 9223372036854775808, 123456789012345678901234]
    nulls: [~, null, Null, NULL, ""]
    bools: [true, True, TRUE, false, False, FALSE, yes, no, on, off, y, n]
    stamps: [2001-12-14, 2001-12-14T21:59:43.10-05:00, 2001-12-14 21:59:43, 2001-13-14]
    tags: [!!str 123, !!float 1, !!binary aGVsbG8=, !custom word, !!int "12"]
    base: &base {a: 1, b: 2, c: {deep: true}}
    other: &other {b: 20, d: 4}
    merged: {<<: [*base, *other], a: 10}
    1: int key
    0o10: octal key
    keys: {yes: 1, no: 2, on: 3, ~: 4}
""",
}

REFUSED = {
    # name: (text, line Pulumi names, key path rtdi names)
    "duplicate-top": ("config:\n  rtdi:region: a\n  rtdi:region: b\n", 3, "rtdi:region"),
    "duplicate-nested": (
        "config:\n  rtdi:kafka:\n    topics:\n      - name: trips\n        partitions: 3\n"
        "        name: rides\n",
        6,
        "rtdi:kafka.topics[0].name",
    ),
    "duplicate-quoted": ('config:\n  rtdi:o: {"x": 1, x: 2}\n', 2, "rtdi:o.x"),
    "infinity": ("config:\n  rtdi:o:\n    x: .inf\n", 3, "rtdi:o.x"),
    "bool-tag": ("config:\n  rtdi:o: !!bool yes\n", 2, "rtdi:o"),
}


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory):
    """A copy of the project and a CLI whose local backend knows one stack per file to compare."""
    root = tmp_path_factory.mktemp("stack-yaml")
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", root / "stacks")
    cli = pulumi_cli(root / "state")
    cli.env["TZ"] = "UTC"  # Go prints a timestamp's offset by the local zone's name when it has one
    return root, cli


def _init(root: Path, cli, stack: str, text: str) -> Path:
    """`pulumi stack init` rewrites the file: put the original text back, with the new salt."""
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    path.write_text("config: {}\n")
    cli.run("stack", "init", stack, cwd=root)
    salt = next(line for line in path.read_text().splitlines() if line.startswith("encryption"))
    path.write_text(f"{salt}\n{text}")
    return path


def _pulumi_values(root: Path, cli, stack: str) -> dict:
    proc = cli.run("config", "--json", "--stack", stack, cwd=root)
    shown = json.loads(proc.stdout)
    return {k: v["objectValue"] if "objectValue" in v else v["value"] for k, v in shown.items()}


def _rtdi_values(path: Path, pulumi: dict) -> dict:
    values = read_stack_file(path).values
    return {
        k: json.loads(v) if not isinstance(pulumi.get(k), str) else v for k, v in values.items()
    }


@pytest.mark.parametrize("stack", STACK_NAMES + sorted(TRICKY))
def test_values_equal_pulumi_config(cli_project, stack):
    root, cli = cli_project
    text = TRICKY.get(stack) or (ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text()
    path = _init(root, cli, stack, text)
    pulumi = _pulumi_values(root, cli, stack)
    assert pulumi, "the CLI shows every key of the file"
    assert _rtdi_values(path, pulumi) == pulumi


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_files_pulumi_refuses_are_refused_on_the_same_line(cli_project, name):
    root, cli = cli_project
    text, line, key = REFUSED[name]
    path = _init(root, cli, name, text)
    proc = cli.run("config", "--json", "--stack", name, cwd=root, check=False)
    assert proc.returncode != 0, proc.stdout
    lines = [int(n) for n in re.findall(r"line (\d+)", proc.stderr)]
    with pytest.raises(ConfigError) as info:
        read_stack_file(path, "stacks/x.yaml")
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    # the file has the salt line on top: one more than in `text`
    assert message.startswith(f"stacks/x.yaml:{line + 1}: {key}"), message
    if lines:  # Pulumi names the line of the later key, as rtdi does
        assert line + 1 == max(lines), proc.stderr


def test_pulumi_yaml_is_read_with_the_same_parser(tmp_path):
    """Pulumi.yaml goes through the same reader: a key written twice is refused with its line."""
    from infra.plan.project import Project

    (tmp_path / "Pulumi.yaml").write_text("name: rtdi\nstackConfigDir: stacks\nname: other\n")
    with pytest.raises(ConfigError) as info:
        Project.find(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'Pulumi.yaml'}:3: name: key written twice")
