"""One view of a stack's resources, whatever produced it.

Two sources feed the rules:

* a Pulumi policy pack during ``pulumi preview``/``up``: ``StackValidationArgs.resources``, whose
  ``props`` are the resources' *outputs* (read through pulumi_policy's unknown-checking proxies)
  and whose ``provider.props`` are the provider's *inputs*;
* an offline plan (``rtdi plan``): ``resources.json`` entries ``{urn, type, name, parent, provider,
  inputs}``, where ``provider`` is ``"<provider urn>::<provider id>"``, plus the stack's
  ``outputs.json``.

Both become a `StackView` of `Resource` objects. ``Resource.props`` is a `collections.abc.Mapping`
either way; rules read it with `dig` and the other helpers below and never assume a plain dict, so
an unknown preview value raises ``UnknownValueError`` exactly where it is read (the engine catches
it per resource, see `engine.Context.guard`).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

try:  # the proxy's error; absent pulumi_policy, nothing can be unknown
    from pulumi_policy.proxy import UnknownValueError
except ImportError:  # pragma: no cover

    class UnknownValueError(Exception):  # type: ignore[no-redef]
        pass


# Labels, tags and annotations rtdi puts on what it declares (infra/targets/base.py, kafka layer).
# They are claims written by the code under test: rules decide on the fields that decide behaviour
# (topic names, patterns, subnets, affinity, provider regions, the topology) and report a label
# that disagrees with those facts.
LABEL_REGION = "rtdi-region"
LABEL_JURISDICTION = "rtdi-jurisdiction"
LABEL_KAFKA_ROLE = "rtdi-kafka-role"
LABEL_ZONE = "rtdi-zone"
LABEL_DATA_CLASS = "rtdi-data-class"
ANNOTATION_DATA_CLASSES = "rtdi-data-classes"
ZONE_KEY = "topology.kubernetes.io/zone"

STACK = "pulumi:pulumi:Stack"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
PROVIDER_PREFIX = "pulumi:providers:"
EXPORT = "rtdi"  # the global stack's output that regional stacks read (infra/program.py)

# The offline plan's mocks give every custom resource the id "<resource name>-plan-placeholder-id"
# (infra/plan/mocks.py); references between resources in resources.json carry that id.
PLAN_ID_FORMAT = "{name}-plan-placeholder-id"


# --------------------------------------------------------------------------- resources


@dataclass
class Provider:
    type: str
    urn: str
    name: str
    props: Mapping[str, Any]

    @property
    def package(self) -> str:
        return (
            self.type[len(PROVIDER_PREFIX) :]
            if self.type.startswith(PROVIDER_PREFIX)
            else self.type
        )


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    provider: Provider | None = None
    parent: str | None = None
    id: str | None = None
    # property name -> URNs of the resources that property was computed from (preview only)
    refs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def package(self) -> str:
        return self.type.split(":", 1)[0]

    @property
    def stack(self) -> str:
        return stack_of_urn(self.urn)

    # Kubernetes objects ----------------------------------------------------------

    @property
    def k8s_group(self) -> str | None:
        """The API group: ``kafka.strimzi.io`` for a Strimzi Kafka, ``core`` for core objects."""
        if self.package != "kubernetes":
            return None
        middle = self.type.split(":")[1] if self.type.count(":") >= 2 else ""
        return middle.rsplit("/", 1)[0] if "/" in middle else middle

    @property
    def k8s_kind(self) -> str | None:
        return self.type.rsplit(":", 1)[-1] if self.package == "kubernetes" else None

    def is_kind(self, group: str, kind: str) -> bool:
        """Any version: ``is_kind("kafka.strimzi.io", "Kafka")``."""
        return self.k8s_group == group and self.k8s_kind == kind

    @property
    def k8s_name(self) -> str | None:
        return text(dig(self.props, "metadata", "name"))

    @property
    def k8s_namespace(self) -> str:
        return text(dig(self.props, "metadata", "namespace")) or "default"

    @property
    def annotations(self) -> dict[str, str]:
        return str_map(dig(self.props, "metadata", "annotations"))

    @property
    def labels(self) -> dict[str, str]:
        """Kubernetes labels, AWS tags or GCP labels, whichever this resource has."""
        if self.package == "kubernetes":
            return str_map(dig(self.props, "metadata", "labels"))
        out: dict[str, str] = {}
        for key in ("tagsAll", "tags") if self.package == "aws" else ("effectiveLabels", "labels"):
            out.update(str_map(safe(lambda k=key: self.props.get(k))))
        return out


def stack_of_urn(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> ``<stack>``."""
    head = urn.split("::", 1)[0]
    return head.split(":", 2)[2] if head.count(":") >= 2 else ""


@dataclass
class StackView:
    """What one stack declares, with the global topology it reads."""

    stack: str
    resources: list[Resource]
    outputs: Mapping[str, Any] | None = None
    # The global stack's `rtdi` export: {"topology": {...}, "kafka": {...}}; None if unavailable.
    published: dict[str, Any] | None = None
    source: str = "plan"  # "plan" or "preview"
    peers: list[StackView] = field(default_factory=list)  # other stacks checked together

    def __post_init__(self) -> None:
        self._by_urn = {r.urn: r for r in self.resources}

    def by_urn(self, urn: str | None) -> Resource | None:
        return self._by_urn.get(urn) if urn else None

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.type in types]

    def of_kind(self, group: str, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.is_kind(group, kind)]

    def everywhere(self) -> Iterator[Resource]:
        """This stack's resources, then those of the stacks checked together with it."""
        yield from self.resources
        for peer in self.peers:
            if peer is not self:
                yield from peer.resources

    @property
    def stack_urn(self) -> str:
        for r in self.resources:
            if r.type == STACK:
                return r.urn
        return f"urn:pulumi:{self.stack}::rtdi::{STACK}::rtdi-{self.stack}"

    @property
    def topology(self) -> dict[str, Any] | None:
        topo = (self.published or {}).get("topology")
        return topo if isinstance(topo, dict) else None

    @property
    def kafka_settings(self) -> dict[str, Any]:
        kafka = (self.published or {}).get("kafka")
        return kafka if isinstance(kafka, dict) else {}

    @property
    def has_stack_reference(self) -> bool:
        return any(r.type == STACK_REFERENCE for r in self.resources)

    @property
    def is_regional(self) -> bool:
        return self.has_stack_reference or output(self, "region") is not None

    @property
    def region_id(self) -> str | None:
        """The topology region this stack builds: its `region` output, else its rtdi:*:Region."""
        value = output(self, "region")
        if isinstance(value, str):
            return value
        for r in self.resources:
            if r.type.startswith("rtdi:") and r.type.endswith(":Region"):
                return r.name
        return None

    def topology_region(self, region_id: str | None) -> dict[str, Any] | None:
        for region in (self.topology or {}).get("regions") or []:
            if (
                isinstance(region, dict)
                and region_id == f"{region.get('cloud')}-{region.get('name')}"
            ):
                return region
        return None

    def jurisdiction_of_region(self, region_id: str | None) -> str | None:
        region = self.topology_region(region_id)
        return region.get("jurisdiction") if region else None


def output(view: StackView, key: str) -> Any:
    outputs = view.outputs
    return safe(lambda: outputs.get(key)) if isinstance(outputs, Mapping) else None


# --------------------------------------------------------------------------- reading props


def safe(read: Callable[..., Any], default: Any = None) -> Any:
    """``read()``, or ``default`` when the value is unknown until deploy.

    ``read`` is called without arguments; it is typed ``...`` because loops pass lambdas that bind
    the loop variable as a default argument (``lambda k=key: ...``)."""
    try:
        return read()
    except UnknownValueError:
        return default


def dig(obj: Any, *path: Any, default: Any = None) -> Any:
    """``obj[path[0]][path[1]]...`` over mappings and sequences, ``default`` where anything is
    missing.

    Works on pulumi_policy proxies: an unknown value on the way raises ``UnknownValueError``.
    """
    cur = obj
    for key in path:
        if isinstance(key, int):
            if not is_list(cur) or not -len(cur) <= key < len(cur):
                return default
            cur = cur[key]
        else:
            if not isinstance(cur, Mapping):
                return default
            cur = cur.get(key)
        if cur is None:
            return default
    return cur


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def items(value: Any) -> list[Any]:
    """A list prop as a list (an absent one as []); a single mapping as a one-element list."""
    if is_list(value):
        return [value[i] for i in range(len(value))]
    if isinstance(value, Mapping):
        return [value]
    return []


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """3, 3.0 and "3" -> 3; anything else -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def as_bool(value: Any) -> bool | None:
    """True/False and "true"/"false" (any case) -> bool; anything else -> None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def str_map(value: Any) -> dict[str, str]:
    """A mapping of strings (labels, tags); a JSON-encoded one too. Unknown entries are left out."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    if not isinstance(value, Mapping):
        return {}
    out = {}
    for key in value:
        v = safe(lambda k=key: value.get(k))
        if isinstance(v, (str, int, float, bool)):
            out[str(key)] = v if isinstance(v, str) else json.dumps(v)
    return out


def plain(value: Any) -> Any:
    """A deep plain copy of a (proxied) value. Raises UnknownValueError if anything is unknown."""
    if isinstance(value, Mapping):
        return {str(k): plain(value.get(k)) for k in value}
    if is_list(value):
        return [plain(value[i]) for i in range(len(value))]
    return value


def parse_properties(text_: Any) -> dict[str, str]:
    """A Java properties string (MSK ``serverProperties``) as a dict."""
    out: dict[str, str] = {}
    if not isinstance(text_, str):
        return out
    for line in text_.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*(?:[=:]\s*|\s+)(.*)$", line)
        if match:
            out[match.group(1)] = match.group(2).strip()
        else:
            out[line] = ""
    return out


def json_object(value: Any) -> Mapping[str, Any]:
    """A mapping, or a JSON-encoded mapping (MSK Topic ``configs``), as a mapping; else {}."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def show(value: Any) -> str:
    """A value as messages show it: 3.0 as 3 (plans and Pulumi carry floats), strings quoted."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return str(value).lower()
    return (
        repr(value)
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, (int, float)) or value is None
        else str(value)
    )


def glob_any(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


# ------------------------------------------------------------------------ regions and jurisdictions

_GCP_ZONE = re.compile(r"^([a-z]+-[a-z]+\d+)-[a-z]$")
_AWS_ZONE = re.compile(r"^([a-z]{2}(?:-gov)?-[a-z]+-\d+)[a-z]$")


def split_region_id(region_id: str) -> tuple[str, str]:
    """``aws-us-east-1`` -> (``aws``, ``us-east-1``): a topology region id is ``<cloud>-<name>``."""
    cloud, _, name = region_id.partition("-")
    return cloud, name


def region_of_zone(cloud: str, zone: str) -> str:
    pattern = _GCP_ZONE if cloud == "gcp" else _AWS_ZONE if cloud == "aws" else None
    match = pattern.match(zone) if pattern else None
    return match.group(1) if match else zone


def provider_region(r: Resource) -> str | None:
    if r.provider is None:
        return None
    return text(r.provider.props.get("region"))


def location(r: Resource) -> tuple[str, str] | None:
    """(cloud, region) where this resource lives, or None when it is not regional or not known.

    AWS: the resource's own ``region`` (provider v7 lets any resource override it), else its
    provider's. GCP: the resource's ``location`` or ``region`` (zones folded to their region;
    "global" is not regional), else its provider's. Kubernetes objects: None here; they are where
    their stack's cluster is (``rules._common.region_of``), whatever their ``rtdi-region`` label
    says. An unknown region raises UnknownValueError (rules read it inside ``ctx.guard``).
    """
    if r.package == "aws":
        region = text(r.props.get("region")) or provider_region(r)
        return ("aws", region) if region else None
    if r.package == "gcp":
        for key in ("location", "region"):
            value = text(r.props.get(key))
            if value:
                value = value.lower()
                return None if value == "global" else ("gcp", region_of_zone("gcp", value))
        region = provider_region(r)
        return ("gcp", region) if region else None
    return None


def provider_labels(r: Resource) -> dict[str, str]:
    """The provider's default tags (aws ``defaultTags.tags``) or labels (gcp ``defaultLabels``)."""
    if r.provider is None:
        return {}
    props = r.provider.props
    if r.provider.package == "aws":
        tags = safe(lambda: props.get("defaultTags"))
        if isinstance(tags, str):
            try:
                tags = json.loads(tags)
            except ValueError:
                return {}
        merged: dict[str, str] = {}
        for entry in items(tags):
            merged.update(str_map(safe(lambda e=entry: e.get("tags"))))
        return merged
    if r.provider.package == "gcp":
        return str_map(safe(lambda: props.get("defaultLabels")))
    return {}


def jurisdiction_of(r: Resource, view: StackView) -> str | None:
    """The resource's ``rtdi-jurisdiction`` label or tag, its provider's default, else the
    topology's jurisdiction for the region it sits in. A claim rtdi writes: rules decide on the
    topology's jurisdiction of the stack's region and only compare labels with it."""
    own = r.labels.get(LABEL_JURISDICTION) or provider_labels(r).get(LABEL_JURISDICTION)
    if own:
        return own
    where = location(r)
    return view.jurisdiction_of_region(f"{where[0]}-{where[1]}") if where else None


def identifiers(r: Resource) -> set[str]:
    """Every value another resource may use to point at ``r``: id, name, ARN."""
    out = {r.id} if r.id else set()
    for key in ("id", "bucket", "arn", "name", "selfLink"):
        value = text(safe(lambda k=key: r.props.get(k)))
        if value:
            out.add(value)
    return out


def references(r: Resource, prop: str, target: Resource) -> bool:
    """Does ``r``'s property ``prop`` point at ``target``? By the preview's property dependencies,
    or by value."""
    if target.urn in r.refs.get(prop, ()):
        return True
    value = safe(lambda: r.props.get(prop))
    if not isinstance(value, str):
        return False
    names = identifiers(target)
    return value in names or value.removeprefix("arn:aws:s3:::") in names


# --------------------------------------------------------------------------- adapters


class PlanError(ValueError):
    """A resources.json that is not a list of plan entries."""


def from_policy_args(args: Any) -> StackView:
    """A view of pulumi_policy ``StackValidationArgs`` (props: outputs; provider props: inputs)."""
    resources = []
    for pr in args.resources:
        provider = None
        if pr.provider is not None:
            provider = Provider(
                pr.provider.resource_type,
                pr.provider.urn,
                pr.provider.name,
                pr.provider.props or {},
            )
        refs = {
            k: [d.urn for d in v]
            for k, v in (getattr(pr, "property_dependencies", None) or {}).items()
        }
        resources.append(
            Resource(
                urn=pr.urn,
                type=pr.resource_type,
                name=pr.name,
                props=pr.props if pr.props is not None else {},
                provider=provider,
                parent=pr.parent.urn if pr.parent is not None else None,
                refs=refs,
            )
        )
    stack = next((stack_of_urn(r.urn) for r in resources if r.urn.startswith("urn:pulumi:")), "")
    root = next((r for r in resources if r.type == STACK), None)
    view = StackView(
        stack=stack, resources=resources, outputs=root.props if root else None, source="preview"
    )
    view.published = _published(view)
    return view


def from_plan(
    entries: Any,
    stack: str | None = None,
    outputs: Mapping[str, Any] | None = None,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
) -> StackView:
    """The view of an offline plan.

    ``entries``: the resources.json list. ``outputs``: the stack's outputs.json. ``stack_outputs``:
    other stacks' outputs by short stack name, to fill in what a StackReference reads
    (resources.json records a StackReference's inputs only).
    """
    if not isinstance(entries, list):
        raise PlanError(
            "expected a JSON list of resources, each {urn, type, name, parent, provider, inputs}"
        )
    for i, e in enumerate(entries):
        if (
            not isinstance(e, dict)
            or not isinstance(e.get("urn"), str)
            or not isinstance(e.get("type"), str)
        ):
            raise PlanError(
                f"entry [{i}] is not a resource; each needs string `urn` and `type` and an "
                "`inputs` object"
            )
        if not isinstance(e.get("inputs", {}), dict):
            raise PlanError(f"entry [{i}] ({e['urn']}): `inputs` must be an object")
        if e.get("provider") is not None and not isinstance(e.get("provider"), str):
            raise PlanError(f'entry [{i}] ({e["urn"]}): `provider` must be "<urn>::<id>" or null')
    by_urn = {e["urn"]: e for e in entries}
    providers: dict[str, Provider] = {}
    for e in entries:
        if e["type"].startswith(PROVIDER_PREFIX):
            providers[e["urn"]] = Provider(
                e["type"], e["urn"], e.get("name") or "", e.get("inputs") or {}
            )
    resources = []
    for e in entries:
        name = e.get("name") or e["urn"].rsplit("::", 1)[-1]
        inputs = dict(e.get("inputs") or {})
        provider = None
        if e.get("provider"):
            provider_urn = e["provider"].rsplit("::", 1)[0]
            provider = providers.get(provider_urn)
            if provider is None and provider_urn in by_urn:
                provider = Provider(
                    by_urn[provider_urn]["type"],
                    provider_urn,
                    "",
                    by_urn[provider_urn].get("inputs") or {},
                )
        if e["type"] == STACK_REFERENCE and stack_outputs is not None:
            target = str(inputs.get("name") or name).rsplit("/", 1)[-1]
            if target in stack_outputs:
                inputs = {**inputs, "outputs": stack_outputs[target]}
        custom = not (e["type"].startswith(("pulumi:", "rtdi:")))
        resources.append(
            Resource(
                urn=e["urn"],
                type=e["type"],
                name=name,
                props=inputs,
                provider=provider,
                parent=e.get("parent"),
                id=(inputs.get("id") or PLAN_ID_FORMAT.format(name=name)) if custom else None,
            )
        )
    if stack is None:
        stack = next((stack_of_urn(r.urn) for r in resources), "")
    view = StackView(stack=stack, resources=resources, outputs=outputs, source="plan")
    view.published = _published(view)
    return view


def _published(view: StackView) -> dict[str, Any] | None:
    """The global `rtdi` export: read through the stack's StackReference, or, in the global stack,
    its own output."""
    for r in view.resources:
        if r.type == STACK_REFERENCE:
            found = safe(lambda r=r: plain(dig(r.props, "outputs", EXPORT)))
            if isinstance(found, dict):
                return found
    outputs = view.outputs
    own = safe(lambda: plain(outputs.get(EXPORT))) if isinstance(outputs, Mapping) else None
    return own if isinstance(own, dict) else None
