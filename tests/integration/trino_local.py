"""A real Trino server on loopback (the query test's), and moto as its S3.

`start_trino` runs the ``io.trino:trino-server`` that ``make test`` unpacked into .cache/trino
(trino_jars.py) on a JDK >= 24 from /usr/lib/jvm, as one node (coordinator and worker), with
the catalog files it is given: the test passes the catalogs rtdi planned, only endpoints and
credentials rewritten. Trino refuses a catalog property it does not know at startup, so a
started server is itself a check of the planned property names. Only the plugins the catalogs
name are linked into the server's plugin folder (the tarball's other 50 would only slow its
start). `run` speaks Trino's client protocol (POST /v1/statement, follow nextUri).

`start_moto` runs ``moto_server`` (PyPI moto[server]) on a free loopback port: Trino's native S3
works with it (with s3proxy it gets 501s).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trino_jars
from kafka_local import free_port

START_TIMEOUT = 240
REGION = "aws-us-east-1"  # the query test's region: its archive is on S3 (moto here)
RELEASE = "kubernetes:helm.sh/v3:Release"
MOTO_KEY = ("testing", "testing")  # moto accepts any keys
MOTO_REGION = "us-east-1"


def require_trino() -> tuple[Path, Path]:
    """(server folder, JAVA_HOME), or skip (fail in CI) saying what is missing."""
    server = trino_jars.server_dir()
    java = trino_jars.java_home()
    why = None
    if server is None:
        why = "Trino is not fetched (make test, or python tests/integration/trino_jars.py)"
    elif java is None:
        why = f"no JDK >= {trino_jars.MIN_JAVA} under {trino_jars.JVM_DIR} (Trino needs one)"
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    assert server is not None and java is not None
    return server, java


@dataclass
class Process:
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Moto(Process):
    endpoint: str = ""

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=MOTO_KEY[0],
            aws_secret_access_key=MOTO_KEY[1],
            region_name=MOTO_REGION,
        )

    def fresh_bucket(self, bucket: str) -> None:
        """``bucket`` created, or emptied if an earlier test of the session made it (the query
        tests write the same planned archive bucket, and its metastore creates it first)."""
        client = self.client()
        if bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
            client.create_bucket(Bucket=bucket)
            return
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=o["Key"])


def start_moto(folder: Path) -> Moto:
    port = free_port()
    log = folder / "moto.log"
    exe = Path(sys.executable).with_name("moto_server")
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    moto = Moto(proc, log, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited {proc.returncode}:\n{moto.tail()}")
        try:
            requests.get(f"{moto.endpoint}/moto-api/", timeout=2)
            return moto
        except requests.ConnectionError:
            time.sleep(0.3)
    moto.stop()
    raise RuntimeError(f"moto_server did not answer within 60 s:\n{moto.tail()}")


@dataclass
class EngineServer(Process):
    """A Trino or Presto coordinator on loopback: one client protocol (POST /v1/statement,
    follow nextUri), told apart by the user and time-zone headers they read."""

    url: str = ""
    started_in: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def run(self, sql: str, timeout: float = 300) -> list[list[Any]]:
        """One statement's rows; its error as an AssertionError with the engine's message."""
        reply = requests.post(f"{self.url}/v1/statement", data=sql.encode(), headers=self.headers)
        reply.raise_for_status()
        rows: list[list[Any]] = []
        deadline = time.monotonic() + timeout
        body = reply.json()
        while True:
            if "error" in body:
                raise AssertionError(f"{sql!r} failed: {body['error'].get('message')}")
            rows += body.get("data", [])
            if "nextUri" not in body:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{sql!r} did not finish within {timeout} s")
            body = requests.get(body["nextUri"], headers=self.headers).json()

    def wait_started(self, name: str, started: float, timeout: float) -> None:
        """Until /v1/info says the server is no longer starting; it stopped and its log's tail
        raised when it exits or ``timeout`` passes first."""
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited {self.proc.returncode}:\n{self.tail(60)}")
            try:
                info = requests.get(f"{self.url}/v1/info", timeout=2).json()
                if not info.get("starting", True):
                    self.started_in = time.monotonic() - started
                    return
            except (requests.ConnectionError, requests.Timeout, ValueError):
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"{name} did not start within {timeout} s:\n{self.tail(60)}")


@dataclass
class Trino(EngineServer):
    headers: dict[str, str] = field(default_factory=lambda: {"X-Trino-User": "rtdi-test"})


def start_trino(
    folder: Path,
    catalogs: Mapping[str, Mapping[str, str]],
    env: Mapping[str, str] | None = None,
    heap: str = "2G",
) -> Trino:
    """One Trino node with ``catalogs`` (name -> properties), logs in ``folder``/server.log."""
    server, java = require_trino()
    etc, data, plugins = folder / "etc", folder / "data", folder / "plugin"
    for d in (etc / "catalog", data, plugins):
        d.mkdir(parents=True, exist_ok=True)
    for connector in sorted({c["connector.name"] for c in catalogs.values()}):
        link = plugins / connector
        if not link.exists():
            link.symlink_to(server / "plugin" / connector)
    port = free_port()
    (etc / "node.properties").write_text(
        f"node.environment=test\nnode.id=rtdi-test\nnode.data-dir={data}\n"
    )
    (etc / "jvm.config").write_text(
        "\n".join(
            [
                "-server",
                f"-Xmx{heap}",
                "-XX:+UseG1GC",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djdk.attach.allowAttachSelf=true",
                "-XX:+EnableDynamicAgentLoading",
                "",
            ]
        )
    )
    (etc / "config.properties").write_text(
        "\n".join(
            [
                "coordinator=true",
                "node-scheduler.include-coordinator=true",
                f"http-server.http.port={port}",
                f"discovery.uri=http://127.0.0.1:{port}",
                f"plugin.dir={plugins}",
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
        **(env or {}),
        "JAVA_HOME": str(java),
        "PATH": f"{java / 'bin'}:{os.environ.get('PATH', '')}",
    }
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [
                str(server / "bin" / "launcher"),
                f"--etc-dir={etc}",
                f"--data-dir={data}",
                "run",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
    trino = Trino(proc, log, f"http://127.0.0.1:{port}")
    trino.wait_started("Trino", started, START_TIMEOUT)
    return trino


def planned_catalogs(plan: Any, region: str, engine: str = "trino") -> dict[str, dict[str, str]]:
    """The catalogs of ``region``'s planned ``engine`` release, as its chart writes them (Trino's
    chart under `catalogs`, Presto's under `catalog`)."""
    from infra.components.query.engines import parse_properties

    release = next(r for r in plan.of_type(RELEASE) if r.name == f"{region}-query-{engine}")
    values = release.inputs["values"]
    written = values["catalogs"] if engine == "trino" else values["catalog"]
    return {n: parse_properties(t) for n, t in written.items()}


# What the test changes in a planned catalog, by key, and why; every other key is used as planned.
REWRITTEN = {
    "hive.metastore.uri": "the test's Hive metastore on loopback (hive_local)",
    "s3.endpoint": "added: moto's loopback address (the plan has the cloud's own S3)",
    "s3.path-style-access": "added: moto serves buckets by path",
    "s3.aws-access-key": "added: moto's key (the plan's pods use IRSA)",
    "s3.aws-secret-key": "added: moto's secret",
    "pinot.controller-urls": "a loopback port (no Pinot runs here; the connector connects lazily)",
}


def loopback_catalogs(
    catalogs: Mapping[str, Mapping[str, str]], endpoint: str, metastore: str
) -> dict[str, dict[str, str]]:
    """``catalogs`` with endpoints and credentials on loopback: the Thrift metastore at
    ``metastore``, S3 moto's address and keys; the keys REWRITTEN names are the only ones
    changed, every other one is kept."""
    out: dict[str, dict[str, str]] = {}
    for name, props in catalogs.items():
        props = dict(props)
        if props.get("hive.metastore") == "thrift":
            props["hive.metastore.uri"] = metastore
            props["s3.endpoint"] = endpoint
            props["s3.path-style-access"] = "true"
            props["s3.aws-access-key"], props["s3.aws-secret-key"] = MOTO_KEY
        if "pinot.controller-urls" in props:
            props["pinot.controller-urls"] = f"127.0.0.1:{free_port()}"
        changed = {k for k in props if props[k] != catalogs[name].get(k)}
        assert changed <= set(REWRITTEN), sorted(changed - set(REWRITTEN))
        out[name] = props
    return out


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
