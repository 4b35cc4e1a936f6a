"""Durability: every stateful Flink job checkpoints to a directory and keeps a checkpoint when it
is cancelled; a job whose sinks are transactional checkpoints exactly-once.

Stateful means what the operator acts on: ``job.upgradeMode`` savepoint or last-state (the
operator restores such a job from its state on every upgrade). Transactional means what the
Kafka connector acts on: a Kafka sink table of the job's SQL script with
``sink.delivery-guarantee`` (or the older ``sink.semantic``) ``exactly-once`` writes in
transactions committed only when a checkpoint completes. A stateless job without such a sink (a
bounded backfill rebuilt from its range) needs neither.
"""

from __future__ import annotations

from policies.engine import Context, Param
from policies.rules._flink import (
    CHECKPOINT_DIR,
    CHECKPOINT_MODE,
    INTERVAL,
    RETENTION,
    DeploymentRule,
    configuration,
    is_stateful,
    name_of,
    seconds,
    setting,
    sql_script,
    transactional,
    upgrade_mode,
)
from policies.view import Resource, StackView

RETAIN = "RETAIN_ON_CANCELLATION"
MIN_INTERVAL_SECONDS = 0.01  # Flink refuses a checkpoint interval under 10 ms


class FlinkCheckpointsRetained(DeploymentRule):
    id = "flink-checkpoints-retained"
    category = "durability"
    description = (
        "Every stateful FlinkDeployment (upgradeMode savepoint or last-state) sets "
        "execution.checkpointing.interval (at most maxIntervalSeconds), "
        "execution.checkpointing.dir and execution.checkpointing.externalized-checkpoint-"
        "retention RETAIN_ON_CANCELLATION (Flink 2.2's default is NO_EXTERNALIZED_CHECKPOINTS); "
        "every job with a transactional Kafka sink in its SQL script (sink.delivery-guarantee "
        "exactly-once) checkpoints (an interval) in execution.checkpointing.mode EXACTLY_ONCE. "
        "Fallback keys and the script's SET statements count, as Flink reads them."
    )
    why = (
        "Without a retained checkpoint a cancelled or crashed stateful job restarts from "
        "nothing (or from a stale savepoint) and recomputes or loses its windows and balances; "
        "an exactly-once Kafka sink commits only on checkpoints, so without them it never "
        "commits, and with at-least-once checkpoints its state double-counts after a restore."
    )
    severity = "high"
    params = (
        Param(
            "maxIntervalSeconds",
            600,
            "Longest checkpoint interval: the most input a restore replays and the longest a "
            "transactional sink's output stays invisible.",
            {"type": "number", "exclusiveMinimum": 0},
        ),
    )

    def deployment(self, ctx: Context, view: StackView, dep: Resource) -> None:
        conf = configuration(view, dep)
        script = sql_script(view, dep).script
        tables = script.tables.values() if script else []
        inserted = script.inserts if script else []
        sinks = sorted(t.name for t in tables if transactional(t) and t.name in inserted)
        stateful = is_stateful(dep)
        if not stateful and not sinks:
            return
        name = name_of(dep)
        what = (
            f"is stateful (upgradeMode {upgrade_mode(dep)})"
            if stateful
            else f"writes transactional Kafka sinks ({', '.join(sinks)})"
        )
        fix = "execution.checkpointing.interval"
        if stateful:
            fix += f", .dir and .externalized-checkpoint-retention: {RETAIN}"
        if sinks:
            fix += " and .mode: EXACTLY_ONCE"
        problems: list[str] = []
        interval = setting(conf, INTERVAL)
        if interval is None:
            problems.append("no execution.checkpointing.interval (checkpoints are off)")
        else:
            secs = seconds(interval[1])
            if secs is None:
                problems.append(f"{interval[0]} {interval[1]!r} is not a Flink duration")
            elif secs < MIN_INTERVAL_SECONDS:
                problems.append(f"{interval[0]} {interval[1]!r} is under Flink's 10 ms minimum")
            elif secs > ctx["maxIntervalSeconds"]:
                problems.append(
                    f"{interval[0]} {interval[1]!r} is longer than {ctx['maxIntervalSeconds']} s"
                )
        if stateful:
            if setting(conf, CHECKPOINT_DIR) is None:
                problems.append("no execution.checkpointing.dir")
            retention = setting(conf, RETENTION)
            if retention is None or retention[1].upper() != RETAIN:
                shown = retention[1] if retention else "unset: NO_EXTERNALIZED_CHECKPOINTS"
                problems.append(f"checkpoints are not retained on cancellation ({shown})")
        if sinks:
            mode = setting(conf, CHECKPOINT_MODE)
            if mode is not None and mode[1].upper() != "EXACTLY_ONCE":
                problems.append(
                    f"execution.checkpointing.mode is {mode[1]} with exactly-once sinks "
                    f"({', '.join(sinks)})"
                )
        if problems:
            ctx.report(dep, f"FlinkDeployment {name} {what}: {'; '.join(problems)}; set {fix}")


RULE = FlinkCheckpointsRetained()
