"""Active/passive failover through MirrorMaker 2, with real Kafka on loopback, configured by rtdi.

The MirrorMaker 2 settings are not written here: they are the ``KafkaMirrorMaker2`` that rtdi plans
for the gcp-europe-west4 aggregate, its mirror from aws-us-east-1's regional cluster, translated to
dedicated mode (kafka_local.mm2_properties). The brokers get the ``Kafka`` config rtdi plans for
those two clusters, and ``trips`` the config of its ``KafkaTopic``. The test changes only what one
broker on loopback cannot satisfy (replication factors and minimum ISRs to 1, PLAINTEXT instead of
TLS and SCRAM, a local RemoteStorageManager instead of the Aiven plugin, 3 partitions instead of 24)
and the intervals that would make it wait minutes (kafka_local.MM2_TEST_INTERVALS);
`test_mirror_maker_applies_rtdi_settings` asserts the rest reached MirrorMaker 2 unchanged.

The scenario, as in production: MirrorMaker 2 runs; ``eta-service`` consumes ``trips`` in the source
region and commits; that region's consumers are lost while producers there go on (100 more records,
still mirrored); ``eta-service`` restarts against the aggregate on ``aws-us-east-1.trips``.
"""

from __future__ import annotations

import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kafka_jars
import kafka_local as kl

from infra import versions

CR = "kubernetes:kafka.strimzi.io/v1:"
SOURCE, TARGET = (
    "aws-us-east-1",
    "gcp-europe-west4",
)  # a Strimzi regional cluster (tiered) -> a Strimzi aggregate
TOPIC, GROUP, LAGGING = "trips", "eta-service", "surge-pricing"
REMOTE = f"{SOURCE}.{TOPIC}"  # DefaultReplicationPolicy: <source alias>.<topic>
PARTITIONS, FIRST, MORE = 3, 200, 100
WAIT = 90  # seconds, for any one thing MirrorMaker 2 has to do


def key(i: int) -> str:
    return f"trip-{i:04d}"


# --------------------------------------------------------------------------- rtdi's plan


def cr(plan, kind: str, name: str) -> dict:
    (found,) = [r.inputs for r in plan.of_type(CR + kind) if r.inputs["metadata"]["name"] == name]
    return found


def kafka_topic(plans, stack: str, topic: str) -> dict:
    (found,) = [
        r.inputs["spec"]
        for r in plans[stack].of_type(CR + "KafkaTopic")
        if r.inputs["spec"]["topicName"] == topic
        and r.inputs["metadata"]["labels"]["strimzi.io/cluster"] == "regional"
    ]
    return found


def mm2_spec(plans) -> dict:
    return cr(plans[TARGET], "KafkaMirrorMaker2", "aggregate-mirror")["spec"]


def mirror_config(plans, bootstrap: dict[str, str]) -> kl.MirrorConfig:
    config = kl.loopback_mirror(mm2_spec(plans), SOURCE, bootstrap)
    assert config.target == TARGET
    return config


# ---------------------------------------------------------------- offline: versions and translation


def test_pom_leaves_the_kafka_version_to_infra_versions():
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(kafka_jars.POM).getroot()
    kafka = [
        d
        for d in pom.iterfind("m:dependencies/m:dependency", ns)
        if d.findtext("m:groupId", namespaces=ns) == "org.apache.kafka"
    ]
    assert {d.findtext("m:artifactId", namespaces=ns) for d in kafka} >= {
        "kafka_2.13",
        "connect-runtime",
        "connect-mirror",
    }
    assert {d.findtext("m:version", namespaces=ns) for d in kafka} == {"${kafka.version}"}
    assert pom.find("m:properties/m:kafka.version", ns) is None, (
        "kafka.version must come from infra/versions.py"
    )
    assert versions.KAFKA_VERSION not in kafka_jars.POM.read_text()


def test_mm2_properties_carry_rtdi_connector_settings(plans):
    spec = mm2_spec(plans)
    (mirror,) = [m for m in spec["mirrors"] if m["source"]["alias"] == SOURCE]
    config = kl.mm2_properties(spec, SOURCE, {SOURCE: "s:1", TARGET: "t:1"})
    p, flow = config.properties, f"{SOURCE}->{TARGET}."
    assert (
        p["clusters"] == f"{SOURCE}, {TARGET}"
        and p[flow + "enabled"] == "true"
        and p[f"{TARGET}->{SOURCE}.enabled"] == "false"
    )
    assert (
        p[flow + "topics"] == mirror["topicsPattern"]
        and p[flow + "groups"] == mirror["groupsPattern"]
    )
    for connector in ("sourceConnector", "checkpointConnector"):
        for k, v in mirror[connector]["config"].items():
            assert p[flow + k] == (str(v).lower() if isinstance(v, bool) else str(v)), k
    for k, v in spec["target"]["config"].items():
        assert p[f"{TARGET}.{k}"] == str(v)
    assert p[f"{TARGET}.group.id"] == spec["target"]["groupId"]
    # The aggregate's mirror of its own region has one alias for both ends: Connect mode only.
    with pytest.raises(ValueError, match="two aliases"):
        kl.mm2_properties(spec, TARGET, {TARGET: "t:1"})


def test_single_broker_changes_only_replication_factors_and_min_isr():
    config, changed = kl.single_broker(
        {
            "replication.factor": 3,
            "min.insync.replicas": 2,
            "transaction.state.log.min.isr": 2,
            "rlmm.config.remote.log.metadata.topic.replication.factor": 3,
            "retention.ms": 5,
            "unclean.leader.election.enable": False,
        }
    )
    assert sorted(changed) == [
        "min.insync.replicas",
        "replication.factor",
        "rlmm.config.remote.log.metadata.topic.replication.factor",
        "transaction.state.log.min.isr",
    ]
    assert config["retention.ms"] == 5 and config["unclean.leader.election.enable"] is False


def test_without_java_or_jars_the_kafka_tests_skip_but_fail_in_ci():
    with pytest.raises(pytest.skip.Exception):
        kl.require_kafka(None, env={})
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        kl.require_kafka(None, env={"CI": "true"})


# --------------------------------------------------------------------------- real Kafka


@pytest.fixture(scope="module")
def jars() -> Path:
    return kl.require_kafka(kafka_jars.fetched())


@pytest.mark.integration
def test_fetched_jars_are_the_version_rtdi_deploys(jars):
    names = {p.name for p in jars.glob("*.jar")}
    v = versions.KAFKA_VERSION
    assert {
        f"kafka_2.13-{v}.jar",
        f"connect-mirror-{v}.jar",
        f"connect-runtime-{v}.jar",
        f"kafka-server-{v}.jar",
    } <= names
    log4j = {
        m.group(1): m.group(2)
        for n in names
        if (m := re.fullmatch(r"(log4j-core|log4j-slf4j-impl)-(.+)\.jar", n))
    }
    assert len(log4j) == 2 and len(set(log4j.values())) == 1, (
        f"the logging binding must match log4j-core: {log4j}"
    )


@pytest.fixture(scope="module")
def world(plans, jars, tmp_path_factory):
    """Two single-node KRaft clusters as aws-us-east-1's regional and gcp-europe-west4's aggregate,
    ``trips`` on the first, and MirrorMaker 2 between them; all stopped at the end."""
    started = time.monotonic()
    root = tmp_path_factory.mktemp("mirror-failover")
    regional = cr(plans[SOURCE], "Kafka", "regional")["spec"]["kafka"]
    aggregate = cr(plans[TARGET], "Kafka", "aggregate")["spec"]["kafka"]
    src = kl.broker("source", root, regional["config"], tiered="tieredStorage" in regional)
    tgt = kl.broker("target", root, aggregate["config"], tiered="tieredStorage" in aggregate)
    processes: list[kl.JavaProcess] = []
    try:
        kl.start_brokers([src, tgt], jars)
        processes += [src.process, tgt.process]
        trips = kafka_topic(plans, SOURCE, TOPIC)
        # The tiered keys are left to test_tiered_topic_reaches_an_aggregate_without_tiered_storage.
        topic_config, _ = kl.single_broker(
            {k: v for k, v in trips["config"].items() if k not in kl.TIERED_TOPIC_KEYS}
        )
        kl.retry(
            f"{TOPIC} created on the source",
            lambda: kl.create_topic(src.bootstrap, TOPIC, PARTITIONS, topic_config),
            30,
            alive=processes,
        )
        config = mirror_config(plans, {SOURCE: src.bootstrap, TARGET: tgt.bootstrap})
        mm2 = kl.start_mirror_maker(config, jars, root)
        processes.append(mm2)
        kl.wait_for(
            f"MirrorMaker 2 to create {REMOTE} on the target",
            lambda: REMOTE in kl.topics(tgt.bootstrap),
            WAIT,
            interval=1,
            alive=processes,
            last=lambda: mm2.tail(5),
        )
        yield SimpleNamespace(
            src=src,
            tgt=tgt,
            mm2=mm2,
            config=config,
            trips=trips,
            root=root,
            startup=time.monotonic() - started,
        )
    finally:
        for p in reversed(processes):
            p.stop()
        for b in (src, tgt):
            b.stop()


def _read_to_end(records, ends: dict[int, int], start: dict[int, int]) -> bool:
    """True once every partition has been read up to its end offset, starting from ``start``."""
    last = {}
    for r in records:
        last[r.partition] = max(last.get(r.partition, -1), r.offset)
    return all(last.get(p, start.get(p, 0) - 1) + 1 >= end for p, end in ends.items())


@pytest.mark.integration
def test_consumer_group_resumes_on_the_aggregate_from_translated_offsets(world):
    """What is asserted, and why:

    1. After ``eta-service`` committed on the source, its committed offsets on the aggregate's
       ``aws-us-east-1.trips`` become *exactly* the source ones, partition by partition. MirrorMaker
       2 translates an offset exactly only at an offset sync; a caught-up group sits one past its
       partition's last record, whose sync the source task sends at its next offset flush.
    2. Records produced after the failure are mirrored; ``eta-service`` started on the aggregate
       with ``auto.offset.reset=error`` (so it can only start from committed offsets) reads exactly
       those 100 keys: none it had consumed (no duplicate) and none missing (no loss), each on the
       partition it had in the source region and in source order.
    3. ``surge-pricing`` committed half-way through each partition, between offset syncs. There
       MirrorMaker 2 translates conservatively, to one past the latest sync at or before the commit
       (at worst the sync of the partition's first mirrored record, so offset 1), never past it. So
       on the aggregate each partition resumes at an offset in [1, source commit] and is read
       without a gap to its end: no record it had not consumed is lost, and what it re-reads is
       exactly the gap between its source commit and the translated offset (printed).
    """
    src, tgt = world.src, world.tgt
    first = kl.produce(src.bootstrap, TOPIC, [key(i) for i in range(FIRST)])
    ends = {
        p: 1 + max((r.offset for r in first.values() if r.partition == p), default=-1)
        for p in range(PARTITIONS)
    }
    assert sum(ends.values()) == FIRST and all(ends.values()), (
        f"keys must spread over {PARTITIONS} partitions: {ends}"
    )

    # eta-service consumes everything so far in the source region and commits.
    seen, c = kl.consume(src.bootstrap, GROUP, TOPIC, lambda rs: len(rs) >= FIRST)
    source_offsets = {
        p: 1 + max((r.offset for r in seen if r.partition == p), default=-1)
        for p in range(PARTITIONS)
    }
    kl.commit(c, TOPIC, source_offsets)
    c.close()
    assert source_offsets == ends and {r.key for r in seen} == set(first)
    # surge-pricing had read half of each partition.
    lagging = {p: end // 2 for p, end in ends.items()}
    kl.commit(kl.consumer(src.bootstrap, LAGGING, "earliest"), TOPIC, lagging, close=True)

    kl.wait_for(
        f"{GROUP}'s offsets on {REMOTE} to equal its source offsets {source_offsets}",
        lambda: kl.committed(tgt.bootstrap, GROUP, REMOTE, PARTITIONS) == source_offsets,
        WAIT,
        alive=[world.mm2],
        last=lambda: kl.committed(tgt.bootstrap, GROUP, REMOTE, PARTITIONS),
    )
    translated = kl.wait_for(
        f"{LAGGING}'s offsets on {REMOTE}",
        lambda: (
            (t := kl.committed(tgt.bootstrap, LAGGING, REMOTE, PARTITIONS))
            and len(t) == PARTITIONS
            and t
        ),
        WAIT,
        alive=[world.mm2],
    )

    # The source region's consumers are gone; its producers go on, and MirrorMaker 2 keeps
    # mirroring.
    more = kl.produce(src.bootstrap, TOPIC, [key(i) for i in range(FIRST, FIRST + MORE)])
    produced = {**first, **more}
    kl.wait_for(
        f"all {FIRST + MORE} records on {REMOTE}",
        lambda: sum(kl.end_offsets(tgt.bootstrap, REMOTE, PARTITIONS).values()) == FIRST + MORE,
        WAIT,
        alive=[world.mm2],
        last=lambda: kl.end_offsets(tgt.bootstrap, REMOTE, PARTITIONS),
    )
    target_ends = kl.end_offsets(tgt.bootstrap, REMOTE, PARTITIONS)

    # eta-service fails over to the aggregate.
    resumed, c = kl.consume(
        tgt.bootstrap,
        GROUP,
        REMOTE,
        lambda rs: _read_to_end(rs, target_ends, source_offsets),
        reset="error",
        timeout=WAIT,
    )
    c.close()
    keys = [r.key for r in resumed]
    assert len(keys) == len(set(keys)), "no record twice"
    assert set(keys) == set(more), (
        f"exactly the {MORE} records produced after the commit: "
        f"{len(set(keys) - set(more))} re-read, {len(set(more) - set(keys))} lost"
    )
    for r in resumed:
        assert (r.partition, r.value) == (produced[r.key].partition, produced[r.key].value), r
    for p in range(PARTITIONS):
        in_p = [r for r in resumed if r.partition == p]
        assert [r.key for r in in_p] == [
            k for k, s in sorted(more.items(), key=lambda kv: kv[1].offset) if s.partition == p
        ]

    # surge-pricing fails over too: translated conservatively, so it re-reads the gap and loses
    # nothing.
    assert all(1 <= translated[p] <= lagging[p] for p in range(PARTITIONS)), (
        f"translated {translated}, source {lagging}"
    )
    resumed, c = kl.consume(
        tgt.bootstrap,
        LAGGING,
        REMOTE,
        lambda rs: _read_to_end(rs, target_ends, lagging),
        reset="error",
        timeout=WAIT,
    )
    c.close()
    starts = {}
    for p in range(PARTITIONS):
        offsets = [r.offset for r in resumed if r.partition == p]
        starts[p] = offsets[0]
        assert 1 <= starts[p] <= lagging[p], (
            f"partition {p} resumed at {starts[p]}; source commit {lagging[p]}"
        )
        assert offsets == list(range(starts[p], target_ends[p])), (
            f"partition {p}: a gap or a repeat"
        )
    unread = {k for k, r in produced.items() if r.offset >= lagging[r.partition]}
    got = [r.key for r in resumed]
    assert unread <= set(got), f"lost {sorted(unread - set(got))[:10]}"
    duplicates = len(got) - len(unread)
    assert duplicates == sum(lagging[p] - starts[p] for p in range(PARTITIONS))
    print(
        f"\n{LAGGING}: committed {lagging} on the source, resumed at {starts} on the aggregate: "
        f"{duplicates} records re-read; setup {world.startup:.0f} s"
    )


@pytest.mark.integration
def test_mirror_maker_applies_rtdi_settings(world, plans):
    """Every key rtdi sets reached the connector, worker or producer config MirrorMaker 2 logged,
    with rtdi's value unless kl.loopback_mirror changed it; offset sync and checkpoints were
    not."""
    config, spec = world.config, mm2_spec(plans)
    (mirror,) = [m for m in spec["mirrors"] if m["source"]["alias"] == SOURCE]
    source_cfg, checkpoint_cfg = (
        mirror["sourceConnector"]["config"],
        mirror["checkpointConnector"]["config"],
    )
    flow = config.flow
    untouched = [
        "sync.group.offsets.enabled",
        "emit.checkpoints.enabled",
        "producer.override.acks",
        "producer.override.enable.idempotence",
        "offset-syncs.topic.location",
        "sync.topic.configs.enabled",
    ]
    for k in untouched:
        assert flow + k not in config.overridden
        assert (
            config.properties[flow + k]
            == kl.as_strings({k: {**source_cfg, **checkpoint_cfg}[k]})[k]
        )
    assert (
        checkpoint_cfg["sync.group.offsets.enabled"] is True
        and checkpoint_cfg["emit.checkpoints.enabled"] is True
    )

    log = world.mm2.log_text()
    blocks = {
        name: kl.logged_configs(log, name)
        for name in (
            "MirrorSourceConfig",
            "MirrorCheckpointConfig",
            "DistributedConfig",
            "ProducerConfig",
        )
    }
    assert all(blocks.values()), {k: len(v) for k, v in blocks.items()}

    def expected(k: str) -> str:
        return config.properties[k]

    problems = []
    for name, cfg in (
        ("MirrorSourceConfig", source_cfg),
        ("MirrorCheckpointConfig", checkpoint_cfg),
    ):
        for k in cfg:
            if k.startswith("producer.override."):
                continue
            values = {_as_logged(b.get(k)) for b in blocks[name]}
            if values != {_as_logged(expected(flow + k))}:
                problems.append(f"{name} {k}: logged {values}, set {expected(flow + k)!r}")
    producers = [
        b for b in blocks["ProducerConfig"] if "MirrorSourceConnector" in b.get("client.id", "")
    ]
    assert producers, "no producer of MirrorSourceConnector's tasks was logged"
    for b in producers:
        if (b["acks"], b["enable.idempotence"]) != ("-1", "true"):
            problems.append(
                f"task producer {b['client.id']}: acks={b['acks']} "
                f"enable.idempotence={b['enable.idempotence']}"
            )
    workers = blocks["DistributedConfig"]
    target = spec["target"]
    worker_expected = {
        "group.id": target["groupId"],
        "config.storage.topic": target["configStorageTopic"],
        "offset.storage.topic": target["offsetStorageTopic"],
        "status.storage.topic": target["statusStorageTopic"],
        **{k: expected(f"{TARGET}.{k}") for k in target["config"]},
    }
    for k, v in worker_expected.items():
        if {b.get(k) for b in workers} != {v}:
            problems.append(
                f"DistributedConfig {k}: logged { ({b.get(k) for b in workers}) }, set {v!r}"
            )
    assert not problems, "\n".join(problems)


def _as_logged(value):
    """Kafka logs a list-typed setting as `[a, b]`; a properties file spells it `a, b`."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    return tuple(part.strip() for part in value.split(",")) if isinstance(value, str) else value


TIERED_REJECTED = "Tiered Storage functionality is disabled in the broker"


@pytest.mark.integration
def test_tiered_topic_reaches_an_aggregate_without_tiered_storage(world, plans):
    """A topic of a tiered regional cluster (rtdi's config for it, tiered keys included) is
    mirrored.

    MirrorMaker 2 creates the mirrored topic with the source topic's configs; without rtdi's
    config.properties.exclude it copied remote.storage.enable, and an aggregate whose brokers have
    no tiered storage refused the topic, so nothing of that topic was ever mirrored.
    """
    src, tgt = world.src, world.tgt
    name = f"{TOPIC}.{GROUP}.dlq"  # in rtdi's topic pattern; its KafkaTopic asks for tiered storage
    spec = kafka_topic(plans, SOURCE, name)
    assert spec["config"].get("remote.storage.enable") is True
    topic_config, _ = kl.single_broker(spec["config"])
    kl.create_topic(src.bootstrap, name, 1, topic_config)
    kl.produce(src.bootstrap, name, [key(i) for i in range(10)])
    remote = f"{SOURCE}.{name}"
    failure = re.compile(rf"Could not create topic {re.escape(remote)}\..*\n(.*)")

    def mirrored():
        if m := failure.search(world.mm2.log_text()):
            if TIERED_REJECTED in m.group(1):
                pytest.fail(
                    f"the tiered-storage keys were copied to the aggregate: {m.group(1)}",
                    pytrace=False,
                )
            pytest.fail(
                f"MirrorMaker 2 could not create {remote} on the aggregate: {m.group(1)}",
                pytrace=False,
            )
        return (
            remote in kl.topics(tgt.bootstrap)
            and sum(kl.end_offsets(tgt.bootstrap, remote, 1).values()) == 10
        )

    kl.wait_for(
        f"{remote} with 10 records on the aggregate", mirrored, WAIT, interval=1, alive=[world.mm2]
    )
