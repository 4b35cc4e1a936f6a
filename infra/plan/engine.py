"""Run the Pulumi program offline, once per stack, and record what it declares.

Each stack runs in a fresh `contextvars.Context` and event loop, because the Pulumi SDK keeps its
settings, root stack and configuration in context variables: a fresh context is a fresh process
as far as the SDK is concerned, without paying for one.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_in_stack

from infra.plan.mocks import PlanMocks
from infra.topology.config import StackConfig

PROJECT = "rtdi"
ORGANIZATION = (
    "organization"  # what the local backend (`pulumi login --local`) calls every organisation
)
SECRET = "[secret]"


@dataclass
class Declared:
    urn: str
    type: str
    name: str
    parent: str | None
    provider: str | None
    custom: bool
    inputs: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "inputs": self.inputs,
        }


@dataclass
class StackPlan:
    stack: str
    registered: dict[str, Declared] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # secrets masked: what the plan shows
    values: dict[str, Any] = field(default_factory=dict)  # secrets revealed: what other stacks read

    @property
    def resources(self) -> list[Declared]:
        """Sorted by URN: registration order depends on the event loop, a plan must not."""
        return [self.registered[u] for u in sorted(self.registered)]

    def of_type(self, type_: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_]

    def by_name(self, name: str) -> Declared:
        return next(r for r in self.resources if r.name == name)


class _Recorder(sdk_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping parent, provider and inputs of every registration."""

    def __init__(self, mocks: PlanMocks, plan: StackPlan):
        super().__init__(mocks)
        self.plan = plan
        self.stack_urn: str | None = None

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
        self._record(response.urn, request, bool(request.custom), request.object)
        return response

    def ReadResource(self, request):
        response = super().ReadResource(request)
        self._record(response.urn, request, True, request.properties)
        return response

    def _record(self, urn: str, request, custom: bool, props) -> None:
        inputs = (
            _plain(rpc.deserialize_properties(props))
            if request.type != "pulumi:pulumi:Stack"
            else {}
        )
        self.plan.registered[urn] = Declared(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            provider=request.provider or None,
            custom=custom,
            inputs=inputs,
        )

    def RegisterResourceOutputs(self, request):
        if request.urn == self.stack_urn:
            outputs = rpc.deserialize_properties(request.outputs)
            self.plan.outputs = _plain(outputs)
            self.plan.values = _plain(outputs, reveal=True)
        return super().RegisterResourceOutputs(request)


def _plain(value: Any, reveal: bool = False) -> Any:
    """JSON-ready values: secrets masked (or revealed), resource references by name."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value.get("value"), reveal) if reveal else SECRET
        return {k: _plain(v, reveal) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, reveal) for v in value]
    if isinstance(value, pulumi.Resource):
        return f"<resource {type(value).__name__}>"
    if isinstance(value, float) and value.is_integer():
        return int(
            value
        )  # the wire format has only floats; a replica count is still a whole number
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def run_stack(
    cfg: StackConfig,
    program: Callable[[], Awaitable[None]],
    stack_outputs: dict[str, dict[str, Any]],
) -> StackPlan:
    """Run ``program`` as stack ``cfg.stack`` with the mock engine; return what it declared."""
    return run_entry(cfg, lambda: pulumi.run(program), stack_outputs)


def run_entry(
    cfg: StackConfig, entry: Callable[[], Any], stack_outputs: dict[str, dict[str, Any]]
) -> StackPlan:
    """Run ``entry`` inside a fresh root stack, as the Pulumi language host runs a program's module."""
    plan = StackPlan(stack=cfg.stack)
    contextvars.Context().run(_run, cfg, entry, stack_outputs, plan)
    return plan


def _run(cfg: StackConfig, entry, stack_outputs, plan: StackPlan) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        mocks = PlanMocks(stack_outputs)
        monitor = _Recorder(mocks, plan)
        pulumi.runtime.set_mocks(
            mocks,
            project=PROJECT,
            stack=cfg.stack,
            preview=False,
            monitor=monitor,
            organization=ORGANIZATION,
        )
        ROOT.set(
            None
        )  # set_mocks made a root stack already; run_in_stack makes the one the program runs in
        set_all_config(dict(cfg.values), sorted(cfg.secret_keys))
        loop.run_until_complete(run_in_stack(entry))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
