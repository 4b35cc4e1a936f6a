"""Pinot tables and schemas as code (infra/topology/pinot.py): the sample specs load and render
what Pinot needs, and every configuration Pinot 1.5 refuses (and each of rtdi's own rules) is
refused before anything is declared, in one line naming the file, the key and the value.

CASES is shared with tests/integration/test_pinot_validator.py, which renders each case with the
model's checks bypassed and runs Pinot's own validator over it: where ``pinot`` names Pinot's
refusal, Pinot must refuse the table too; where it is None the rule is rtdi's own and Pinot
accepts the table (so the rule is not claimed to be Pinot's).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.kafka.flows import federation_registry
from infra.topology.config import parse_global
from infra.topology.errors import ConfigError
from infra.topology.pinot import (
    JSON_DECODER,
    KAFKA_CONSUMER_FACTORY,
    TABLES_DIR,
    PinotStream,
    PinotTable,
    load_tables,
    region_replication,
    render_schema,
    render_table,
    stream_topics,
    table_regions,
)
from plantools import sample_config

DELETE = object()
# What the region gives a table in these tests: the shape the Pinot component builds
# (infra/components/pinot), with the aggregate's bootstrap and a SCRAM identity.
CONSUMER = {
    "bootstrap.servers": "aggregate-kafka-bootstrap.kafka.svc:9094",
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "ssl.truststore.type": "PEM",
    "ssl.truststore.location": "/etc/rtdi/kafka/ca.crt",
}
TAGS = {"hot": "hot", "cold": "cold"}

SPECS: dict[str, dict] = {
    name: yaml.safe_load((TABLES_DIR / f"{name}.yaml").read_text()) for name in ("trips", "orders")
}
# An offline table (segments pushed by batch jobs), for the rules of offline tables.
SPECS["trips_daily"] = {
    "name": "trips_daily",
    "kind": "offline",
    "schema": {
        "dimensions": [{"name": "hexagon", "type": "STRING"}],
        "metrics": [{"name": "trips", "type": "LONG"}],
        "dateTimes": [{"name": "day", "type": "LONG"}],
    },
    "timeColumn": "day",
    "retentionDays": 365,
    "tiers": [{"name": "cold", "segmentAge": "30d"}],
}


def model():
    return parse_global(sample_config("global"))


def edited(base: str, edits: dict[str, Any]) -> dict:
    """A copy of spec ``base`` with ``edits`` (key paths joined by ``__``, list indices as
    numbers) set, or deleted when the value is DELETE."""
    spec = json.loads(json.dumps(SPECS[base]))
    for dotted, value in edits.items():
        node = spec
        *path, last = dotted.split("__")
        for part in path:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return spec


def load(tmp_path: Path, specs: dict[str, dict]) -> list[PinotTable]:
    folder = tmp_path / "jobs" / "pinot"
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        (folder / name).write_text(yaml.safe_dump(spec, sort_keys=False))
    m = model()
    return load_tables(m.topology, m.kafka, folder)


def refusal(tmp_path: Path, base: str, edits: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, {f"{base}.yaml": edited(base, edits)})
    return [str(i) for i in err.value.issues]


@dataclass(frozen=True)
class Case:
    id: str
    base: str
    edits: dict[str, Any]
    key: str  # the key the one line names
    says: str  # what the line says
    # Pinot's own refusal (a fragment of its message) of the same table; None: rtdi's rule alone
    # (Pinot accepts the table); NOT_A_TABLE: a rule on the topology, not on a table config.
    pinot: str | None
    # For the validator: the rendered (table, schema) JSON changed the way the edit would, for
    # an edit the model's own types or render_table refuse (the table is then rendered from
    # the unedited spec first).
    patch: Callable[[dict, dict], None] | None = field(default=None, compare=False)


NOT_A_TABLE = "not a table config"
TIER = {"name": "cold", "segmentAge": "3d", "pool": "cold"}
STAR = [{"dimensions": ["status"], "aggregations": [{"function": "COUNT"}]}]


def _set(path: str, value: Any) -> Callable[[dict, dict], None]:
    def patch(table: dict, schema: dict) -> None:
        node: Any = {"table": table, "schema": schema}
        *parts, last = path.split(".")
        for part in parts:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return patch


def _more_copies(table: dict, schema: dict) -> None:
    (first,) = table["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"]
    copies = [dict(first, **{"stream.kafka.topic.name": f"{r}.orders"}) for r in ("a", "b")]
    table["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"] = copies


def _rename(name: str) -> Callable[[dict, dict], None]:
    def patch(table: dict, schema: dict) -> None:
        table["tableName"] = name

    return patch


CASES = [
    # --- upsert (TableConfigUtils.validateUpsertAndDedupConfig)
    Case(
        "upsert-with-tiers",
        "orders",
        {"tiers": [TIER]},
        "tiers",
        "cannot move segments to tiers",
        "The upsert table cannot have multi-tiers",
    ),
    Case(
        "upsert-with-star-tree",
        "orders",
        {"starTree": STAR},
        "starTree",
        "cannot have a star-tree index",
        "The upsert table cannot have star-tree index",
    ),
    Case(
        "upsert-with-dedup",
        "orders",
        {"dedup": True},
        "dedup",
        "upserts or dedups, never both",
        "either Upsert or Dedup enabled, but not both",
    ),
    Case(
        "upsert-balanced-routing",
        "orders",
        {"routing": "balanced"},
        "routing",
        "strict replica groups",
        "must use strict replica-group",
    ),
    Case(
        "upsert-replica-group-routing",
        "orders",
        {"routing": "replicaGroup"},
        "routing",
        "strict replica groups",
        "must use strict replica-group",
    ),
    Case(
        "upsert-without-primary-key",
        "orders",
        {"schema__primaryKey": DELETE, "partitionColumn": DELETE},
        "schema.primaryKey",
        "needs a primary key",
        "must have primary key columns",
    ),
    Case(
        "primary-key-not-a-column",
        "orders",
        {"schema__primaryKey": ["order_uuid"], "partitionColumn": DELETE},
        "schema.primaryKey[0]",
        "not a column of the schema",
        "primary key column must exist",
    ),
    Case(
        "primary-key-multi-valued",
        "orders",
        {"schema__primaryKey": ["order_id", "rider_id"], "schema__dimensions__1__multiValue": True},
        "schema.primaryKey[1]",
        "multi-valued column cannot be in a primary key",
        "cannot be of multi-value type",
    ),
    Case(
        "comparison-column-missing",
        "orders",
        {"upsert__comparisonColumn": "version"},
        "upsert.comparisonColumn",
        "not a column",
        "comparison column does not exist",
    ),
    Case(
        "delete-column-a-timestamp",
        "orders",
        {"upsert__deleteColumn": "updated_at"},
        "upsert.deleteColumn",
        "BOOLEAN, STRING or numeric",
        "must be of type: String / Boolean / Numeric",
    ),
    Case(
        "upsert-all-copies",
        "orders",
        {"copies": "all"},
        "copies",
        "reads one topic",
        "Multiple stream configs are not supported for upsert table",
        _more_copies,
    ),
    Case(
        "upsert-keyed-by-another-column",
        "orders",
        {"partitionColumn": "rider_id"},
        "partitionColumn",
        "keyed by a primary key column",
        None,
    ),
    # --- dedup
    Case(
        "dedup-without-primary-key",
        "trips",
        {"dedup": True, "tiers": DELETE},
        "schema.primaryKey",
        "needs a primary key",
        "must have primary key columns",
    ),
    Case(
        "dedup-balanced-routing",
        "trips",
        {"dedup": True, "schema__primaryKey": ["trip_id"], "routing": "balanced"},
        "routing",
        "strict replica groups",
        "must use strict replica-group",
    ),
    Case(
        "dedup-offline",
        "trips_daily",
        {"dedup": True, "schema__primaryKey": ["hexagon"]},
        "dedup",
        "realtime tables only",
        "Dedup is not supported for OFFLINE table",
    ),
    # --- peer download (TableConfigUtils.validateValidationConfig)
    Case(
        "peer-download-replication-1",
        "trips",
        {"replication": 1},
        "replication",
        "needs a peer",
        "peerSegmentDownloadScheme can't be used when replication is < 2",
        _set("table.segmentsConfig.replication", "1"),
    ),
    Case(
        "more-replicas-than-zones",
        "trips",
        {"replication": 4},
        "replication",
        "more replicas than",
        None,
    ),
    # --- tiers (TableConfigUtils.validateTierConfigList)
    Case(
        "tier-not-on-servers",
        "trips",
        {"tiers__0__storage": "deep_store"},
        "tiers[0].storage",
        "allowed: pinot_server",
        "Unsupported storageType",
    ),
    Case(
        "tier-named-twice",
        "trips",
        {"tiers": [TIER, dict(TIER, segmentAge="7d")]},
        "tiers[1].name",
        "a tier named twice",
        "already exists in tier configs",
    ),
    Case(
        "tier-age-not-a-period",
        "trips",
        {"tiers__0__segmentAge": "3 days"},
        "tiers[0].segmentAge",
        "a whole number of days or hours",
        "must be a valid period string",
        _set("table.tierConfigs.0.segmentAge", "3 days"),
    ),
    Case(
        "tier-ages-not-increasing",
        "trips",
        {"tiers": [dict(TIER, segmentAge="7d"), dict(TIER, name="colder", segmentAge="3d")]},
        "tiers[1].segmentAge",
        "increasing segment age",
        None,
    ),
    Case(
        "tier-after-retention",
        "trips",
        {"tiers__0__segmentAge": "30d"},
        "tiers[0].segmentAge",
        "never reach this tier",
        None,
    ),
    Case(
        "tier-on-the-hot-pool",
        "trips",
        {"tiers__0__pool": "hot"},
        "tiers[0].pool",
        "allowed: cold",
        None,
    ),
    # --- time column (TableConfigUtils.validateValidationConfig)
    Case(
        "realtime-without-time-column",
        "trips",
        {"timeColumn": DELETE},
        "timeColumn",
        "needs its time column",
        "'timeColumnName' cannot be null in REALTIME table config",
    ),
    Case(
        "time-column-not-in-schema",
        "trips",
        {"timeColumn": "pickup_time"},
        "timeColumn",
        "not a dateTimes column",
        "Cannot find valid fieldSpec for timeColumn",
    ),
    Case(
        "time-column-a-dimension",
        "trips",
        {"timeColumn": "trip_id"},
        "timeColumn",
        "not a dateTimes column",
        "Cannot find valid fieldSpec for timeColumn",
    ),
    # --- columns and indexes (SchemaUtils.validate, validateIndexingConfigAndFieldConfigList)
    Case(
        "column-named-twice",
        "trips",
        {"schema__metrics__1": {"name": "fare_cents", "type": "LONG"}},
        "schema.metrics[1].name",
        "a column named twice",
        "Field spec already exists for column: fare_cents",
    ),
    Case(
        "multi-valued-json",
        "trips",
        {"schema__dimensions__1": {"name": "rider_id", "type": "JSON", "multiValue": True}},
        "schema.dimensions[1].multiValue",
        "cannot be multi-valued",
        "JSON columns cannot be of multi-value type",
    ),
    Case(
        "inverted-index-not-a-column",
        "trips",
        {"invertedIndex": ["city"]},
        "invertedIndex[0]",
        "not a column",
        "Failed to find column: city in schema",
    ),
    Case(
        "sorted-column-not-a-column",
        "trips",
        {"sortedColumn": "city"},
        "sortedColumn",
        "not a column",
        "Failed to find sorted column",
    ),
    Case(
        "star-tree-dimension-not-a-column",
        "trips",
        {"starTree__0__dimensions": ["city"]},
        "starTree[0].dimensions[0]",
        "not a dimension column",
        "Failed to find dimension column: city",
    ),
    Case(
        "star-tree-sum-of-text",
        "trips",
        {"starTree__0__aggregations__1__column": "status"},
        "starTree[0].aggregations[1].column",
        "needs a numeric metric column",
        None,
    ),
    Case(
        "partition-column-not-a-column",
        "trips",
        {"partitionColumn": "city"},
        "partitionColumn",
        "not a column",
        "Failed to find partition column",
    ),
    # --- names
    Case(
        "table-name-with-a-space",
        "trips",
        {"name": "trips today"},
        "name",
        "a Pinot table name",
        "containing space is not allowed",
        _rename("trips today"),
    ),
    Case(
        "table-name-too-long",
        "trips",
        {"name": "t" * 64},
        "name",
        "1 to 63",
        None,
        _rename("t" * 64),
    ),
    # --- kinds
    Case(
        "realtime-without-topic",
        "trips",
        {"topic": DELETE},
        "topic",
        "consumes a topic",
        NOT_A_TABLE,
    ),
    Case(
        "offline-with-topic",
        "trips_daily",
        {"topic": "trips"},
        "topic",
        "consumes no topic",
        NOT_A_TABLE,
    ),
    Case(
        "upsert-section-on-realtime",
        "trips",
        {"upsert": {}},
        "upsert",
        "needs kind: upsert",
        NOT_A_TABLE,
    ),
    # --- the topology
    Case("unknown-topic", "trips", {"topic": "rides"}, "topic", "not a logical topic", NOT_A_TABLE),
    Case(
        "topic-not-consumable-here",
        "trips",
        {"topic": "rider-profiles"},
        "topic",
        "may not be held in aws-us-east-1, onprem-dc1",
        NOT_A_TABLE,
    ),
    Case(
        "unknown-region",
        "trips",
        {"regions": ["aws-us-west-2"]},
        "regions[0]",
        "no such region",
        NOT_A_TABLE,
    ),
]


# --------------------------------------------------------------------------------- the samples


def test_sample_tables_load_in_every_region():
    m = model()
    tables = {t.name: t for t in load_tables(m.topology, m.kafka)}
    assert sorted(tables) == ["orders", "trips"]
    assert tables["trips"].kind == "realtime" and tables["orders"].kind == "upsert"
    for t in tables.values():
        assert table_regions(t, m.topology) == m.topology.region_ids
    # The partitions come from the topic, never from the spec.
    assert tables["orders"].topic_partitions == 12
    assert tables["trips"].topic_partitions == 24


def _streams(table: PinotTable):
    m = model()
    registry = federation_registry(m.topology, m.kafka)
    for region in table_regions(table, m.topology):
        topics = stream_topics(table, registry, region)
        replication = region_replication(m.topology, region)
        yield region, registry, PinotStream(topics, CONSUMER, TAGS, replication)


def test_trips_reads_every_copy_and_moves_to_the_cold_pool_after_three_days():
    m = model()
    (trips,) = [t for t in load_tables(m.topology, m.kafka) if t.name == "trips"]
    for region, registry, stream in _streams(trips):
        (config,) = render_table(trips, stream)
        maps = config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"]
        copies = registry["topics"]["trips"]["regions"][region]["consume"]["topics"]
        assert [s["stream.kafka.topic.name"] for s in maps] == copies and len(copies) == 4
        for s in maps:
            assert s["stream.kafka.consumer.factory.class.name"] == KAFKA_CONSUMER_FACTORY
            assert s["stream.kafka.decoder.class.name"] == JSON_DECODER
            assert s["stream.kafka.broker.list"] == CONSUMER["bootstrap.servers"]
            assert "bootstrap.servers" not in s
            assert s["security.protocol"] == "SASL_SSL"
            assert s["realtime.segment.serverUploadToDeepStore"] == "true"
        assert config["tableType"] == "REALTIME"
        assert config["tenants"]["server"] == "hot"
        assert config["tierConfigs"] == [
            {
                "name": "cold",
                "segmentSelectorType": "time",
                "segmentAge": "3d",
                "storageType": "pinot_server",
                "serverTag": "cold_OFFLINE",
            }
        ]
        seg = config["segmentsConfig"]
        assert seg["replication"] == "3" and seg["peerSegmentDownloadScheme"] == "http"
        assert seg["timeColumnName"] == "event_time" and seg["retentionTimeValue"] == "30"
        # A replica group per zone, on the consuming servers and on the tier's.
        assignment = config["instanceAssignmentConfigMap"]
        assert set(assignment) == {"CONSUMING", "cold"}
        assert assignment["cold"]["tagPoolConfig"] == {
            "tag": "cold_OFFLINE",
            "poolBased": True,
            "numPools": 3,
        }
        assert assignment["CONSUMING"]["replicaGroupPartitionConfig"]["numReplicaGroups"] == 3
        assert config["routing"] == {"instanceSelectorType": "replicaGroup"}
        assert "upsertConfig" not in config


def test_orders_upserts_by_order_id_from_its_own_copy_with_strict_replica_groups():
    m = model()
    (orders,) = [t for t in load_tables(m.topology, m.kafka) if t.name == "orders"]
    for region, _, stream in _streams(orders):
        assert stream.topics == (f"{region}.orders",)
        (config,) = render_table(orders, stream)
        (s,) = config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"]
        assert s["stream.kafka.topic.name"] == f"{region}.orders"
        assert config["routing"] == {
            "instanceSelectorType": "strictReplicaGroup",
            "segmentPrunerTypes": ["partition"],
        }
        assert config["upsertConfig"] == {
            "mode": "FULL",
            "comparisonColumns": ["updated_at"],
            "deleteRecordColumn": "deleted",
        }
        assert config["tableIndexConfig"]["segmentPartitionConfig"] == {
            "columnPartitionMap": {"order_id": {"functionName": "Murmur", "numPartitions": 12}}
        }
        assert "tierConfigs" not in config
        assert set(config["instanceAssignmentConfigMap"]) == {"CONSUMING"}
    assert render_schema(orders)["primaryKeyColumns"] == ["order_id"]


def test_schema_renders_every_column_with_its_pinot_type():
    m = model()
    (trips,) = [t for t in load_tables(m.topology, m.kafka) if t.name == "trips"]
    schema = render_schema(trips)
    assert schema["schemaName"] == "trips"
    assert [c["name"] for c in schema["dimensionFieldSpecs"]] == [
        "trip_id",
        "rider_id",
        "hexagon",
        "status",
    ]
    assert schema["metricFieldSpecs"] == [
        {"name": "fare_cents", "dataType": "LONG"},
        {"name": "distance_m", "dataType": "LONG"},
    ]
    assert schema["dateTimeFieldSpecs"] == [
        {
            "name": "event_time",
            "dataType": "TIMESTAMP",
            "format": "1:MILLISECONDS:TIMESTAMP",
            "granularity": "1:MILLISECONDS",
        }
    ]
    assert "primaryKeyColumns" not in schema


def test_offline_table_has_no_stream_and_its_tier(tmp_path):
    (daily,) = load(tmp_path, {"trips_daily.yaml": SPECS["trips_daily"]})
    stream = PinotStream((), CONSUMER, TAGS, 3)
    (config,) = render_table(daily, stream)
    assert config["tableType"] == "OFFLINE"
    assert "streamIngestionConfig" not in config["ingestionConfig"]
    assert set(config["instanceAssignmentConfigMap"]) == {"OFFLINE", "cold"}
    assert config["instanceAssignmentConfigMap"]["OFFLINE"]["tagPoolConfig"]["tag"] == "hot_OFFLINE"


def test_a_region_without_peer_download_sets_no_scheme():
    m = model()
    (trips,) = [t for t in load_tables(m.topology, m.kafka) if t.name == "trips"]
    stream = PinotStream(("aws-us-east-1.trips",), CONSUMER, TAGS, 3, peer_download=False)
    (config,) = render_table(trips, stream)
    assert "peerSegmentDownloadScheme" not in config["segmentsConfig"]
    maps = config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"]
    assert "realtime.segment.serverUploadToDeepStore" not in maps[0]


def test_render_refuses_what_the_model_checked():
    """render_table trusts `load_tables`, and says so when a caller breaks that (a mistake in
    the caller, not in a spec)."""
    m = model()
    tables = {t.name: t for t in load_tables(m.topology, m.kafka)}
    with pytest.raises(ValueError, match="replication 1"):
        render_table(tables["trips"], PinotStream(("x.trips",), CONSUMER, TAGS, 1))
    with pytest.raises(ValueError, match="reads one topic"):
        render_table(tables["orders"], PinotStream(("a.orders", "b.orders"), CONSUMER, TAGS, 3))
    with pytest.raises(ValueError, match="override Pinot's keys"):
        props = dict(CONSUMER, **{"streamType": "kinesis"})
        render_table(tables["trips"], PinotStream(("x.trips",), props, TAGS, 3))


# --------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refusal_is_one_line_naming_file_key_and_value(tmp_path, case):
    (line,) = refusal(tmp_path, case.base, case.edits)
    where = f"jobs/pinot/{case.base}.yaml: {case.key}"
    assert line.startswith(where + " = ") or line.startswith(where + ": "), line
    assert case.says in line, line
    assert "\n" not in line and "allowed: " in line, line
    # A rule is said to be Pinot's exactly when Pinot's validator refuses it too
    # (tests/integration/test_pinot_validator.py); a format is said in words instead.
    if case.pinot is None:
        assert "(Pinot)" not in line, line
    elif case.pinot != NOT_A_TABLE and case.patch is None:
        assert "(Pinot)" in line, line


def test_every_issue_of_every_file_at_once(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(
            tmp_path,
            {
                "trips.yaml": edited("trips", {"replication": 1, "topic": "rides"}),
                "orders.yaml": edited("orders", {"tiers": [TIER]}),
            },
        )
    text = str(err.value)
    assert "jobs/pinot/trips.yaml: replication = 1" in text
    assert "jobs/pinot/trips.yaml: topic = 'rides'" in text
    assert "jobs/pinot/orders.yaml: tiers" in text


def test_unknown_key_lists_the_allowed_ones(tmp_path):
    lines = refusal(tmp_path, "trips", {"tier": [TIER]})
    assert lines == [
        "jobs/pinot/trips.yaml: tier: unknown key; allowed here: name, kind, topic, regions, "
        "copies, schema, timeColumn, retentionDays, replication, peerDownload, tiers, "
        "invertedIndex, sortedColumn, starTree, upsert, dedup, routing, partitionColumn, "
        "flushHours, segmentSizeMib"
    ]


def test_partitions_are_the_topics_not_the_specs(tmp_path):
    lines = refusal(tmp_path, "orders", {"topicPartitions": 3})
    assert lines == [
        "jobs/pinot/orders.yaml: topicPartitions: set by rtdi from the topic; allowed: no such key"
    ]


def test_a_table_named_twice(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, {"a.yaml": SPECS["trips"], "b.yaml": SPECS["trips"]})
    assert [str(i) for i in err.value.issues] == [
        "jobs/pinot/b.yaml: name = 'trips': already the name of the table in jobs/pinot/a.yaml; "
        "allowed: a new name"
    ]


@pytest.mark.parametrize(
    "edits, says",
    [
        ({"retentionDays": 0}, "retentionDays = 0: too small; allowed: a whole number from 1"),
        ({"retentionDays": True}, "a boolean is not a number"),
        ({"kind": "hybrid"}, "kind = 'hybrid': allowed: 'realtime', 'upsert' or 'offline'"),
        ({"peerDownload": "yes"}, "peerDownload = 'yes': not a boolean"),
        ({"schema__metrics__0__type": "STRING"}, "schema.metrics[0].type = 'STRING'"),
        ({"flushHours": 48}, "flushHours = 48: too large"),
    ],
)
def test_bad_values_say_what_is_allowed(tmp_path, edits, says):
    lines = refusal(tmp_path, "trips", edits)
    assert any(says in line for line in lines), lines


def test_spec_that_is_not_a_mapping(tmp_path):
    folder = tmp_path / "jobs" / "pinot"
    folder.mkdir(parents=True)
    (folder / "x.yaml").write_text("- a\n- b\n")
    (folder / "y.yaml").write_text("name: [unclosed\n")
    m = model()
    with pytest.raises(ConfigError) as err:
        load_tables(m.topology, m.kafka, folder)
    lines = [str(i) for i in err.value.issues]
    assert lines[0] == "jobs/pinot/x.yaml: a table spec must be a mapping of keys to values"
    assert lines[1].startswith("jobs/pinot/y.yaml: cannot read the table spec: ")


def test_the_readme_example_is_a_valid_spec(tmp_path):
    readme = (TABLES_DIR.parent.parent / "README.md").read_text()
    section = readme.split("### Pinot tables and schemas as code\n", 1)[1]
    example = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    (table,) = load(tmp_path, {"trips.yaml": example})
    assert table.tiers[0].segment_age == "3d" and table.copies == "all"
