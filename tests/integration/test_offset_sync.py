"""The offset sync job with real Kafka on loopback: an active-passive group fails over between
two aggregate clusters, through offsets the job translated (paper section 6).

The world, configured by rtdi's plans: onprem-dc1's regional cluster (where payments are
produced), the aggregates of aws-us-east-1 (the primary) and gcp-europe-west4, and MirrorMaker 2
filling each aggregate from the regional cluster, each from the ``KafkaMirrorMaker2`` rtdi plans
for that aggregate (kafka_local.mm2_properties; the intervals shortened as in
test_mirror_failover.py). The job is the jar `make offset-sync-jar` builds, run `--once` through
`infra.components.kafka.offset_sync.run_once` with the config `sync_properties` writes: what the
DR drill's "sync offsets" step does.

The scenario: payments are produced steadily; ``ledger-writer`` consumes
``onprem-dc1.payment-events`` on the primary's aggregate, committing as it goes, and is stopped
(demoted) while production goes on. The job translates its offsets into gcp-europe-west4's
aggregate, where MirrorMaker 2 never checkpoints the group (it consumes no regional cluster).
``ledger-writer`` then starts there with ``auto.offset.reset=error``: nothing it had not consumed
is lost, and what it re-reads per partition is within MirrorMaker 2's ``offset.lag.max`` for each
of the two translation steps.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kafka_jars
import kafka_local as kl

from infra.components.kafka import offset_sync as osync

CR = "kubernetes:kafka.strimzi.io/v1:"
SOURCE, PRIMARY, OTHER = "onprem-dc1", "aws-us-east-1", "gcp-europe-west4"
TOPIC, GROUP = "payment-events", "ledger-writer"
REMOTE = f"{SOURCE}.{TOPIC}"
PARTITIONS = 3
WAIT = 90
OFFSET_LAG_MAX = 100  # MirrorMaker 2's default; rtdi's mirror leaves it


def cr(plan, kind: str, name: str) -> dict:
    (found,) = [r.inputs for r in plan.of_type(CR + kind) if r.inputs["metadata"]["name"] == name]
    return found


def mirror_config(plans, aggregate: str, bootstrap: dict[str, str]) -> kl.MirrorConfig:
    spec = cr(plans[aggregate], "KafkaMirrorMaker2", "aggregate-mirror")["spec"]
    config = kl.loopback_mirror(spec, SOURCE, bootstrap)
    assert config.target == aggregate
    return config


def require_job() -> Path:
    if osync.JAR.is_file():
        return osync.JAR
    problem = f"{osync.JAR} is not built: run `make offset-sync-jar`"
    if os.environ.get("CI"):
        pytest.fail(f"{problem}, but CI is set", pytrace=False)
    pytest.skip(problem)


def test_sync_properties_say_what_the_job_reads():
    text = osync.sync_properties(
        ["ledger-writer", "flink-payments"],
        PRIMARY,
        OTHER,
        {"bootstrap.servers": "b:1", "sasl.jaas.config": 'x password="${env:P}";'},
        {"bootstrap.servers": "a:1"},
    )
    lines = text.splitlines()
    assert "groups=ledger-writer,flink-payments" in lines
    assert f"primary.region={PRIMARY}" in lines and f"local.region={OTHER}" in lines
    assert "local.cluster.bootstrap.servers=b:1" in lines
    assert "primary.cluster.bootstrap.servers=a:1" in lines
    assert 'local.cluster.sasl.jaas.config=x password="${env:P}";' in lines


@pytest.fixture(scope="module")
def jars() -> Path:
    return kl.require_kafka(kafka_jars.fetched())


@pytest.fixture(scope="module")
def world(plans, jars, tmp_path_factory):
    started = time.monotonic()
    require_job()
    root = tmp_path_factory.mktemp("offset-sync")
    regional = cr(plans[SOURCE], "Kafka", "regional")["spec"]["kafka"]
    brokers = {
        SOURCE: kl.broker("regional", root, regional["config"]),
        **{
            r: kl.broker(r, root, cr(plans[r], "Kafka", "aggregate")["spec"]["kafka"]["config"])
            for r in (PRIMARY, OTHER)
        },
    }
    processes: list[kl.JavaProcess] = []
    try:
        kl.start_brokers(list(brokers.values()), jars)
        processes += [b.process for b in brokers.values() if b.process]
        (topic,) = [
            r.inputs["spec"]
            for r in plans[SOURCE].of_type(CR + "KafkaTopic")
            if r.inputs["spec"]["topicName"] == TOPIC
            and r.inputs["metadata"]["labels"]["strimzi.io/cluster"] == "regional"
        ]
        config, _ = kl.single_broker(
            {k: v for k, v in topic["config"].items() if k not in kl.TIERED_TOPIC_KEYS}
        )
        src = brokers[SOURCE].bootstrap
        kl.retry(
            f"{TOPIC} on the regional cluster",
            lambda: kl.create_topic(src, TOPIC, PARTITIONS, config),
            30,
            alive=processes,
        )
        mirrors = {}
        for aggregate in (PRIMARY, OTHER):
            workdir = root / f"mm2-{aggregate}"
            workdir.mkdir()
            mm2 = mirror_config(
                plans, aggregate, {SOURCE: src, aggregate: brokers[aggregate].bootstrap}
            )
            mirrors[aggregate] = kl.start_mirror_maker(mm2, jars, workdir)
            processes.append(mirrors[aggregate])
        for aggregate in (PRIMARY, OTHER):
            kl.wait_for(
                f"MirrorMaker 2 to create {REMOTE} on {aggregate}'s aggregate",
                lambda a=aggregate: REMOTE in kl.topics(brokers[a].bootstrap),
                WAIT,
                interval=1,
                alive=processes,
            )
        yield SimpleNamespace(
            brokers=brokers,
            mirrors=mirrors,
            processes=processes,
            startup=time.monotonic() - started,
        )
    finally:
        for p in reversed(processes):
            p.stop()
        for b in brokers.values():
            b.stop()


class SteadyProducer(threading.Thread):
    """Payments at a steady pace into the regional cluster until stopped; what was stored."""

    def __init__(self, bootstrap: str, per_second: int = 150):
        super().__init__(daemon=True)
        self.bootstrap, self.pause = bootstrap, 1 / per_second
        self.stored: dict[str, kl.Record] = {}
        self.halt = threading.Event()
        self.errors: list = []

    def run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "log_level": 0,
            }
        )

        def delivered(err, msg):
            if err:
                self.errors.append(err)
            else:
                k = msg.key().decode()
                self.stored[k] = kl.Record(k, msg.value().decode(), msg.partition(), msg.offset())

        i = 0
        while not self.halt.is_set():
            key = f"pay-{i:06d}"
            producer.produce(
                TOPIC, key=key.encode(), value=f"value-{key}".encode(), on_delivery=delivered
            )
            producer.poll(0)
            i += 1
            time.sleep(self.pause)
        assert producer.flush(30) == 0
        self.sent = i


def consume_and_commit(bootstrap: str, seconds: float) -> tuple[list[kl.Record], dict[int, int]]:
    """``ledger-writer`` on the primary: poll, commit what it processed after every batch, for
    ``seconds``; then stop as a demoted consumer does (its last commit stands)."""
    c = kl.consumer(bootstrap, GROUP, "earliest")
    c.subscribe([REMOTE])
    seen: list[kl.Record] = []
    position: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = c.consume(num_messages=50, timeout=0.5)
        for m in batch:
            assert not m.error(), m.error()
            seen.append(kl.Record(m.key().decode(), m.value().decode(), m.partition(), m.offset()))
            position[m.partition()] = m.offset() + 1
        if batch:
            kl.commit(c, REMOTE, position)
    c.close()
    return seen, position


@pytest.mark.integration
def test_active_passive_group_resumes_in_another_region_from_translated_offsets(world):
    """1. Before the job runs, gcp-europe-west4's aggregate has no offsets for the group
    (MirrorMaker 2's checkpoints do not cover it). 2. `--once` commits, for every partition,
    the offset it reports, and the report's source offsets are the group's last commits on the
    primary. 3. Started there with auto.offset.reset=error, the group reads every record it had
    not consumed (0 lost), in order without gaps, and re-reads at most offset.lag.max per
    translation step per partition. 4. A second pass rewinds nothing; a pass while the group
    is active there commits nothing."""
    b = world.brokers
    primary, other = b[PRIMARY].bootstrap, b[OTHER].bootstrap
    producer = SteadyProducer(b[SOURCE].bootstrap)
    producer.start()
    try:
        time.sleep(3)
        seen, position = consume_and_commit(primary, 8)
        demoted = time.monotonic()
        time.sleep(2)  # production goes on after the demotion
    finally:
        producer.halt.set()
        producer.join(60)
    assert not producer.errors and producer.stored and len(seen) > 100
    produced = producer.stored
    total = len(produced)
    for aggregate in (PRIMARY, OTHER):
        kl.wait_for(
            f"all {total} payments on {aggregate}'s aggregate",
            lambda a=aggregate: (
                sum(kl.end_offsets(b[a].bootstrap, REMOTE, PARTITIONS).values()) == total
            ),
            WAIT,
            alive=world.processes,
        )
    assert kl.committed(primary, GROUP, REMOTE, PARTITIONS) == position
    assert kl.committed(other, GROUP, REMOTE, PARTITIONS) == {}, "MirrorMaker 2 synced the group"

    config = osync.sync_properties(
        [GROUP], PRIMARY, OTHER, {"bootstrap.servers": other}, {"bootstrap.servers": primary}
    )
    began = time.monotonic()
    report = kl.retry(
        "a pass that translates every partition",
        lambda: _all_committed(osync.run_once(config)),
        WAIT,
        alive=world.processes,
    )
    synced = time.monotonic() - began
    (group,) = report["groups"]
    rows = {r["partition"]: r for r in group["partitions"]}
    assert group["group"] == GROUP and set(rows) == set(range(PARTITIONS))
    assert {p: r["sourceOffset"] for p, r in rows.items()} == position
    translated = {p: r["translatedOffset"] for p, r in rows.items()}
    assert kl.committed(other, GROUP, REMOTE, PARTITIONS) == translated

    ends = kl.end_offsets(other, REMOTE, PARTITIONS)
    resumed, c = kl.consume(
        other,
        GROUP,
        REMOTE,
        lambda rs: all(
            max([r.offset + 1 for r in rs if r.partition == p], default=translated[p]) >= ends[p]
            for p in range(PARTITIONS)
        ),
        reset="error",
        timeout=WAIT,
    )
    failover = time.monotonic() - demoted
    consumed = {r.key for r in seen}
    got = [r.key for r in resumed]
    lost = set(produced) - consumed - set(got)
    assert not lost, f"{len(lost)} lost, e.g. {sorted(lost)[:5]}"
    reread: dict[int, int] = {}
    for p in range(PARTITIONS):
        offsets = [r.offset for r in resumed if r.partition == p]
        assert offsets == list(range(translated[p], ends[p])), f"partition {p}: a gap or a repeat"
        reread[p] = len({r.key for r in resumed if r.partition == p} & consumed)
        assert reread[p] <= 2 * OFFSET_LAG_MAX, (p, reread[p], rows[p])

    # The group is active here now: a pass must not touch it.
    busy = osync.run_once(config)
    (g,) = busy["groups"]
    assert not any(r["committed"] for r in g["partitions"]), busy
    assert all("here" in r["reason"] for r in g["partitions"]), busy
    kl.commit(c, REMOTE, {p: ends[p] for p in range(PARTITIONS)}, close=True)
    # Inactive again, and past the translation: nothing rewinds.
    again = osync.run_once(config)
    (g,) = again["groups"]
    assert not any(r["committed"] for r in g["partitions"]), again
    assert kl.committed(other, GROUP, REMOTE, PARTITIONS) == ends
    print(
        f"\n{GROUP}: {total} produced, {len(seen)} consumed in {PRIMARY}, resumed in {OTHER} at "
        f"{translated} (primary commits {position}): 0 lost, {sum(reread.values())} re-read "
        f"{reread}; sync pass {synced:.1f} s; demote to caught up in {OTHER} {failover:.1f} s; "
        f"setup {world.startup:.0f} s"
    )


def _all_committed(report: dict) -> dict:
    """The report when every partition was translated and committed; else raise (retry)."""
    rows = [r for g in report["groups"] for r in g["partitions"]]
    if len(rows) != PARTITIONS or not all(r["committed"] for r in rows):
        raise AssertionError(f"not yet: {report}")
    return report


@pytest.mark.integration
def test_bad_input_is_one_line_and_exit_2(tmp_path):
    require_job()
    with pytest.raises(osync.SyncFailed) as e:
        osync.run_once("groups=a\nprimary.region=x\nlocal.region=x\n")
    assert e.value.code == 2 and "local.region = x is the primary" in str(e.value)
    with pytest.raises(osync.SyncFailed) as e:
        osync.run_once("groups=a\nprimary.region=x\nlocal.region=y\ntypo=1\n")
    assert e.value.code == 2 and "key typo is unknown" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.integration
def test_the_loop_waits_for_the_primary_secret_then_keeps_offsets_current(world, tmp_path):
    """The Deployment's mode: without the primary's file the job runs, live but not ready; once
    the file appears (as the operator's Secret does under its mount) it translates and commits,
    and a later commit on the primary is carried over by a later pass."""
    import subprocess
    import urllib.error
    import urllib.request

    b = world.brokers
    primary, other = b[PRIMARY].bootstrap, b[OTHER].bootstrap
    group = "reconciler"
    kl.produce(b[SOURCE].bootstrap, TOPIC, [f"loop-{i:04d}" for i in range(300)])
    for aggregate in (PRIMARY, OTHER):
        kl.wait_for(
            f"the loop's records on {aggregate}",
            lambda a=aggregate: (
                kl.end_offsets(b[a].bootstrap, REMOTE, PARTITIONS)
                == kl.end_offsets(b[SOURCE].bootstrap, TOPIC, PARTITIONS)
            ),
            WAIT,
            alive=world.processes,
        )
    ends = kl.end_offsets(primary, REMOTE, PARTITIONS)
    first = {p: e // 2 for p, e in ends.items()}
    kl.commit(kl.consumer(primary, group, "earliest"), REMOTE, first, close=True)

    config = tmp_path / "offset-sync.properties"
    config.write_text(osync.sync_properties([group], None, OTHER, {"bootstrap.servers": other}))
    secret = tmp_path / "primary" / "primary.properties"
    port = kl.free_port()
    job = subprocess.Popen(
        [
            "java",
            "-jar",
            str(osync.JAR),
            "--config",
            str(config),
            "--primary-config",
            str(secret),
            "--primary-region",
            PRIMARY,
            "--interval-seconds",
            "1",
            "--health-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 0

    try:
        kl.wait_for("the job's health endpoint", lambda: status("/healthz") == 200, 30)
        assert status("/readyz") == 503
        assert job.stdout is not None
        assert '"waiting"' in job.stdout.readline()
        assert kl.committed(other, group, REMOTE, PARTITIONS) == {}

        secret.parent.mkdir()
        secret.write_text(f"primary.cluster.bootstrap.servers={primary}\n")
        kl.wait_for("ready after the Secret appears", lambda: status("/readyz") == 200, WAIT)
        done = kl.wait_for(
            f"{group}'s offsets translated into {OTHER}",
            lambda: (c := kl.committed(other, group, REMOTE, PARTITIONS)) and len(c) == 3 and c,
            WAIT,
        )
        assert all(done[p] <= first[p] for p in done), (done, first)
        kl.commit(kl.consumer(primary, group, "earliest"), REMOTE, ends, close=True)
        moved = kl.wait_for(
            f"{group}'s later commit carried over",
            lambda: (
                (c := kl.committed(other, group, REMOTE, PARTITIONS)) != done
                and all(c[p] > done[p] for p in c)
                and c
            ),
            WAIT,
        )
        assert all(moved[p] <= ends[p] for p in moved)
    finally:
        job.terminate()
        job.wait(15)
