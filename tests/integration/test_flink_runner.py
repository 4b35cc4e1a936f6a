"""rtdi's Flink SQL runner on real Flink 2.2 (Maven Central jars), real Kafka and S3 on loopback.

1. The runner refuses bad scripts and arguments with one line and exit code 2, before any Flink
   class loads.
2. A script with semicolons inside literals, quoted identifiers and comments, a SET and two INSERTs
   runs as one job whose two sinks both write.

Exactly-once through a crash, windows in RocksDB state included, runs with the configuration and
SQL rtdi plans in test_flink_planned.py. Timings are printed (``-s`` shows them).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flink_local as fl
import kafka_local as kl

# --------------------------------------------------------------------------- bad input, no Flink


def run_runner_alone(tmp_path: Path, script: str | None, *args: str) -> subprocess.CompletedProcess:
    """The runner jar alone on the classpath: bad input must be refused before Flink is needed."""
    argv = list(args)
    if script is not None:
        (tmp_path / "job.sql").write_text(script)
        argv = ["--sql-file", str(tmp_path / "job.sql"), *argv]
    return subprocess.run(
        ["java", "-cp", str(fl.RUNNER_JAR), fl.MAIN, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("SELECT 1;", (), "line 1: a bare query has no sink"),
        (
            "CREATE TABLE t (x INT) WITH ('connector' = 'datagen');",
            (),
            "no INSERT INTO statement",
        ),
        ("-- x\nINSERT INTO t SELECT 'open;\n", (), "line 2: a string literal opened with '"),
        ("INSERT INTO t /* never closed;", (), "a /* comment is never closed"),
        ("INSERT INTO `t;\n", (), "line 1: a quoted identifier opened with `"),
        (
            "BEGIN STATEMENT SET;\nINSERT INTO t SELECT 1;\nEND;",
            (),
            "BEGIN is not needed: write plain INSERT INTO statements",
        ),
        (None, (), "--sql-file PATH is required"),
        (None, ("--sql-file", "missing.sql"), "missing.sql: no such file"),
        ("INSERT INTO t SELECT 1;", ("--conf", "novalue"), "--conf 'novalue' is not key=value"),
        ("INSERT INTO t SELECT 1;", ("--jar", "x"), "unknown argument '--jar'"),
    ],
)
def test_runner_refuses_bad_input_in_one_line(tmp_path, script, args, expected):
    fl.require_flink()
    done = run_runner_alone(tmp_path, script, *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtdi-sql-runner: "), done.stderr
    assert expected in lines[0]


# --------------------------------------------------------------------------- one job, two sinks


@pytest.mark.integration
def test_runner_splits_only_on_statement_ends_and_submits_inserts_as_one_job(tmp_path):
    flink = fl.require_flink()
    script = """
    -- a comment; with a semicolon
    SET 'parallelism.default' = '1';
    CREATE VIEW `odd;name` AS SELECT * FROM (VALUES ('a;b'), ('it''s; fine')) AS t(s); /* ; */
    CREATE TABLE left_sink (s STRING) WITH ('connector' = 'print', 'print-identifier' = 'L');
    CREATE TABLE right_sink (s STRING) WITH ('connector' = 'print', 'print-identifier' = 'R');
    INSERT INTO left_sink SELECT s FROM `odd;name`;
    INSERT INTO right_sink SELECT UPPER(s) FROM `odd;name` WHERE s <> 'x;y'
    """
    sql = tmp_path / "job.sql"
    sql.write_text(script)
    log4j = kl.log4j2_config(tmp_path / "log4j2.properties", tmp_path / "runner.log")
    started = time.monotonic()
    done = subprocess.run(
        fl.runner_command(flink, sql, {}, log4j),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    print(f"\nbounded two-sink job: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    submitted = [line for line in done.stderr.splitlines() if "submitted job" in line]
    assert len(submitted) == 1 and "with 2 INSERT statement(s)" in submitted[0]
    printed = {line.strip() for line in done.stdout.splitlines()}
    assert {"L> +I[a;b]", "L> +I[it's; fine]", "R> +I[A;B]", "R> +I[IT'S; FINE]"} <= printed
