"""A real HDFS on loopback for the Flink tests: Hadoop's own mini cluster in a JVM of its own.

``start_hdfs`` runs ``org.apache.hadoop.mapreduce.MiniHadoopClusterManager -nomr`` (Hadoop's
command-line launcher of a ``MiniDFSCluster``: one NameNode, one DataNode, no YARN) from the jars
hadoop_jars.py caches, on 127.0.0.1 with fixed ports, its data in the test's temporary directory.
It is up once it has written its configuration file. Tests read the file system through WebHDFS
(the NameNode's HTTP port), so Python needs no Hadoop client; ``stop`` ends the JVM explicitly.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hadoop_jars
import kafka_local as kl
import pytest

LAUNCHER = "org.apache.hadoop.mapreduce.MiniHadoopClusterManager"


def require_hadoop(env: dict | None = None) -> Path:
    """The fetched Hadoop cache (``server/``, ``client/``), or skip (a user's machine) or fail
    (CI)."""
    env = os.environ if env is None else env
    root = hadoop_jars.fetched()
    if root is not None:
        return root
    problem = "the Hadoop jars are not fetched: run `make hdfs-jars`"
    if env.get("CI"):
        pytest.fail(f"{problem}, but CI is set: CI must run the HDFS tests", pytrace=False)
    pytest.skip(problem)


@dataclass
class Hdfs:
    port: int
    http_port: int
    process: kl.JavaProcess

    @property
    def uri(self) -> str:
        """What fs.defaultFS is for a client of this cluster."""
        return f"hdfs://{kl.LOOPBACK}:{self.port}"

    def _webhdfs(self, path: str, op: str) -> Any:
        quoted = urllib.parse.quote(path)
        url = f"http://{kl.LOOPBACK}:{self.http_port}/webhdfs/v1{quoted}?op={op}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.load(answer)

    def list(self, path: str) -> list[str]:
        """The names in directory ``path`` (empty if it does not exist yet)."""
        try:
            found = self._webhdfs(path, "LISTSTATUS")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise
        return [s["pathSuffix"] for s in found["FileStatuses"]["FileStatus"]]

    def remove(self, path: str) -> None:
        """Delete ``path`` and all below it (nothing if it does not exist), as the cluster's
        superuser: the user that started it, this process's."""
        quoted = urllib.parse.quote(path)
        url = (
            f"http://{kl.LOOPBACK}:{self.http_port}/webhdfs/v1{quoted}"
            f"?op=DELETE&recursive=true&user.name={getpass.getuser()}"
        )
        with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30) as a:
            json.load(a)

    def checkpoints(self, directory: str) -> list[tuple[int, str]]:
        """Completed checkpoints under ``directory`` (``<job id>/chk-N`` with a ``_metadata``),
        as (N, path), oldest first."""
        found = []
        for job in self.list(directory):
            for chk in self.list(f"{directory}/{job}"):
                number = re.fullmatch(r"chk-(\d+)", chk)
                if number and "_metadata" in self.list(f"{directory}/{job}/{chk}"):
                    found.append((int(number.group(1)), f"{directory}/{job}/{chk}"))
        return sorted(found)

    def stop(self) -> None:
        self.process.stop()


def start_hdfs(hadoop: Path, workdir: Path, timeout: float = 120) -> Hdfs:
    """One NameNode and one DataNode on loopback; returns once the cluster is up."""
    workdir.mkdir(parents=True, exist_ok=True)
    written = workdir / "minicluster-site.xml"
    port, http_port = kl.free_port(), kl.free_port()
    console = workdir / "hdfs.out"
    args = [
        "-nomr",
        "-format",
        "-datanodes",
        "1",
        "-nnport",
        str(port),
        "-nnhttpport",
        str(http_port),
        "-writeConfig",
        str(written),
        "-D",
        f"hdfs.minidfs.basedir={workdir / 'data'}",
    ]
    with console.open("w") as out:
        popen = subprocess.Popen(
            [
                "java",
                *kl.JAVA_OPTS,
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp",
                f"{hadoop / 'server'}/*",
                LAUNCHER,
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
    hdfs = Hdfs(port, http_port, kl.JavaProcess("hdfs", popen, console, console))
    try:
        kl.wait_for(
            f"HDFS on {hdfs.uri}",
            lambda: written.is_file() and kl.port_open(http_port),
            timeout,
            alive=[hdfs.process],
        )
    except BaseException:
        hdfs.stop()
        raise
    return hdfs


def hadoop_command(hadoop: Path, bindir: Path) -> Path:
    """A `hadoop` on ``bindir`` that runs `hadoop fs` as Hadoop's own launcher does: FsShell of
    the cached client (HADOOP_VERSION's hadoop-client-api/-runtime, with the logging jars they
    need) and $HADOOP_CONF_DIR first on the classpath, where the client finds core-site.xml.
    Only `fs` is offered: it is all the scripts under jobs/ call."""
    server = hadoop / "server"
    jars = [
        f"{hadoop / 'client'}/*",
        *(str(j) for j in sorted(server.glob("slf4j-*.jar"))),
        *(str(j) for j in sorted(server.glob("commons-logging-*.jar"))),
    ]
    bindir.mkdir(parents=True, exist_ok=True)
    command = bindir / "hadoop"
    command.write_text(
        "#!/bin/sh\n"
        '[ "$1" = fs ] || { echo "hadoop: only fs here, not $1" >&2; exit 2; }\n'
        "shift\n"
        f"exec java {' '.join(kl.JAVA_OPTS)} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn "
        f'-cp "${{HADOOP_CONF_DIR:?}}:{":".join(jars)}" org.apache.hadoop.fs.FsShell "$@"\n'
    )
    command.chmod(0o755)
    return command
