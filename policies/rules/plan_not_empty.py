"""Soundness: a stack that declares nothing cannot pass the rules by having nothing to check."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.view import EXPORT, STACK, output

# Types that are bookkeeping, not something deployed.
NOT_DEPLOYED = ("pulumi:", "rtdi:")


class PlanNotEmpty(Rule):
    id = "plan-not-empty"
    category = "soundness"
    description = (
        "Every checked stack has its root pulumi:pulumi:Stack resource and declares at least one "
        "resource other than providers, stack references and rtdi components; the global stack, "
        "which only publishes the topology, may declare none if it exports `rtdi`."
    )
    why = (
        "Every rule checks what is declared, so an empty or truncated plan (a program that "
        "failed early, a resources.json of []) passes all of them and a broken deployment "
        "looks compliant."
    )
    severity = "high"

    def check(self, ctx: Context) -> None:
        view = ctx.view
        if not any(r.type == STACK for r in view.resources):
            ctx.report(
                view,
                f"the plan of stack {view.stack or '(unnamed)'} has no pulumi:pulumi:Stack "
                f"resource ({len(view.resources)} resources): it is not a whole plan; plan "
                "the stack again",
            )
            return
        deployed = [r for r in view.resources if not r.type.startswith(NOT_DEPLOYED)]
        if not deployed and output(view, EXPORT) is None:
            ctx.report(
                view,
                "declares no resources, so no rule has anything to check; plan the stack "
                "again and look for the error that stopped its program",
            )


RULE = PlanNotEmpty()
