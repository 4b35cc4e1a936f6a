"""A real Hive metastore on loopback (Thrift), configured with the metastore-site.xml rtdi plans.

`start_metastore` runs Hive's standalone metastore server (``HiveMetaStore``) from the jars
``make test`` fetched into .cache/hive (hive_jars.py), on the machine's ``java``, with the
planned ``metastore-site.xml`` of the region's `hive-metastore-conf` ConfigMap, only endpoints
and credentials rewritten (`REWRITTEN`), and with what the planned pod gets elsewhere given here
as system properties (`SERVER_OPTIONS`): its database (the plan's PostgreSQL from SERVICE_OPTS;
here embedded Derby, its schema created at start) and what the image's full Hive distribution
supplies. The server checks and creates every database, table and partition location on S3
through S3A, so it needs the store as much as the engine does.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hive_jars
from trino_local import MOTO_KEY, Process

START_TIMEOUT = 120
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
PROPERTY = re.compile(r"<name>([^<]+)</name><value>([^<]*)</value>")

# What the test changes in the planned metastore-site.xml, by key, and why; every other planned
# key is used as planned.
REWRITTEN = {
    "metastore.thrift.port": "a free loopback port (the plan's 9083 is the pod's)",
    "fs.s3a.endpoint": "added: moto's loopback address (the plan has the cloud's own S3)",
    "fs.s3a.path.style.access": "added: moto serves buckets by path",
    "fs.s3a.aws.credentials.provider": (
        "moto's keys in place of the pod's web identity (IRSA; besides, Hive 3.1.3's Hadoop "
        "3.1.0 has AWS SDK 1.11.271, which lacks WebIdentityTokenCredentialsProvider)"
    ),
    "fs.s3a.access.key": "added: moto's key",
    "fs.s3a.secret.key": "added: moto's secret",
}

# What the planned pod does not take from metastore-site.xml: its database (SERVICE_OPTS: the
# plan's PostgreSQL; here Derby, its schema created at start as the image's schematool does),
# and two defaults of the standalone jar that name classes of the full Hive the image carries
# (hive-exec), which the test's classpath leaves out: the partition filter proxy and a
# replication cleaner thread.
SERVER_OPTIONS = {
    "javax.jdo.option.ConnectionDriverName": "org.apache.derby.jdbc.EmbeddedDriver",
    "datanucleus.schema.autoCreateAll": "true",
    "metastore.schema.verification": "false",
    "metastore.expression.proxy": (
        "org.apache.hadoop.hive.metastore.DefaultPartitionExpressionProxy"
    ),
    "metastore.task.threads.always": "org.apache.hadoop.hive.metastore.events.EventCleanerTask",
}


def require_metastore(version: str) -> Path:
    """The metastore's jar folder, or skip (fail in CI) saying what is missing."""
    if hive_jars.fetched(version) is None:
        why = (
            f"Hive metastore {version} is not fetched (make test, or python "
            "tests/integration/hive_jars.py)"
        )
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return hive_jars.jars_dir(version)


def planned_site(plan: Any, region: str) -> dict[str, str]:
    """The properties of ``region``'s planned metastore-site.xml."""
    cm = next(r for r in plan.of_type(CONFIGMAP) if r.name == f"{region}-query-metastore-conf")
    return dict(PROPERTY.findall(cm.inputs["data"]["metastore-site.xml"]))


def loopback_site(site: Mapping[str, str], endpoint: str, port: int) -> dict[str, str]:
    """``site`` with the keys `REWRITTEN` names changed for moto at ``endpoint``, and no other."""
    out = dict(site)
    out["metastore.thrift.port"] = str(port)
    out["fs.s3a.endpoint"] = endpoint
    out["fs.s3a.path.style.access"] = "true"
    out["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    out["fs.s3a.access.key"], out["fs.s3a.secret.key"] = MOTO_KEY
    assert set(out) - set(site) <= set(REWRITTEN), sorted(set(out) - set(site))
    return out


@dataclass
class Metastore(Process):
    uri: str = ""
    started_in: float = 0.0


def start_metastore(version: str, folder: Path, site: Mapping[str, str]) -> Metastore:
    """Hive's metastore ``version`` with ``site`` as its metastore-site.xml, a Derby database in
    ``folder``; returns once its Thrift port accepts connections."""
    jars = require_metastore(version)
    conf = folder / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
        for k, v in site.items()
    )
    (conf / "metastore-site.xml").write_text(
        f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'
    )
    port = int(site["metastore.thrift.port"])
    options = {
        **SERVER_OPTIONS,
        "javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={folder / 'db'};create=true",
    }
    log = folder / "metastore.log"
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [
                "java",
                "-Xmx1g",
                "-cp",
                f"{conf}:{jars}/*",
                *(f"-D{k}={v}" for k, v in options.items()),
                "org.apache.hadoop.hive.metastore.HiveMetaStore",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=folder,
        )
    metastore = Metastore(proc, log, f"thrift://127.0.0.1:{port}")
    deadline = started + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the metastore exited {proc.returncode}:\n{metastore.tail(60)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                metastore.started_in = time.monotonic() - started
                return metastore
        except OSError:
            time.sleep(0.5)
    metastore.stop()
    raise RuntimeError(
        f"the metastore did not listen within {START_TIMEOUT} s:\n{metastore.tail()}"
    )
