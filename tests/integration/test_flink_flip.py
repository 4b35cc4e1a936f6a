"""A primary flip of rtdi's active-passive `payments` job on real Flink 2.2, real Kafka and S3.

The job is the sample spec (jobs/flink/payments.yaml) with the tables rtdi derives for it
(``table_ddl``) and the Flink configuration rtdi plans (``flink_configuration``); only the
endpoints and credentials point at loopback, the checkpoint interval is short, and Kubernetes HA is
left out (a MiniCluster has no Kubernetes). One broker holds two topic sets standing for the two
regions' clusters: ``a.payment-events``/``ledger-a`` (region A) and ``b.payment-events``/
``ledger-b`` (region B), B's copy of the source at other offsets (records before the copy, as an
aggregate cluster's copy starts elsewhere than its source).

1. The job runs in A and commits its output; more records arrive in both copies.
2. The flip, as the operator does it when rtdi's plan deletes A's running FlinkDeployment
   (``kubernetes.operator.job.savepoint-on-deletion``): stop with a savepoint through the
   MiniCluster's REST API, into A's flink-state bucket. The `flink-payments` group offsets A's
   source committed must be exactly where its committed output ends.
3. The offsets are translated for B as MirrorMaker 2 (or the DR drill) would commit them in B's
   aggregate cluster: the same records, at B's offsets.
4. B starts the way the plan starts a new primary's job: a first deployment with no savepoint,
   empty state, from the translated group offsets; more records arrive in B.
5. The output of A then B holds every payment with a positive amount exactly once.

Times are printed (``-s`` shows them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flink_local as fl
import kafka_jars
import kafka_local as kl

from infra import versions
from infra.components.flink import flink_configuration, table_ddl
from infra.topology.config import parse_global
from infra.topology.jobs import load_jobs
from plantools import sample_config

PARTITIONS, PAD = 3, (5, 11, 2)  # B's copy starts PAD[p] records later in partition p
HANDOVER = "io.rtdi.flink.Handover"
GROUP = "flink-payments"  # rtdi's one group per job, the same in every region
WAIT = 180
FIRST, SECOND, THIRD = 150, 150, 150  # before the flip (A), around it (A and B), after it (B)


def payments_job():
    model = parse_global(sample_config("global"))
    (job,) = [j for j in load_jobs(model.topology, model.kafka) if j.name == "payments"]
    return job


def payment(i: int) -> dict:
    """Payment i; every seventh is a zero amount, which the job's WHERE leaves out."""
    return {
        "payment_id": f"pay-{i:05d}",
        "rider_id": f"rider-{i % 13}",
        "amount_cents": 0 if i % 7 == 0 else 100 + i,
        "event_time": time.strftime("%Y-%m-%d %H:%M:%S.000", time.gmtime()),
    }


def produce(bootstrap: str, topic: str, rows: list[tuple[int, dict]]) -> None:
    """(partition, row) pairs, in order, idempotently."""
    from confluent_kafka import Producer

    errors: list = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "log_level": 0}
    )
    for partition, row in rows:
        producer.produce(
            topic,
            value=json.dumps(row).encode(),
            partition=partition,
            on_delivery=lambda err, _m: errors.append(err) if err else None,
        )
    assert producer.flush(60) == 0 and not errors, errors


def replicate(bootstrap: str, ids: range) -> None:
    """New payments in the source regions reach both aggregate copies, in the same order."""
    rows = [(i % PARTITIONS, payment(i)) for i in ids]
    produce(bootstrap, "a.payment-events", rows)
    produce(bootstrap, "b.payment-events", rows)


def read_all(
    bootstrap: str, topic: str, committed_only: bool = True
) -> list[tuple[int, int, dict]]:
    """Every record of ``topic`` as (partition, offset, row), read_committed by default."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{time.monotonic_ns()}",
            "isolation.level": "read_committed" if committed_only else "read_uncommitted",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        parts = sorted(meta.partitions)
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        rows: list[tuple[int, int, dict]] = []
        deadline = time.monotonic() + 20
        idle = 0
        while time.monotonic() < deadline and idle < 4:
            msg = c.poll(0.5)
            if msg is None:
                idle += 1
                continue
            idle = 0
            if msg.error():
                raise RuntimeError(str(msg.error()))
            rows.append((msg.partition(), msg.offset(), json.loads(msg.value())))
        return rows
    finally:
        c.close()


def ledger_ids(bootstrap: str, topic: str) -> list[str]:
    return [row["payment_id"] for _, _, row in read_all(bootstrap, topic)]


def region_sql(job, source_topic: str, sink_topic: str, bootstrap: str) -> str:
    """rtdi's script for one region: its tables from table_ddl, then the job's own SQL."""
    props = {"bootstrap.servers": bootstrap}
    parts = [
        table_ddl(job, job.sources[0], [source_topic], props, source=True),
        # The sink's transactions must outlive a checkpoint interval on this broker's defaults.
        table_ddl(
            job, job.sinks[0], [sink_topic], {**props, "transaction.timeout.ms": "60000"}, False
        ),
        job.sql_text or "",
    ]
    return "\n".join(parts)


def region_conf(job, proxy: fl.S3Proxy, bucket: str, rest_port: int) -> dict[str, str]:
    """rtdi's Flink configuration for ``job`` with its state in ``bucket`` on s3proxy."""
    store = SimpleNamespace(scheme="s3", endpoint=proxy.endpoint)
    conf = flink_configuration(job, f"s3://{bucket}", store)  # type: ignore[arg-type]
    for key in [k for k in conf if k.startswith("high-availability")]:
        del conf[key]  # Kubernetes HA: the MiniCluster has no Kubernetes
    conf.update(
        {
            "execution.checkpointing.interval": "2 s",
            "s3.access-key": proxy.access_key,
            "s3.secret-key": proxy.secret_key,
            "restart-strategy.type": "none",
            "parallelism.default": str(job.parallelism),
            # rtdi's TaskManagers have one slot each, as many as the parallelism needs.
            "minicluster.number-of-taskmanagers": str(job.parallelism),
            "rest.address": kl.LOOPBACK,
            "rest.bind-address": kl.LOOPBACK,
            "rest.bind-port": str(rest_port),
            "rest.port": str(rest_port),
        }
    )
    return conf


def rest(port: int, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"http://{kl.LOOPBACK}:{port}{path}",
        data=data,
        headers={"Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def running_job(port: int) -> str | None:
    try:
        jobs = rest(port, "/jobs")["jobs"]
    except OSError:
        return None
    ids = [j["id"] for j in jobs if j["status"] == "RUNNING"]
    return ids[0] if ids else None


def stop_with_savepoint(port: int, job_id: str, proxy: fl.S3Proxy, bucket: str, proc) -> str:
    """What the operator's savepointJobOrError does: stop-with-savepoint, no drain, into the
    job's savepoint directory; the runner's JVM ends with the job. The savepoint is then found
    as the DR drill finds it: the newest ``savepoint-*`` with a ``_metadata`` in the bucket."""
    directory = f"s3p://{bucket}/payments/savepoints"
    rest(port, f"/jobs/{job_id}/stop", {"targetDirectory": directory, "drain": False})
    proc.popen.wait(WAIT)
    assert proc.popen.returncode == 0, proc.tail()
    assert "name='Suspend Savepoint'" in proc.log_text(), "not a stop-with-savepoint"
    found = sorted(
        (m.stat().st_mtime, m.parent)
        for m in (proxy.basedir / bucket / "payments" / "savepoints").glob("savepoint-*/_metadata")
    )
    assert found, f"no savepoint in {directory}"
    return f"s3p://{found[-1][1].relative_to(proxy.basedir).as_posix()}"


def handover_command(flink: Path, *args: str, log4j: Path | None = None) -> list[str]:
    """The handover tool as the image would run it: the runner jar and Flink's lib."""
    logging = [f"-Dlog4j2.configurationFile={log4j}"] if log4j else []
    return [
        "java",
        *fl.RUNNER_OPTS,
        *fl.JAVA_17_OPENS,
        *logging,
        "-cp",
        f"{fl.RUNNER_JAR}{os.pathsep}{flink / 'lib'}/*",
        HANDOVER,
        *args,
    ]


def run_handover(flink: Path, root: Path, proxy: fl.S3Proxy, savepoint: str) -> dict:
    """io.rtdi.flink.Handover on ``savepoint``, with the file systems the runner loads."""
    conf = {
        "s3.endpoint": proxy.endpoint,
        "s3.path.style.access": "true",
        "s3.access-key": proxy.access_key,
        "s3.secret-key": proxy.secret_key,
    }
    args = ["--savepoint", savepoint]
    for k, v in conf.items():
        args += ["--conf", f"{k}={v}"]
    log4j = kl.log4j2_config(root / "handover-log4j2.properties", root / "handover.log")
    done = subprocess.run(
        handover_command(flink, *args, log4j=log4j),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "FLINK_PLUGINS_DIR": str(flink / "plugins")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "--savepoint URI is required"),
        (("--savepoint",), "--savepoint needs a value"),
        (("--savepoint", "x", "--conf", "novalue"), "--conf 'novalue' is not key=value"),
        (("--jar", "x"), "unknown argument '--jar'"),
        (("--savepoint", "file:///nonexistent/savepoint-1"), "not a savepoint"),
    ],
)
def test_handover_refuses_bad_input_in_one_line(tmp_path, args, expected):
    flink = fl.require_flink()
    done = subprocess.run(
        handover_command(flink, *args), capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("rtdi-handover: "), done.stderr
    assert expected in lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One KRaft broker with both regions' topics, and s3proxy with both flink-state buckets."""
    flink = fl.require_flink()
    jars = kl.require_kafka(kafka_jars.fetched())
    root = tmp_path_factory.mktemp("flink-flip")
    kafka = kl.broker("kafka", root, {})
    proxy = None
    try:
        kl.start_brokers([kafka], jars)
        for topic, partitions in (
            ("a.payment-events", PARTITIONS),
            ("b.payment-events", PARTITIONS),
            ("ledger-a", 1),
            ("ledger-b", 1),
        ):
            kl.retry(
                f"{topic} created",
                lambda t=topic, n=partitions: kl.create_topic(kafka.bootstrap, t, n, {}),
                30,
                alive=[kafka.process],
            )
        proxy = fl.start_s3proxy(flink, root)
        for bucket in ("flink-state-a", "flink-state-b"):
            proxy.create_bucket(bucket)
        yield flink, kafka, proxy, root
    finally:
        if proxy:
            proxy.stop()
        kafka.stop()


@pytest.mark.integration
def test_a_flip_moves_the_job_exactly_once_from_translated_offsets(world):
    flink, kafka, proxy, root = world
    job = payments_job()
    bootstrap = kafka.bootstrap
    started = time.monotonic()
    # B's copy starts elsewhere: records before the copy (never to be read by the job).
    produce(
        bootstrap,
        "b.payment-events",
        [(p, payment(900_000 + p * 100 + k)) for p in range(PARTITIONS) for k in range(PAD[p])],
    )
    replicate(bootstrap, range(FIRST))

    # 1. Region A runs the job.
    sql_a = root / "a.sql"
    sql_a.write_text(region_sql(job, "a.payment-events", "ledger-a", bootstrap))
    port_a = kl.free_port()
    a = fl.start_runner(
        "region-a", flink, root, sql_a, region_conf(job, proxy, "flink-state-a", port_a)
    )
    try:
        expected_first = {payment(i)["payment_id"] for i in range(FIRST) if i % 7}
        kl.wait_for(
            "region A's first payments committed",
            lambda: set(ledger_ids(bootstrap, "ledger-a")) >= expected_first,
            WAIT,
            interval=1,
            alive=[a],
        )
        # 2. More payments arrive in both copies while the flip stops A with a savepoint.
        replicate(bootstrap, range(FIRST, FIRST + SECOND))
        job_id = kl.wait_for("A's running job", lambda: running_job(port_a), 30, alive=[a])
        flip_at = time.monotonic() - started
        savepoint = stop_with_savepoint(port_a, job_id, proxy, "flink-state-a", a)
    finally:
        a.stop()

    # Where A stopped, from the savepoint (io.rtdi.flink.Handover): exactly where its committed
    # output ends. The group offsets in Kafka may lag: the source commits them asynchronously
    # after a checkpoint, and the task ends right after the savepoint, before the last commit.
    handover = run_handover(flink, root, proxy, savepoint)
    offsets_a = {int(p): o for p, o in handover["offsets"]["a.payment-events"].items()}
    assert handover["offsets"].keys() == {"a.payment-events"}, handover
    assert sorted(offsets_a) == list(range(PARTITIONS)) and min(offsets_a.values()) >= 0
    source_a = read_all(bootstrap, "a.payment-events")

    def read_up_to(offsets: dict[int, int]) -> set[str]:
        return {
            row["payment_id"]
            for p, o, row in source_a
            if o < offsets.get(p, 0) and row["amount_cents"] > 0
        }

    out_a = ledger_ids(bootstrap, "ledger-a")
    assert len(out_a) == len(set(out_a)), "A committed a payment twice"
    assert set(out_a) == read_up_to(offsets_a), "the savepoint's offsets and A's output disagree"
    group_a = kl.committed(bootstrap, GROUP, "a.payment-events", PARTITIONS)
    assert all(group_a.get(p, 0) <= offsets_a[p] for p in offsets_a), (group_a, offsets_a)
    lag = len(set(out_a) - read_up_to(group_a))

    # 3. Translated for B, as the DR drill commits them there (MirrorMaker 2's offset syncs map
    # A's positions to B's copy; here the copy is PAD records later).
    translated = {p: offsets_a[p] + PAD[p] for p in range(PARTITIONS)}
    c = kl.consumer(bootstrap, GROUP, "earliest")
    kl.commit(c, "b.payment-events", translated, close=True)

    # 4. Region B: a first deployment, no savepoint, from the translated offsets; more arrive.
    produce(
        bootstrap,
        "b.payment-events",
        [(i % PARTITIONS, payment(i)) for i in range(FIRST + SECOND, FIRST + SECOND + THIRD)],
    )
    sql_b = root / "b.sql"
    sql_b.write_text(region_sql(job, "b.payment-events", "ledger-b", bootstrap))
    port_b = kl.free_port()
    conf_b = region_conf(job, proxy, "flink-state-b", port_b)
    assert "execution.state-recovery.path" not in conf_b
    b = fl.start_runner("region-b", flink, root, sql_b, conf_b)
    everything = {payment(i)["payment_id"] for i in range(FIRST + SECOND + THIRD) if i % 7}
    try:
        kl.wait_for(
            "every payment committed by A or B",
            lambda: (
                set(ledger_ids(bootstrap, "ledger-a")) | set(ledger_ids(bootstrap, "ledger-b"))
                >= everything
            ),
            WAIT,
            interval=1,
            alive=[b],
            last=lambda: str(len(ledger_ids(bootstrap, "ledger-b"))),
        )
        job_b = kl.wait_for("B's running job", lambda: running_job(port_b), 30, alive=[b])
        stop_with_savepoint(port_b, job_b, proxy, "flink-state-b", b)
    finally:
        b.stop()
    took = time.monotonic() - started

    # 5. Exactly once over A then B: none lost, none twice, none of B's records before the copy.
    out = ledger_ids(bootstrap, "ledger-a") + ledger_ids(bootstrap, "ledger-b")
    twice = sorted(k for k, n in Counter(out).items() if n > 1)
    assert twice == [], f"{len(twice)} payments committed twice, e.g. {twice[:5]}"
    assert set(out) == everything
    print(
        f"\nflip A -> B exactly-once: {took:.1f} s (stop-with-savepoint at {flip_at:.1f} s, "
        f"{len(out_a)} payments by A, {len(out) - len(out_a)} by B, savepoint {savepoint}; the "
        f"group offsets lagged the savepoint by {lag} payments); "
        f"Flink {versions.FLINK_VERSION}"
    )
