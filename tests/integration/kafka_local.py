"""Real Apache Kafka on loopback for the integration tests: KRaft brokers and MirrorMaker 2.

Everything runs as plain ``java -cp <jars>/*`` processes (no Docker) from the jars that
kafka_jars.py caches, listens on 127.0.0.1 only, lives in a temporary directory and logs there.

``mm2_properties`` turns the Strimzi ``KafkaMirrorMaker2`` spec that rtdi plans into the
properties file of MirrorMaker 2's dedicated mode; ``single_broker`` rewrites only what one broker
cannot satisfy (replication factors and minimum ISRs). Both are pure, so they are tested without
Java.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.components.kafka.durability import as_strings

LOOPBACK = "127.0.0.1"
JAVA_OPTS = [
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
]
MIN_JAVA = 17  # Kafka 4 brokers and Connect need Java 17
MIRROR_MAKER = "org.apache.kafka.connect.mirror.MirrorMaker"
# Kafka's own test RemoteStorageManager (kafka-storage test jar) stands in for a tiered-storage
# plugin.
LOCAL_TIERED_STORAGE = "org.apache.kafka.server.log.remote.storage.LocalTieredStorage"
TIERED_TOPIC_KEYS = ("remote.storage.enable", "local.retention.ms", "local.retention.bytes")


# --------------------------------------------------------------------------- what a test needs


def require_kafka(jars: Path | None, env: dict | None = None) -> Path:
    """``jars`` when Java and the jars are there; otherwise skip (a user's machine) or fail (CI)."""
    env = os.environ if env is None else env
    problem = None
    java = shutil.which("java")
    if java is None:
        problem = "`java` is not on PATH (Kafka needs Java 17 or newer)"
    elif (major := java_major(java)) < MIN_JAVA:
        problem = f"Java {major} found; Kafka needs Java {MIN_JAVA} or newer"
    elif jars is None:
        problem = (
            "the Kafka jars are not fetched: run `make test` or "
            "`.venv/bin/python tests/integration/kafka_jars.py`"
        )
    if problem is None:
        return jars
    if env.get("CI"):
        pytest.fail(
            f"{problem}, but CI is set: CI must run the Kafka integration tests", pytrace=False
        )
    pytest.skip(problem)


def java_major(java: str = "java") -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not found:
        return 0
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def write_properties(path: Path, props: dict[str, str]) -> Path:
    def esc(text: str, key: bool) -> str:
        text = text.replace("\\", "\\\\").replace("\n", "\\n")
        return re.sub(r"([=: #!])", r"\\\1", text) if key else text

    path.write_text("".join(f"{esc(k, True)}={esc(v, False)}\n" for k, v in props.items()))
    return path


def log4j2_config(path: Path, log_file: Path, levels: dict[str, str] | None = None) -> Path:
    lines = [
        "status = warn",
        "appender.file.type = File",
        "appender.file.name = FILE",
        f"appender.file.fileName = {log_file}",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.file.ref = FILE",
    ]
    for i, (logger, level) in enumerate((levels or {}).items()):
        lines += [f"logger.l{i}.name = {logger}", f"logger.l{i}.level = {level}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class JavaProcess:
    name: str
    popen: subprocess.Popen
    log: Path
    console: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 40) -> str:
        text = self.log_text().splitlines() + self.console.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after ``timeout``; always reaps the process."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def java_command(jars: Path, main: str, args: Iterable[str], log_config: Path) -> list[str]:
    return [
        "java",
        *JAVA_OPTS,
        f"-Dlog4j2.configurationFile={log_config}",
        "-cp",
        f"{jars}/*",
        main,
        *args,
    ]


def start_java(
    name: str,
    jars: Path,
    workdir: Path,
    main: str,
    args: Iterable[str],
    levels: dict[str, str] | None = None,
) -> JavaProcess:
    log = workdir / f"{name}.log"
    config = log4j2_config(workdir / f"{name}-log4j2.properties", log, levels)
    console = workdir / f"{name}.out"
    with console.open("w") as out:
        popen = subprocess.Popen(
            java_command(jars, main, args, config),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )
    return JavaProcess(name, popen, log, console)


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float,
    interval: float = 0.5,
    alive: Iterable[JavaProcess] = (),
    last: Callable[[], str] | None = None,
) -> Any:
    """Poll ``probe`` until truthy; fail after ``timeout`` or if a process died."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        for p in alive:
            if not p.alive():
                pytest.fail(
                    f"{p.name} exited with code {p.popen.returncode} while waiting for "
                    f"{what}:\n{p.tail()}",
                    pytrace=False,
                )
        if time.monotonic() > deadline:
            seen = f"; last seen: {last()}" if last else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{seen}", pytrace=False)
        time.sleep(interval)


def retry(
    what: str, action: Callable[[], Any], timeout: float, alive: Iterable[JavaProcess] = ()
) -> Any:
    """Call ``action`` until it stops raising; fail with its last error after ``timeout``."""
    errors: list[Exception] = []

    def attempt():
        try:
            return (action(),)
        except Exception as e:
            errors.append(e)
            return None

    return wait_for(
        what,
        attempt,
        timeout,
        interval=1,
        alive=alive,
        last=lambda: repr(errors[-1]) if errors else "",
    )[0]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((LOOPBACK, port)) == 0


# --------------------------------------------------------------------------- brokers


def single_broker(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config`` with every replication factor and minimum ISR set to 1, and the keys it changed.

    These are the only values one broker cannot satisfy; everything else is kept as rtdi wrote it.
    """
    out, changed = dict(config), []
    for key, value in config.items():
        if (
            re.search(r"(replication\.factor|min\.insync\.replicas|min\.isr)$", key)
            and str(value) != "1"
        ):
            out[key] = 1
            changed.append(key)
    return out, changed


def kafka_uuid() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


@dataclass
class Broker:
    """A single-node KRaft cluster: one process that is both broker and controller."""

    name: str
    workdir: Path
    port: int
    controller_port: int
    config: dict[str, str]
    process: JavaProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        if self.process:
            self.process.stop()


def broker(name: str, root: Path, rtdi_config: dict[str, Any], tiered: bool = False) -> Broker:
    """A broker with rtdi's config (made single-node) plus what a loopback KRaft node needs."""
    workdir = root / name
    (workdir / "data").mkdir(parents=True)
    port, controller_port = free_port(), free_port()
    config, _ = single_broker(rtdi_config)
    props = {
        **as_strings(config),
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(workdir / "data"),
        # Internal topics a single node must be able to create (all at RF 1), and small ones.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    if tiered:
        (workdir / "remote").mkdir()
        props.update(
            {
                "remote.log.storage.system.enable": "true",
                "remote.log.storage.manager.class.name": LOCAL_TIERED_STORAGE,
                "remote.log.storage.manager.impl.prefix": "rsm.config.",
                "rsm.config.dir": str(workdir / "remote"),
                "remote.log.metadata.manager.listener.name": "PLAINTEXT",
                "rlmm.config.remote.log.metadata.topic.replication.factor": "1",
            }
        )
    return Broker(name, workdir, port, controller_port, props)


def start_brokers(brokers: list[Broker], jars: Path, timeout: float = 60) -> None:
    """Format every broker's storage, start them all, and wait until each answers on its port."""
    for b in brokers:
        write_properties(b.workdir / "server.properties", b.config)
    formats = []
    for b in brokers:
        config = log4j2_config(b.workdir / "format-log4j2.properties", b.workdir / "format.log")
        cmd = java_command(
            jars,
            "kafka.tools.StorageTool",
            [
                "format",
                "--standalone",
                # One argument with `=`: a random id that starts with `-` (1 in 64) would
                # otherwise be read as an option and fail the format.
                f"--cluster-id={kafka_uuid()}",
                "-c",
                str(b.workdir / "server.properties"),
            ],
            config,
        )
        formats.append(
            (
                b,
                subprocess.Popen(
                    cmd,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    stdin=subprocess.DEVNULL,
                ),
            )
        )
    for b, p in formats:
        out, _ = p.communicate(timeout=timeout)
        if p.returncode != 0:
            pytest.fail(
                f"formatting {b.name}'s storage failed ({p.returncode}):\n{out}", pytrace=False
            )
    for b in brokers:
        b.process = start_java(
            b.name, jars, b.workdir, "kafka.Kafka", [str(b.workdir / "server.properties")]
        )
    for b in brokers:
        wait_for(
            f"broker {b.name} on {b.bootstrap}",
            lambda b=b: port_open(b.port),
            timeout,
            alive=[b.process],
        )


# --------------------------------------------------------------------------- MirrorMaker 2


@dataclass
class MirrorConfig:
    """A dedicated-mode MirrorMaker 2 config built from one mirror of a KafkaMirrorMaker2 spec."""

    source: str
    target: str
    properties: dict[str, str]
    connector: dict[str, Any]  # the rtdi connector config, source and checkpoint merged
    overridden: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # key -> (rtdi value, test value)

    @property
    def flow(self) -> str:
        return f"{self.source}->{self.target}."

    def override(self, key: str, value: Any) -> None:
        """Set ``key`` for the test, remembering rtdi's value (empty when rtdi left the default)."""
        before = self.properties.get(key, "")
        value = as_strings({key: value})[key]
        if before != value:
            self.overridden[key] = (before, value)
        self.properties[key] = value


def mm2_properties(spec: dict, source_alias: str, bootstrap: dict[str, str]) -> MirrorConfig:
    """Translate a Strimzi ``KafkaMirrorMaker2`` spec's mirror from ``source_alias`` to dedicated
    mode.

    What Strimzi does with the spec, spelled in MirrorMaker 2's dedicated-mode keys:
    ``target.config`` and the target's group and storage topics are the Connect worker's settings
    (``<target>.<key>``); ``sourceConnector.config`` and ``checkpointConnector.config`` are
    connector settings (``<source>-><target>.<key>``, shared by both connectors in dedicated mode,
    so a key the two set differently is an error); ``topicsPattern``/``groupsPattern`` become
    ``topics``/``groups``. Strimzi runs no heartbeat connector unless the spec has one, so
    heartbeats are off. The clusters' TLS and SASL settings are not carried over: loopback brokers
    speak PLAINTEXT.
    """
    (mirror,) = [m for m in spec["mirrors"] if m["source"]["alias"] == source_alias]
    target = spec["target"]
    src, tgt = source_alias, target["alias"]
    if src == tgt:
        raise ValueError(f"dedicated mode needs two aliases; the source and target are both {src}")
    source_cfg, checkpoint_cfg = (
        mirror["sourceConnector"]["config"],
        mirror["checkpointConnector"]["config"],
    )
    clashes = {
        k for k in source_cfg.keys() & checkpoint_cfg.keys() if source_cfg[k] != checkpoint_cfg[k]
    }
    if clashes:
        raise ValueError(f"source and checkpoint connectors set {sorted(clashes)} differently")
    connector = {**source_cfg, **checkpoint_cfg}
    flow = f"{src}->{tgt}."
    props = {
        "clusters": f"{src}, {tgt}",
        f"{src}.bootstrap.servers": bootstrap[src],
        f"{tgt}.bootstrap.servers": bootstrap[tgt],
        f"{flow}enabled": "true",
        f"{tgt}->{src}.enabled": "false",
        "emit.heartbeats.enabled": "false",
        f"{flow}topics": mirror["topicsPattern"],
        f"{flow}groups": mirror["groupsPattern"],
        # One tasks.max serves both connectors in dedicated mode: the source connector's.
        f"{flow}tasks.max": str(mirror["sourceConnector"]["tasksMax"]),
        **{f"{flow}{k}": v for k, v in as_strings(connector).items()},
        f"{tgt}.group.id": target["groupId"],
        f"{tgt}.config.storage.topic": target["configStorageTopic"],
        f"{tgt}.offset.storage.topic": target["offsetStorageTopic"],
        f"{tgt}.status.storage.topic": target["statusStorageTopic"],
        **{f"{tgt}.{k}": v for k, v in as_strings(target.get("config", {})).items()},
    }
    return MirrorConfig(src, tgt, props, connector)


def start_mirror_maker(config: MirrorConfig, jars: Path, workdir: Path) -> JavaProcess:
    path = write_properties(workdir / "mm2.properties", config.properties)
    return start_java(
        "mirror-maker",
        jars,
        workdir,
        MIRROR_MAKER,
        [str(path)],
        levels={"org.apache.kafka.clients.NetworkClient": "WARN"},
    )


def logged_configs(log: str, name: str) -> list[dict[str, str]]:
    """Every ``<name> values:`` block that Kafka's AbstractConfig logged, as key -> value."""
    blocks, lines = [], log.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith(f" {name} values: ") or line.rstrip().endswith(
            f" {name} values:"
        ):
            block = {}
            for entry in lines[i + 1 :]:
                if not entry.startswith("\t"):
                    break
                key, _, value = entry.strip().partition(" = ")
                block[key] = value
            blocks.append(block)
    return blocks


# ------------------------------------------------------------------------ clients (confluent-kafka)


@dataclass(frozen=True)
class Record:
    key: str
    value: str
    partition: int
    offset: int


def admin(bootstrap: str):
    """An AdminClient; hold it until its futures are done (a collected client cancels them)."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def create_topic(bootstrap: str, name: str, partitions: int, config: dict[str, Any]) -> None:
    from confluent_kafka.admin import NewTopic

    client = admin(bootstrap)
    futures = client.create_topics(
        [NewTopic(name, partitions, 1, config=as_strings(config))], request_timeout=30
    )
    futures[name].result(timeout=60)


def topic_config(bootstrap: str, name: str) -> dict[str, str]:
    from confluent_kafka.admin import ConfigResource

    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    client = admin(bootstrap)
    entries = client.describe_configs([resource])[resource].result(timeout=30)
    return {k: e.value for k, e in entries.items()}


def topics(bootstrap: str) -> set[str]:
    return set(admin(bootstrap).list_topics(timeout=10).topics)


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    request = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}
    client = admin(bootstrap)
    result = client.list_offsets(request, request_timeout=10)
    return {tp.partition: f.result(timeout=30).offset for tp, f in result.items()}


def produce(bootstrap: str, topic: str, keys: Iterable[str]) -> dict[str, Record]:
    """Produce ``value-<key>`` under each key (idempotent, acks=all); what was stored, by key."""
    from confluent_kafka import Producer

    stored: dict[str, Record] = {}
    errors: list = []

    def delivered(err, msg):
        if err:
            errors.append(err)
        else:
            key = msg.key().decode()
            stored[key] = Record(key, msg.value().decode(), msg.partition(), msg.offset())

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "log_level": 0,
        }
    )
    keys = list(keys)
    for key in keys:
        producer.produce(
            topic, key=key.encode(), value=f"value-{key}".encode(), on_delivery=delivered
        )
    left = producer.flush(60)
    assert left == 0 and not errors and len(stored) == len(keys), (
        f"produce to {topic}: {left} left, errors {errors}"
    )
    return stored


def consumer(bootstrap: str, group: str, reset: str):
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": reset,
            "log_level": 0,
        }
    )


def consume(
    bootstrap: str,
    group: str,
    topic: str,
    done: Callable[[list[Record]], bool],
    reset: str = "earliest",
    timeout: float = 60,
) -> tuple[list[Record], Any]:
    """Subscribe as ``group`` and poll until ``done(records)``; return the records and the open
    consumer.

    With ``reset="error"`` a partition without a committed offset is an error, not a silent reset:
    the consumer must start where the group's committed offsets say.
    """
    c = consumer(bootstrap, group, reset)
    c.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while not done(records):
        if time.monotonic() > deadline:
            c.close()
            pytest.fail(
                f"{group} on {topic}: timed out after {timeout:.0f} s with {len(records)} records",
                pytrace=False,
            )
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            c.close()
            pytest.fail(f"{group} on {topic}: {msg.error()}", pytrace=False)
        records.append(
            Record(msg.key().decode(), msg.value().decode(), msg.partition(), msg.offset())
        )
    return records, c


def commit(c, topic: str, offsets: dict[int, int], close: bool = False) -> None:
    """Commit ``offsets`` (partition -> next offset to read) synchronously with consumer ``c``."""
    from confluent_kafka import TopicPartition

    try:
        c.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False
        )
    finally:
        if close:
            c.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """``group``'s committed offsets on ``topic`` (partitions without one are left out)."""
    from confluent_kafka import TopicPartition

    c = consumer(bootstrap, group, "earliest")
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    except Exception:  # the group or the topic does not exist yet
        return {}
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in got if tp.offset >= 0}


# What the loopback tests shorten in MirrorMaker 2 (rtdi's value or Kafka's default -> here), so
# they wait seconds, not minutes. Offset flushes are what send the offset sync of a partition's
# latest record; Connect flushes every 60 s by default.
MM2_TEST_INTERVALS = {
    "emit.checkpoints.interval.seconds": 1,
    "sync.group.offsets.interval.seconds": 1,
    "refresh.groups.interval.seconds": 1,
    "refresh.topics.interval.seconds": 2,
}
MM2_TEST_WORKER_INTERVALS = {"offset.flush.interval.ms": 1000}


def loopback_mirror(spec: dict, source_alias: str, bootstrap: dict[str, str]) -> MirrorConfig:
    """The planned mirror from ``source_alias`` for single brokers on loopback: replication
    factors and minimum ISRs to 1 and the intervals above; everything else as rtdi plans it."""
    config = mm2_properties(spec, source_alias, bootstrap)
    _, single = single_broker(config.properties)
    for k in single:
        config.override(k, 1)
    for k, v in MM2_TEST_INTERVALS.items():
        config.override(config.flow + k, v)
    for k, v in MM2_TEST_WORKER_INTERVALS.items():
        config.override(f"{config.target}.{k}", v)
    # Dedicated mode always starts a heartbeat connector (idle here); it still creates its topic.
    config.override(config.flow + "heartbeats.topic.replication.factor", 1)
    return config
