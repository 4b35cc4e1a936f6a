"""A Flink job signs in to real Kafka as the identity rtdi plans for it, and can do no more.

One real Kafka 4 broker (KRaft, loopback) stands for a Strimzi region's two clusters: beside its
PLAINTEXT listener (the test's own admin path) it has a SASL_SSL listener with SCRAM-SHA-512,
like Strimzi's `workloads` listener, a TLS certificate made by keytool and Kafka's
StandardAuthorizer. The job's SCRAM users and their ACLs are exactly the planned `KafkaUser`s of
``aws-us-east-1`` (read from the plan, not written here); the job's script is its planned ConfigMap
with only the bootstrap address and the trust store's path rewritten to loopback, and its
passwords reach it through the environment, as the pod's env does (the runner fills the
``${env:NAME}`` placeholders).

1. The payments job (exactly-once, a source on the aggregate, a sink on the regional cluster)
   runs through the SQL runner on a MiniCluster and commits every payment from every region's
   copy of its source topic.
2. Another job's identity cannot read the payments job's topics, and the payments job's aggregate
   identity cannot write: the ACLs allow what the grant says and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flink_local as fl
import kafka_jars
import kafka_local as kl

STACK, JOB, OTHER = "aws-us-east-1", "payments", "surge-pricing"
USER = "kubernetes:kafka.strimzi.io/v1:KafkaUser"
PASSWORD = "rtdi-test-keystore"
WAIT = 120


def planned(plans) -> tuple[str, dict[str, dict]]:
    """The job's planned script and every planned KafkaUser spec of the stack, by user name."""
    plan = plans[STACK]
    (cm,) = [
        r
        for r in plan.of_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"]["name"] == f"{JOB}-sql"
    ]
    users = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in plan.of_type(USER)}
    return cm.inputs["data"]["job.sql"], users


def tls_material(workdir: Path) -> tuple[Path, Path]:
    """A PKCS12 keystore for the broker (127.0.0.1 in its SAN) and its certificate as PEM: the
    trust store a client reads with ssl.truststore.type=PEM."""
    store, pem = workdir / "broker.p12", workdir / "ca.crt"
    common = ["-keystore", str(store), "-storetype", "PKCS12", "-storepass", PASSWORD]
    subprocess.run(
        [
            "keytool",
            "-genkeypair",
            "-alias",
            "broker",
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-dname",
            "CN=localhost",
            "-ext",
            "SAN=ip:127.0.0.1,dns:localhost",
            "-validity",
            "2",
            "-keypass",
            PASSWORD,
            *common,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        ["keytool", "-exportcert", "-rfc", "-alias", "broker", "-file", str(pem), *common],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return store, pem


def secure(broker: kl.Broker, keystore: Path) -> int:
    """Add a SCRAM-SHA-512 over TLS listener and the StandardAuthorizer; PLAINTEXT stays the
    broker's own and the test's admin path (ANONYMOUS is a super user there)."""
    port = kl.free_port()
    c = broker.config
    c["listeners"] += f",SASL_SSL://{kl.LOOPBACK}:{port}"
    c["advertised.listeners"] += f",SASL_SSL://{kl.LOOPBACK}:{port}"
    c["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
    c.update(
        {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:ANONYMOUS",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.ssl.keystore.location": str(keystore),
            "listener.name.sasl_ssl.ssl.keystore.type": "PKCS12",
            "listener.name.sasl_ssl.ssl.keystore.password": PASSWORD,
            "listener.name.sasl_ssl.ssl.key.password": PASSWORD,
        }
    )
    return port


def acl_bindings(user: str, spec: dict) -> list:
    """Strimzi's `simple` ACLs of one KafkaUser as Kafka AclBindings (what its operator does)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    kinds = {
        "topic": ResourceType.TOPIC,
        "group": ResourceType.GROUP,
        "cluster": ResourceType.BROKER,
        "transactionalId": ResourceType.TRANSACTIONAL_ID,
    }
    out = []
    for acl in spec["authorization"]["acls"]:
        res = acl["resource"]
        pattern = (
            ResourcePatternType.PREFIXED
            if res.get("patternType") == "prefix"
            else ResourcePatternType.LITERAL
        )
        name = res.get("name", "kafka-cluster")
        for op in acl["operations"]:
            operation = AclOperation[re.sub(r"(?<!^)(?=[A-Z])", "_", op).upper()]
            out.append(
                AclBinding(
                    kinds[res["type"]],
                    name,
                    pattern,
                    f"User:{user}",
                    "*",
                    operation,
                    AclPermissionType.ALLOW,
                )
            )
    return out


def sign_in(bootstrap: str, user: str, password: str, pem: Path) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
        "ssl.ca.location": str(pem),
        "log_level": 0,
    }


@pytest.fixture(scope="module")
def world(plans, tmp_path_factory):
    flink = fl.require_flink()
    jars = kl.require_kafka(kafka_jars.fetched())
    from confluent_kafka.admin import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    root = tmp_path_factory.mktemp("workload-identity")
    sql, users = planned(plans)
    keystore, pem = tls_material(root)
    kafka = kl.broker("kafka", root, {})
    port = secure(kafka, keystore)
    try:
        kl.start_brokers([kafka], jars)
        topics = set(re.findall(r"'topic' = '([^']+)'", sql))
        pattern = re.search(r"'topic-pattern' = '([^']+)'", sql).group(1)  # type: ignore[union-attr]
        sources = [re.sub(r"\\(.)", r"\1", t) for t in pattern.split("|")]
        for topic in [*sources, *topics]:
            kl.retry(
                f"{topic} created",
                lambda t=topic: kl.create_topic(kafka.bootstrap, t, 2, {}),
                30,
                alive=[kafka.process],
            )
        passwords = {name: f"pw-{name}-{os.getpid()}" for name in users}
        client = kl.admin(kafka.bootstrap)
        upserts = [
            UserScramCredentialUpsertion(
                name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), pw.encode()
            )
            for name, pw in passwords.items()
        ]
        for future in client.alter_user_scram_credentials(upserts).values():
            future.result(30)
        bindings = [b for name, spec in users.items() for b in acl_bindings(name, spec)]
        for future in client.create_acls(bindings).values():
            future.result(30)
        yield flink, kafka, f"{kl.LOOPBACK}:{port}", pem, sql, sources, topics, passwords, root
    finally:
        kafka.stop()


def job_script(sql: str, bootstrap: str, pem: Path) -> str:
    """The planned script with only the endpoints and the trust store's path on loopback."""
    out = re.sub(r"(aggregate|regional)-kafka-bootstrap\.kafka\.svc:\d+", bootstrap, sql)
    return re.sub(r"/opt/rtdi/kafka/(aggregate|regional)/ca\.crt", str(pem), out)


def committed(bootstrap: str, topic: str) -> list[dict]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{time.monotonic_ns()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(2)])
        rows, idle = [], 0
        while idle < 3:
            msg = c.poll(0.5)
            if msg is None:
                idle += 1
                continue
            idle = 0
            if msg.error():
                raise RuntimeError(str(msg.error()))
            rows.append(json.loads(msg.value()))
        return rows
    finally:
        c.close()


@pytest.mark.integration
def test_the_job_runs_as_its_planned_identity_and_commits_exactly_once(world, monkeypatch):
    from confluent_kafka import Producer

    flink, kafka, secure_bootstrap, pem, sql, sources, topics, passwords, root = world
    script = root / "job.sql"
    script.write_text(job_script(sql, secure_bootstrap, pem))
    assert "${env:KAFKA_AGGREGATE_PASSWORD}" in script.read_text()  # not filled by rtdi
    for role in ("aggregate", "regional"):
        monkeypatch.setenv(f"KAFKA_{role.upper()}_PASSWORD", passwords[f"flink-{JOB}-{role}"])
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "log_level": 0})
    sent = []
    for i, topic in enumerate(sources * 5):
        row = {
            "payment_id": f"p-{i:03d}",
            "rider_id": f"r-{i % 7}",
            "amount_cents": 100 + i,
            "event_time": "2026-01-01 00:00:00.000",
        }
        producer.produce(topic, json.dumps(row).encode())
        sent.append(row)
    assert producer.flush(30) == 0
    conf = {
        "execution.checkpointing.interval": "2 s",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": (root / "checkpoints").as_uri(),
        "restart-strategy.type": "none",
        "parallelism.default": "1",
    }
    started = time.monotonic()
    runner = fl.start_runner("payments", flink, root, script, conf)
    (sink,) = topics
    try:
        kl.wait_for(
            f"{len(sent)} payments committed to {sink}",
            lambda: len(committed(kafka.bootstrap, sink)) >= len(sent),
            WAIT,
            interval=1,
            alive=[runner],
        )
        rows = committed(kafka.bootstrap, sink)
    finally:
        runner.popen.kill()
        runner.popen.wait(30)
    print(f"\npayments as its own SCRAM identity: {time.monotonic() - started:.1f} s")
    assert sorted(r["payment_id"] for r in rows) == sorted(r["payment_id"] for r in sent)
    log = runner.log_text()
    for pw in passwords.values():
        assert pw not in log, "a password reached the log"


@pytest.mark.integration
def test_the_acls_allow_nothing_beyond_the_grant(world):
    from confluent_kafka import Consumer, KafkaError, Producer

    _, _, secure_bootstrap, pem, _, sources, topics, passwords, _ = world
    other = f"flink-{OTHER}-aggregate"
    c = Consumer(
        {
            **sign_in(secure_bootstrap, other, passwords[other], pem),
            "group.id": f"flink-{OTHER}",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        c.subscribe([sources[0]])
        error = None
        deadline = time.monotonic() + 30
        while error is None and time.monotonic() < deadline:
            msg = c.poll(1)
            if msg is not None and msg.error():
                error = msg.error()
            elif msg is not None:
                pytest.fail(f"{other} read {sources[0]}, which only {JOB} may read")
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        c.close()
    mine = f"flink-{JOB}-aggregate"
    errors: list = []
    p = Producer(sign_in(secure_bootstrap, mine, passwords[mine], pem))
    (sink,) = topics
    p.produce(sink, b"x", on_delivery=lambda err, _m: errors.append(err))
    p.flush(30)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, errors
