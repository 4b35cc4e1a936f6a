"""DR drill failover on real Kafka: how long the active-passive group is down and how much it
re-reads, against MirrorMaker 2's settings, with and without the drill's forced offset sync.

The world is the real drill tests' (tests/integration/drill_world.py): two regions on loopback,
four single-broker clusters, four MirrorMaker 2 flows configured from the plans, steady producers
into both regional clusters and the application ``ledger-writer`` following its region's
federation registry. For each MirrorMaker 2 setting (every flow restarted with it), two drills:

- ``forced``: `run_drill` as `rtdi drill run` runs it: the sync step waits for the new copy to
  hold where the group stopped, runs the offset-sync jar `--once` and commits, then promotes.
- ``job``: no sync step. The offset sync job runs in the new primary's region as the Deployment
  runs it (the jar in loop mode, every ``--job-interval`` s, 30 by default like MirrorMaker 2's
  own sync), and the new primary starts from whatever its last pass committed. (MirrorMaker 2
  alone gives nothing to start from: it checkpoints no group that commits on an aggregate,
  tests/integration/test_offset_sync.py.)

Per drill: failover, from the start of demote to the first record the new primary's application
consumed; re-reads per partition of the copies (the records it consumed that the old primary had
consumed, counted by the application; the forced drill's own count beside it); records lost
(must be 0); and the newest offset sync's lag behind the copies' ends just before the drill.

Run from the repo root (needs Java, `make kafka-jars offset-sync-jar`; about 6 minutes):
``.venv/bin/python benchmarks/drill.py [--rate 40] [--job-interval 30] [--quick]``
It prints a Markdown table (README, "DR drills: `rtdi drill run`").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import drill_world as dw  # noqa: E402
import kafka_jars  # noqa: E402
import kafka_local as kl  # noqa: E402

from infra.components.kafka import offset_sync as osync  # noqa: E402
from infra.drill import run as drill_run  # noqa: E402
from infra.drill.kafka import LiveKafka  # noqa: E402
from infra.drill.plan import plan_drill  # noqa: E402
from infra.drill.workspace import PlanWorkspace  # noqa: E402

# (label, connector settings, worker settings). The tests' settings first; offset.lag.max is
# what a translation step may re-read; the worker's offset flush is when MirrorMaker 2 writes a
# partition's newest offset sync if fewer than offset.lag.max records came since the last one.
SETTINGS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("offset.lag.max 100, flush 1 s (the tests')", {}, {}),
    ("offset.lag.max 10, flush 1 s", {"offset.lag.max": 10}, {}),
    ("offset.lag.max 1000, flush 1 s", {"offset.lag.max": 1000}, {}),
    ("offset.lag.max 100, flush 10 s", {}, {"offset.flush.interval.ms": 10000}),
    (
        "offset.lag.max 100, flush 60 s, checkpoints and group sync 30 s (as planned)",
        {"emit.checkpoints.interval.seconds": 30, "sync.group.offsets.interval.seconds": 30},
        {"offset.flush.interval.ms": 60000},
    ),
]


@dataclass
class Result:
    setting: str
    mode: str
    direction: str
    outcome: str
    failover: float | None
    reread_max: int
    reread_total: int
    drill_reread: int | None
    lost: int
    sync_lag: int
    sync_step: float  # s the drill's sync step took (0 without it)


def sync_lag(side: LiveKafka, world: dw.World) -> int:
    """The largest number of records any copy's newest offset sync trails its end by, in
    either aggregate: what one translation step may have to re-read. A look that fails (a
    broker's metadata moving: UNKNOWN_LEADER_EPOCH was seen once) is taken again."""
    for attempt in range(5):
        try:
            return _sync_lag(side, world)
        except Exception:
            if attempt == 4:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def _sync_lag(side: LiveKafka, world: dw.World) -> int:
    worst = 0
    for region in dw.REGIONS:
        for source in dw.REGIONS:
            copy = f"{source}.{dw.TOPIC}"
            synced = side.syncs(region, source)
            parts = [(copy, p) for p in range(world.partitions())]
            ends = side.offsets(region, "aggregate", parts)
            for (_, p), end in ends.items():
                sync = synced.get((dw.TOPIC, p))
                worst = max(worst, end if sync is None else end - (sync[1] + 1))
    return worst


def skip_sync(ctx: drill_run.Context) -> None:
    """The sync step left out: the group starts from what the offset sync job committed."""


skip_sync.__name__ = "sync_offsets"


def drill(
    env: dict[str, Any], setting: str, mode: str, job_interval: int, verify_timeout: float = 120
) -> Result:
    world: dw.World = env["world"]
    ws: PlanWorkspace = env["ws"]
    apps: dict[str, dw.RegionApp] = env["apps"]
    source = ws.outputs("global")["primaryRegion"]
    target = dw.B if source == dw.A else dw.A
    plan = plan_drill(ws.project, target, before=dict(ws.deployed))
    side = LiveKafka(world.clients(), max_lag=100_000, max_sync_lag=100_000)
    side.verify_timeout = verify_timeout
    lag = sync_lag(side, world)
    job = None
    if mode == "job":
        job = start_job(world, source, target, job_interval, env["tmp"])
        time.sleep(job_interval + 5)  # at least one pass before the drill, as in a deployment
    ctx = drill_run.Context(plan, ws, side)
    steps = list(drill_run.STEPS)
    if mode == "job":
        steps[steps.index(drill_run.sync_offsets)] = skip_sync
    try:
        drill_run.run_steps(ctx, steps)
    finally:
        if job is not None:
            job.terminate()
            job.wait(15)
    outcome = "done" if all(r.status == "done" for r in ctx.results) else "failed"
    for r in ctx.results:
        print(f"  {r.name} {r.status} {r.seconds:.1f} s {r.detail}", file=sys.stderr)
    if outcome != "done" or ctx.demoted_at is None:  # rolled back: the old primary serves
        cut = {k for p in env["producers"] for k in p.snapshot()}
        lost = dw.missing_after(list(apps.values()), cut, 120)
        return Result(
            setting, mode, f"{source} -> {target}", outcome, None, 0, 0, None, len(lost), lag, 0
        )
    demoted = ctx.demoted_at
    app = apps[target]
    kl.wait_for(f"{target} consuming", lambda: dw.first_consumed(app, demoted), 120)
    first = dw.first_consumed(app, demoted)
    cut = {k for p in env["producers"] for k in p.snapshot()}
    lost = dw.missing_after(list(apps.values()), cut, 120)
    reread = dw.rereads(app, list(apps.values()), demoted)
    mine = ctx.verified.get(dw.GROUP, {}).get("reread") if mode == "forced" else None
    return Result(
        setting,
        mode,
        f"{source} -> {target}",
        outcome,
        None if first is None else first - demoted,
        max(reread.values(), default=0),
        sum(reread.values()),
        mine,
        len(lost),
        lag,
        sum(r.seconds for r in ctx.results if r.name == "sync-offsets" and mode == "forced"),
    )


def start_job(
    world: dw.World, primary: str, local: str, interval: int, tmp: Path
) -> subprocess.Popen:
    """The offset sync job of ``local``'s region in loop mode, as its Deployment runs it."""
    config = tmp / f"offset-sync-{local}-{time.monotonic_ns()}.properties"
    config.write_text(
        osync.sync_properties(
            [dw.GROUP],
            primary,
            local,
            {"bootstrap.servers": world.bootstrap(local, "aggregate")},
            {"bootstrap.servers": world.bootstrap(primary, "aggregate")},
        )
    )
    return subprocess.Popen(
        [
            "java",
            "-jar",
            str(osync.JAR),
            "--config",
            str(config),
            "--interval-seconds",
            str(interval),
            "--health-port",
            str(kl.free_port()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_current(world: dw.World, timeout: float = 120) -> None:
    """Until the restarted mirrors have caught up: the drill's own replication-lag check passes
    (at most 200 records per partition still to copy)."""
    side = LiveKafka(world.clients(), max_lag=200, max_sync_lag=100_000)
    deadline = time.monotonic() + timeout
    failed: list[str] = ["not measured"]
    while time.monotonic() < deadline:
        try:
            failed = side.preflight(ENV["plan"])
        except Exception as exc:  # a mirror still creating its topics
            failed = [repr(exc)]
        if not failed:
            return
        time.sleep(2)
    raise SystemExit(f"the mirrors did not catch up: {failed}")


ENV: dict[str, Any] = {}


def table(results: list[Result]) -> str:
    lines = [
        "| MirrorMaker 2 | offset sync | failover s (sync step) | re-read max/partition | "
        "re-read total (drill's count) | lost | newest sync behind end |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        mode = "forced (drill)" if r.mode == "forced" else f"job pass ({ENV['interval']} s)"
        fail = "-" if r.failover is None else f"{r.failover:.1f}"
        if r.mode == "forced":
            fail += f" ({r.sync_step:.1f})"
        mine = "" if r.drill_reread is None else f" ({r.drill_reread})"
        if r.outcome != "done":
            fail += f" ({r.outcome})"
        lines.append(
            f"| {r.setting} | {mode} | {fail} | {r.reread_max} | {r.reread_total}{mine} | "
            f"{r.lost} | {r.sync_lag} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=40, help="records/s per regional cluster")
    parser.add_argument("--job-interval", type=int, default=osync.INTERVAL_SECONDS)
    parser.add_argument("--quick", action="store_true", help="the first two settings only")
    parser.add_argument(
        "--setting",
        type=int,
        action="append",
        help=f"run only these settings (0 to {len(SETTINGS) - 1}, in the order of SETTINGS)",
    )
    args = parser.parse_args(argv)
    jars = kafka_jars.fetched()
    if jars is None or not osync.JAR.is_file():
        raise SystemExit("needs `make kafka-jars offset-sync-jar` (and Java 17+)")
    ENV["interval"] = args.job_interval
    settings = SETTINGS[:2] if args.quick else SETTINGS
    if args.setting:
        settings = [SETTINGS[i] for i in args.setting]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="rtdi-drill-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with dw.no_flink_jobs(tmp / "jobs"):
            project = dw.project()
            plans = dw.converged(project)
            (tmp / "kafka").mkdir()
            started = time.monotonic()
            world = dw.start_world(tmp / "kafka", jars, project, plans)
            print(f"world up in {time.monotonic() - started:.0f} s", file=sys.stderr)
            ws = PlanWorkspace(project, plans)
            producers = [
                dw.SteadyProducer(r, world.bootstrap(r, "regional"), args.rate) for r in dw.REGIONS
            ]
            apps = {r: dw.RegionApp(ws, r, world.bootstrap(r, "aggregate")) for r in dw.REGIONS}
            try:
                for copy in dw.copies():
                    c = kl.consumer(world.bootstrap(dw.A, "aggregate"), dw.GROUP, "earliest")
                    kl.commit(c, copy, {p: 0 for p in range(world.partitions())}, close=True)
                for thread in [*producers, *apps.values()]:
                    thread.start()
                env = {"world": world, "ws": ws, "apps": apps, "producers": producers, "tmp": tmp}
                ENV["plan"] = plan_drill(project, dw.B, before=plans)
                for label, connector, worker in settings:
                    world.reconfigure_mirrors(connector, worker)
                    time.sleep(10)  # as a deployment runs: the mirrors settled at their pace
                    wait_current(world)
                    for mode in ("forced", "job"):
                        r = drill(env, label, mode, args.job_interval)
                        print(r, file=sys.stderr)
                        results.append(r)
            finally:
                for thread in [*apps.values(), *producers]:
                    thread.halt.set()
                for thread in [*apps.values(), *producers]:
                    thread.join(60)
                world.stop()
    print(table(results))
    return 0 if all(r.lost == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
