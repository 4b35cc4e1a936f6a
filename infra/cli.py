"""``rtdi``: offline plans, their differences and policy checks, without a cloud account or the
Pulumi CLI; and `rtdi drill run`, the one command that drives the real stacks (Pulumi's
Automation API) and clusters.

Exit status: 0 on success (``rtdi diff`` too, whatever it finds, unless ``--exit-code``), 1 when
``rtdi check`` finds a mandatory violation, ``rtdi diff --exit-code`` finds a difference or a
drill is refused, stopped or rolled back, 2 on bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.topology.errors import ConfigError, Issue

EXIT_DIFFERENT, EXIT_BAD_INPUT = 1, 2


class Progress:
    """``planning aws-us-east-1 (2/5)`` on stderr, when stderr is a terminal.

    The line is rewritten in place and erased when planning ends, so a terminal keeps only the
    plan's own lines (or its one-line error); piped or captured stderr (CI, tests) gets nothing,
    which keeps a refused plan's stderr to exactly one line.
    """

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.shown = _isatty(self.stream)

    def __call__(self, stack: str, n: int, total: int) -> None:
        if self.shown:
            self.stream.write(f"\rplanning {stack} ({n}/{total})\x1b[K")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _stacks(args, project) -> list[str]:
    if args.all:
        names: list[str] = project.stack_names()
        return names
    if not args.stacks:
        raise ConfigError([_usage("name at least one stack, or pass --all")])
    return list(args.stacks)


def _usage(message: str) -> Issue:
    return Issue("rtdi", "", message)


def cmd_plan(args) -> int:
    from infra.plan import Project, plan_stacks
    from infra.plan.writer import check_writable, summary, write

    project = Project.find()
    out = Path(args.out) if args.out else project.root / ".rtdi" / "plan"
    stacks = _stacks(args, project)
    check_writable(out)
    before = _previous(out, stacks) if args.diff else None
    with Progress() as progress:
        rounds = 1 if args.first_deployment else 2
        plans = plan_stacks(project, stacks, rounds=rounds, progress=progress)
    for name, plan in plans.items():
        counts = write(plan, out)
        print(summary(name, counts, out / name, plan.outputs.get("pending")))
    if before is not None:
        from infra.plan.diff import diff_plans, load_stack, render_text

        after = {name: load_stack(out / name) for name in plans}
        text = render_text(diff_plans({s: p for s, p in before.items() if s in plans}, after))
        print()  # the diff starts after a blank line, apart from the summary lines
        print(text or f"no changes against the previous plan in {_shown(out)}")
    return 0


def _previous(out: Path, stacks: list[str]) -> dict:
    """The plans about to be overwritten, read first: what ``rtdi plan --diff`` compares with."""
    from infra.plan.diff import load_stack

    return {s: load_stack(out / s) for s in stacks if (out / s / "resources.json").is_file()}


def _shown(path: Path) -> str:
    from infra.plan.paths import shown

    return shown(path)


def cmd_diff(args) -> int:
    """Compare two plan folders: resources by URN, values key by key, outputs (plan/diff.py)."""
    from infra.plan.diff import changed, diff_plans, is_stack_folder, load, render_json, render_text

    old_path, new_path = Path(args.old), Path(args.new)
    old, new = load(old_path), load(new_path)
    if is_stack_folder(old_path) and is_stack_folder(new_path):
        # Two stacks' folders compare with each other, whatever their names (a copy, a rename).
        old = {name: next(iter(old.values())) for name in new}
    diffs = diff_plans(old, new)
    text = render_json(diffs) if args.format == "json" else render_text(diffs)
    if text:
        print(text)
    return EXIT_DIFFERENT if args.exit_code and changed(diffs) else 0


def cmd_check(args) -> int:
    """Run the policy rules (policies/) over offline plans; exit 1 on a mandatory violation."""
    from policies.checker import check_plans, check_stacks

    if args.plan:
        if args.stacks or args.all:
            raise ConfigError(
                [_usage("--plan checks plan files; do not also name stacks or pass --all")]
            )
        return check_plans(args.plan, args.config, args.format)
    from infra.plan import Project

    project = Project.find()
    return check_stacks(
        project, _stacks(args, project), args.config, args.format, progress=Progress()
    )


def cmd_backfill(args) -> int:
    """Plan a bounded re-run of a Flink job (infra/plan/backfill.py) and say how to apply it."""
    from infra.plan import Project
    from infra.plan.backfill import Request, config_lines, plan_backfill, summary
    from infra.plan.writer import check_writable, write

    project = Project.find()
    request = Request(args.job, args.start, args.end, args.region, args.id, args.source)
    if args.out:
        check_writable(Path(args.out))
    bp = plan_backfill(project, request)
    out = Path(args.out) if args.out else project.root / ".rtdi" / "backfill" / bp.name
    check_writable(out)
    write(bp.plan, out)
    if bp.global_plan is not None:
        write(bp.global_plan, out)
    for line in summary(bp, out / bp.stack):
        print(line)
    print()
    print(f"apply it: add it to the stack's rtdi:backfills, then `pulumi up` {bp.stack}:")
    for line in config_lines(bp):
        print(f"  {line}")
    return 0


def _plan_drill(args, project):
    """The drill plan both `rtdi drill plan` and `rtdi drill run` start from, from their flags."""
    from infra.drill.plan import plan_drill

    with Progress() as progress:
        return plan_drill(
            project,
            args.to,
            global_stack=args.global_stack,
            max_lag=args.max_lag,
            max_sync_lag=args.max_sync_lag,
            policy_config=args.config,
            progress=progress,
        )


def cmd_drill_plan(args) -> int:
    """What a DR drill to ``--to`` will do (infra/drill/plan.py); exit 1 when the flip would
    break a mandatory policy or a check the plan decides."""
    from infra.drill.plan import render_json, render_text
    from infra.plan import Project

    project = Project.find()
    drill = _plan_drill(args, project)
    print(render_json(drill) if args.format == "json" else render_text(drill))
    return EXIT_DIFFERENT if drill.violates else 0


def _savepoints(pairs: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        job, sep, uri = pair.partition("=")
        if not sep or not job or "://" not in uri or job in out:
            raise ConfigError(
                [
                    Issue(
                        "rtdi drill run",
                        "--savepoint",
                        "allowed: JOB=URI once per job, URI the savepoint the old primary's job "
                        "stopped with (s3p://.../savepoint-...)",
                        pair,
                    )
                ]
            )
        out[job] = uri
    return out


def cmd_drill_run(args) -> int:
    """A DR drill to ``--to`` on the real stacks (Pulumi's Automation API) and clusters (the
    clients file): infra/drill/run.py's steps, a JSON report and a summary; exit 0 done, 1
    failed or rolled back (or refused by its plan), 2 bad input."""
    from infra.drill.plan import verdict
    from infra.plan import Project

    where = "rtdi drill run"
    savepoints = _savepoints(args.savepoint)
    clients_file = Path(args.clients)
    if not clients_file.is_file():
        raise ConfigError(
            [Issue(where, "--clients", "no such file; allowed: a YAML clients file", args.clients)]
        )
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        raise ConfigError(
            [
                Issue(
                    where,
                    "--clients",
                    "the drill talks to Kafka with confluent-kafka, which is not installed; "
                    "allowed: pip install 'rtdi[drill]' (or 'confluent-kafka>=2.6,<3')",
                )
            ]
        ) from None
    from infra.components.kafka import offset_sync

    if not args.dry_run and not offset_sync.JAR.is_file():
        raise ConfigError(
            [
                Issue(
                    where,
                    "sync-offsets",
                    f"needs the offset sync jar {offset_sync.JAR}, which is not built; allowed: "
                    "build it (`make offset-sync-jar`)",
                )
            ]
        )
    project = Project.find()
    drill = _plan_drill(args, project)
    if drill.violates:
        print(verdict(drill), file=sys.stderr)
        return EXIT_DIFFERENT
    jobs = sorted(g.job for g in drill.groups if g.job)
    for job in savepoints:
        if job not in jobs:
            raise ConfigError(
                [
                    Issue(
                        where,
                        "--savepoint",
                        f"not an active-passive job of the drill; allowed: {', '.join(jobs)}",
                        job,
                    )
                ]
            )
    from infra.drill.kafka import LiveKafka, handover_problem, load_clients, sync_lag_bound
    from infra.drill.run import run_drill

    if savepoints and (problem := handover_problem(os.environ)):
        raise ConfigError([Issue(where, "--savepoint", f"{problem}; allowed: set it up")])

    clients = load_clients(clients_file, drill)
    kafka = LiveKafka(
        clients,
        max_lag=args.max_lag,
        max_sync_lag=sync_lag_bound(drill, args.max_sync_lag),
        savepoints=savepoints,
    )
    workspace = _workspace(Path(args.workspace_dir) if args.workspace_dir else project.root)
    report = run_drill(drill, workspace, kafka, dry_run=args.dry_run, abort_after=args.abort_after)
    if args.report:
        out = Path(args.report)
    else:
        stamp = report.started.replace(":", "").replace("+0000", "Z")
        out = project.root / ".rtdi" / "drill" / f"{drill.source}-to-{drill.target}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.dumps() + "\n")
    print(report.summary())
    print(f"report: {_shown(out)}")
    return report.exit_code


def _workspace(work_dir: Path):
    """Pulumi's Automation API over the project, the backend and passphrase from the
    environment as `pulumi` takes them; `pulumi up`'s lines go to stderr."""
    from infra.drill.automation import PulumiWorkspace

    return PulumiWorkspace(
        work_dir, env=dict(os.environ), on_output=lambda line: print(line, file=sys.stderr)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtdi", description="Offline plans, plan diffs and policy checks of rtdi stacks."
    )
    parser.add_argument("--version", action="version", version=f"rtdi {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser(
        "plan", help="plan stacks offline and write resources.json and manifests/"
    )
    plan.add_argument("stacks", nargs="*", metavar="STACK")
    plan.add_argument(
        "--all", action="store_true", help="every stack in the project's stack folder"
    )
    plan.add_argument("--out", help="output folder (default: .rtdi/plan)")
    plan.add_argument(
        "--diff",
        action="store_true",
        help="also print what changed against the plan already in the output folder",
    )
    plan.add_argument(
        "--first-deployment",
        action="store_true",
        help="plan round one of a first deployment: no regional stack exists yet, so flows "
        "that read a peer stack are pending (default: the converged second round)",
    )
    plan.set_defaults(func=cmd_plan)
    diff = sub.add_parser(
        "diff",
        help="what changed between two plan folders (resources, values key by key, outputs)",
    )
    diff.add_argument("old", metavar="OLD", help="a plan folder (<stack>/resources.json ...)")
    diff.add_argument("new", metavar="NEW", help="the plan folder to compare it with")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when the plans differ (as `git diff --exit-code`); default: always 0",
    )
    diff.set_defaults(func=cmd_diff)
    check = sub.add_parser(
        "check", help="run the policy rules over stacks planned offline, or over plan files"
    )
    check.add_argument("stacks", nargs="*", metavar="STACK")
    check.add_argument(
        "--all", action="store_true", help="every stack in the project's stack folder"
    )
    check.add_argument(
        "--plan",
        action="append",
        metavar="PATH",
        help="a plan folder (every stack in it), a stack's plan folder or its resources.json; "
        "repeatable",
    )
    check.add_argument(
        "--config",
        metavar="FILE",
        help="policy configuration, JSON or YAML (see policies/config.default.yaml)",
    )
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(func=cmd_check)
    backfill = sub.add_parser(
        "backfill",
        help="plan a bounded re-run of a Flink job over a past range, into its backfill sinks",
    )
    backfill.add_argument("job", metavar="JOB", help="a job of jobs/flink with a backfill section")
    backfill.add_argument(
        "--from", dest="start", required=True, metavar="T1", help="first instant, RFC 3339"
    )
    backfill.add_argument(
        "--to", dest="end", required=True, metavar="T2", help="end instant (excluded), RFC 3339"
    )
    backfill.add_argument(
        "--region", help="a region of the job (default: the primary, if the job runs there)"
    )
    backfill.add_argument("--id", help="names the run (default: the start time, UTC)")
    backfill.add_argument(
        "--source",
        metavar="SOURCE",
        help="kafka or archive (default: Kafka while it holds the range, else the region's "
        "Parquet archive)",
    )
    backfill.add_argument("--out", help="output folder (default: .rtdi/backfill/<job>-<id>)")
    backfill.set_defaults(func=cmd_backfill)
    drill = sub.add_parser("drill", help="DR drills: switch the primary region (issue 11)")
    drill_sub = drill.add_subparsers(dest="drill_command", required=True)
    drill_plan = drill_sub.add_parser(
        "plan",
        help="offline: the steps of a drill to REGION, the flip's diffs, the preflight checks "
        "and rtdi check on the post-flip plans",
    )
    drill_plan.add_argument("--to", required=True, metavar="REGION", help="the new primary")
    drill_plan.add_argument(
        "--global", dest="global_stack", metavar="STACK", help="the global stack (default: the one)"
    )
    drill_plan.add_argument(
        "--max-lag",
        type=int,
        default=1000,
        metavar="RECORDS",
        help="preflight: most records per partition not yet mirrored into the new primary",
    )
    drill_plan.add_argument(
        "--max-sync-lag",
        type=int,
        metavar="RECORDS",
        help="preflight: most records a newest offset sync may trail its copy's end (default: "
        "the mirror's offset.lag.max)",
    )
    drill_plan.add_argument(
        "--config", metavar="FILE", help="policy configuration for rtdi check, JSON or YAML"
    )
    drill_plan.add_argument("--format", choices=("text", "json"), default="text")
    drill_plan.set_defaults(func=cmd_drill_plan)
    drill_run = drill_sub.add_parser(
        "run",
        help="run a drill to REGION on the real stacks and clusters: preflight, flip, demote, "
        "sync offsets, promote, verify; a JSON report",
    )
    drill_run.add_argument("--to", required=True, metavar="REGION", help="the new primary")
    drill_run.add_argument(
        "--clients",
        required=True,
        metavar="FILE",
        help="YAML: region -> regional/aggregate -> Kafka Java client properties",
    )
    drill_run.add_argument(
        "--global", dest="global_stack", metavar="STACK", help="the global stack (default: the one)"
    )
    drill_run.add_argument(
        "--max-lag",
        type=int,
        default=1000,
        metavar="RECORDS",
        help="preflight: most records per partition not yet mirrored into the new primary",
    )
    drill_run.add_argument(
        "--max-sync-lag",
        type=int,
        metavar="RECORDS",
        help="preflight: most records a newest offset sync may trail its copy's end (default: "
        "the mirror's offset.lag.max)",
    )
    drill_run.add_argument(
        "--config", metavar="FILE", help="policy configuration for rtdi check, JSON or YAML"
    )
    drill_run.add_argument(
        "--dry-run", action="store_true", help="stop after preflight (changes nothing)"
    )
    drill_run.add_argument(
        "--abort-after",
        metavar="STEP",
        choices=("preflight", "flip", "demote", "sync-offsets", "promote"),
        help="rehearse an abort: roll back after STEP (the old primary serves again)",
    )
    drill_run.add_argument(
        "--report",
        metavar="FILE",
        help="the JSON report (default: .rtdi/drill/<from>-to-<to>-<time>.json)",
    )
    drill_run.add_argument(
        "--workspace-dir",
        metavar="DIR",
        help="the Pulumi project folder (default: this project's root)",
    )
    drill_run.add_argument(
        "--savepoint",
        action="append",
        metavar="JOB=URI",
        help="the savepoint an active-passive job stopped with in the old primary: its offsets "
        "(io.rtdi.flink.Handover) are where the group resumes; repeatable",
    )
    drill_run.set_defaults(func=cmd_drill_run)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rtdi")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `rtdi diff A B | head`: the reader left; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_DIFFERENT


if __name__ == "__main__":
    sys.exit(main())
