"""Pinot's own validator over what the model renders, so the model and Pinot cannot drift apart.

A Pinot 1.x cluster cannot run here (its server and plugins are not served), but the check the
controller runs before it accepts a schema and a table is a library: ``SchemaUtils.validate`` and
``TableConfigUtils.validate`` of pinot-segment-local at infra/versions.py's PINOT_VERSION
(tests/integration/pinot_jars.py fetches it, PinotValidate.java runs it). One JVM checks every
pair of the session (a start takes about 2 s):

- every table and schema the model renders for every region of the samples, with the stream a
  region gives it (the registry's copies, the aggregate's client properties, the region's
  replica groups), is accepted; and so is every table and schema the plans hold (each regional
  plan's ``pinot/`` folder, the JSON the Pinot layer's Job hands the controller) in a tree with
  the Pinot layer (infra/components/pinot);
- every refusal case of tests/test_pinot_model.py, rendered with the model's checks bypassed,
  is refused by Pinot too with the reason the model cites, and each of rtdi's own rules (the
  cases whose ``pinot`` is None) is one Pinot accepts, so the model never claims a rule of
  Pinot's that Pinot does not have.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pinot_jars
import pydantic
import pytest
from test_pinot_model import CASES, CONSUMER, NOT_A_TABLE, SPECS, TAGS, Case, edited, model

from infra.components.kafka.flows import federation_registry
from infra.topology.pinot import (
    PinotStream,
    PinotTable,
    load_tables,
    region_replication,
    render_schema,
    render_table,
    stream_topics,
    table_regions,
)

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "PinotValidate.java"
# The region the refusal cases are rendered for.
REGION = "aws-us-east-1"
CHECKED = [c for c in CASES if c.pinot != NOT_A_TABLE]
# Whether this tree declares the Pinot layer, whose plans hold each table's JSON.
PINOT_LAYER = importlib.util.find_spec("infra.components.pinot") is not None


def _jars() -> Path:
    problem = None
    if shutil.which("java") is None:
        problem = "`java` is not on PATH (Pinot's validator needs Java 11 or newer)"
    elif pinot_jars.fetched() is None:
        problem = (
            "Pinot's validator is not fetched: run `make test` or "
            "`.venv/bin/python tests/integration/pinot_jars.py`"
        )
    if problem is None:
        return pinot_jars.jars_dir()
    if os.environ.get("CI"):
        pytest.fail(f"{problem}, but CI is set: CI must run Pinot's validator", pytrace=False)
    pytest.skip(problem)


def _stream(table: PinotTable, region: str) -> PinotStream:
    m = model()
    registry = federation_registry(m.topology, m.kafka)
    topics = stream_topics(table, registry, region) if table.topic in registry["topics"] else ()
    return PinotStream(topics, CONSUMER, TAGS, region_replication(m.topology, region))


def _partitioned(table: PinotTable) -> PinotTable:
    """The table as `load_tables` completes it: with its topic's partitions."""
    topic = next((t for t in model().kafka.topics if t.name == table.topic), None)
    if topic is None:
        return table
    return table.model_copy(update={"topic_partitions": topic.partitions})


def bypassed(case: Case) -> tuple[dict, dict]:
    """The case's table and schema as Pinot would receive them if the model let them through:
    rendered from the edited spec without `check_table`; when the model's own types or
    render_table refuse the edit, rendered from the unedited spec and patched instead."""
    try:
        table = _partitioned(PinotTable.model_validate(edited(case.base, case.edits)))
        (config,) = render_table(table, _stream(table, REGION))
        return config, render_schema(table)
    except (pydantic.ValidationError, ValueError):
        assert case.patch is not None, f"{case.id}: the model refuses the edit; give a patch"
    table = _partitioned(PinotTable.model_validate(SPECS[case.base]))
    (config,) = render_table(table, _stream(table, REGION))
    schema = render_schema(table)
    case.patch(config, schema)
    return config, schema


def _samples() -> dict[str, tuple[dict, dict]]:
    m = model()
    registry = federation_registry(m.topology, m.kafka)
    out = {}
    for table in load_tables(m.topology, m.kafka):
        for region in table_regions(table, m.topology):
            stream = PinotStream(
                stream_topics(table, registry, region),
                CONSUMER,
                TAGS,
                region_replication(m.topology, region),
            )
            for config in render_table(table, stream):
                out[f"{table.name}@{region}/{config['tableType']}"] = (config, render_schema(table))
    return out


def _planned(out: Path) -> dict[str, tuple[dict, dict]]:
    """Every table of every regional plan with its schema, as the plans wrote them."""
    pairs = {}
    for stack in sorted(p for p in out.iterdir() if (p / "resources.json").is_file()):
        folder = stack / "pinot"
        for path in sorted(folder.glob("table.*.json")):
            table = json.loads(path.read_text())
            name = table["segmentsConfig"]["schemaName"]
            schema = json.loads((folder / f"schema.{name}.json").read_text())
            pairs[f"{stack.name}/{path.name}"] = (table, schema)
    return pairs


@pytest.fixture(scope="module")
def verdicts(request, tmp_path_factory) -> dict[str, str]:
    """Pinot's verdict on every sample, planned table and case, from one run of the validator."""
    jars = _jars()
    pairs = {f"sample:{k}": v for k, v in _samples().items()}
    if PINOT_LAYER:
        plan = request.getfixturevalue("cli_plan")
        assert plan.code == 0, plan.stderr
        pairs.update({f"plan:{k}": v for k, v in _planned(plan.out).items()})
    pairs.update({f"case:{c.id}": bypassed(c) for c in CHECKED})
    path = tmp_path_factory.mktemp("pinot") / "pairs.jsonl"
    path.write_text(
        "".join(json.dumps({"table": t, "schema": s}) + "\n" for t, s in pairs.values())
    )
    started = time.monotonic()
    done = subprocess.run(
        ["java", "-cp", f"{jars}/*", str(PROGRAM), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(pairs), done.stdout + done.stderr[-3000:]
    print(
        f"\nPinot {pinot_jars.pinot_version()} validated {len(pairs)} tables in "
        f"{time.monotonic() - started:.1f} s",
        flush=True,
    )
    return dict(zip(pairs, lines, strict=True))


def test_every_rendered_table_and_schema_passes_pinots_validator(verdicts):
    samples = {k: v for k, v in verdicts.items() if k.startswith("sample:")}
    regions = model().topology.region_ids
    # Both sample tables, in every region.
    assert len(samples) == 2 * len(regions)
    assert {k: v for k, v in samples.items() if v != "ok"} == {}


def test_every_planned_table_and_schema_passes_pinots_validator(verdicts):
    if not PINOT_LAYER:
        pytest.skip("no Pinot layer in this tree (infra/components/pinot): no planned tables")
    planned = {k: v for k, v in verdicts.items() if k.startswith("plan:")}
    regions = model().topology.region_ids
    # Both sample tables in every regional plan, with the layer's own stream properties.
    assert sorted({k.split(":", 1)[1].split("/")[0] for k in planned}) == sorted(regions)
    assert len(planned) == 2 * len(regions)
    assert {k: v for k, v in planned.items() if v != "ok"} == {}


@pytest.mark.parametrize("case", CHECKED, ids=[c.id for c in CHECKED])
def test_pinot_refuses_what_the_model_refuses_as_pinots(verdicts, case):
    verdict = verdicts[f"case:{case.id}"]
    if case.pinot is None:
        # rtdi's own rule: Pinot accepts the table, and the model does not say "(Pinot)".
        assert verdict == "ok", verdict
        return
    assert verdict.startswith("refused: "), verdict
    assert case.pinot in verdict, verdict
