"""Run the Pulumi program offline, once per stack, and record what it declares.

Each stack runs in a fresh `contextvars.Context` and event loop, because the Pulumi SDK keeps its
settings, root stack and configuration in context variables: a fresh context is a fresh process
as far as the SDK is concerned, without paying for one.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_in_stack

from infra.plan.mocks import PlanMocks
from infra.topology.config import StackConfig
from infra.topology.errors import ConfigError, Issue

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
    # Resource options that change what `pulumi up` does with a change of the inputs (a
    # replacement instead of an update); only those set, so most resources carry none.
    options: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        doc = {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "inputs": self.inputs,
        }
        if self.options:
            doc["options"] = self.options
        return doc


@dataclass
class StackPlan:
    stack: str
    registered: dict[str, Declared] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # secrets masked: what the plan shows
    values: dict[str, Any] = field(default_factory=dict)  # secrets revealed: what other stacks read
    duplicates: list[tuple[Declared, Declared]] = field(default_factory=list)
    # where in rtdi's code each (type, name) was constructed, in construction order
    sites: dict[tuple[str, str], list[str]] = field(default_factory=dict)

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
        declared = Declared(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            provider=request.provider or None,
            custom=custom,
            inputs=inputs,
            options=_options(request),
        )
        first = self.plan.registered.get(urn)
        if first is not None and request.type != "pulumi:pulumi:Stack":
            # The real engine fails `pulumi up` with "Duplicate resource URN"; the SDK's mock
            # monitor would silently keep the second. Keep the first and report both.
            self.plan.duplicates.append((first, declared))
            return
        self.plan.registered[urn] = declared

    def RegisterResourceOutputs(self, request):
        if request.urn == self.stack_urn:
            outputs = rpc.deserialize_properties(request.outputs)
            self.plan.outputs = _plain(outputs)
            self.plan.values = _plain(outputs, reveal=True)
        return super().RegisterResourceOutputs(request)


def _options(request) -> dict[str, Any]:
    """The replacement options of a registration (a ReadResource request has none)."""
    options: dict[str, Any] = {}
    replace_on = list(getattr(request, "replaceOnChanges", ()))
    if replace_on:
        options["replaceOnChanges"] = replace_on
    if getattr(request, "deleteBeforeReplace", False):
        options["deleteBeforeReplace"] = True
    return options


def _plain(value: Any, reveal: bool = False) -> Any:
    """JSON-ready values: secrets masked (or revealed), resource references by name."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            revealed = _plain(value.get("value"), True)
            return revealed if reveal else _mask(revealed)
        return {k: _plain(v, reveal) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, reveal) for v in value]
    if isinstance(value, pulumi.Resource):
        return f"<resource {type(value).__name__}>"
    if isinstance(value, float) and value.is_integer():
        # The wire format has only floats; a replica count is still a whole number.
        return int(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _mask(value: Any) -> Any:
    """A secret with its shape kept and every value hidden: a Secret's `data` keeps its keys, so
    the manifest stays a valid Secret and tests can check that referenced keys exist."""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return SECRET


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
    """Run ``entry`` in a fresh root stack, as the Pulumi language host runs a program's module.

    A URN declared twice raises ConfigError, as `pulumi up` fails on it."""
    plan = StackPlan(stack=cfg.stack)
    contextvars.Context().run(_run, cfg, entry, stack_outputs, plan)
    if plan.duplicates:
        raise ConfigError([_duplicate_issue(cfg, plan, a, b) for a, b in plan.duplicates])
    return plan


def _duplicate_issue(cfg: StackConfig, plan: StackPlan, first: Declared, second: Declared) -> Issue:
    sites = plan.sites.get((first.type, first.name), [])

    def where(index: int) -> str:
        if len(sites) == 2:
            return f" at {sites[index]}"
        return f" (constructed at {', '.join(sites)})" if sites else ""

    def parent(d: Declared) -> str:
        owner = plan.registered.get(d.parent or "")
        return owner.name if owner is not None else str(d.parent)

    return Issue(
        cfg.file,
        "",
        f"Duplicate resource URN {first.urn}: declared twice, "
        f"1) {first.type} {first.name!r} under {parent(first)!r}{where(0)}, "
        f"2) {second.type} {second.name!r} under {parent(second)!r}{where(1)}; "
        "pulumi up refuses the stack; allowed: one resource per type, name and parent",
    )


_SITES: contextvars.ContextVar[dict[tuple[str, str], list[str]] | None] = contextvars.ContextVar(
    "rtdi_plan_sites", default=None
)
_INFRA = Path(__file__).resolve().parents[1]
_REPO = _INFRA.parent
_LIBRARIES = Path(pulumi.__file__).resolve().parents[1]  # site-packages: pulumi and providers


def _site() -> str:
    """The innermost frame outside the SDKs and the plan machinery: where a resource was made."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if not (path.is_relative_to(_LIBRARIES) or path.is_relative_to(_INFRA / "plan")):
            shown = path.relative_to(_REPO) if path.is_relative_to(_REPO) else path
            return f"{shown}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def _recording_init(original):
    """Wrap `pulumi.Resource.__init__`: it runs synchronously in the code that declares a
    resource, whereas the monitor sees the registration later, from the SDK's event loop."""

    @functools.wraps(original)
    def init(self, t, name, *args, **kwargs):
        sites = _SITES.get()
        if sites is not None:
            sites.setdefault((t, name), []).append(_site())
        original(self, t, name, *args, **kwargs)

    init.rtdi_recording = True  # type: ignore[attr-defined]
    return init


if not getattr(pulumi.Resource.__init__, "rtdi_recording", False):
    pulumi.Resource.__init__ = _recording_init(pulumi.Resource.__init__)  # type: ignore[method-assign]


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
        _SITES.set(plan.sites)
        loop.run_until_complete(run_in_stack(entry))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)
