"""Flink 2.2 on loopback for the integration tests: rtdi's SQL runner on an in-JVM MiniCluster and
s3proxy as the S3-compatible object store its checkpoints go to.

The runner runs as ``java -cp <runner jar>:<flink lib>/* io.rtdi.flink.SqlRunner``, with no
``execution.target``, so it starts a local MiniCluster in its own JVM and ends the JVM itself.
``FLINK_PLUGINS_DIR`` points at a plugins directory laid out as in the flink image
(``plugins/s3-fs-presto/flink-s3-fs-presto-<v>.jar``): the S3 file system loads in its own class
loader, never from the classpath, exactly as in production.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import flink_jars
import kafka_local as kl
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
RUNNER_JAR = ROOT / "jobs" / "runner" / "target" / "rtdi-sql-runner.jar"
MAIN = "io.rtdi.flink.SqlRunner"
# What the flink image's config.yaml passes every Flink JVM on Java 17 (env.java.opts.all):
# Kryo and the RPC layer reflect into these packages.
JAVA_17_OPENS = [
    f"--add-opens=java.base/{p}=ALL-UNNAMED"
    for p in (
        "java.lang",
        "java.net",
        "java.io",
        "java.nio",
        "sun.nio.ch",
        "java.lang.reflect",
        "java.text",
        "java.time",
        "java.util",
        "java.util.concurrent",
        "java.util.concurrent.atomic",
        "java.util.concurrent.locks",
    )
]
RUNNER_OPTS = ["-Xms128m", "-Xmx1g", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]


def require_flink(env: dict | None = None) -> Path:
    """The fetched Flink cache when Java, the runner jar and the jars are there; else skip (a
    user's machine) or fail (CI)."""
    env = os.environ if env is None else env
    root = flink_jars.fetched()
    problem = None
    if kl.java_major() < 17:
        problem = "Java 17 or newer is needed for Flink 2.2"
    elif not RUNNER_JAR.is_file():
        problem = f"{RUNNER_JAR.relative_to(ROOT)} is not built: run `make runner-jar`"
    elif root is None:
        problem = "the Flink jars are not fetched: run `make flink-jars`"
    if problem is None:
        assert root is not None
        return root
    if env.get("CI"):
        pytest.fail(f"{problem}, but CI is set: CI must run the Flink tests", pytrace=False)
    pytest.skip(problem)


def runner_command(flink: Path, sql_file: Path, conf: dict[str, str], log4j: Path) -> list[str]:
    args = ["--sql-file", str(sql_file)]
    for k, v in conf.items():
        args += ["--conf", f"{k}={v}"]
    return [
        "java",
        *RUNNER_OPTS,
        *JAVA_17_OPENS,
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{RUNNER_JAR}{os.pathsep}{flink / 'lib'}/*",
        MAIN,
        *args,
    ]


def start_runner(
    name: str, flink: Path, workdir: Path, sql_file: Path, conf: dict[str, str]
) -> kl.JavaProcess:
    log = workdir / f"{name}.log"
    log4j = kl.log4j2_config(workdir / f"{name}-log4j2.properties", log)
    console = workdir / f"{name}.out"
    env = {**os.environ, "FLINK_PLUGINS_DIR": str(flink / "plugins")}
    with console.open("w") as out:
        popen = subprocess.Popen(
            runner_command(flink, sql_file, conf, log4j),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env=env,
        )
    return kl.JavaProcess(name, popen, log, console)


# --------------------------------------------------------------------------- s3proxy


@dataclass
class S3Proxy:
    """s3proxy on its filesystem store: object ``k`` of bucket ``b`` is the file ``basedir/b/k``."""

    port: int
    basedir: Path
    access_key: str
    secret_key: str
    process: kl.JavaProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{kl.LOOPBACK}:{self.port}"

    def create_bucket(self, name: str) -> None:
        (self.basedir / name).mkdir(parents=True, exist_ok=True)

    def checkpoints(self, bucket: str, prefix: str) -> list[tuple[int, str]]:
        """Completed checkpoints under ``s3p://bucket/prefix`` (those with a ``_metadata``), as
        (checkpoint number, path below the bucket), oldest first."""
        found = []
        for meta in (self.basedir / bucket / prefix).glob("*/chk-*/_metadata"):
            chk = meta.parent
            number = int(re.fullmatch(r"chk-(\d+)", chk.name).group(1))  # type: ignore[union-attr]
            found.append((number, chk.relative_to(self.basedir / bucket).as_posix()))
        return sorted(found)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def start_s3proxy(flink: Path, workdir: Path, timeout: float = 30) -> S3Proxy:
    (jar,) = (flink / "tools").glob("s3proxy-*.jar")
    proxy = S3Proxy(kl.free_port(), workdir / "s3", "rtdi-test-access", "rtdi-test-secret")
    proxy.basedir.mkdir(parents=True)
    props = kl.write_properties(
        workdir / "s3proxy.properties",
        {
            "s3proxy.endpoint": proxy.endpoint,
            "s3proxy.authorization": "aws-v2-or-v4",
            "s3proxy.identity": proxy.access_key,
            "s3proxy.credential": proxy.secret_key,
            "jclouds.provider": "filesystem",
            "jclouds.filesystem.basedir": str(proxy.basedir),
        },
    )
    console = workdir / "s3proxy.out"
    with console.open("w") as out:
        popen = subprocess.Popen(
            ["java", "-Xmx256m", "-jar", str(jar), "--properties", str(props)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
    proxy.process = kl.JavaProcess("s3proxy", popen, console, console)
    kl.wait_for(
        f"s3proxy on {proxy.endpoint}",
        lambda: kl.port_open(proxy.port),
        timeout,
        alive=[proxy.process],
    )
    return proxy
