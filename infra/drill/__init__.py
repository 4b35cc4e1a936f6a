"""DR drills (issue 11): a primary flip that moves the active/passive consumers.

`plan` works out a drill offline (`rtdi drill plan`); `groups` says which consumer groups move;
`workspace` is the one interface the steps drive stacks through (plan-backed for tests,
`automation` the real one over Pulumi's Automation API).
"""

from infra.drill.groups import ActivePassiveGroup, active_passive_groups

__all__ = ["ActivePassiveGroup", "active_passive_groups"]
