"""``rtdi``: the offline plan (and, later, checks) without a cloud account or the Pulumi CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from infra.topology.errors import ConfigError, Issue

EXIT_BAD_INPUT = 2


def _stacks(args, project) -> list[str]:
    if args.all:
        return project.stack_names()
    if not args.stacks:
        raise ConfigError([_usage("name at least one stack, or pass --all")])
    return args.stacks


def _usage(message: str) -> Issue:
    return Issue("rtdi", "", message)


def cmd_plan(args) -> int:
    from infra.plan import Project, plan_stacks
    from infra.plan.writer import summary, write

    project = Project.find()
    out = Path(args.out) if args.out else project.root / ".rtdi" / "plan"
    plans = plan_stacks(project, _stacks(args, project))
    for name, plan in plans.items():
        counts = write(plan, out)
        print(summary(name, counts, out / name))
    return 0


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
    return check_stacks(project, _stacks(args, project), args.config, args.format)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtdi", description="Offline plans and policy checks of rtdi stacks."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser(
        "plan", help="plan stacks offline and write resources.json and manifests/"
    )
    plan.add_argument("stacks", nargs="*", metavar="STACK")
    plan.add_argument(
        "--all", action="store_true", help="every stack in the project's stack folder"
    )
    plan.add_argument("--out", help="output folder (default: .rtdi/plan)")
    plan.set_defaults(func=cmd_plan)
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
        help="a plan's resources.json (or its folder); repeatable",
    )
    check.add_argument(
        "--config",
        metavar="FILE",
        help="policy configuration, JSON or YAML (see policies/config.default.yaml)",
    )
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
