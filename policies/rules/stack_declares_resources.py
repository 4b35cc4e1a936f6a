"""Plan integrity: a stack that declares nothing is an error, never a pass."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.view import PROVIDER_PREFIX, STACK, STACK_REFERENCE


class StackDeclaresResources(Rule):
    id = "stack-declares-resources"
    category = "plan integrity"
    description = (
        "Every stack checked declares at least one cloud or Kubernetes resource (anything but its "
        "root pulumi:pulumi:Stack, providers, StackReferences and rtdi component resources)."
    )
    why = (
        "Every other rule passes vacuously on a stack with nothing in it: an empty or truncated "
        "plan, or a program that failed to declare its region, would otherwise be reported as "
        "compliant."
    )
    severity = "high"

    def check(self, ctx: Context) -> None:
        view = ctx.view
        declared = [
            r
            for r in view.resources
            if r.type not in (STACK, STACK_REFERENCE)
            and not r.type.startswith((PROVIDER_PREFIX, "rtdi:", "pulumi:"))
        ]
        if not declared:
            ctx.report(
                view,
                f"stack {view.stack or '(unnamed)'} declares no resources "
                f"({len(view.resources)} in all: the root stack, providers, stack references or "
                "components only), so no rule has anything to check; plan the stack from its "
                "stack file, or check the plan rtdi plan wrote for it",
            )


RULE = StackDeclaresResources()
