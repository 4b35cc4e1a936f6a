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
   MiniCluster's REST API, into A's flink-state bucket. The drill copies it, object by object
   through the S3 API, into B's flink-state bucket (``payments/handover/``) as it would copy it
   across regions, and the original is deleted: everything after reads the copy only. The state
   is written to files, none inlined in ``_metadata``, so the copy must resolve them itself.
   More records then arrive in both copies.
3. ``io.rtdi.flink.Handover`` reads A's final offsets from the copy: exactly where A's committed
   output ends (the `flink-payments` group offsets lag them). They are translated for B as
   MirrorMaker 2 (or the DR drill) would commit them in B's aggregate cluster: the same records,
   at B's offsets.
4. B starts the way the plan starts a new primary's job: a first deployment with no savepoint,
   empty state, from the translated group offsets.
5. The output of A then B holds every payment with a positive amount exactly once.

The aborted flip (a rollback) is the second path from the same copy: A starts again with
``execution.state-recovery.path`` set to the copy (what the operator passes for
``initialSavepointPath``), its group rewound to the start so that only the restored source state
can place it, reads what arrived meanwhile, and A's output over both runs is exactly once.

A jar job's handover (``rtdi:flinkHandover``) runs on two clusters: LedgerJob.java, written to
rtdi's contract (its Kafka source's and sink's uids name the region), keeps its keyed state
through a savepoint copied into B's bucket and restored with the fields rtdi plans for it.

Times are printed (``-s`` shows them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
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
from infra.components.flink import handover as flip
from infra.topology.config import parse_global
from infra.topology.jobs import load_jobs
from infra.topology.model import FlinkHandover
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
            # Every state handle a file the savepoint's _metadata refers to, none inlined in it
            # (a few hundred bytes here): a copy to another bucket must then resolve those
            # references in the copy, which is what a relocatable savepoint means.
            "execution.checkpointing.data-inline-threshold": "0",
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


def stop_with_savepoint(
    port: int, job_id: str, proxy: fl.S3Proxy, bucket: str, proc, job: str = "payments"
) -> str:
    """What the operator's savepointJobOrError does: stop-with-savepoint, no drain, into the
    job's savepoint directory; the runner's JVM ends with the job. The savepoint is then found
    as the DR drill finds it: the newest ``savepoint-*`` with a ``_metadata`` in the bucket."""
    directory = f"s3p://{bucket}/{job}/savepoints"
    rest(port, f"/jobs/{job_id}/stop", {"targetDirectory": directory, "drain": False})
    proc.popen.wait(WAIT)
    assert proc.popen.returncode == 0, proc.tail()
    assert "name='Suspend Savepoint'" in proc.log_text(), "not a stop-with-savepoint"
    found = sorted(
        (m.stat().st_mtime, m.parent)
        for m in (proxy.basedir / bucket / job / "savepoints").glob("savepoint-*/_metadata")
    )
    assert found, f"no savepoint in {directory}"
    return f"s3p://{found[-1][1].relative_to(proxy.basedir).as_posix()}"


S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"
S3_REGION = "us-east-1"  # s3proxy checks the signature, whatever region it names


def s3_call(
    proxy: fl.S3Proxy,
    method: str,
    bucket: str,
    key: str = "",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """One S3 REST call (path style, no body), signed with AWS Signature Version 4 as any S3
    client signs it: the copy goes through the S3 API, as a cross-region copy would."""

    def enc(text: str, safe: str = "-_.~") -> str:
        return urllib.parse.quote(text, safe=safe)

    uri = enc(f"/{bucket}/{key}" if key else f"/{bucket}", safe="/-_.~")
    qs = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted((query or {}).items()))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    scope = f"{stamp[:8]}/{S3_REGION}/s3/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    signed_headers = {
        "host": f"{kl.LOOPBACK}:{proxy.port}",
        "x-amz-content-sha256": empty,
        "x-amz-date": stamp,
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    names = ";".join(sorted(signed_headers))
    canonical = "\n".join(
        [
            method,
            uri,
            qs,
            "".join(f"{k}:{signed_headers[k].strip()}\n" for k in sorted(signed_headers)),
            names,
            empty,
        ]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key_bytes = f"AWS4{proxy.secret_key}".encode()
    for part in (stamp[:8], S3_REGION, "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(
        f"{proxy.endpoint}{uri}" + (f"?{qs}" if qs else ""),
        data=b"" if method == "PUT" else None,
        method=method,
        headers={
            **signed_headers,
            "authorization": f"AWS4-HMAC-SHA256 Credential={proxy.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}",
        },
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


def s3_keys(proxy: fl.S3Proxy, bucket: str, prefix: str) -> list[str]:
    """Every object key under ``prefix`` (ListObjectsV2, page by page)."""
    keys: list[str] = []
    token = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        page = ET.fromstring(s3_call(proxy, "GET", bucket, query=query))
        keys += [k.text or "" for k in page.iter(f"{S3}Key")]
        token = page.findtext(f"{S3}NextContinuationToken")
        if page.findtext(f"{S3}IsTruncated") != "true" or not token:
            return sorted(k for k in keys if not k.endswith("/"))


def move_savepoint(proxy: fl.S3Proxy, savepoint: str, bucket: str, prefix: str) -> str:
    """The drill's copy of ``savepoint`` (an s3p:// directory) into ``bucket``/``prefix``, object
    by object with CopyObject; the original is then deleted, so that nothing can read it and the
    copy has to stand on its own. Returns the copy's URI."""
    src_bucket, src_dir = savepoint.split("://", 1)[1].split("/", 1)
    name = src_dir.rsplit("/", 1)[1]
    keys = s3_keys(proxy, src_bucket, f"{src_dir}/")
    assert f"{src_dir}/_metadata" in keys and len(keys) > 1, f"{savepoint}: {keys}"
    for key in keys:
        done = s3_call(
            proxy,
            "PUT",
            bucket,
            f"{prefix}/{name}/{key[len(src_dir) + 1 :]}",
            headers={"x-amz-copy-source": urllib.parse.quote(f"/{src_bucket}/{key}")},
        )
        assert ET.fromstring(done).tag == f"{S3}CopyObjectResult", done[:300]
    copied = s3_keys(proxy, bucket, f"{prefix}/{name}/")
    relative = len(f"{prefix}/{name}/")
    assert [k[relative:] for k in copied] == [k[len(src_dir) + 1 :] for k in keys], copied
    # The metadata names its state files relative to itself (a savepoint, not a checkpoint).
    metadata = s3_call(proxy, "GET", bucket, f"{prefix}/{name}/_metadata")
    assert src_bucket.encode() not in metadata, "the savepoint names files in its old bucket"
    for key in keys:
        s3_call(proxy, "DELETE", src_bucket, key)
    assert s3_keys(proxy, src_bucket, f"{src_dir}/") == []
    return f"s3p://{bucket}/{prefix}/{name}"


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


def everything(ids: range) -> set[str]:
    """The payments of ``ids`` the job writes to the ledger (a positive amount)."""
    return {payment(i)["payment_id"] for i in ids if i % 7}


@pytest.fixture(scope="module")
def stopped_a(world):
    """Steps 1 and 2 of the flip: region A runs the job, more payments arrive, the flip stops A
    with a savepoint in A's bucket; the drill copies it into B's and the original is deleted.
    Then more payments arrive in both copies (the aggregate clusters carry on)."""
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
        kl.wait_for(
            "region A's first payments committed",
            lambda: set(ledger_ids(bootstrap, "ledger-a")) >= everything(range(FIRST)),
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
    # The drill copies the savepoint into the new primary's flink-state bucket, where its job
    # service account reaches it (README "A handover savepoint").
    copying = time.monotonic()
    copy = move_savepoint(proxy, savepoint, "flink-state-b", "payments/handover")
    copy_s = time.monotonic() - copying
    out_a = ledger_ids(bootstrap, "ledger-a")  # A's output when it stopped
    replicate(bootstrap, range(FIRST + SECOND, FIRST + SECOND + THIRD))
    return SimpleNamespace(
        job=job,
        savepoint=savepoint,
        copy=copy,
        copy_s=copy_s,
        out_a=out_a,
        flip_at=flip_at,
        took=time.monotonic() - started,
    )


@pytest.mark.integration
def test_a_flip_moves_the_job_exactly_once_from_translated_offsets(world, stopped_a):
    flink, kafka, proxy, root = world
    job, out_a = stopped_a.job, stopped_a.out_a
    bootstrap = kafka.bootstrap
    started = time.monotonic()

    # Where A stopped, from the savepoint's copy in B's bucket (io.rtdi.flink.Handover): exactly
    # where A's committed output ends. The group offsets in Kafka may lag: the source commits
    # them asynchronously after a checkpoint, and the task ends right after the savepoint,
    # before the last commit.
    handover = run_handover(flink, root, proxy, stopped_a.copy)
    assert handover["savepoint"] == stopped_a.copy
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

    # 4. Region B: a first deployment, no savepoint, from the translated offsets (the third
    # batch of payments is already in its copy).
    sql_b = root / "b.sql"
    sql_b.write_text(region_sql(job, "b.payment-events", "ledger-b", bootstrap))
    port_b = kl.free_port()
    conf_b = region_conf(job, proxy, "flink-state-b", port_b)
    assert "execution.state-recovery.path" not in conf_b
    b = fl.start_runner("region-b", flink, root, sql_b, conf_b)
    wanted = everything(range(FIRST + SECOND + THIRD))
    try:
        kl.wait_for(
            "every payment committed by A or B",
            lambda: set(out_a) | set(ledger_ids(bootstrap, "ledger-b")) >= wanted,
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
    out = out_a + ledger_ids(bootstrap, "ledger-b")
    twice = sorted(k for k, n in Counter(out).items() if n > 1)
    assert twice == [], f"{len(twice)} payments committed twice, e.g. {twice[:5]}"
    assert set(out) == wanted
    print(
        f"\nflip A -> B exactly-once: {stopped_a.took + took:.1f} s (stop-with-savepoint at "
        f"{stopped_a.flip_at:.1f} s, copied to {stopped_a.copy} in {stopped_a.copy_s:.2f} s, "
        f"{len(out_a)} payments by A, {len(out) - len(out_a)} by B; the group offsets lagged "
        f"the savepoint by {lag} payments); Flink {versions.FLINK_VERSION}"
    )


@pytest.mark.integration
def test_an_aborted_flip_restores_a_from_the_copied_savepoint_exactly_once(world, stopped_a):
    """The rollback: A starts again from the copy in the other bucket, as the operator starts a
    first deployment from ``initialSavepointPath`` (``execution.state-recovery.path``), and reads
    what arrived in A's copy meanwhile. Its source's offsets and its sink's transactions come
    from the copied state only: the original is gone and the group is rewound to the start."""
    flink, kafka, proxy, root = world
    job = stopped_a.job
    bootstrap = kafka.bootstrap
    started = time.monotonic()
    c = kl.consumer(bootstrap, GROUP, "earliest")
    kl.commit(c, "a.payment-events", dict.fromkeys(range(PARTITIONS), 0), close=True)

    sql_a = root / "a.sql"
    port = kl.free_port()
    conf = region_conf(job, proxy, "flink-state-a", port)
    conf["execution.state-recovery.path"] = stopped_a.copy
    a = fl.start_runner("region-a-rollback", flink, root, sql_a, conf)
    wanted = everything(range(FIRST + SECOND + THIRD))
    try:
        kl.wait_for(
            "every payment committed by A, before and after the rollback",
            lambda: set(ledger_ids(bootstrap, "ledger-a")) >= wanted,
            WAIT,
            interval=1,
            alive=[a],
            last=lambda: str(len(ledger_ids(bootstrap, "ledger-a"))),
        )
        job_id = kl.wait_for("A's running job", lambda: running_job(port), 30, alive=[a])
        restored = f"Starting job {job_id} from savepoint {stopped_a.copy}"
        assert restored in a.log_text(), f"not restored from the copy: {a.tail()}"
        stop_with_savepoint(port, job_id, proxy, "flink-state-a", a)
    finally:
        a.stop()
    took = time.monotonic() - started

    out = ledger_ids(bootstrap, "ledger-a")
    twice = sorted(k for k, n in Counter(out).items() if n > 1)
    assert twice == [], f"{len(twice)} payments committed twice, e.g. {twice[:5]}"
    assert set(out) == wanted
    print(
        f"\nrollback: A restored from {stopped_a.copy} exactly-once in {took:.1f} s "
        f"({len(stopped_a.out_a)} payments before the flip, {len(out) - len(stopped_a.out_a)} "
        "after)"
    )


# --------------------------------------------------------------------------- a jar job's handover

LEDGER_JOB = Path(__file__).resolve().parent / "LedgerJob.java"
LEDGER_TOPICS = (("ledger.payment-events", PARTITIONS), ("ledger.counts", 1))


def ledger_spec():
    """`ledger`: the payments spec as an active-passive jar job (the unit test's ledger)."""
    return payments_job().model_copy(
        update={"name": "ledger", "sql": None, "sql_text": None, "jar": "local:///ledger.jar"}
    )


def start_ledger(name: str, flink: Path, root: Path, classes: Path, region: str, **kw):
    """LedgerJob as a jar job runs: its main on a MiniCluster, RTDI_REGION set as rtdi sets it in
    the pod, rtdi's Flink configuration for the job (``conf``)."""
    log4j = kl.log4j2_config(root / f"{name}-log4j2.properties", root / f"{name}.log")
    args: list[str] = []
    for k, v in kw.pop("conf").items():
        args += ["--conf", f"{k}={v}"]
    for k, v in kw.items():
        args += [f"--{k}", v]
    console = root / f"{name}.out"
    with console.open("w") as out:
        popen = subprocess.Popen(
            [
                "java",
                *fl.RUNNER_OPTS,
                *fl.JAVA_17_OPENS,
                f"-Dlog4j2.configurationFile={log4j}",
                "-cp",
                os.pathsep.join([str(classes), str(fl.RUNNER_JAR), f"{flink / 'lib'}/*"]),
                "LedgerJob",
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=root,
            env={
                **os.environ,
                "FLINK_PLUGINS_DIR": str(flink / "plugins"),
                flip.REGION_ENV: region,
            },
        )
    return kl.JavaProcess(name, popen, root / f"{name}.log", console)


@pytest.mark.integration
def test_a_handover_savepoint_keeps_a_jar_jobs_state_in_the_new_primary(world):
    """rtdi:flinkHandover for a jar job, on two clusters: A's savepoint is copied into B's
    flink-state bucket, rtdi accepts it there and sets the job fields the operator turns into
    the restore; B's job keeps its per-rider counts (keyed state) while its source, whose uid
    names the region, leaves A's offsets behind and starts from the translated group offsets."""
    flink, kafka_a, proxy, root = world
    jars = kl.require_kafka(kafka_jars.fetched())
    if shutil.which("javac") is None:  # a JRE without the JDK: as require_flink does
        problem = "javac (a JDK) is needed to compile the jar job"
        if os.environ.get("CI"):
            pytest.fail(f"{problem}, but CI is set: CI must run the Flink tests", pytrace=False)
        pytest.skip(problem)
    classes = root / "ledger-classes"
    compiled = subprocess.run(
        [
            "javac",
            "-nowarn",
            "-d",
            str(classes),
            "-cp",
            f"{fl.RUNNER_JAR}{os.pathsep}{flink / 'lib'}/*",
            str(LEDGER_JOB),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compiled.returncode == 0, compiled.stderr
    job = ledger_spec()
    group = f"flink-{job.name}"
    prefix = f"rtdi.{job.name}."
    started = time.monotonic()
    kafka_b = kl.broker("kafka-b", root, {})  # B's aggregate cluster: another cluster
    try:
        kl.start_brokers([kafka_b], jars)
        for cluster in (kafka_a, kafka_b):
            for topic, partitions in LEDGER_TOPICS:
                kl.retry(
                    f"{topic} created",
                    lambda b=cluster.bootstrap, t=topic, n=partitions: kl.create_topic(b, t, n, {}),
                    30,
                    alive=[cluster.process],
                )
        a_boot, b_boot = kafka_a.bootstrap, kafka_b.bootstrap
        source = LEDGER_TOPICS[0][0]

        def replicated(ids: range) -> None:
            rows = [(i % PARTITIONS, payment(i)) for i in ids]
            produce(a_boot, source, rows)
            produce(b_boot, source, rows)

        def counted(bootstrap: str) -> list[dict]:
            return [row for _, _, row in read_all(bootstrap, "ledger.counts")]

        produce(  # B's copy starts PAD records later
            b_boot,
            source,
            [(p, payment(900_000 + p * 100 + k)) for p in range(PARTITIONS) for k in range(PAD[p])],
        )
        replicated(range(FIRST))
        port_a = kl.free_port()
        common = {"source": source, "sink": "ledger.counts", "group": group, "prefix": prefix}
        a = start_ledger(
            "ledger-a",
            flink,
            root,
            classes,
            "region-a",
            conf=region_conf(job, proxy, "flink-state-a", port_a),
            bootstrap=a_boot,
            **common,
        )
        try:
            first = {payment(i)["payment_id"] for i in range(FIRST)}
            kl.wait_for(
                "A's first counts committed",
                lambda: {r["payment_id"] for r in counted(a_boot)} >= first,
                WAIT,
                interval=1,
                alive=[a],
            )
            replicated(range(FIRST, FIRST + SECOND))
            job_id = kl.wait_for("A's running job", lambda: running_job(port_a), 30, alive=[a])
            savepoint = stop_with_savepoint(port_a, job_id, proxy, "flink-state-a", a, job.name)
        finally:
            a.stop()
        copy = move_savepoint(proxy, savepoint, "flink-state-b", f"{job.name}/handover")

        # What rtdi plans for B's stack config rtdi:flinkHandover: {ledger: {savepoint, nonce}}.
        wanted = FlinkHandover(savepoint=copy, nonce=1)
        issues = flip.handover_issues(
            {job.name: wanted},
            [job],
            "region-b",
            "region-b",
            "b.yaml",
            flip.store_schemes("s3"),
        )
        assert list(issues) == [] and flip.in_bucket(copy, "s3://flink-state-b")
        fields = flip.job_fields(wanted)
        # ... which the operator hands Flink on the first deployment (and on every new nonce).
        restore = {
            "execution.state-recovery.path": fields["initialSavepointPath"],
            "execution.state-recovery.ignore-unclaimed-state": str(
                fields["allowNonRestoredState"]
            ).lower(),
        }

        # The drill: A's final offsets from the copy, translated into B's cluster, committed.
        offsets = run_handover(flink, root, proxy, copy)["offsets"]
        assert offsets.keys() == {source}, offsets
        translated = {int(p): o + PAD[int(p)] for p, o in offsets[source].items()}
        kl.commit(kl.consumer(b_boot, group, "earliest"), source, translated, close=True)
        produce(
            b_boot,
            source,
            [(i % PARTITIONS, payment(i)) for i in range(FIRST + SECOND, FIRST + SECOND + THIRD)],
        )

        port_b = kl.free_port()
        b = start_ledger(
            "ledger-b",
            flink,
            root,
            classes,
            "region-b",
            conf={**region_conf(job, proxy, "flink-state-b", port_b), **restore},
            bootstrap=b_boot,
            **common,
        )
        everyone = {payment(i)["payment_id"] for i in range(FIRST + SECOND + THIRD)}
        out_a = counted(a_boot)
        try:
            kl.wait_for(
                "every payment counted by A or B",
                lambda: {r["payment_id"] for r in out_a + counted(b_boot)} >= everyone,
                WAIT,
                interval=1,
                alive=[b],
                last=lambda: str(len(counted(b_boot))),
            )
            job_b = kl.wait_for("B's running job", lambda: running_job(port_b), 30, alive=[b])
            log = b.log_text()
            restored = f"Starting job {job_b} from savepoint {copy} (allowing non restored state)"
            assert restored in log, b.tail()
            # A's region-named state dropped: its source, its sink's writer and committer.
            assert log.count("Skipping savepoint state for operator") == 3, b.tail()
            stop_with_savepoint(port_b, job_b, proxy, "flink-state-b", b, job.name)
        finally:
            b.stop()
        out_b = counted(b_boot)
    finally:
        kafka_b.stop()
    took = time.monotonic() - started

    # Every payment once over A then B (none of B's records before the copy), and per rider the
    # counts run 1..k over both regions: B went on from A's state.
    out = out_a + out_b
    ids = [r["payment_id"] for r in out]
    twice = sorted(k for k, n in Counter(ids).items() if n > 1)
    assert twice == [] and set(ids) == everyone, (twice[:5], len(set(ids) ^ everyone))
    by_rider: dict[str, list[int]] = {}
    for r in out:
        by_rider.setdefault(r["rider_id"], []).append(r["n"])
    assert {k: sorted(v) for k, v in by_rider.items()} == {
        k: list(range(1, len(v) + 1)) for k, v in by_rider.items()
    }
    carried = min(r["n"] for r in out_b)
    assert carried > 1, "B's counts started over: the keyed state was not restored"
    print(
        f"\njar handover A -> B (two clusters): {took:.1f} s, {len(out_a)} payments counted by A, "
        f"{len(out_b)} by B from {copy} (every rider's count carried over)"
    )
