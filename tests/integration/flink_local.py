"""Flink 2.2 on loopback for the integration tests: rtdi's SQL runner on an in-JVM MiniCluster and
s3proxy as the S3-compatible object store its checkpoints go to.

The runner runs as ``java -cp <runner jar>:<flink lib>/* io.rtdi.flink.SqlRunner``, with no
``execution.target``, so it starts a local MiniCluster in its own JVM and ends the JVM itself.
``FLINK_PLUGINS_DIR`` points at a plugins directory laid out as in the flink image
(``plugins/s3-fs-presto/flink-s3-fs-presto-<v>.jar``): the S3 file system loads in its own class
loader, never from the classpath, exactly as in production.

``loopback_configuration`` and ``loopback_sql`` turn a planned FlinkDeployment's
``flinkConfiguration`` and SQL into what runs on loopback, rewriting only endpoints and
credentials; every key the plan writes is classified below, so a new one fails the tests that use
them until someone decides what it means on loopback.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
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


def runner_command(
    flink: Path,
    sql_file: Path,
    conf: dict[str, str],
    log4j: Path,
    classpath: Sequence[Path] = (),
) -> list[str]:
    """The runner on the image's /opt/flink/lib (the cached lib/), plus ``classpath`` (what an
    image adds there: Hadoop's client jars for an HDFS region)."""
    args = ["--sql-file", str(sql_file)]
    for k, v in conf.items():
        args += ["--conf", f"{k}={v}"]
    return [
        "java",
        *RUNNER_OPTS,
        *JAVA_17_OPENS,
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        os.pathsep.join([str(RUNNER_JAR), f"{flink / 'lib'}/*", *map(str, classpath)]),
        MAIN,
        *args,
    ]


def start_runner(
    name: str,
    flink: Path,
    workdir: Path,
    sql_file: Path,
    conf: dict[str, str],
    *,
    plugins: Path | None = None,
    classpath: Sequence[Path] = (),
    env: dict[str, str] | None = None,
) -> kl.JavaProcess:
    """The runner in a JVM of its own, its file systems from ``plugins`` (default: every cached
    plugin) and ``env`` added to the environment (``HADOOP_CONF_DIR``)."""
    log = workdir / f"{name}.log"
    log4j = kl.log4j2_config(workdir / f"{name}-log4j2.properties", log)
    console = workdir / f"{name}.out"
    env = {
        **os.environ,
        "FLINK_PLUGINS_DIR": str(plugins or flink / "plugins"),
        **(env or {}),
    }
    with console.open("w") as out:
        popen = subprocess.Popen(
            runner_command(flink, sql_file, conf, log4j, classpath),
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


# --------------------------------------------------------------------------- the plan, on loopback
# What a planned FlinkDeployment and its SQL ConfigMap become on loopback. Every flinkConfiguration
# key the plan writes is listed in exactly one group below; a key the plan starts writing fails
# the tests until someone decides which group it belongs to.

# Used as planned.
AS_PLANNED = frozenset(
    {
        "execution.checkpointing.interval",
        "execution.checkpointing.mode",
        "execution.checkpointing.incremental",
        "execution.checkpointing.num-retained",
        "execution.checkpointing.externalized-checkpoint-retention",
        "state.backend.type",
        "taskmanager.numberOfTaskSlots",
        "restart-strategy.type",
        "execution.runtime-mode",  # a backfill's STREAMING with bounded sources
    }
)
# URIs on the region's store: only the store's endpoint (scheme://authority) is rewritten.
STORE_URIS = frozenset(
    {
        "execution.checkpointing.dir",
        "execution.checkpointing.savepoint-dir",
        "high-availability.storageDir",
    }
)
# How the planned store is reached (its endpoint, its credentials): replaced by the loopback
# store's own settings.
STORE_ACCESS = frozenset({"s3.endpoint", "s3.path.style.access", "fs.s3a.aws.credentials.provider"})
# Keys that need a Kubernetes cluster, with the value the plan gives them: a MiniCluster has no
# Kubernetes API for leader election and HA metadata, and no operator to read its options, so
# these alone are dropped (with HA off, high-availability.storageDir is unused but kept,
# rewritten like every store URI; savepoint-on-deletion is what the operator does when the
# FlinkDeployment is deleted, tested by tests/integration/test_flink_flip.py's stop-with-savepoint).
NEEDS_KUBERNETES = {
    "high-availability.type": "kubernetes",
    "kubernetes.operator.job.savepoint-on-deletion": "true",
}


class NotConsidered(AssertionError):
    """The plan has something this rewrite has not decided about."""


def store_of(uri: str) -> str:
    """``scheme://authority`` of ``uri``: the part a loopback run replaces."""
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


def loopback_configuration(
    planned: dict[str, str], store: str, access: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The planned flinkConfiguration with its store URIs moved to ``store`` and the store's
    access replaced by ``access``; returns (configuration, keys dropped with their values)."""
    considered = AS_PLANNED | STORE_URIS | STORE_ACCESS | set(NEEDS_KUBERNETES)
    if unknown := sorted(set(planned) - considered):
        raise NotConsidered(
            f"flinkConfiguration keys this loopback rewrite has not considered: {unknown}"
        )
    conf, dropped = {}, {}
    for key, value in planned.items():
        if key in NEEDS_KUBERNETES:
            if value != NEEDS_KUBERNETES[key]:
                raise NotConsidered(f"{key}: {value!r} (considered: {NEEDS_KUBERNETES[key]!r})")
            dropped[key] = value
        elif key in STORE_URIS:
            conf[key] = store + value[len(store_of(value)) :]
        elif key in AS_PLANNED:
            conf[key] = value
    return {**conf, **access}, dropped


# Kafka client properties (`properties.<name>` of a table) the job's logic depends on: kept.
JOB_PROPERTIES = frozenset(
    {"group.id", "auto.offset.reset", "isolation.level", "transaction.timeout.ms"}
)
# How a client reaches and authenticates to a cluster (whatever the engine: TLS, SCRAM, IAM,
# OAuth, `${env:NAME}` placeholders): the whole set is replaced by loopback PLAINTEXT.
CONNECTION_PROPERTIES = re.compile(r"bootstrap\.servers|security\.protocol|(sasl|ssl)\..+")
TABLE = re.compile(r"(?s)CREATE TABLE `([^`]+)` \((.*?)\) WITH \(\n(.*?)\n\);")
OPTION = re.compile(r"\s*'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'\s*(?:,|$)")


def table_options(body: str) -> list[tuple[str, str]]:
    """The ``'key' = 'value'`` pairs of a WITH clause, in order (values as written)."""
    options, pos = [], 0
    while pos < len(body):
        found = OPTION.match(body, pos)
        if found is None:
            raise NotConsidered(f"a WITH clause this rewrite cannot read at: {body[pos:][:80]!r}")
        options.append((found.group(1), found.group(2)))
        pos = found.end()
    return options


def loopback_sql(sql: str, bootstrap: str) -> tuple[str, dict[str, dict[str, str]]]:
    """The planned script with every Kafka table's connection and security properties replaced
    by ``bootstrap`` over PLAINTEXT; returns (script, table -> its options after the rewrite)."""
    tables: dict[str, dict[str, str]] = {}

    def rewrite(found: re.Match) -> str:
        name, columns, body = found.groups()
        kept = []
        for key, value in table_options(body):
            prop = key.removeprefix("properties.")
            if key == prop or prop in JOB_PROPERTIES:
                kept.append((key, value))
            elif not CONNECTION_PROPERTIES.fullmatch(prop):
                raise NotConsidered(f"table {name}: Kafka property {key!r} not considered")
        if dict(kept).get("connector") == "kafka":
            kept += [
                ("properties.bootstrap.servers", bootstrap),
                ("properties.security.protocol", "PLAINTEXT"),
            ]
        tables[name] = dict(kept)
        options = ",\n".join(f"  '{k}' = '{v}'" for k, v in kept)
        return f"CREATE TABLE `{name}` ({columns}) WITH (\n{options}\n);"

    script = TABLE.sub(rewrite, sql)
    if "${" in script:
        raise NotConsidered("a ${...} placeholder is left after the rewrite")
    return script, tables


def physical_topics(options: dict[str, str]) -> list[str]:
    """The topics a Kafka table reads or writes: its ``topic`` list, or the names its
    ``topic-pattern`` (an alternation of escaped names, as rtdi writes it) matches."""
    if "topic" in options:
        return options["topic"].split(";")
    pattern = options["topic-pattern"]
    names = [re.sub(r"\\(.)", r"\1", alt) for alt in pattern.split("|")]
    assert all(re.fullmatch(pattern, n) for n in names), pattern
    return names


def plugins_dir(flink: Path, enabled: str, workdir: Path) -> Path:
    """The image's plugins directory for ``ENABLE_BUILT_IN_PLUGINS=enabled``: each named jar (of
    the cached Flink version, like the image's /opt/flink/opt) in a folder of its own, as the
    image's entrypoint lays them out; no other plugin."""
    cached = {jar.name: jar for jar in (flink / "plugins").glob("*/*.jar")}
    out = workdir / "plugins"
    out.mkdir(parents=True, exist_ok=True)
    for name in filter(None, enabled.split(";")):
        if name not in cached:
            raise NotConsidered(f"ENABLE_BUILT_IN_PLUGINS names {name}, not a cached plugin jar")
        folder = out / name.removesuffix(".jar")
        folder.mkdir(exist_ok=True)
        target = folder / name
        if not target.exists():
            target.symlink_to(cached[name])
    return out
