"""The Kafka side of `rtdi drill run` (``KafkaSide`` in infra/drill/run.py), on live clusters.

What it talks to is a clients file (``load_clients``): per region, Kafka's Java client
properties of its regional and its aggregate cluster, as a person who can reach both regions
holds them. The offset-sync jar (jobs/offset-sync) takes them as they are; the measurements made
here (confluent-kafka, librdkafka underneath) take a documented subset, mapped by
``librdkafka_config``, and refuse the rest by name rather than guess (MSK IAM and OAUTHBEARER
need callback classes that only a JVM has).

Why measure by record identity: the offsets of the old and the new primary's copies of a
regional topic differ, and the translation rounds towards re-reading through MirrorMaker 2's
offset syncs. Whether a group lost or re-read records is a question about records, so
``sync_offsets`` finds the first record the group had not consumed in the old copy (its
timestamp, key, value and headers, which MirrorMaker 2 keeps) in the new copy, near the
translated offset, before anything consumes there: ``align`` turns the positions into records
lost and re-read.

``confluent_kafka`` is imported inside the functions that use it: the Pulumi program and
`rtdi plan` never need it.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.drill.groups import ActivePassiveGroup
from infra.drill.plan import DrillPlan
from infra.drill.run import StepFailed
from infra.topology.errors import ConfigError, Issue

Clients = Mapping[str, Mapping[str, Mapping[str, str]]]
ROLES = ("regional", "aggregate")
WHERE = "rtdi drill run"
INSTALL = "pip install 'confluent-kafka>=2.6,<3'"

# Java client property -> librdkafka property, for the keys that mean the same in both.
SAME = {"bootstrap.servers": "bootstrap.servers", "security.protocol": "security.protocol"}
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
MECHANISMS = {"PLAIN": PLAIN, "SCRAM-SHA-256": SCRAM, "SCRAM-SHA-512": SCRAM}
MAPPED = (
    "bootstrap.servers",
    "security.protocol",
    "sasl.mechanism",
    "sasl.jaas.config",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
)
# Answers of a group coordinator that is loading or moving (a broker starting, a leader change):
# asked again, not failed.
COORDINATOR_MOVES = ("COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR")
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_JAAS = re.compile(r"^\s*([\w.$]+)\s+required\b(.*?);?\s*$", re.S)
_JAAS_OPTION = re.compile(r'\s*(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


# --------------------------------------------------------------------------- the clients file


def filled(value: str, env: Mapping[str, str]) -> str:
    """``${env:NAME}`` replaced from ``env``, as the offset-sync jar fills its files; KeyError
    names the first variable that is not set."""

    def one(m: re.Match[str]) -> str:
        return env[m.group(1)]

    return _ENV.sub(one, value)


def librdkafka_config(
    java: Mapping[str, str], where: str, key: str, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The librdkafka configuration that means what the Java client ``java`` means, or
    ConfigError naming (``where``, ``key``.<property>) each property it cannot carry over."""
    env = os.environ if env is None else env
    issues: list[Issue] = []
    out: dict[str, str] = {}

    def bad(prop: str, message: str, value: Any = None) -> None:
        shown = "[hidden]" if prop == "sasl.jaas.config" else value
        issues.append(Issue(where, f"{key}.{prop}", message, shown))

    values: dict[str, str] = {}
    for prop, raw in java.items():
        try:
            values[prop] = filled(raw, env)
        except KeyError as e:
            bad(prop, f"needs environment variable {e.args[0]}, which is not set; allowed: set it")
    for prop, value in values.items():
        if prop in SAME:
            out[SAME[prop]] = value
        elif prop not in MAPPED:
            bad(
                prop,
                "not a property the drill's measurements can carry over to librdkafka; "
                f"allowed: {', '.join(MAPPED)}",
                value,
            )
    protocol = values.get("security.protocol", "PLAINTEXT").upper()
    if "security.protocol" in values and protocol not in PROTOCOLS:
        bad("security.protocol", f"allowed: {', '.join(PROTOCOLS)}", values["security.protocol"])
    mechanism = values.get("sasl.mechanism")
    if mechanism is not None:
        if mechanism not in MECHANISMS:
            bad(
                "sasl.mechanism",
                "needs a JVM login callback (MSK IAM, OAUTHBEARER, GSSAPI are not measured from "
                f"Python); allowed: {', '.join(MECHANISMS)} (give the drill SCRAM credentials)",
                mechanism,
            )
        else:
            out["sasl.mechanisms"] = mechanism
    jaas = values.get("sasl.jaas.config")
    if jaas is not None:
        m = _JAAS.match(jaas)
        options = dict(_JAAS_OPTION.findall(m.group(2))) if m else {}
        wanted = MECHANISMS.get(mechanism or "PLAIN")
        if m is None or m.group(1) != wanted or {"username", "password"} - options.keys():
            bad(
                "sasl.jaas.config",
                f"allowed: {wanted or 'a PLAIN or SCRAM login module'} required "
                'username="..." password="..."; (the login module of sasl.mechanism)',
                jaas,
            )
        else:
            unescape = {k: re.sub(r"\\(.)", r"\1", v) for k, v in options.items()}
            out["sasl.username"], out["sasl.password"] = unescape["username"], unescape["password"]
    trust = values.get("ssl.truststore.type")
    if trust is not None and trust.upper() != "PEM":
        bad(
            "ssl.truststore.type",
            "librdkafka reads PEM only; allowed: PEM (convert the truststore)",
            trust,
        )
    if "ssl.truststore.location" in values:
        if trust is None:
            bad(
                "ssl.truststore.location",
                "a JKS truststore (Java's default type) cannot be read here; allowed: with "
                "ssl.truststore.type: PEM",
                values["ssl.truststore.location"],
            )
        out["ssl.ca.location"] = values["ssl.truststore.location"]
    if "ssl.truststore.certificates" in values:
        out["ssl.ca.pem"] = values["ssl.truststore.certificates"]
    if "bootstrap.servers" not in values:
        issues.append(
            Issue(where, f"{key}.bootstrap.servers", "is missing; allowed: host:port[,...]")
        )
    if issues:
        raise ConfigError(issues)
    return out


def needed(drill: DrillPlan) -> dict[str, tuple[str, ...]]:
    """Which clusters a drill measures: both primaries' aggregates, and the regional cluster of
    every region whose copies the new primary's groups read (the replication-lag checks)."""
    out: dict[str, tuple[str, ...]] = {r: ("regional",) for r in drill.regions}
    for region in (drill.source, drill.target):
        out[region] = (*out.get(region, ()), "aggregate")
    return out


def load_clients(
    path: Path, drill: DrillPlan, env: Mapping[str, str] | None = None
) -> dict[str, dict[str, dict[str, str]]]:
    """The clients file: ``<region>: {regional: {<Java client property>: value}, aggregate:
    {...}}``; ConfigError with one line per problem (file, key, value, what is allowed)."""
    import yaml

    where = str(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        message = f"cannot read it ({e.strerror}); allowed: a YAML file"
        raise ConfigError([Issue(WHERE, "--clients", message, where)]) from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        at = f" (line {line + 1})" if line is not None else ""
        message = f"not valid YAML{at}; allowed: a YAML mapping"
        raise ConfigError([Issue(where, "", message)]) from None
    if not isinstance(doc, dict):
        message = "allowed: a mapping of region -> {regional, aggregate} -> properties"
        raise ConfigError([Issue(where, "", message)])
    issues: list[Issue] = []
    out: dict[str, dict[str, dict[str, str]]] = {}
    for region, roles in doc.items():
        if region not in drill.regions:
            issues.append(
                Issue(where, str(region), f"not a region; allowed: {', '.join(drill.regions)}")
            )
            continue
        if not isinstance(roles, dict):
            issues.append(Issue(where, region, "allowed: a mapping with regional and aggregate"))
            continue
        for role, props in roles.items():
            key = f"{region}.{role}"
            if role not in ROLES:
                issues.append(Issue(where, key, f"not a cluster role; allowed: {', '.join(ROLES)}"))
                continue
            if not isinstance(props, dict):
                issues.append(
                    Issue(where, key, "allowed: a mapping of Java client properties to values")
                )
                continue
            java: dict[str, str] = {}
            refused = len(issues)
            for prop, value in props.items():
                if isinstance(value, bool) or not isinstance(value, str | int):
                    issues.append(
                        Issue(where, f"{key}.{prop}", "allowed: a string or a number", value)
                    )
                else:
                    java[str(prop)] = str(value)
            if len(issues) == refused:  # what librdkafka would make of it, once all are text
                try:
                    librdkafka_config(java, where, key, env)
                except ConfigError as e:
                    issues += e.issues
            out.setdefault(region, {})[role] = java
    for region, roles in needed(drill).items():
        for role in roles:
            if role not in out.get(region, {}) and region in drill.regions:
                why = (
                    "the drill translates and measures the groups there"
                    if role == "aggregate"
                    else f"the replication-lag check reads its end offsets ({region}'s copies)"
                )
                issues.append(
                    Issue(where, f"{region}.{role}", f"is missing; allowed: its client ({why})")
                )
    if issues:
        raise ConfigError(issues)
    return out


def sync_lag_bound(drill: DrillPlan, max_sync_lag: int | None) -> int:
    """The offset-syncs check's bound: ``--max-sync-lag``, else the largest ``offset.lag.max``
    of the MirrorMaker 2 mirrors into both primaries' aggregates (the plan's check says which)."""
    from infra.drill.plan import OFFSET_LAG_MAX, _mirrors_into

    if max_sync_lag is not None:
        return max_sync_lag
    found = [
        int(config.get("offset.lag.max", OFFSET_LAG_MAX))
        for region in (drill.source, drill.target)
        for name, config in _mirrors_into(drill.before[drill.stacks[region]]).values()
        if name.startswith("KafkaMirrorMaker2")
    ]
    return max(found, default=OFFSET_LAG_MAX)


# --------------------------------------------------------------------------- records, aligned


@dataclass(frozen=True)
class Rec:
    """What MirrorMaker 2 keeps of a record: its identity in every copy."""

    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass
class Alignment:
    """Where a group resumes against where it should: ``position`` is the offset in the new copy
    of the first record it had not consumed (None: not found there)."""

    translated: int
    position: int | None
    lost: int = 0
    reread: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "translated": self.translated,
            "firstUnconsumedAt": self.position,
            "lost": self.lost,
            "reread": self.reread,
        }


def align(
    translated: int,
    copy: Sequence[tuple[int, Rec]],
    first_unconsumed: Rec | None,
    last_consumed: Rec | None,
) -> Alignment:
    """Records lost and re-read by a group that resumes at ``translated`` in the new copy.

    ``copy``: (offset, record) of the new copy around ``translated``, in offset order.
    ``first_unconsumed``: the record at the group's committed offset in the old copy; None when
    the group had consumed everything there, and then the record after ``last_consumed`` (its
    last one) is where it must resume. A record found more than once (MirrorMaker 2 copies at
    least once) counts at its first position at or after ``translated``: the group reads it
    there; lost is counted only when every occurrence lies before ``translated``."""
    target, shift = (first_unconsumed, 0) if first_unconsumed is not None else (last_consumed, 1)
    if target is None:
        return Alignment(translated, None)
    found = [offset + shift for offset, rec in copy if rec == target]
    if not found:
        return Alignment(translated, None)
    ahead = [f for f in found if f >= translated]
    if ahead:
        return Alignment(translated, ahead[0], reread=ahead[0] - translated)
    return Alignment(translated, found[-1], lost=translated - found[-1])


# --------------------------------------------------------------------------- offset syncs


def decode_offset_sync(key: bytes, value: bytes) -> tuple[str, int, int, int]:
    """(topic, partition, upstream offset, downstream offset) of a MirrorMaker 2 offset sync:
    its key a Kafka protocol struct (STRING topic: int16 length and UTF-8; INT32 partition), its
    value two INT64s (``org.apache.kafka.connect.mirror.OffsetSync``)."""
    (n,) = struct.unpack_from(">h", key, 0)
    topic = key[2 : 2 + n].decode()
    (partition,) = struct.unpack_from(">i", key, 2 + n)
    upstream, downstream = struct.unpack_from(">qq", value, 0)
    return topic, partition, upstream, downstream


def encode_offset_sync(topic: str, partition: int, upstream: int, downstream: int) -> tuple:
    """The inverse of ``decode_offset_sync`` (tests write syncs as MirrorMaker 2 does)."""
    raw = topic.encode()
    key = struct.pack(">h", len(raw)) + raw + struct.pack(">i", partition)
    return key, struct.pack(">qq", upstream, downstream)


def replication_lag(
    regional_end: int, regional_start: int, copy_end: int, sync: tuple[int, int] | None
) -> int | None:
    """Records of a regional partition not yet in an aggregate's copy: the regional end minus
    the regional offset the copy's end stands for (the newest sync's upstream offset plus what
    the copy holds past the sync's downstream one). Exact when the regional offsets after the
    sync are contiguous; transaction markers there make it an upper bound. None when the copy
    holds records but no sync says from where (not measurable)."""
    if sync is None:
        return regional_end - regional_start if copy_end == 0 else None
    upstream, downstream = sync
    return max(0, regional_end - (upstream + copy_end - downstream))


# --------------------------------------------------------------------------- live clusters


@dataclass
class GroupMeasure:
    """What sync_offsets measured of one group, per physical topic and partition."""

    stopped: dict[str, dict[int, int]] = field(default_factory=dict)
    translated: dict[str, dict[int, int]] = field(default_factory=dict)
    aligned: dict[str, dict[int, Alignment]] = field(default_factory=dict)
    source: str = "committed offsets"
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return sum(a.lost for parts in self.aligned.values() for a in parts.values())

    @property
    def reread(self) -> int:
        return sum(a.reread for parts in self.aligned.values() for a in parts.values())


def _tp_key(tp: Any) -> tuple[str, int]:
    return tp.topic, tp.partition


class LiveKafka:
    """``KafkaSide`` over the clusters ``clients`` names (see the module doc and README "DR
    drills"). Every wait is bounded and timed with ``clock``; ``sleep`` is the pause between two
    looks. ``savepoints``: job -> the savepoint its old primary stopped with, read by
    ``io.rtdi.flink.Handover`` (``handover``, default the runner jar with ``$FLINK_HOME/lib``)."""

    def __init__(
        self,
        clients: Clients,
        *,
        max_lag: int,
        max_sync_lag: int,
        jar: Path | None = None,
        catch_up_timeout: float = 120,
        stop_timeout: float = 300,
        verify_timeout: float = 300,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        savepoints: Mapping[str, str] | None = None,
        handover: Callable[[str], Mapping[str, Mapping[int, int]]] | None = None,
        search_window: int = 10_000,
        env: Mapping[str, str] | None = None,
        watch_timeout: float = 3600,
    ) -> None:
        from infra.components.kafka import offset_sync

        self.clients = clients
        self.max_lag, self.max_sync_lag = max_lag, max_sync_lag
        self.jar = jar or offset_sync.JAR
        self.catch_up_timeout = catch_up_timeout
        self.stop_timeout, self.verify_timeout = stop_timeout, verify_timeout
        self.clock, self.sleep = clock, sleep
        self.savepoints = dict(savepoints or {})
        self.handover = handover or run_handover
        self.search_window = search_window
        self.env = os.environ if env is None else env
        self.measured: dict[str, GroupMeasure] = {}
        self.back: dict[str, Any] = {}
        self._admins: dict[tuple[str, str], Any] = {}
        self.watch_timeout = watch_timeout
        self.first_commit: dict[str, float] = {}
        self._halt = threading.Event()
        self._watchers: list[threading.Thread] = []

    # ----------------------------------------------------------------- clients

    def config(self, region: str, role: str) -> dict[str, str | int | float | bool]:
        java = self.clients[region][role]
        return {
            **librdkafka_config(java, "clients", f"{region}.{role}", self.env),
            "log_level": "0",
        }

    def admin(self, region: str, role: str) -> Any:
        from confluent_kafka.admin import AdminClient

        if (region, role) not in self._admins:
            self._admins[region, role] = AdminClient(self.config(region, role))
        return self._admins[region, role]

    def consumer(self, region: str, role: str) -> Any:
        from confluent_kafka import Consumer

        # A group id librdkafka wants; the reader only assigns and never commits, so the group
        # never exists on the broker.
        return Consumer(
            {
                **self.config(region, role),
                "group.id": f"rtdi-drill-reader-{os.getpid()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )

    def partitions(self, region: str, role: str, topics: Iterable[str]) -> dict[str, int]:
        """Topic -> partition count, for the ``topics`` that exist there."""
        meta = self.admin(region, role).list_topics(timeout=30)
        return {t: len(meta.topics[t].partitions) for t in topics if t in meta.topics}

    def offsets(
        self, region: str, role: str, tps: Iterable[tuple[str, int]], latest: bool = True
    ) -> dict[tuple[str, int], int]:
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec

        spec = OffsetSpec.latest() if latest else OffsetSpec.earliest()
        request = {TopicPartition(t, p): spec for t, p in tps}
        if not request:
            return {}
        result = self.admin(region, role).list_offsets(request, request_timeout=30)
        return {_tp_key(tp): f.result(timeout=60).offset for tp, f in result.items()}

    def group_reader(self, region: str, group: str) -> Any:
        """A consumer in ``group`` that never subscribes: it reads the group's commits (an
        OffsetFetch) without joining it. Why not the Admin API's ListConsumerGroupOffsets:
        confluent-kafka 2.16 crashed the process (SIGSEGV) on it while a fresh broker was still
        loading its group coordinator (measured here); the consumer retries that by itself."""
        from confluent_kafka import Consumer

        return Consumer(
            {**self.config(region, "aggregate"), "group.id": group, "enable.auto.commit": False}
        )

    def committed(
        self, region: str, group: str, tps: Iterable[tuple[str, int]], reader: Any = None
    ) -> dict[str, dict[int, int]]:
        """``group``'s committed offsets on partitions ``tps`` of ``region``'s aggregate (those
        without one left out)."""
        from confluent_kafka import TopicPartition

        wanted = [TopicPartition(t, p) for t, p in tps]
        if not wanted:
            return {}
        c = reader or self.group_reader(region, group)
        try:
            got = self._retry(
                f"{group}'s offsets", lambda: _no_errors(c.committed(wanted, timeout=30))
            )
        finally:
            if reader is None:
                c.close()
        out: dict[str, dict[int, int]] = {}
        for tp in got:
            if tp.error is None and tp.offset >= 0:
                out.setdefault(tp.topic, {})[tp.partition] = tp.offset
        return out

    def _retry(self, what: str, call: Callable[[], Any], timeout: float = 60) -> Any:
        """``call()``, again while Kafka answers with a retriable error (a coordinator loading,
        moving), for at most ``timeout`` seconds."""
        from confluent_kafka.error import KafkaException

        deadline = self.clock() + timeout
        while True:
            try:
                return call()
            except KafkaException as e:
                err = e.args[0] if e.args else None
                code = err.name() if err is not None and hasattr(err, "name") else ""
                retriable = code in COORDINATOR_MOVES or bool(
                    err is not None and hasattr(err, "retriable") and err.retriable()
                )
                if not retriable or self.clock() >= deadline:
                    raise StepFailed(f"{what}: {err}") from None
            self.sleep(1.0)

    def group_partitions(
        self, region: str, drill: DrillPlan, group: ActivePassiveGroup
    ) -> list[tuple[str, int]]:
        """Every partition of the copies ``group`` reads on ``region``'s aggregate."""
        copies = [c for _, t, c in self.copies(drill) if t in group.topics]
        counts = self.partitions(region, "aggregate", copies)
        return [(c, p) for c in copies for p in range(counts.get(c, 0))]

    def members(self, region: str, group: str) -> int:
        """How many members ``group`` has in ``region``'s aggregate (none when it is unknown)."""
        from confluent_kafka.error import KafkaException

        admin = self.admin(region, "aggregate")

        def describe() -> int:
            try:
                d = admin.describe_consumer_groups([group])[group].result(timeout=60)
            except KafkaException as e:
                if "GROUP_ID_NOT_FOUND" in str(e):
                    return 0
                self._admins.pop((region, "aggregate"), None)  # a fresh client next time
                raise
            except TimeoutError:
                # An AdminClient that lived through its broker's restart hung here (the real
                # drill test): the next look builds a fresh one.
                self._admins.pop((region, "aggregate"), None)
                raise
            return len(d.members or [])

        count: int = self._retry(f"describing {group}", describe)
        return count

    def commit(self, region: str, group: str, offsets: Mapping[str, Mapping[int, int]]) -> None:
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        tps = [TopicPartition(t, p, o) for t, parts in offsets.items() for p, o in parts.items()]
        admin = self.admin(region, "aggregate")
        request = [ConsumerGroupTopicPartitions(group, tps)]
        self._retry(
            f"committing {group}'s offsets",
            lambda: _no_errors(
                admin.alter_consumer_group_offsets(request)[group]
                .result(timeout=60)
                .topic_partitions
            ),
        )

    def read(
        self, region: str, role: str, topic: str, partition: int, start: int, end: int
    ) -> list[tuple[int, Rec]]:
        """The records of [start, end) of a partition (fewer if the log starts later)."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.error import KafkaError

        if end <= start:
            return []
        c = self.consumer(region, role)
        out: list[tuple[int, Rec]] = []
        try:
            c.assign([TopicPartition(topic, partition, start)])
            deadline = self.clock() + 60
            while not out or out[-1][0] < end - 1:
                if self.clock() > deadline:
                    raise StepFailed(
                        f"reading {topic}[{partition}] {start}..{end} on {region}'s {role} "
                        "cluster timed out after 60 s"
                    )
                m = c.poll(1.0)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        break
                    raise StepFailed(f"reading {topic}[{partition}]: {m.error()}")
                if m.offset() >= end:
                    break
                out.append((m.offset(), record(m)))
        finally:
            c.close()
        return out

    def syncs(self, region: str, source: str) -> dict[tuple[str, int], tuple[int, int]]:
        """The newest MirrorMaker 2 offset sync per upstream partition on ``region``'s aggregate
        for copies of ``source``: (upstream offset, downstream offset)."""
        from infra.components.kafka.offset_sync import offset_syncs_topic

        topic = offset_syncs_topic(source)
        counts = self.partitions(region, "aggregate", [topic])
        newest: dict[tuple[str, int], tuple[int, int]] = {}
        if topic not in counts:
            return newest
        ends = self.offsets(region, "aggregate", [(topic, p) for p in range(counts[topic])])
        starts = self.offsets(region, "aggregate", ends, latest=False)
        for (t, p), end in ends.items():
            for _, rec in self.read(region, "aggregate", t, p, starts[t, p], end):
                if rec.key is None or rec.value is None:
                    continue
                up_topic, up_part, up, down = decode_offset_sync(rec.key, rec.value)
                newest[up_topic, up_part] = (up, down)
        return newest

    # ----------------------------------------------------------------- KafkaSide

    def copies(self, drill: DrillPlan) -> list[tuple[str, str, str]]:
        """(source region, regional topic, copy) for every copy the groups read."""
        topics = sorted({t for g in drill.groups for t in g.topics})
        return [(r, t, f"{r}.{t}") for r in drill.regions for t in topics]

    def preflight(self, drill: DrillPlan) -> list[str]:
        """The replication-lag and offset-syncs checks of the plan, measured; one line per
        failing partition group (names as in the plan's checks)."""
        lacking = [
            f"{region}'s {role} cluster"
            for region, roles in needed(drill).items()
            for role in roles
            if role not in self.clients.get(region, {})
        ]
        if lacking:
            return [f"preflight: no client for {', '.join(lacking)}; nothing measured"]
        failed: list[str] = []
        copies = self.copies(drill)
        for region, topic, copy in copies:
            counts = self.partitions(region, "regional", [topic])
            held = self.partitions(drill.target, "aggregate", [copy])
            if topic not in counts:
                continue  # the region produces none of it: nothing to lose
            if copy not in held:
                failed.append(
                    f"replication-lag: {copy} is not on {drill.target}'s aggregate "
                    f"({region}'s {topic} has {counts[topic]} partitions)"
                )
                continue
            parts = [(topic, p) for p in range(counts[topic])]
            ends = self.offsets(region, "regional", parts)
            starts = self.offsets(region, "regional", parts, latest=False)
            copy_ends = self.offsets(drill.target, "aggregate", [(copy, p) for _, p in parts])
            synced = self.syncs(drill.target, region)
            over = []
            for _, p in parts:
                lag = replication_lag(
                    ends[topic, p], starts[topic, p], copy_ends[copy, p], synced.get((topic, p))
                )
                if lag is None or lag > self.max_lag:
                    over.append(f"[{p}] {'no offset sync' if lag is None else lag}")
            if over:
                failed.append(
                    f"replication-lag: {copy} into {drill.target}'s aggregate, records not yet "
                    f"there: {', '.join(over)} (at most {self.max_lag})"
                )
        for where in (drill.source, drill.target):
            for region, topic, copy in copies:
                held = self.partitions(where, "aggregate", [copy])
                if copy not in held:
                    continue
                synced = self.syncs(where, region)
                ends = self.offsets(where, "aggregate", [(copy, p) for p in range(held[copy])])
                over = []
                for p in range(held[copy]):
                    end, sync = ends[copy, p], synced.get((topic, p))
                    behind = end if sync is None else end - (sync[1] + 1)
                    if end and behind > self.max_sync_lag:
                        over.append(f"[{p}] {'no sync' if sync is None else behind}")
                if over:
                    failed.append(
                        f"offset-syncs: {copy} in {where}'s aggregate, newest sync behind the "
                        f"end: {', '.join(over)} (at most {self.max_sync_lag})"
                    )
        return failed

    def stop(self, groups: Sequence[ActivePassiveGroup], region: str) -> None:
        """Wait until each plain group has no member in ``region``'s aggregate."""
        deadline = self.clock() + self.stop_timeout
        for g in groups:
            if g.job is not None:
                continue
            while (n := self.members(region, g.name)) > 0:
                if self.clock() >= deadline:
                    raise StepFailed(
                        f"{g.name} still has {n} member(s) in {region}'s aggregate after "
                        f"{self.stop_timeout:.0f} s: stop its consumers there"
                    )
                self.sleep(1.0)

    def sync_offsets(self, drill: DrillPlan) -> dict[str, dict[str, dict[int, int]]]:
        """Stop positions, caught up in the new copy, translated by the jar `--once`, committed
        there; loss and re-reads measured before anything consumes (``measured``)."""
        committed: dict[str, dict[str, dict[int, int]]] = {}
        for g in drill.groups:
            m = GroupMeasure()
            self.measured[g.name] = m
            if g.job is not None and g.job in self.savepoints:
                uri = self.savepoints[g.job]
                offsets = self.handover(uri)
                m.source = f"savepoint {uri}"
                self.commit(drill.source, g.name, offsets)
            elif g.job is not None:
                m.notes.append(
                    "no --savepoint for its job: the group's committed offsets, which lag the "
                    "savepoint (what the job processed after them is read again)"
                )
            m.stopped = self.committed(
                drill.source, g.name, self.group_partitions(drill.source, drill, g)
            )
            edges = self._edges(drill.source, m.stopped)
            self._catch_up(drill, g.name, edges)
            report = self._run_jar(g.name, drill.source, drill.target)
            translated = self._translated(g.name, drill.target, report)
            m.translated = translated
            for topic, parts in translated.items():
                for p, t in parts.items():
                    # The jar translates every commit of the group; the records around its stop
                    # are read for the copies it reads here (a commit elsewhere: not measured).
                    first, last = edges.get((topic, p), (None, None))
                    m.aligned.setdefault(topic, {})[p] = self._align(
                        drill.target, topic, p, t, first, last
                    )
            missing = []
            for _, topic, copy in self.copies(drill):
                if topic in g.topics:
                    n = self.partitions(drill.target, "aggregate", [copy]).get(copy, 0)
                    done = translated.get(copy, {})
                    missing += [f"{copy}[{p}]" for p in range(n) if p not in done]
            if missing:
                m.notes.append(
                    f"no committed offset in {drill.source}'s aggregate, so none translated (the "
                    f"group starts as its auto.offset.reset says): {', '.join(missing)}"
                )
            committed[g.name] = translated
            self._watch(drill.target, g.name, translated)
        return committed

    def _watch(self, region: str, group: str, translated: Mapping[str, Mapping[int, int]]) -> None:
        """From now on, in the background, look every 0.2 s for ``group``'s first commit past a
        translated offset in ``region`` (its first record consumed there) and keep the clock
        reading in ``first_commit``: promote runs meanwhile, and verify starts only after it.
        Bounded by ``watch_timeout``; verify and a rollback end it."""
        reader = self.group_reader(region, group)  # its own: another thread
        deadline = self.clock() + self.watch_timeout
        tps = [(t, p) for t, parts in translated.items() for p in parts]

        def look() -> None:
            try:
                watch()
            finally:
                reader.close()

        def watch() -> None:
            while not self._halt.is_set() and self.clock() < deadline:
                try:
                    now = self.committed(region, group, tps, reader)
                except Exception:  # a broker away for a moment: look again
                    now = {}
                if any(
                    now.get(t, {}).get(p, -1) > o
                    for t, parts in translated.items()
                    for p, o in parts.items()
                ):
                    self.first_commit[group] = self.clock()
                    return
                self._halt.wait(0.2)

        thread = threading.Thread(target=look, name=f"drill-watch-{group}", daemon=True)
        self._watchers.append(thread)
        thread.start()

    def halt(self) -> None:
        """End the background watchers (verify's end, a rollback)."""
        self._halt.set()
        for t in self._watchers:
            t.join(10)

    def _edges(
        self, region: str, stopped: Mapping[str, Mapping[int, int]]
    ) -> dict[tuple[str, int], tuple[Rec | None, Rec | None]]:
        """Per partition: the record at the committed offset (first not consumed; None when the
        group had read all there was) and the one before it (the last consumed)."""
        out: dict[tuple[str, int], tuple[Rec | None, Rec | None]] = {}
        for topic, parts in stopped.items():
            for p, offset in parts.items():
                got = dict(self.read(region, "aggregate", topic, p, max(0, offset - 1), offset + 1))
                out[topic, p] = (got.get(offset), got.get(offset - 1))
        return out

    def _locate(
        self, region: str, topic: str, p: int, rec: Rec, around: int | None = None
    ) -> list[int]:
        """Offsets of ``rec`` in ``region``'s copy within the search window of ``around`` and of
        the first offset at its timestamp."""
        from confluent_kafka import TopicPartition

        c = self.consumer(region, "aggregate")
        try:
            (hit,) = c.offsets_for_times([TopicPartition(topic, p, rec.timestamp)], timeout=30)
        finally:
            c.close()
        (end,) = self.offsets(region, "aggregate", [(topic, p)]).values()
        (start,) = self.offsets(region, "aggregate", [(topic, p)], latest=False).values()
        at = hit.offset if hit.offset >= 0 else end
        near = [at] if around is None else [at, around]
        lo = max(start, min(near) - self.search_window)
        hi = min(end, max(near) + self.search_window)
        return [o for o, r in self.read(region, "aggregate", topic, p, lo, hi) if r == rec]

    def _catch_up(
        self,
        drill: DrillPlan,
        group: str,
        edges: Mapping[tuple[str, int], tuple[Rec | None, Rec | None]],
    ) -> None:
        """Wait until the new primary's copy holds every record up to where ``group`` stopped
        (and the first it had not consumed, when there is one): MirrorMaker 2 may be behind."""
        deadline = self.clock() + self.catch_up_timeout
        pending = dict(edges)
        while True:
            for (topic, p), (first, last) in list(pending.items()):
                rec = first if first is not None else last
                if rec is None or self._locate(drill.target, topic, p, rec):
                    del pending[topic, p]
            if not pending:
                return
            if self.clock() >= deadline:
                shown = ", ".join(f"{t}[{p}]" for t, p in sorted(pending))
                raise StepFailed(
                    f"{group}: {drill.target}'s aggregate lacks records up to where the group "
                    f"stopped in {drill.source} ({shown}) after {self.catch_up_timeout:.0f} s: "
                    "is MirrorMaker 2 into it running?"
                )
            self.sleep(1.0)

    def _run_jar(self, group: str, primary: str, local: str) -> dict:
        from infra.components.kafka import offset_sync

        props = offset_sync.sync_properties(
            [group],
            primary,
            local,
            self.clients[local]["aggregate"],
            self.clients[primary]["aggregate"],
        )
        try:
            return offset_sync.run_once(props, jar=self.jar)
        except offset_sync.SyncFailed as e:
            raise StepFailed(f"{group}: the offset-sync jar failed: {e}") from None

    def _translated(self, group: str, local: str, report: dict) -> dict[str, dict[int, int]]:
        """Where the group resumes in ``local``, per the jar's report: the translated offset, or
        the group's own there when it already stood past it. A partition left untranslated
        fails the step: the group would resume from nowhere known."""
        out: dict[str, dict[int, int]] = {}
        bad = []
        for g in report.get("groups", []):
            for row in g["partitions"]:
                t, p = row["topic"], row["partition"]
                if row["committed"]:
                    out.setdefault(t, {})[p] = row["translatedOffset"]
                elif row.get("reason") == "already at or past it here":
                    out.setdefault(t, {})[p] = row["previousOffset"]
                else:
                    bad.append(f"{t}[{p}] ({row.get('reason')})")
        if bad:
            raise StepFailed(f"{group}: not translated into {local}'s aggregate: {', '.join(bad)}")
        return out

    def _align(
        self, region: str, topic: str, p: int, at: int, first: Rec | None, last: Rec | None
    ) -> Alignment:
        rec = first if first is not None else last
        if rec is None:
            return Alignment(at, None)
        found = self._locate(region, topic, p, rec, at)
        return align(at, [(o, rec) for o in found], first, last)

    def verify(
        self, drill: DrillPlan, committed: Mapping[str, Mapping[str, Mapping[int, int]]]
    ) -> dict[str, Any]:
        """Per group: it runs in the new primary (a member, for a plain group: a Flink source
        assigns its partitions and joins no group), its committed offsets are at or past the
        translated ones, and its lag fell between two looks (or is 0, or its commits advanced);
        the clock reading of its first commit past a translated offset (``resumedAt``: its first
        record consumed there); the loss and re-reads sync_offsets measured."""
        try:
            return self._verify(drill, committed)
        finally:
            self.halt()

    def _verify(
        self, drill: DrillPlan, committed: Mapping[str, Mapping[str, Mapping[int, int]]]
    ) -> dict[str, Any]:
        from confluent_kafka.error import KafkaException

        out: dict[str, Any] = {}
        deadline = self.clock() + self.verify_timeout
        for g in drill.groups:
            want = committed.get(g.name, {})
            tps = [(t, p) for t, parts in want.items() for p in parts]
            resumed_at: float | None = None
            lags: list[int] = []
            member, behind, failure = False, [f"{t}[{p}]" for t, p in tps], ""
            previous: dict[tuple[str, int], int] | None = None
            while True:
                # A broker of the new primary restarting (tests/integration/test_drill_real.py
                # kills it during promotion) answers with errors for a while: a look that fails
                # is "not yet", until the deadline.
                try:
                    now = self.committed(drill.target, g.name, tps)
                    at = {(t, p): now.get(t, {}).get(p, -1) for t, p in tps}
                    if resumed_at is None and any(at[t, p] > want[t][p] for t, p in tps):
                        resumed_at = self.first_commit.get(g.name, self.clock())
                    behind = [f"{t}[{p}]" for t, p in tps if at[t, p] < want[t][p]]
                    member = g.job is not None or self.members(drill.target, g.name) > 0
                    if member and not behind:
                        ends = self.offsets(drill.target, "aggregate", tps)
                        lags.append(sum(ends[tp] - at[tp] for tp in tps))
                        # Caught up under steady production, the lag hovers at a few records
                        # and need not fall below its first look (the real drill test saw 2
                        # then 8): commits that advanced between two looks show it consumes.
                        moved = previous is not None and sum(at.values()) > sum(previous.values())
                        if lags[-1] == 0 or (len(lags) >= 2 and (lags[-1] < lags[0] or moved)):
                            break
                        previous = at
                    failure = ""
                except (KafkaException, TimeoutError) as e:
                    # Its cached clients may keep a restarted broker's stale leader epochs
                    # (FENCED_LEADER_EPOCH on every look): fresh ones next time.
                    failure = f"{type(e).__name__}: {e}"
                    self._admins.pop((drill.target, "aggregate"), None)
                if self.clock() >= deadline:
                    what = (
                        f"its clients fail ({failure})"
                        if failure
                        else "no member"
                        if not member
                        else f"committed offsets behind the translated ones on {', '.join(behind)}"
                        if behind
                        else f"its lag not falling ({lags[0]} then {lags[-1]} records)"
                    )
                    raise StepFailed(
                        f"{g.name}: in {drill.target}'s aggregate, {what} after "
                        f"{self.verify_timeout:.0f} s"
                    )
                self.sleep(1.0)
            m = self.measured.get(g.name, GroupMeasure())
            out[g.name] = {
                "lost": m.lost,
                "reread": m.reread,
                "resumedAt": resumed_at,
                "lag": [lags[0], lags[-1]],
                "offsetsFrom": m.source,
                "notes": m.notes,
                "partitions": {
                    t: {str(p): a.as_json() for p, a in sorted(parts.items())}
                    for t, parts in sorted(m.aligned.items())
                },
            }
        return out

    def sync_back(self, drill: DrillPlan) -> dict[str, dict[str, dict[int, int]]]:
        """A rolled-back drill: each group's offsets in the new primary translated back into the
        old one with the same jar (new -> old, only forward there)."""
        self.halt()
        out: dict[str, dict[str, dict[int, int]]] = {}
        for g in drill.groups:
            report = self._run_jar(g.name, drill.target, drill.source)
            self.back[g.name] = report
            out[g.name] = self._translated(g.name, drill.source, report)
        return out


def _no_errors(tps: Any) -> Any:
    """``tps``, or the first partition's error raised: the Admin and Consumer calls report a
    coordinator that is loading per partition, without raising (a commit that did not happen)."""
    from confluent_kafka.error import KafkaException

    for tp in tps or []:
        if tp.error is not None:
            raise KafkaException(tp.error)
    return tps


def record(m: Any) -> Rec:
    """A confluent_kafka Message's identity."""
    _, ts = m.timestamp()
    headers = tuple((k, v) for k, v in (m.headers() or []))
    return Rec(ts, m.key(), m.value(), headers)


# What the Flink image passes every JVM on Java 17 (env.java.opts.all): Flink's serializers
# reflect into these packages, reading a savepoint's metadata too.
OPENS = (
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


RUNNER_JAR = (
    Path(__file__).resolve().parents[2] / "jobs" / "runner" / "target" / "rtdi-sql-runner.jar"
)


def handover_problem(env: Mapping[str, str]) -> str | None:
    """Why io.rtdi.flink.Handover cannot run here, or None."""
    flink = env.get("FLINK_HOME")
    if not flink or not Path(flink, "lib").is_dir():
        return (
            "reading a savepoint's offsets (io.rtdi.flink.Handover) needs FLINK_HOME, a Flink "
            f"distribution with lib/ and plugins/; FLINK_HOME is {flink or 'not set'}"
        )
    if not RUNNER_JAR.is_file():
        return f"io.rtdi.flink.Handover is in {RUNNER_JAR}, which is not built (`make runner-jar`)"
    return None


def handover_command(savepoint: str, env: Mapping[str, str]) -> list[str]:
    """io.rtdi.flink.Handover as the runner image runs it: the runner jar and Flink's lib."""
    problem = handover_problem(env)
    if problem is not None:
        raise StepFailed(problem)
    flink = env["FLINK_HOME"]
    runner = RUNNER_JAR
    return [
        "java",
        *(f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in OPENS),
        "-cp",
        f"{runner}{os.pathsep}{flink}/lib/*",
        "io.rtdi.flink.Handover",
        "--savepoint",
        savepoint,
    ]


def run_handover(savepoint: str) -> dict[str, dict[int, int]]:
    """The savepoint's Kafka source offsets: {topic: {partition: next offset}}."""
    env = dict(os.environ)
    env.setdefault("FLINK_PLUGINS_DIR", f"{env.get('FLINK_HOME', '')}/plugins")
    done = subprocess.run(
        handover_command(savepoint, env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise StepFailed(f"Handover on {savepoint}: {lines[-1] if lines else done.returncode}")
    got = json.loads(done.stdout.strip().splitlines()[-1])["offsets"]
    return {t: {int(p): int(o) for p, o in parts.items()} for t, parts in got.items()}
