"""`rtdi drill run` without clusters: the runner's abort rule through the plan-backed Workspace
and a recording KafkaSide, the report, the clients file and its mapping to librdkafka, and the
loss and re-read alignment over record sequences.

The runner tests drive the sample stacks' real plans (`PlanWorkspace`): after a drill aborted
at any step, the old primary runs `payments` again, the global stack exports it as the primary,
and every stack is back to its plan before the drill, resource by resource. The Kafka side is a
stand-in that records what it was asked, in order; tests/integration/test_drill_kafka.py runs
the real one's calls against a broker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from plantools import ROOT, STACK_NAMES

OLD, NEW = "aws-us-east-1", "gcp-europe-west4"
OTHERS = ["aws-eu-west-1", "onprem-dc1"]
COPY = f"{OLD}.payment-events"


@pytest.fixture(scope="module")
def drill(plans):
    from infra.drill.plan import plan_drill
    from infra.plan import Project

    return plan_drill(Project.find(ROOT), NEW, before=plans)


class Clock:
    """A monotonic clock that moves one second per reading: step timings are exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class Recorder:
    """A KafkaSide that records each call and fails where told (``fail``: method -> error)."""

    def __init__(self, clock: Clock, fail: dict[str, BaseException] | None = None):
        self.calls: list[tuple] = []
        self.halted = False
        self.fail = fail or {}
        self.clock = clock

    def _call(self, name: str, *args) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    def preflight(self, drill):
        self._call("preflight")
        return []

    def stop(self, groups, region):
        self._call("stop", tuple(g.name for g in groups), region)

    def sync_offsets(self, drill):
        self._call("sync_offsets")
        return {g.name: {COPY: {0: 10, 1: 20}} for g in drill.groups}

    def verify(self, drill, committed):
        self._call("verify", sorted(committed))
        at = self.clock()
        return {g: {"lost": 0, "reread": 7, "resumedAt": at} for g in committed}

    def sync_back(self, drill):
        self._call("sync_back")
        return {g.name: {COPY: {0: 11, 1: 21}} for g in drill.groups}

    def halt(self):
        self.halted = True


def running_payments(ws) -> list[str]:
    return [
        s
        for s in STACK_NAMES
        if s != "global" and ws.outputs(s)["flinkJobs"]["payments"] == "running"
    ]


def workspace(plans):
    from infra.drill.workspace import PlanWorkspace
    from infra.plan import Project

    return PlanWorkspace(Project.find(ROOT), plans)


def assert_as_before(ws, drill) -> None:
    """The old primary serves and every stack is what it was before the drill."""
    assert ws.outputs("global")["primaryRegion"] == OLD
    assert running_payments(ws) == [OLD]
    for stack in STACK_NAMES:
        done, planned = ws.deployed[stack], drill.before[stack]
        assert [r.as_json() for r in done.resources] == [r.as_json() for r in planned.resources]
        assert done.outputs == planned.outputs, stack


PLAIN = ("ledger-writer",)
UP_ALL = ["global", OLD, NEW, *OTHERS]
KAFKA_ALL = [("preflight",), ("stop", PLAIN, OLD), ("sync_offsets",)]


@pytest.mark.parametrize(
    ("abort_after", "ups", "calls"),
    [
        ("preflight", [], [("preflight",)]),
        ("flip", ["global", "global"], [("preflight",)]),
        ("demote", ["global", OLD, "global", OLD], KAFKA_ALL[:2]),
        ("sync-offsets", ["global", OLD, "global", OLD], KAFKA_ALL),
        (
            "promote",
            [*UP_ALL, "global", NEW, OLD, *OTHERS],
            [*KAFKA_ALL, ("stop", PLAIN, NEW), ("sync_back",)],
        ),
    ],
)
def test_an_abort_after_each_step_leaves_the_old_primary_serving(
    drill, plans, abort_after, ups, calls
):
    """`--abort-after STEP`: the rollback undoes in reverse what the run changed: the primary
    set back and the global stack up, the new primary demoted again and its groups' offsets
    translated back (when it was promoted), the old primary and the others up."""
    from infra.drill.run import run_drill

    ws, clock = workspace(plans), Clock()
    kafka = Recorder(clock)
    report = run_drill(drill, ws, kafka, abort_after=abort_after, clock=clock)
    assert ws.ups == ups
    assert kafka.calls == calls and kafka.halted
    names = [(r.name, r.status) for r in report.steps]
    done = names[: names.index(("abort", "aborted"))]
    assert done[-1] == (abort_after, "done") and {s for _, s in done} == {"done"}
    rollbacks = [r.detail for r in report.steps if r.name == "rollback"]
    assert all(r.status == "rolled back" for r in report.steps if r.name == "rollback")
    assert (report.outcome, report.exit_code) == (
        ("stopped", 1) if abort_after == "preflight" else ("rolled back", 1)
    )
    if abort_after == "promote":
        assert rollbacks == [
            f"primary set back to {OLD}, global up",
            f"{NEW} up (demoted again)",
            f"plain groups stopped in {NEW}",
            f"offsets translated back into {OLD}",
            f"{OLD} up (serving again)",
            *(f"{s} up" for s in OTHERS),
        ]
        assert report.offsets == {g.name: {COPY: {0: 11, 1: 21}} for g in drill.groups}
    assert_as_before(ws, drill)


def test_a_failing_verify_rolls_back_everything(drill, plans):
    from infra.drill.run import StepFailed, run_drill

    ws, clock = workspace(plans), Clock()
    kafka = Recorder(clock, {"verify": StepFailed("ledger-writer: no member")})
    report = run_drill(drill, ws, kafka, clock=clock)
    assert [(r.name, r.status) for r in report.steps][:7] == [
        ("preflight", "done"),
        ("flip", "done"),
        ("demote", "done"),
        ("sync-offsets", "done"),
        ("promote", "done"),
        ("verify", "failed"),
        ("rollback", "rolled back"),
    ]
    assert report.steps[5].detail == "ledger-writer: no member"
    assert ws.ups == [*UP_ALL, "global", NEW, OLD, *OTHERS]
    assert report.outcome == "rolled back" and report.exit_code == 1
    assert_as_before(ws, drill)


def test_an_interrupt_rolls_back_and_a_client_error_too(drill, plans):
    """Ctrl-C in sync-offsets, or any error a Kafka client raises, is an abort like a failed
    step: the old primary comes up again."""
    from infra.drill.run import run_drill

    for error, status, detail in (
        (KeyboardInterrupt(), "interrupted", "interrupted"),
        (RuntimeError("KafkaError{code=_TRANSPORT}"), "failed", "RuntimeError: KafkaError"),
    ):
        ws, clock = workspace(plans), Clock()
        report = run_drill(drill, ws, Recorder(clock, {"sync_offsets": error}), clock=clock)
        failed = report.steps[3]
        assert (failed.name, failed.status) == ("sync-offsets", status)
        assert failed.detail.startswith(detail)
        assert ws.ups == ["global", OLD, "global", OLD]
        assert report.outcome == "rolled back"
        assert_as_before(ws, drill)


def test_a_rollback_that_fails_says_where_it_stopped(drill, plans):
    """Translating back fails: the rollback stops there (bringing the old primary up with its
    groups' offsets behind would re-read), the outcome is failed, and the report names it."""
    from infra.drill.run import StepFailed, run_drill

    ws, clock = workspace(plans), Clock()
    kafka = Recorder(clock, {"sync_back": StepFailed("offset-sync jar failed: exit 1")})
    report = run_drill(drill, ws, kafka, abort_after="promote", clock=clock)
    last = report.steps[-1]
    assert (last.name, last.status) == ("rollback", "failed")
    assert last.detail == (f"offsets translated back into {OLD}: offset-sync jar failed: exit 1")
    assert ws.ups == [*UP_ALL, "global", NEW]
    assert (report.outcome, report.exit_code) == ("failed", 1)
    assert running_payments(ws) == []  # neither runs it: the report says so, exit 1


def test_preflight_measurements_that_fail_stop_before_anything_changes(drill, plans):
    from infra.drill.run import run_drill

    ws, clock = workspace(plans), Clock()
    kafka = Recorder(clock)
    lines = [f"replication-lag: {COPY} into {NEW}'s aggregate, records not yet there: [0] 5000"]
    kafka.preflight = lambda d: lines  # type: ignore[method-assign]
    report = run_drill(drill, ws, kafka, clock=clock)
    assert [(r.name, r.status) for r in report.steps] == [("preflight", "failed")]
    assert (report.outcome, report.preflight, ws.ups) == ("stopped", lines, [])
    assert report.as_json()["preflightFailed"] == lines


def test_a_drill_done_and_its_report(drill, plans):
    """Every step done in order; the report: timings from the injected clock, per group the
    measured loss and re-reads and the time from the start of demote to its first record
    consumed in the new primary; the summary prints the same."""
    from infra.drill.run import run_drill

    ws, clock = workspace(plans), Clock()
    kafka = Recorder(clock)
    report = run_drill(drill, ws, kafka, clock=clock)
    assert ws.ups == UP_ALL
    assert kafka.calls == [*KAFKA_ALL, ("verify", ["flink-payments", "ledger-writer"])]
    assert (report.outcome, report.exit_code) == ("done", 0)
    assert running_payments(ws) == [NEW]
    doc = json.loads(report.dumps())
    assert [s["name"] for s in doc["steps"]] == [
        "preflight",
        "flip",
        "demote",
        "sync-offsets",
        "promote",
        "verify",
    ]
    assert all(s["status"] == "done" and s["seconds"] > 0 for s in doc["steps"])
    assert doc["offsets"] == {g.name: {COPY: {"0": 10, "1": 20}} for g in drill.groups}
    assert doc["lost"] == 0
    # demote began at one reading; the fake's verify read the clock for each group.
    resumed = {g: v["resumed"] for g, v in doc["groups"].items()}
    assert all(v > 0 for v in resumed.values())
    assert doc["demoteToFirstRecordSeconds"] == max(resumed.values())
    text = report.summary()
    assert text.splitlines()[0] == f"drill {OLD} -> {NEW}: done"
    assert "  ledger-writer: 0 lost, 7 re-read, resumed " in text
    assert f"demote to the first record consumed in {NEW}: " in text


def test_abort_after_must_name_a_step_before_verify(drill, plans):
    from infra.drill.run import run_drill
    from infra.topology.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        run_drill(drill, workspace(plans), None, abort_after="verify")
    assert str(e.value) == (
        "rtdi drill: --abort-after = 'verify': not a step a drill can stop after; allowed: "
        "preflight, flip, demote, sync-offsets, promote"
    )


# --------------------------------------------------------------------------- the CLI


def run_cli(argv: list[str], cwd: Path = ROOT) -> tuple[int, str, str]:
    from infra.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_cli_runs_the_drill_and_writes_the_report(drill, plans, tmp_path, monkeypatch):
    """The command's wiring: its plan (the session's, not planned again), the clients file,
    LiveKafka as the Kafka side (replaced by the recorder, which gets the same arguments), the
    Workspace (the plan-backed one here), the report file and the summary; exit 1 after an
    abort, 0 for a dry run."""
    import infra.cli
    import infra.drill.kafka
    import infra.drill.plan

    clients = tmp_path / "clients.yaml"
    clients.write_text(
        "".join(
            f"{r}:\n  regional: {{bootstrap.servers: 'r.{r}:9092'}}\n"
            + (f"  aggregate: {{bootstrap.servers: 'a.{r}:9092'}}\n" if r in (OLD, NEW) else "")
            for r in drill.regions
        )
    )
    made: list[dict] = []
    clock = Clock()

    def live(clients, **kw):
        made.append({"clients": clients, **kw})
        return Recorder(clock)

    ws = workspace(plans)
    (tmp_path / "flink" / "lib").mkdir(parents=True)
    (tmp_path / "runner.jar").write_text("")
    monkeypatch.setenv("FLINK_HOME", str(tmp_path / "flink"))
    monkeypatch.setattr(infra.drill.kafka, "RUNNER_JAR", tmp_path / "runner.jar")
    monkeypatch.setattr(infra.drill.plan, "plan_drill", lambda *a, **kw: drill)
    monkeypatch.setattr(infra.drill.kafka, "LiveKafka", live)
    monkeypatch.setattr(infra.cli, "_workspace", lambda work_dir: ws)
    report = tmp_path / "r.json"
    argv = ["drill", "run", "--to", NEW, "--clients", str(clients), "--report", str(report)]
    code, out, err = run_cli([*argv, "--abort-after", "flip"])
    assert (code, err) == (1, "")
    assert out.splitlines()[0] == f"drill {OLD} -> {NEW}: rolled back"
    assert out.splitlines()[-1] == f"report: {report}"
    doc = json.loads(report.read_text())
    assert doc["outcome"] == "rolled back" and doc["to"] == NEW
    (kw,) = made
    assert kw["clients"][NEW]["aggregate"] == {"bootstrap.servers": f"a.{NEW}:9092"}
    assert (kw["max_lag"], kw["max_sync_lag"], kw["savepoints"]) == (1000, 100, {})
    assert ws.ups == ["global", "global"]
    code, out, _ = run_cli(
        [*argv, "--dry-run", "--max-sync-lag", "7", "--savepoint", "payments=s3p://b/sp-1"]
    )
    assert code == 0 and out.startswith(f"drill {OLD} -> {NEW}: dry run\n")
    assert (made[1]["max_sync_lag"], made[1]["savepoints"]) == (7, {"payments": "s3p://b/sp-1"})


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            ["--savepoint", "payments"],
            "rtdi drill run: --savepoint = 'payments': allowed: JOB=URI once per job, URI the "
            "savepoint the old primary's job stopped with (s3p://.../savepoint-...)",
        ),
        (
            ["--savepoint", "payments=s3p://b/sp"],
            "rtdi drill run: --savepoint: reading a savepoint's offsets (io.rtdi.flink.Handover) "
            "needs FLINK_HOME, a Flink distribution with lib/ and plugins/; FLINK_HOME is not "
            "set; allowed: set it up",
        ),
        (
            ["--savepoint", "ledger=s3p://b/sp"],
            "rtdi drill run: --savepoint = 'ledger': not an active-passive job of the drill; "
            "allowed: payments",
        ),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(drill, tmp_path, monkeypatch, extra, line):
    import infra.drill.plan

    monkeypatch.setattr(infra.drill.plan, "plan_drill", lambda *a, **kw: drill)
    monkeypatch.delenv("FLINK_HOME", raising=False)
    clients = tmp_path / "clients.yaml"
    clients.write_text("{}\n")
    code, out, err = run_cli(["drill", "run", "--to", NEW, "--clients", str(clients), *extra])
    assert (code, out, err) == (2, "", line + "\n")


def test_cli_without_a_clients_file_is_exit_2():
    code, out, err = run_cli(["drill", "run", "--to", NEW, "--clients", "nowhere.yaml"])
    assert (code, out) == (2, "")
    assert err == (
        "rtdi drill run: --clients = 'nowhere.yaml': no such file; allowed: a YAML clients file\n"
    )


def test_the_sync_lag_bound_is_the_plans(drill):
    from infra.drill.kafka import sync_lag_bound

    check = [c for c in drill.checks if c.name == "offset-syncs"][0]
    assert check.threshold.startswith("at most 100 records (the mirrors' offset.lag.max")
    assert sync_lag_bound(drill, None) == 100
    assert sync_lag_bound(drill, 3) == 3


# --------------------------------------------------------------------------- the clients file


def tiny_drill():
    """What load_clients reads of a drill: its regions and its two primaries."""
    return SimpleNamespace(regions=["a", "b", "c"], source="a", target="b")


def clients_of(tmp_path, text: str):
    from infra.drill.kafka import load_clients

    path = tmp_path / "clients.yaml"
    path.write_text(text)
    return load_clients(path, tiny_drill(), env={"PW": "s3cret"})  # type: ignore[arg-type]


GOOD = """
a: {regional: {bootstrap.servers: 'ra:9092'}, aggregate: {bootstrap.servers: 'aa:9092'}}
b: {regional: {bootstrap.servers: 'rb:9092'}, aggregate: {bootstrap.servers: 'ab:9092'}}
c: {regional: {bootstrap.servers: 'rc:9092'}}
"""


def test_a_clients_file_is_read_as_it_is(tmp_path):
    got = clients_of(tmp_path, GOOD)
    assert got["b"]["aggregate"] == {"bootstrap.servers": "ab:9092"}
    assert sorted(got) == ["a", "b", "c"] and "aggregate" not in got["c"]


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("- a\n", ["{f}: allowed: a mapping of region -> {{regional, aggregate}} -> properties"]),
        ("a: [\n", ["{f}: not valid YAML (line 2); allowed: a YAML mapping"]),
        (
            GOOD + "mars: {regional: {bootstrap.servers: x}}\n",
            ["{f}: mars: not a region; allowed: a, b, c"],
        ),
        (
            GOOD.replace("c: {regional:", "c: {edge:"),
            [
                "{f}: c.edge: not a cluster role; allowed: regional, aggregate",
                "{f}: c.regional: is missing; allowed: its client (the replication-lag check "
                "reads its end offsets (c's copies))",
            ],
        ),
        (
            GOOD.replace("{bootstrap.servers: 'ab:9092'}", "{bootstrap.servers: [x]}"),
            ["{f}: b.aggregate.bootstrap.servers = ['x']: allowed: a string or a number"],
        ),
        (
            GOOD.replace(", aggregate: {bootstrap.servers: 'ab:9092'}", ""),
            [
                "{f}: b.aggregate: is missing; allowed: its client (the drill translates and "
                "measures the groups there)"
            ],
        ),
        (
            GOOD.replace("'aa:9092'", "'aa:9092', ssl.endpoint.identification.algorithm: ''"),
            [
                "{f}: a.aggregate.ssl.endpoint.identification.algorithm = '': not a property the "
                "drill's measurements can carry over to librdkafka; allowed: bootstrap.servers, "
                "security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.type, "
                "ssl.truststore.location, ssl.truststore.certificates"
            ],
        ),
        (
            GOOD.replace("'aa:9092'", "'aa:9092', sasl.jaas.config: '${env:NOPE}'"),
            [
                "{f}: a.aggregate.sasl.jaas.config = '[hidden]': needs environment variable "
                "NOPE, which is not set; allowed: set it"
            ],
        ),
    ],
)
def test_clients_file_refusals_one_line_each(tmp_path, text, lines):
    from infra.topology.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        clients_of(tmp_path, text)
    f = tmp_path / "clients.yaml"
    assert str(e.value).splitlines() == [line.format(f=f) for line in lines]


def test_a_clients_file_that_is_not_there(tmp_path):
    from infra.drill.kafka import load_clients
    from infra.topology.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--clients = '.*nope.yaml': cannot read it"):
        load_clients(tmp_path / "nope.yaml", tiny_drill())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Java -> librdkafka

JAAS_SCRAM = (
    "org.apache.kafka.common.security.scram.ScramLoginModule required "
    'username="drill" password="${env:PW}";'
)


def mapped(java: dict[str, str]) -> dict[str, str]:
    from infra.drill.kafka import librdkafka_config

    return librdkafka_config(java, "clients.yaml", "a.aggregate", {"PW": "s3cr3t-1"})


def test_strimzi_scram_over_tls_maps_to_librdkafka():
    """What rtdi's Strimzi access writes (KafkaAccess properties), with the password from the
    environment as the offset-sync jar fills it."""
    got = mapped(
        {
            "bootstrap.servers": "aggregate-kafka-bootstrap:9093",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": JAAS_SCRAM.replace("${env:PW}", 'a\\"b'),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": "/etc/kafka/ca.crt",
        }
    )
    assert got == {
        "bootstrap.servers": "aggregate-kafka-bootstrap:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "drill",
        "sasl.password": 'a"b',
        "ssl.ca.location": "/etc/kafka/ca.crt",
    }
    plain = mapped(
        {
            "bootstrap.servers": "b:9092",
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.jaas.config": JAAS_SCRAM.replace("scram.Scram", "plain.Plain"),
            "ssl.truststore.certificates": "-----BEGIN CERTIFICATE-----",
        }
    )
    assert plain["sasl.username"] == "drill" and plain["sasl.password"] == "s3cr3t-1"
    assert plain["ssl.ca.pem"] == "-----BEGIN CERTIFICATE-----"


@pytest.mark.parametrize(
    ("java", "line"),
    [
        (
            {"sasl.mechanism": "AWS_MSK_IAM"},
            "clients.yaml: a.aggregate.sasl.mechanism = 'AWS_MSK_IAM': needs a JVM login "
            "callback (MSK IAM, OAUTHBEARER, GSSAPI are not measured from Python); allowed: "
            "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (give the drill SCRAM credentials)",
        ),
        (
            {"sasl.mechanism": "OAUTHBEARER"},
            "clients.yaml: a.aggregate.sasl.mechanism = 'OAUTHBEARER': needs a JVM login "
            "callback (MSK IAM, OAUTHBEARER, GSSAPI are not measured from Python); allowed: "
            "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (give the drill SCRAM credentials)",
        ),
        (
            {"sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": JAAS_SCRAM[:-30] + ";"},
            "clients.yaml: a.aggregate.sasl.jaas.config = '[hidden]': allowed: "
            'org.apache.kafka.common.security.scram.ScramLoginModule required username="..." '
            'password="..."; (the login module of sasl.mechanism)',
        ),
        (
            {"ssl.truststore.type": "JKS", "ssl.truststore.location": "/x.jks"},
            "clients.yaml: a.aggregate.ssl.truststore.type = 'JKS': librdkafka reads PEM only; "
            "allowed: PEM (convert the truststore)",
        ),
        (
            {"ssl.truststore.location": "/x.jks"},
            "clients.yaml: a.aggregate.ssl.truststore.location = '/x.jks': a JKS truststore "
            "(Java's default type) cannot be read here; allowed: with ssl.truststore.type: PEM",
        ),
        (
            {"security.protocol": "TLS"},
            "clients.yaml: a.aggregate.security.protocol = 'TLS': allowed: PLAINTEXT, SSL, "
            "SASL_PLAINTEXT, SASL_SSL",
        ),
        (
            {"sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.X"},
            "clients.yaml: a.aggregate.sasl.client.callback.handler.class = "
            "'software.amazon.msk.auth.iam.X': not a property the drill's measurements can "
            "carry over to librdkafka; allowed: bootstrap.servers, security.protocol, "
            "sasl.mechanism, sasl.jaas.config, ssl.truststore.type, ssl.truststore.location, "
            "ssl.truststore.certificates",
        ),
    ],
)
def test_what_librdkafka_cannot_carry_is_refused_by_name(java, line):
    from infra.topology.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        mapped({"bootstrap.servers": "b:9092", **java})
    assert str(e.value) == line


# --------------------------------------------------------------------------- alignment


def recs(*names: str):
    from infra.drill.kafka import Rec

    return [Rec(1000 + i, n.encode(), f"v-{n}".encode()) for i, n in enumerate(names)]


def test_align_counts_rereads_and_losses_by_identity():
    from infra.drill.kafka import align

    a, b, c, d, e = recs("a", "b", "c", "d", "e")
    copy = list(enumerate([a, b, c, d, e], start=40))  # a..e at 40..44
    # Consumed a and b in the old copy: c is the first it had not consumed, at 42.
    assert (align(42, copy, c, b).lost, align(42, copy, c, b).reread) == (0, 0)
    assert (align(40, copy, c, b).lost, align(40, copy, c, b).reread) == (0, 2)
    assert (align(44, copy, c, b).lost, align(44, copy, c, b).reread) == (2, 0)
    assert align(44, copy, c, b).position == 42
    # Caught up on e (nothing after it in the old copy): it resumes after e, at 45.
    assert (align(45, copy, None, e).lost, align(45, copy, None, e).reread) == (0, 0)
    assert (align(47, copy, None, e).lost, align(43, copy, None, e).reread) == (2, 2)


def test_align_with_duplicates_counts_the_occurrence_the_group_reads():
    """MirrorMaker 2 restarted and copied c..e again: c at 42 and 45. Resuming at 44 reads c at
    45 (nothing lost, one re-read: e's first copy at 44); at 46 c is behind every occurrence."""
    from infra.drill.kafka import align

    a, b, c, d, e = recs("a", "b", "c", "d", "e")
    copy = list(enumerate([a, b, c, d, e, c, d, e], start=40))
    got = align(44, copy, c, b)
    assert (got.position, got.lost, got.reread) == (45, 0, 1)
    got = align(46, copy, c, b)
    assert (got.position, got.lost, got.reread) == (45, 1, 0)


def test_align_finds_nothing_for_a_record_that_is_not_there():
    """Another value under the same key and timestamp is another record; a missing record is
    reported as not found (position None), never as 0 lost."""
    from infra.drill.kafka import Rec, align

    a, b, c = recs("a", "b", "c")
    other = Rec(c.timestamp, c.key, b"changed", c.headers)
    copy = list(enumerate([a, b, other], start=0))
    got = align(2, copy, c, b)
    assert got.position is None
    headed = Rec(c.timestamp, c.key, c.value, (("trace", b"1"),))
    assert align(2, [*copy, (3, headed)], c, b).position is None
    assert align(0, [], None, None).position is None


def test_offset_syncs_round_trip_and_replication_lag():
    from infra.drill.kafka import decode_offset_sync, encode_offset_sync, replication_lag

    key, value = encode_offset_sync("payment-events", 2, 1234, 567)
    assert key == b"\x00\x0epayment-events\x00\x00\x00\x02"
    assert decode_offset_sync(key, value) == ("payment-events", 2, 1234, 567)
    # Regional end 1300; the copy holds up to its offset 600, a sync says 1234 -> 567: the copy's
    # end stands for regional 1267, so 33 records are not there yet.
    assert replication_lag(1300, 0, 600, (1234, 567)) == 33
    assert replication_lag(1300, 0, 1000, (1234, 567)) == 0
    assert replication_lag(50, 20, 0, None) == 30  # nothing copied: what the regional retains
    assert replication_lag(50, 20, 5, None) is None  # records but no sync: not measurable


def test_the_report_json_shape():
    from infra.drill.run import DrillReport, StepResult

    report = DrillReport(
        OLD,
        NEW,
        "2026-11-30T20:00:00+00:00",
        "done",
        [StepResult("preflight", 1.23456, "done")],
        [],
        {"ledger-writer": {"lost": 0, "reread": 4, "resumed": 2.5}},
        {"ledger-writer": {COPY: {1: 7, 0: 5}}},
        2.5,
    )
    assert report.as_json() == {
        "from": OLD,
        "to": NEW,
        "started": "2026-11-30T20:00:00+00:00",
        "outcome": "done",
        "steps": [{"name": "preflight", "seconds": 1.235, "status": "done"}],
        "preflightFailed": [],
        "demoteToFirstRecordSeconds": 2.5,
        "groups": {"ledger-writer": {"lost": 0, "reread": 4, "resumed": 2.5}},
        "offsets": {"ledger-writer": {COPY: {"0": 5, "1": 7}}},
        "lost": 0,
    }
    assert dataclasses.replace(report, outcome="rolled back").exit_code == 1


def test_the_readme_clients_example_maps_to_librdkafka():
    """The README's clients file: its complete entries (the ones without `...`) map as shown,
    the folded `sasl.jaas.config` included."""
    import yaml

    from infra.drill.kafka import librdkafka_config

    readme = (ROOT / "README.md").read_text()
    marker = "```yaml\n# region -> regional | aggregate"
    text = readme.split(marker, 1)[1].split("\n", 1)[1].split("```", 1)[0]
    doc = yaml.safe_load(text)
    env = {"DRILL_US": "pw-us", "DRILL_DC1": "pw-dc1"}
    us = librdkafka_config(doc[OLD]["aggregate"], "clients", "us", env)
    dc1 = librdkafka_config(doc["onprem-dc1"]["regional"], "clients", "dc1", env)
    assert (us["sasl.username"], us["sasl.password"], us["sasl.mechanisms"]) == (
        "drill",
        "pw-us",
        "SCRAM-SHA-512",
    )
    assert dc1["ssl.ca.location"] == "/etc/rtdi/dc1-ca.crt" and dc1["sasl.password"] == "pw-dc1"


def test_preflight_without_a_needed_client_measures_nothing():
    """LiveKafka built without a cluster the checks read (its callers may build it directly,
    not from a clients file): one line naming what is missing, before any connection."""
    from infra.drill.kafka import LiveKafka

    client = {"bootstrap.servers": "127.0.0.1:1"}
    kafka = LiveKafka({"a": {"regional": client, "aggregate": client}}, max_lag=1, max_sync_lag=1)
    assert kafka.preflight(tiny_drill()) == [  # type: ignore[arg-type]
        "preflight: no client for b's regional cluster, b's aggregate cluster, c's regional "
        "cluster; nothing measured"
    ]
