"""The drill's Kafka calls (infra/drill/kafka.py LiveKafka) against one real broker on loopback.

One KRaft broker (the session's `kafka`) stands for every cluster a drill talks to: topics named
as the copies are (`<region>.<topic>`), MirrorMaker 2's offset-syncs topic written in its own
format, and a real consumer group. The two-region drill with MirrorMaker 2 running and its
faults are tests/integration/test_drill_real.py's; this module proves the pieces it relies on:
``stop`` waits while the group has a member and returns once it leaves; the loss and re-read
alignment finds records by identity in real topics (timestamps, keys, values, headers read
back); the offset syncs written here are what Kafka's own ``OffsetSync`` reads (the offset-sync
jar translates through them); and preflight's replication and sync lags on real end offsets.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kafka_local as kl

from infra.drill.groups import ActivePassiveGroup
from infra.drill.kafka import LiveKafka, Rec, encode_offset_sync
from infra.drill.run import StepFailed

pytestmark = pytest.mark.integration


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def side(bootstrap: str, **kw) -> LiveKafka:
    client = {"bootstrap.servers": bootstrap}
    clients = {r: {"regional": client, "aggregate": client} for r in ("old", "new")}
    return LiveKafka(clients, max_lag=kw.pop("max_lag", 1000), max_sync_lag=100, **kw)


def produce(bootstrap: str, topic: str, records: list[tuple[int, Rec]]) -> None:
    """``records`` (partition, record) with their own timestamps and headers, in order."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "log_level": 0})
    for partition, r in records:
        p.produce(
            topic,
            value=r.value,
            key=r.key,
            partition=partition,
            timestamp=r.timestamp,
            headers=list(r.headers),
        )
    assert p.flush(60) == 0


def payments(n: int, start: int = 0) -> list[Rec]:
    base = 1_700_000_000_000
    return [
        Rec(base + i * 10, f"pay-{i:05d}".encode(), f"amount-{i}".encode(), (("trace", b"%d" % i),))
        for i in range(start, start + n)
    ]


def test_stop_waits_while_the_group_has_a_member_and_returns_when_it_leaves(kafka):
    topic, group = unique("old.stop"), unique("ledger")
    kl.create_topic(kafka.bootstrap, topic, 1, {})
    c = kl.consumer(kafka.bootstrap, group, "earliest")
    c.subscribe([topic])
    # A fresh broker creates its offsets topic first: a join can take a while.
    kl.wait_for("the consumer to join", lambda: (c.poll(0.2), c.assignment())[1], 90)
    ks = side(kafka.bootstrap, stop_timeout=3)
    g = ActivePassiveGroup(group, ("stop",))
    began = time.monotonic()
    with pytest.raises(StepFailed, match=f"{group} still has 1 member"):
        ks.stop([g], "old")
    assert time.monotonic() - began >= 3
    ks.stop_timeout = 60
    done: list[float] = []
    waiter = threading.Thread(target=lambda: (ks.stop([g], "old"), done.append(time.monotonic())))
    waiter.start()
    time.sleep(3)
    assert waiter.is_alive() and not done, "stop returned while the member was there"
    left = time.monotonic()
    c.close()
    waiter.join(60)
    assert done and done[0] - left < 15, "stop did not return once the member left"
    # A Flink job's group is not waited for: its source assigns partitions and joins nothing.
    ks.stop([ActivePassiveGroup(unique("flink"), ("stop",), job="payments")], "old")


def test_loss_and_rereads_by_record_identity_on_real_topics(kafka):
    """The old copy holds payments 0..99; the new copy 30 other records, then 0..99 again (its
    offsets shifted by 30). The group committed 60 in the old copy: payment 60 is the first it
    had not consumed, at 90 in the new copy. Resuming at 85 re-reads 5; at 93 loses 3."""
    b = kafka.bootstrap
    old, new, group = unique("old.pay"), unique("new.pay"), unique("ledger")
    for t in (old, new):
        kl.create_topic(b, t, 2, {})
    records = payments(100)
    produce(b, old, [(0, r) for r in records])
    other = [Rec(r.timestamp, r.key, b"other", r.headers) for r in payments(30, 500)]
    produce(b, new, [(0, r) for r in [*other, *records]])
    ks = side(b)
    ks.commit("old", group, {old: {0: 60}})
    assert ks.committed("old", group, [(old, 0), (old, 1)]) == {old: {0: 60}}
    edges = ks._edges("old", ks.committed("old", group, [(old, 0)]))
    first, last = edges[old, 0]
    assert (first, last) == (records[60], records[59])
    assert first is not None and first.headers == (("trace", b"60"),)
    assert ks._locate("new", new, 0, first) == [90]
    reread = ks._align("new", new, 0, 85, first, last)
    assert (reread.position, reread.lost, reread.reread) == (90, 0, 5)
    lost = ks._align("new", new, 0, 93, first, last)
    assert (lost.position, lost.lost, lost.reread) == (90, 3, 0)
    # Caught up: the group committed the old copy's end, so it must resume after payment 99.
    ks.commit("old", group, {old: {0: 100}})
    first, last = ks._edges("old", ks.committed("old", group, [(old, 0)]))[old, 0]
    assert first is None and last == records[99]
    exact = ks._align("new", new, 0, 130, first, last)
    assert (exact.position, exact.lost, exact.reread) == (130, 0, 0)
    # A value that differs is another record: a copy without payment 60 finds nothing.
    changed = Rec(records[60].timestamp, records[60].key, b"amount-x", records[60].headers)
    assert ks._locate("new", new, 0, changed) == []


def test_offset_syncs_as_kafka_reads_them_and_preflight_lags(kafka, tmp_path):
    """Syncs written in MirrorMaker 2's format: the offset-sync jar (Kafka's OffsetSync reads
    them) maps a committed offset through them as planned, and preflight measures replication
    and sync lag from them and the real end offsets."""
    from infra.components.kafka import offset_sync as osync

    b = kafka.bootstrap
    region = unique("r")
    topic = "pay"
    copy, syncs = f"{region}.{topic}", osync.offset_syncs_topic(region)
    kl.create_topic(b, topic, 1, {})
    kl.create_topic(b, copy, 1, {})
    kl.create_topic(b, syncs, 1, {"cleanup.policy": "compact"})
    produce(b, topic, [(0, r) for r in payments(120)])
    produce(b, copy, [(0, r) for r in payments(100)])
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": b, "log_level": 0})
    for up, down in ((0, 0), (60, 60), (99, 99)):
        key, value = encode_offset_sync(topic, 0, up, down)
        p.produce(syncs, key=key, value=value, partition=0)
    assert p.flush(30) == 0

    client = {"bootstrap.servers": b}
    clients = {region: {"regional": client, "aggregate": client}, "new": {"aggregate": client}}
    drill = SimpleNamespace(
        groups=[ActivePassiveGroup("g", (topic,))], regions=[region], source=region, target="new"
    )
    ks = LiveKafka(clients, max_lag=10, max_sync_lag=100)
    assert ks.syncs("new", region) == {(topic, 0): (99, 99)}
    (line,) = ks.preflight(drill)  # type: ignore[arg-type]
    assert line == (
        f"replication-lag: {copy} into new's aggregate, records not yet there: [0] 20 (at most 10)"
    )
    ks.max_lag, ks.max_sync_lag = 20, 0
    assert ks.preflight(drill) == []  # type: ignore[arg-type]
    produce(b, copy, [(0, r) for r in payments(5, 100)])
    lines = ks.preflight(drill)  # type: ignore[arg-type]
    assert [x.split(", newest")[0] for x in lines] == [
        f"offset-syncs: {copy} in {where}'s aggregate" for where in (region, "new")
    ]
    assert all(x.endswith("end: [0] 5 (at most 0)") for x in lines), lines

    if not osync.JAR.is_file():
        pytest.skip(f"{osync.JAR} is not built: run `make offset-sync-jar`")
    group = unique("ledger")
    ks.commit(region, group, {copy: {0: 70}})
    props = osync.sync_properties([group], region, "other", client, client)
    (g,) = osync.run_once(props)["groups"]
    (row,) = g["partitions"]
    # 70 lies past the sync 60 -> 60: regional 61 certainly consumed; forward: 60 + 1.
    assert (row["sourceOffset"], row["upstreamOffset"], row["translatedOffset"]) == (70, 61, 61)


def test_verify_waits_for_a_member_past_the_translated_offsets_and_a_falling_lag(kafka):
    """verify on a real group: without a member it fails after its timeout, naming what is
    missing; with a consumer that reads on from the translated offsets while records keep
    arriving, it returns the clock reading of the group's first commit past them (seen by the
    watcher sync_offsets starts) and two lags, the second lower."""
    b = kafka.bootstrap
    copy, group = unique("new.pay"), unique("ledger")
    kl.create_topic(b, copy, 2, {})
    produce(b, copy, [(i % 2, r) for i, r in enumerate(payments(400))])
    ks = side(b, verify_timeout=4)
    translated = {copy: {0: 50, 1: 60}}
    ks.commit("new", group, translated)
    drill = SimpleNamespace(groups=[ActivePassiveGroup(group, ("pay",))], target="new")
    with pytest.raises(StepFailed, match=f"{group}: in new's aggregate, no member after 4 s"):
        ks.verify(drill, {group: translated})  # type: ignore[arg-type]

    ks = side(b, verify_timeout=60)
    ks._watch("new", group, translated)
    halt, first = threading.Event(), []

    def consume() -> None:
        c = kl.consumer(b, group, "error")
        c.subscribe([copy])
        while not halt.is_set():
            batch = c.consume(num_messages=20, timeout=0.5)
            position = {m.partition(): m.offset() + 1 for m in batch if not m.error()}
            if position:
                kl.commit(c, copy, position)
                first[:] = first or [time.monotonic()]
            time.sleep(0.2)  # a slow consumer: the lag falls over several looks
        c.close()

    reader = threading.Thread(target=consume)
    reader.start()
    try:
        got = ks.verify(drill, {group: translated})[group]  # type: ignore[arg-type]
    finally:
        halt.set()
        reader.join(30)
    assert got["resumedAt"] is not None and first, (got, first)
    assert abs(got["resumedAt"] - first[0]) < 1.0, (got["resumedAt"], first)
    first_lag, last_lag = got["lag"]
    assert last_lag < first_lag or last_lag == 0
    assert first_lag <= 400 - 110
    assert not any(t.is_alive() for t in ks._watchers)
