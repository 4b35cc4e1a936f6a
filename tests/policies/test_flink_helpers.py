"""What the Flink rules read: Flink durations, state URIs, nested configuration and SQL scripts
as Flink reads them (policies/rules/_flink.py)."""

from __future__ import annotations

import pytest

from policies.rules._flink import (
    SqlError,
    flatten,
    kafka_topics,
    location_of,
    parse_script,
    seconds,
    transactional,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10 s", 10),
        ("10s", 10),
        ("30000", 30),  # no unit: milliseconds
        ("500 ms", 0.5),
        ("2 min", 120),
        ("1 h", 3600),
        ("1 d", 86400),
        ("3 minutes", 180),
        ("PT30S", 30),
        ("PT1M30S", 90),
        ("ten seconds", None),
        ("10 fortnights", None),
        ("-5 s", None),
        ("PT", None),
        ("1 m", 60),
        ("P1D", 86400),
        ("5 secs", 5),
        ("2 mins", None),  # not one of Flink's labels (checked against flink-core 2.2.0)
        ("5 us", None),  # Flink spells it µs
    ],
)
def test_flink_durations(value, expected):
    assert seconds(value) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3p://b/job/checkpoints", ("s3", "b", "/job/checkpoints")),
        ("s3a://b", ("s3", "b", "/")),
        ("s3://b/", ("s3", "b", "/")),
        ("gs://b/x", ("gs", "b", "/x")),
        ("hdfs://NameNode.dc1:8020/rtdi", ("hdfs", "namenode.dc1:8020", "/rtdi")),
        ("file:///tmp/ha", None),
        ("/rtdi/onprem-dc1", None),
        ("hdfs:///rtdi", None),  # no namenode: wherever fs.defaultFS points
    ],
)
def test_state_locations(uri, expected):
    found = location_of(uri)
    assert (found and (found.family, found.authority, found.path)) == expected or (
        found is None and expected is None
    )


def test_a_location_is_under_a_root_on_path_segments():
    root = location_of("s3://site/onprem-dc1/flink-state/")
    assert root is not None
    inside = location_of("s3p://site/onprem-dc1/flink-state/payments/ha")
    sibling = location_of("s3p://site/onprem-dc1/flink-state-old/payments")
    assert inside is not None and inside.under(root)
    assert sibling is not None and not sibling.under(root)


def test_nested_configuration_reads_as_dotted_keys():
    nested = {
        "execution": {"checkpointing": {"interval": "10 s", "incremental": True}},
        "taskmanager.numberOfTaskSlots": 2.0,
    }
    assert flatten(nested) == {
        "execution.checkpointing.interval": "10 s",
        "execution.checkpointing.incremental": "true",
        "taskmanager.numberOfTaskSlots": "2",
    }


SCRIPT = """
-- rtdi's tables, then the job's SQL
SET 'execution.checkpointing.mode' = 'AT_LEAST_ONCE';
CREATE TEMPORARY TABLE IF NOT EXISTS `cat`.`db`.`src` (
  `id` STRING,
  `ts` TIMESTAMP(3),
  WATERMARK FOR `ts` AS `ts` - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic-pattern' = 'a\\.x|b\\.x',
  /* a block comment; with a semicolon */
  'properties.sasl.jaas.config' = 'ScramLoginModule required password="${env:PW}";',
  'properties.note' = 'it''s; fine'
);
CREATE TABLE sink (id STRING) WITH (
  'connector' = 'kafka', 'topic' = 'out-1; out-2', 'sink.delivery-guarantee' = 'exactly-once'
);
RESET 'execution.checkpointing.mode';
INSERT INTO sink SELECT id FROM src;
"""


def test_a_script_is_read_as_flink_sql():
    script = parse_script(SCRIPT)
    assert set(script.tables) == {"src", "sink"}
    src, sink = script.tables["src"], script.tables["sink"]
    assert kafka_topics(src) == ([], "a\\.x|b\\.x")
    assert src.options["properties.sasl.jaas.config"].endswith('password="${env:PW}";')
    assert src.options["properties.note"] == "it's; fine"
    assert kafka_topics(sink) == (["out-1", "out-2"], None)
    assert transactional(sink) and not transactional(src)
    assert script.inserts == ["sink"]
    assert script.settings == [
        ("execution.checkpointing.mode", "AT_LEAST_ONCE"),
        ("execution.checkpointing.mode", None),
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (a INT) WITH ('connector' = 'kafka",  # unclosed literal
        "CREATE TABLE t (a INT) WITH ('connector' = 'kafka' 'topic' = 'x');",  # no comma
        "CREATE TABLE t (a INT) WITH ('connector' = 'kafka', 'topic');",  # no value
        "/* never closed",
    ],
)
def test_a_script_flink_would_refuse_is_refused(sql):
    with pytest.raises(SqlError):
        parse_script(sql)


BACKFILL = """
CREATE TABLE `copy_a` (`value` BYTES, `dt` STRING, `hr` STRING,
  `ts` AS CAST(JSON_VALUE(CAST(`value` AS STRING), '$.ts') AS TIMESTAMP(3))
) PARTITIONED BY (`dt`, `hr`) WITH (
  'connector' = 'filesystem', 'path' = 's3a://archive/a.trips', 'format' = 'parquet'
);
CREATE TABLE copy_b (`value` BYTES) WITH ('connector' = 'filesystem', 'path' = 'gs://b/x');
CREATE TEMPORARY VIEW `trips` AS
SELECT `ts` FROM `copy_a` WHERE CONCAT(`dt`, ' ', `hr`) >= '2026-11-21 00'
UNION ALL
SELECT `ts` FROM `copy_b`;
CREATE VIEW IF NOT EXISTS other AS SELECT 1 FROM (VALUES (1)) AS t (x);
CREATE TABLE sink (ts TIMESTAMP(3)) WITH ('connector' = 'kafka', 'topic' = 'out');
INSERT INTO sink SELECT ts FROM trips;
"""


def test_views_are_no_tables_and_leave_the_tables_they_read():
    """A backfill over the archive replaces a Kafka source by a view of the same name over
    FileSystem tables: the view is not a table of the script (it has no options, opens nothing of
    its own); the FileSystem tables it selects from are, with their paths."""
    script = parse_script(BACKFILL)
    assert set(script.tables) == {"copy_a", "copy_b", "sink"}
    assert script.tables["copy_a"].options["path"] == "s3a://archive/a.trips"
    assert script.tables["copy_b"].options == {"connector": "filesystem", "path": "gs://b/x"}
    assert script.inserts == ["sink"]


def test_like_inherits_options_unless_excluded():
    """Flink's LIKE default is INCLUDING ALL OVERWRITING OPTIONS: the new table is the source's
    connector and options with its own WITH on top; an OPTIONS strategy wins over ALL."""
    script = parse_script(
        """
        CREATE TABLE base (a INT) WITH ('connector' = 'filesystem', 'path' = 's3a://b/x');
        CREATE TEMPORARY TABLE copy WITH ('path' = 'file:///tmp/y') LIKE base;
        CREATE TABLE kept LIKE `base` (EXCLUDING ALL INCLUDING OPTIONS);
        CREATE TABLE own WITH ('connector' = 'kafka') LIKE base (EXCLUDING OPTIONS);
        CREATE TABLE none_ WITH ('connector' = 'kafka') LIKE base (EXCLUDING ALL);
        CREATE TABLE ctas WITH ('connector' = 'print') AS SELECT a FROM base WHERE 'x' LIKE 'y';
        """
    )
    tables = script.tables
    assert tables["copy"].options == {"connector": "filesystem", "path": "file:///tmp/y"}
    assert tables["kept"].options == tables["base"].options
    assert tables["own"].options == tables["none_"].options == {"connector": "kafka"}
    assert tables["ctas"].options == {"connector": "print"}
    with pytest.raises(SqlError, match="creates no table elsewhere"):
        parse_script("CREATE TABLE t WITH ('path' = 'x') LIKE elsewhere;")


def test_alter_table_changes_what_the_catalog_holds():
    script = parse_script(
        """
        CREATE TABLE t (a INT) WITH ('connector' = 'filesystem', 'path' = 's3a://b/x', 'k' = 'v');
        ALTER TABLE t SET ('path' = 'gs://other/x');
        ALTER TABLE IF EXISTS t RESET ('k');
        ALTER TABLE t RENAME TO u;
        ALTER TABLE missing SET ('path' = 'file:///nowhere');
        """
    )
    assert set(script.tables) == {"u"}
    assert script.tables["u"].options == {"connector": "filesystem", "path": "gs://other/x"}


def test_options_hints_are_kept_per_table_reference():
    """``/*+ OPTIONS(...) */`` right after a table name overrides its options for that query (on
    by default in Flink 2.2); a query hint after SELECT names no table; other hints are skipped;
    a plain comment is no hint."""
    script = parse_script(
        """
        INSERT INTO sink /*+ OPTIONS('path' = 'file:///tmp/a') */
        SELECT /*+ BROADCAST(d) */ a FROM src /*+ LOOKUP('table' = 'd'), OPTIONS('k' = 'v') */
        JOIN `db`.`dim` /* OPTIONS('path' = 'ignored') */ AS d ON TRUE;
        """
    )
    assert [(h.name, h.options) for h in script.hints] == [
        ("sink", {"path": "file:///tmp/a"}),
        ("src", {"k": "v"}),
    ]
    assert script.inserts == ["sink"]
