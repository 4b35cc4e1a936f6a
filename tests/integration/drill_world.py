"""The world of the real DR drill tests and benchmark: two regions on loopback, as rtdi plans them.

Two on-prem regions (tests/integration/drill_project: onprem-dc1 the primary, onprem-dc2), each
with a regional and an aggregate cluster: four single-broker KRaft clusters
(kafka_local.broker, each with its stack's planned broker config made single-node). Each
aggregate is filled from both regional clusters by MirrorMaker 2 configured from that stack's
``KafkaMirrorMaker2`` (kafka_local.loopback_mirror: replication factors to 1, the test
intervals): one dedicated-mode process per flow, four in all, so a test can kill what fills one
aggregate. Topics are the regional stacks' planned ``KafkaTopic``s; MirrorMaker 2 creates their
copies ``<region>.payment-events`` in the aggregates, as it does in a deployment.

The Pulumi side is a ``PlanWorkspace`` over the project's converged plans: the drill's steps bring
stacks up through it, and the application follows what they applied.

The application (``RegionApp``, one thread per region) is the active-passive group
``ledger-writer`` as a service would run it: it reads its own region's federation registry (its
stack's applied ``kafkaFederation`` output, the ConfigMap the region's `pulumi up` writes) every
0.5 s; it consumes and commits (after every batch) on its region's aggregate only while that
registry names its region primary; demoted, it commits and closes; promoted, it starts with
``auto.offset.reset=error``, so a partition without a committed offset is an error rather than a
silent jump. Its own region's registry, not the global stack's outputs: a regional stack's
`pulumi up` is what tells a region's services (the drill's demote and promote), and following the
global stack would start the new primary's consumers at the flip, before the drill committed
their offsets. Every record it consumes is kept, so the tests count lost and re-read records
themselves and compare with the drill's report.

Steady producers (``SteadyProducer``) write into both regional clusters, keys unique per region,
with a header, so that a record's identity (key, value, timestamp, headers) is what MirrorMaker 2
copies.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kafka_local as kl

from infra.plan import Project, StackPlan, plan_stacks

PROJECT = Path(__file__).resolve().parent / "drill_project"
A, B = "onprem-dc1", "onprem-dc2"
REGIONS = (A, B)
TOPIC, GROUP = "payment-events", "ledger-writer"
CR = "kubernetes:kafka.strimzi.io/v1:"
KINDS = ("regional", "aggregate")
WAIT = 90


@contextlib.contextmanager
def no_flink_jobs(folder: Path) -> Iterator[None]:
    """The program and the drill with empty jobs folders: Flink jobs (jobs/flink) and Pinot
    tables (jobs/pinot) of the repository name topics this project does not have, and a Flink
    job's group moves through its savepoint, not as a plain group."""
    import infra.topology.jobs as jobs
    import infra.topology.pinot as pinot

    folder.mkdir(parents=True, exist_ok=True)
    before = jobs.JOBS_DIR, pinot.TABLES_DIR
    jobs.JOBS_DIR = pinot.TABLES_DIR = folder
    try:
        yield
    finally:
        jobs.JOBS_DIR, pinot.TABLES_DIR = before


def project() -> Project:
    return Project.find(PROJECT)


def converged(p: Project) -> dict[str, StackPlan]:
    return plan_stacks(p, p.stack_names())


def stack_of(region: str) -> str:
    return region  # a regional stack is named after its region id (`rtdi:region`)


def cr(plan: StackPlan, kind: str, name: str) -> dict:
    (found,) = [r.inputs for r in plan.of_type(CR + kind) if r.inputs["metadata"]["name"] == name]
    return found


def copies() -> list[str]:
    return [f"{r}.{TOPIC}" for r in REGIONS]


# --------------------------------------------------------------------------- producers


@dataclass(frozen=True)
class Produced:
    key: str
    partition: int
    offset: int
    at: float  # monotonic time of the acknowledgement


class SteadyProducer(threading.Thread):
    """Payments at a steady pace into one regional cluster until stopped (idempotent, acks=all);
    keys ``<region>-<n>``. A broker down for a while only delays deliveries (the producer retries
    until its delivery timeout); a failed delivery is an error the tests assert there is none of."""

    def __init__(self, region: str, bootstrap: str, per_second: int):
        super().__init__(daemon=True, name=f"producer-{region}")
        self.region, self.bootstrap, self.pause = region, bootstrap, 1 / per_second
        self.stored: dict[str, Produced] = {}
        self.errors: list[Any] = []
        self.halt = threading.Event()
        self.sent = 0
        self.lock = threading.Lock()

    def run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "delivery.timeout.ms": 300000,
                "log_level": 0,
            }
        )

        def delivered(err: Any, msg: Any) -> None:
            if err:
                self.errors.append(err)
                return
            key = msg.key().decode()
            with self.lock:
                self.stored[key] = Produced(key, msg.partition(), msg.offset(), time.monotonic())

        while not self.halt.is_set():
            key = f"{self.region}-{self.sent:07d}"
            producer.produce(
                TOPIC,
                key=key.encode(),
                value=f"payment {key}".encode(),
                headers=[("origin", self.region.encode())],
                on_delivery=delivered,
            )
            producer.poll(0)
            self.sent += 1
            time.sleep(self.pause)
        producer.flush(60)

    def snapshot(self) -> dict[str, Produced]:
        with self.lock:
            return dict(self.stored)


# --------------------------------------------------------------------------- the application


@dataclass(frozen=True)
class Consumed:
    region: str  # where it was consumed
    topic: str
    partition: int
    offset: int
    key: str
    at: float  # monotonic
    tenure: int  # which activation of the app in that region


class RegionApp(threading.Thread):
    """``ledger-writer`` in one region: follows its region's federation registry (see the module
    docstring), consumes and commits while primary there."""

    def __init__(self, workspace: Any, region: str, bootstrap: str, poll: float = 0.5):
        super().__init__(daemon=True, name=f"app-{region}")
        self.workspace, self.region, self.bootstrap, self.poll = workspace, region, bootstrap, poll
        self.records: list[Consumed] = []
        self.errors: list[str] = []
        self.halt = threading.Event()
        self.active = False
        self.tenure = 0
        self.started: list[float] = []  # monotonic time of each activation
        self.stopped: list[float] = []
        self.lock = threading.Lock()

    def registry(self) -> dict[str, Any]:
        return self.workspace.outputs(stack_of(self.region))["kafkaFederation"]

    def primary(self) -> bool:
        return self.registry().get("primary") == self.region

    def topics(self) -> list[str]:
        registry = self.registry()
        return list(registry["topics"][TOPIC]["regions"][self.region]["consume"]["topics"])

    def run(self) -> None:
        consumer = None
        position: dict[tuple[str, int], int] = {}
        last_check = 0.0
        try:
            while not self.halt.is_set():
                now = time.monotonic()
                if now - last_check >= self.poll:
                    last_check = now
                    try:
                        primary = self.primary()
                    except Exception as exc:  # a workspace mid-update: ask again
                        self.errors.append(f"reading the registry: {exc!r}")
                        primary = consumer is not None
                    if primary and consumer is None:
                        consumer = kl.consumer(self.bootstrap, GROUP, "error")
                        consumer.subscribe(self.topics())
                        position = {}
                        with self.lock:
                            self.tenure += 1
                            self.active = True
                            self.started.append(now)
                    elif not primary and consumer is not None:
                        self._close(consumer, position)
                        consumer = None
                if consumer is None:
                    time.sleep(0.1)
                    continue
                batch = consumer.consume(num_messages=100, timeout=0.2)
                got = []
                for m in batch:
                    if m.error():
                        self.errors.append(f"{self.region}: {m.error()}")
                        continue
                    got.append(
                        Consumed(
                            self.region,
                            m.topic(),
                            m.partition(),
                            m.offset(),
                            m.key().decode(),
                            time.monotonic(),
                            self.tenure,
                        )
                    )
                    position[(m.topic(), m.partition())] = m.offset() + 1
                if got:
                    self._commit(consumer, position)
                    with self.lock:
                        self.records += got
        finally:
            if consumer is not None:
                self._close(consumer, position)

    def _commit(self, consumer: Any, position: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import TopicPartition

        offsets = [TopicPartition(t, p, o) for (t, p), o in position.items()]
        for attempt in range(60):
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
                return
            except Exception as exc:  # the coordinator moving (a broker restarting): again
                if attempt == 59:
                    self.errors.append(f"{self.region}: commit failed: {exc!r}")
                time.sleep(0.5)

    def _close(self, consumer: Any, position: dict[tuple[str, int], int]) -> None:
        if position:
            self._commit(consumer, position)
        consumer.close()
        with self.lock:
            self.active = False
            self.stopped.append(time.monotonic())

    def consumed(self) -> list[Consumed]:
        with self.lock:
            return list(self.records)

    def stop(self) -> None:
        self.halt.set()
        self.join(60)


# --------------------------------------------------------------------------- the clusters


@dataclass
class World:
    root: Path
    jars: Path
    project: Project
    plans: dict[str, StackPlan]
    brokers: dict[tuple[str, str], kl.Broker]
    mirror_configs: dict[tuple[str, str], kl.MirrorConfig]  # (source, target aggregate)
    mirrors: dict[tuple[str, str], kl.JavaProcess] = field(default_factory=dict)
    startup: float = 0.0
    restarts: int = 0

    def bootstrap(self, region: str, kind: str) -> str:
        return self.brokers[(region, kind)].bootstrap

    def clients(self) -> dict[str, dict[str, dict[str, str]]]:
        """The drill's client file (infra/drill/kafka.py `Clients`): Java client properties of
        every cluster, per region."""
        return {r: {k: {"bootstrap.servers": self.bootstrap(r, k)} for k in KINDS} for r in REGIONS}

    def processes(self) -> list[kl.JavaProcess]:
        out = [b.process for b in self.brokers.values() if b.process]
        return out + list(self.mirrors.values())

    def start_mirror(self, source: str, target: str) -> kl.JavaProcess:
        """A dedicated-mode MirrorMaker 2 for one flow, in a fresh folder (logs kept apart)."""
        self.restarts += 1
        workdir = self.root / f"mm2-{source}-to-{target}-{self.restarts}"
        workdir.mkdir()
        config = self.mirror_configs[(source, target)]
        path = kl.write_properties(workdir / "mm2.properties", config.properties)
        process = kl.start_java(
            f"mm2-{source}-to-{target}",
            self.jars,
            workdir,
            kl.MIRROR_MAKER,
            [str(path)],
            levels={"org.apache.kafka.clients.NetworkClient": "WARN"},
        )
        self.mirrors[(source, target)] = process
        return process

    def stop_mirrors_into(self, target: str, kill: bool = True) -> None:
        """Every MirrorMaker 2 filling ``target``'s aggregate: SIGKILL (a crash) or SIGTERM."""
        for (source, into), p in list(self.mirrors.items()):
            if into == target:
                if kill and p.alive():
                    p.popen.kill()
                    p.popen.wait(10)
                else:
                    p.stop()
                del self.mirrors[(source, into)]

    def start_mirrors_into(self, target: str) -> None:
        for source in REGIONS:
            self.start_mirror(source, target)

    def reconfigure_mirrors(
        self, connector: dict[str, Any] | None = None, worker: dict[str, Any] | None = None
    ) -> None:
        """Every flow stopped cleanly and started again with these settings (the benchmark's);
        MirrorMaker 2 resumes from its committed offsets and rewrites its connectors' configs."""
        for target in REGIONS:
            self.stop_mirrors_into(target, kill=False)
        boot = {k: b.bootstrap for k, b in self.brokers.items()}
        self.mirror_configs = mirror_configs(self.plans, boot, connector, worker)
        for target in REGIONS:
            self.start_mirrors_into(target)

    def kill_broker(self, region: str, kind: str) -> None:
        """SIGKILL the cluster's only broker (no clean shutdown)."""
        b = self.brokers[(region, kind)]
        assert b.process is not None
        b.process.popen.kill()
        b.process.popen.wait(10)

    def start_broker(self, region: str, kind: str) -> None:
        """Start a stopped broker again on its storage and ports (formatted already)."""
        b = self.brokers[(region, kind)]
        self.restarts += 1
        b.process = kl.start_java(
            f"{b.name}-{self.restarts}",
            self.jars,
            b.workdir,
            "kafka.Kafka",
            [str(b.workdir / "server.properties")],
        )
        kl.wait_for(
            f"broker {b.name} back on {b.bootstrap}",
            lambda: kl.port_open(b.port),
            WAIT,
            alive=[b.process],
        )

    def partitions(self) -> int:
        spec = self._topic_spec(A)
        return int(spec["partitions"])

    def _topic_spec(self, region: str) -> dict:
        (spec,) = [
            r.inputs["spec"]
            for r in self.plans[stack_of(region)].of_type(CR + "KafkaTopic")
            if r.inputs["spec"]["topicName"] == TOPIC
            and r.inputs["metadata"]["labels"]["strimzi.io/cluster"] == "regional"
        ]
        return spec

    def stop(self) -> None:
        for p in self.mirrors.values():
            p.stop()
        for b in self.brokers.values():
            b.stop()


def mirror_configs(
    plans: dict[str, StackPlan],
    bootstrap: dict[tuple[str, str], str],
    connector: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
) -> dict[tuple[str, str], kl.MirrorConfig]:
    """Each flow's MirrorMaker 2 config from the target stack's planned KafkaMirrorMaker2 (its
    mirror from that source), for loopback (kafka_local.loopback_mirror); ``connector`` and
    ``worker`` settings on top, for the benchmark's settings.

    One process per flow, where Strimzi runs one Connect cluster per KafkaMirrorMaker2: so that
    two processes filling one aggregate do not join one Connect group and trade connectors, each
    flow's worker group and storage topics get the flow's source as a suffix. Those are Connect's
    bookkeeping; what the drill reads (the copies, the offset syncs) is as planned."""
    out = {}
    for target in REGIONS:
        spec = cr(plans[stack_of(target)], "KafkaMirrorMaker2", "aggregate-mirror")["spec"]
        for source in REGIONS:
            regional, aggregate = bootstrap[(source, "regional")], bootstrap[(target, "aggregate")]
            if source != target:
                config = kl.loopback_mirror(spec, source, {source: regional, target: aggregate})
            else:
                config = _same_region_mirror(spec, source, regional, aggregate)
            t = config.target
            for key in ("group.id", "config.storage.topic", "offset.storage.topic"):
                config.override(f"{t}.{key}", f"{config.properties[f'{t}.{key}']}.{source}")
            config.override(
                f"{t}.status.storage.topic",
                f"{config.properties[f'{t}.status.storage.topic']}.{source}",
            )
            # A worker killed by a test comes back as a new member: without this, Connect's
            # incremental rebalancing holds its connectors for 5 minutes in case the old one
            # returns (`scheduled.rebalance.max.delay.ms`, 300000 by default).
            config.override(f"{t}.scheduled.rebalance.max.delay.ms", 1000)
            for key, value in (connector or {}).items():
                config.override(config.flow + key, value)
            for key, value in (worker or {}).items():
                config.override(f"{t}.{key}", value)
            out[(source, target)] = config
    return out


def _same_region_mirror(spec: dict, region: str, regional: str, aggregate: str) -> kl.MirrorConfig:
    """The mirror from a region's own regional cluster into its aggregate. rtdi's spec aliases
    the aggregate (the target) by its region, as it does that mirror's source; dedicated mode
    needs two names, so the aggregate is called ``<region>-aggregate`` here. Copies are named
    after the source alias (``<region>.<topic>``), and so is the offset syncs topic
    (``offset-syncs.topic.location: target``): nothing the drill reads changes."""
    renamed = {**spec, "target": {**spec["target"], "alias": f"{region}-aggregate"}}
    return kl.loopback_mirror(renamed, region, {region: regional, f"{region}-aggregate": aggregate})


def start_world(
    root: Path,
    jars: Path,
    p: Project,
    plans: dict[str, StackPlan],
    connector: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
) -> World:
    """Four brokers, the topic on both regional clusters, four MirrorMaker 2 flows, and the
    copies on both aggregates; the caller stops it (``World.stop``) whatever happens."""
    started = time.monotonic()
    brokers = {}
    for region in REGIONS:
        for kind in KINDS:
            config = cr(plans[stack_of(region)], "Kafka", kind)["spec"]["kafka"]["config"]
            brokers[(region, kind)] = kl.broker(f"{region}-{kind}", root, config)
    world = World(root, jars, p, plans, brokers, {})
    try:
        kl.start_brokers(list(brokers.values()), jars)
        spec = world._topic_spec(A)
        config, _ = kl.single_broker(
            {k: v for k, v in spec["config"].items() if k not in kl.TIERED_TOPIC_KEYS}
        )
        for region in REGIONS:
            boot = world.bootstrap(region, "regional")
            kl.retry(
                f"{TOPIC} on {region}'s regional cluster",
                lambda b=boot: kl.create_topic(b, TOPIC, int(spec["partitions"]), config),
                30,
                alive=world.processes(),
            )
        world.mirror_configs = mirror_configs(
            plans, {k: b.bootstrap for k, b in brokers.items()}, connector, worker
        )
        for target in REGIONS:
            world.start_mirrors_into(target)
        for target in REGIONS:
            for copy in copies():
                kl.wait_for(
                    f"MirrorMaker 2 to create {copy} on {target}'s aggregate",
                    lambda t=target, c=copy: c in kl.topics(world.bootstrap(t, "aggregate")),
                    WAIT,
                    interval=1,
                    alive=world.processes(),
                )
        world.startup = time.monotonic() - started
        return world
    except BaseException:
        world.stop()
        raise


def keep_logs(world: World, into: Path) -> None:
    """Copy the JVMs' logs somewhere that outlives the temporary folder (a failure's evidence)."""
    into.mkdir(parents=True, exist_ok=True)
    for log in world.root.rglob("*.log"):
        shutil.copy(log, into / f"{log.parent.name}-{log.name}")


# --------------------------------------------------------------------------- accounting


def consumed_keys(apps: list[RegionApp]) -> set[str]:
    return {r.key for a in apps for r in a.consumed()}


def missing_after(apps: list[RegionApp], wanted: set[str], timeout: float) -> list[str]:
    """Wait up to ``timeout`` until every key of ``wanted`` has been consumed by some region;
    the keys never consumed (lost, once the serving region has read past them)."""
    deadline = time.monotonic() + timeout
    while not wanted <= consumed_keys(apps) and time.monotonic() < deadline:
        time.sleep(1)
    return sorted(wanted - consumed_keys(apps))


def rereads(app: RegionApp, apps: list[RegionApp], since: float) -> dict[str, int]:
    """Per partition of the copies (``topic[p]``): records ``app`` consumed in its latest
    tenure that some region had consumed before that tenure began; {} when it began before
    ``since`` (the region kept serving)."""
    if not app.started or app.started[-1] < since:
        return {}
    began, tenure = app.started[-1], app.tenure
    before = {r.key for a in apps for r in a.consumed() if r.at < began}
    out: dict[str, int] = {}
    for r in app.consumed():
        if r.tenure == tenure and r.key in before:
            k = f"{r.topic}[{r.partition}]"
            out[k] = out.get(k, 0) + 1
    return out


def first_consumed(app: RegionApp, since: float) -> float | None:
    """When ``app`` consumed its first record after ``since`` (monotonic), if it has."""
    times = [r.at for r in app.consumed() if r.at >= since]
    return min(times) if times else None
