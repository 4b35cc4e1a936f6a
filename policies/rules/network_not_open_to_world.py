"""Security: no network rule, API endpoint or Kubernetes service admits the whole internet."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from policies.engine import Context, Param, Rule
from policies.rules._cidrs import (
    Grant,
    Opening,
    covers_internet,
    grant,
    openings,
    public_ranges,
    strings,
)
from policies.rules._common import EKS_CLUSTER, GKE_CLUSTER, kafkas
from policies.rules.kafka_no_public_access import DEFAULT_INTERNAL
from policies.view import (
    LABEL_REGION,
    Resource,
    StackView,
    as_bool,
    dig,
    items,
    references,
    safe,
    split_region_id,
    str_map,
    text,
)

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
FIREWALL = "gcp:compute/firewall:Firewall"
SERVICE = "kubernetes:core/v1:Service"


class NetworkNotOpenToWorld(Rule):
    id = "network-not-open-to-world"
    category = "security"
    description = (
        "No ingress admits the whole internet on any protocol and port: the source CIDRs of an "
        "AWS security group (its inline ingress blocks plus every SecurityGroupIngressRule and "
        "ingress SecurityGroupRule attached to it), of the enabled GCP INGRESS allow firewalls "
        "of one network and target set (sourceRanges; none and no source tags or service "
        "accounts means 0.0.0.0/0), of a public EKS endpoint "
        "(vpcConfig.publicAccessCidrs) and of GKE authorized networks, "
        "taken together, do not cover every public IPv4 or IPv6 address (0.0.0.0/0, ::/0, or "
        "unions such as 0.0.0.0/1 + 128.0.0.0/1). Strimzi listeners are not of type nodeport and "
        "Kubernetes Services are not NodePort, nor LoadBalancer without an internal annotation or "
        "private loadBalancerSourceRanges. Clouds in exemptClouds are not checked for nodeports "
        "and services."
    )
    why = (
        "A rule open to every address makes each service behind it one credential leak or one "
        "CVE away from anyone on the internet; ranges that add up to the internet are the same "
        "hole written in two lines. Egress is not exposure and is not checked."
    )
    severity = "critical"
    params = (
        Param(
            "exemptClouds",
            ["onprem"],
            "Clouds whose node addresses and load balancers are site-private by construction; "
            "their nodeport listeners and Kubernetes Services are not checked.",
            {"type": "array", "items": {"type": "string"}},
        ),
        Param(
            "internalLoadBalancerAnnotations",
            DEFAULT_INTERNAL,
            "Service annotations (key: value, value compared case-insensitively) that make a "
            "cloud load balancer internal.",
            {"type": "object", "additionalProperties": {"type": "string"}},
        ),
    )

    def check(self, ctx: Context) -> None:
        view = ctx.view
        self._security_groups(ctx, view)
        self._firewalls(ctx, view)
        self._api_endpoints(ctx, view)
        if split_region_id(view.region_id or "")[0] in ctx["exemptClouds"]:
            return
        self._kubernetes(ctx, view)

    def _security_groups(self, ctx: Context, view: StackView) -> None:
        groups = view.of_type(SECURITY_GROUP)
        attached = [
            r
            for r in view.of_type(SG_INGRESS_RULE, SG_RULE)
            if r.type == SG_INGRESS_RULE or safe(lambda r=r: text(dig(r.props, "type"))) != "egress"
        ]
        for group in groups:
            with ctx.guard(group):
                grants = [_sg_grant(b, group.name) for b in items(dig(group.props, "ingress"))]
                for rule in attached:
                    if references(rule, "securityGroupId", group):
                        grants.append(_sg_grant(rule.props, rule.name))
                for opening in openings(grants):
                    _report(ctx, group, f"security group {group.name} ingress", opening)
        for rule in attached:
            with ctx.guard(rule):
                if text(dig(rule.props, "type")) not in (None, "ingress"):
                    continue
                if not any(references(rule, "securityGroupId", g) for g in groups):
                    for opening in openings([_sg_grant(rule.props, rule.name)]):
                        _report(ctx, rule, "ingress rule", opening)

    def _firewalls(self, ctx: Context, view: StackView) -> None:
        """Firewalls on one network that apply to the same targets add up; one that names no
        target applies to every instance, so it joins every target set of its network."""
        by_targets: dict[tuple[str, frozenset[str]], list[Resource]] = {}
        for fw in view.of_type(FIREWALL):
            with ctx.guard(fw):
                direction = (text(dig(fw.props, "direction")) or "INGRESS").upper()
                if direction != "INGRESS" or as_bool(dig(fw.props, "disabled")) is True:
                    continue
                if not items(dig(fw.props, "allows")):
                    continue  # a deny rule narrows access
                ranges = strings(items(dig(fw.props, "sourceRanges")))
                other = items(dig(fw.props, "sourceTags")) or items(
                    dig(fw.props, "sourceServiceAccounts")
                )
                if not ranges and not other:
                    ctx.report(
                        fw,
                        "ingress firewall names no source, so GCP admits 0.0.0.0/0; set "
                        "sourceRanges to the regions' private ranges",
                    )
                    continue
                targets = frozenset(
                    [f"tag:{t}" for t in strings(items(dig(fw.props, "targetTags")))]
                    + [f"sa:{t}" for t in strings(items(dig(fw.props, "targetServiceAccounts")))]
                )
                network = text(dig(fw.props, "network")) or ""
                by_targets.setdefault((network, targets), []).append(fw)
        for (network, targets), firewalls in by_targets.items():
            with ctx.guard(firewalls[0]):
                if targets:
                    firewalls = firewalls + by_targets.get((network, frozenset()), [])
                grants = [
                    grant(
                        dig(a, "protocol"), low, high, items(dig(fw.props, "sourceRanges")), fw.name
                    )
                    for fw in firewalls
                    for a in items(dig(fw.props, "allows"))
                    for low, high in _gcp_ports(dig(a, "ports"))
                ]
                by_name = {fw.name: fw for fw in firewalls}
                for opening in openings(grants):
                    names = ", ".join(opening.sources)
                    for source in opening.sources:
                        what = (
                            "ingress firewall"
                            if len(opening.sources) == 1
                            else f"ingress firewalls {names} (same network and targets)"
                        )
                        verb = "admits" if len(opening.sources) == 1 else "admit"
                        _report(ctx, by_name[source], what, opening, verb)

    def _api_endpoints(self, ctx: Context, view: StackView) -> None:
        for cluster in view.of_type(EKS_CLUSTER):
            with ctx.guard(cluster):
                vpc = dig(cluster.props, "vpcConfig")
                if as_bool(dig(vpc, "endpointPublicAccess")) is False:
                    continue
                # No publicAccessCidrs (AWS's 0.0.0.0/0) is kubernetes-api-private's finding.
                cidrs = strings(items(dig(vpc, "publicAccessCidrs")))
                _report_open(ctx, cluster, "EKS vpcConfig.publicAccessCidrs", cidrs)
        for cluster in view.of_type(GKE_CLUSTER):
            with ctx.guard(cluster):
                private = dig(cluster.props, "privateClusterConfig")
                if as_bool(dig(private, "enablePrivateEndpoint")) is True:
                    continue
                blocks = strings(
                    dig(b, "cidrBlock")
                    for b in items(
                        dig(cluster.props, "masterAuthorizedNetworksConfig", "cidrBlocks")
                    )
                )
                _report_open(ctx, cluster, "GKE masterAuthorizedNetworksConfig cidrBlocks", blocks)

    def _kubernetes(self, ctx: Context, view: StackView) -> None:
        internal = {k: v.lower() for k, v in ctx["internalLoadBalancerAnnotations"].items()}
        for kafka in kafkas(view):
            with ctx.guard(kafka):
                region_id = kafka.labels.get(LABEL_REGION) or view.region_id or ""
                if split_region_id(region_id)[0] in ctx["exemptClouds"]:
                    continue
                for listener in items(dig(kafka.props, "spec", "kafka", "listeners")):
                    if (text(dig(listener, "type")) or "").lower() == "nodeport":
                        ctx.report(
                            kafka,
                            f"Kafka {kafka.k8s_name}: listener {dig(listener, 'name')!r} of type "
                            "nodeport opens a port on every node's address; use an internal "
                            "loadbalancer listener",
                        )
        for svc in view.of_type(SERVICE):
            with ctx.guard(svc):
                kind = text(dig(svc.props, "spec", "type")) or "ClusterIP"
                name = svc.k8s_name or svc.name
                if kind == "NodePort":
                    ctx.report(
                        svc,
                        f"Service {name} of type NodePort opens a port on every node's "
                        "address; use ClusterIP or an internal LoadBalancer",
                    )
                if kind != "LoadBalancer":
                    continue
                annotations = str_map(dig(svc.props, "metadata", "annotations"))
                if any(annotations.get(k, "").lower() == v for k, v in internal.items()):
                    continue
                ranges = strings(items(dig(svc.props, "spec", "loadBalancerSourceRanges")))
                if ranges and not covers_internet(ranges):
                    continue
                ctx.report(
                    svc,
                    f"Service {name} of type LoadBalancer gets a public load balancer open to "
                    f"{', '.join(ranges) if ranges else 'any address'}; annotate it internal or "
                    "set loadBalancerSourceRanges to private ranges",
                )


def _sg_grant(block: Any, source: str) -> Grant:
    """An inline ingress block, a SecurityGroupRule or a SecurityGroupIngressRule as a Grant."""
    cidrs = [
        *items(dig(block, "cidrBlocks")),
        *items(dig(block, "ipv6CidrBlocks")),
        dig(block, "cidrIpv4"),
        dig(block, "cidrIpv6"),
    ]
    protocol = (
        dig(block, "protocol") if dig(block, "protocol") is not None else dig(block, "ipProtocol")
    )
    return grant(protocol, dig(block, "fromPort"), dig(block, "toPort"), cidrs, source)


def _gcp_ports(ports: Any) -> list[tuple[Any, Any]]:
    """A GCP allow's ports ("443", "8000-9000"); none means every port."""
    out: list[tuple[Any, Any]] = []
    for p in strings(items(ports)):
        low, _, high = p.partition("-")
        out.append((low, high or low))
    return out or [(None, None)]


def _report(
    ctx: Context, where: Resource, what: str, opening: Opening, verb: str = "admits"
) -> None:
    ctx.report(
        where,
        f"{what} {verb} the whole internet on {opening.where} ({', '.join(opening.cidrs)} "
        "together cover every public address); allow only the regions' private ranges or named "
        "operator ranges",
    )


def _report_open(ctx: Context, where: Resource, what: str, sources: Iterable[str]) -> None:
    sources = list(sources)
    if covers_internet(sources):
        ctx.report(
            where,
            f"{what} admits the whole internet ({', '.join(public_ranges(sources))} together "
            "cover every public address); allow only the regions' private ranges or named "
            "operator ranges",
        )


RULE = NetworkNotOpenToWorld()
