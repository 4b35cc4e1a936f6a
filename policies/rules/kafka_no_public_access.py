"""Security: Kafka brokers are not reachable from the internet."""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.rules._common import MSK_CLUSTER, kafkas
from policies.view import LABEL_REGION, dig, items, split_region_id, str_map, text

DEFAULT_INTERNAL = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "Internal",
    "cloud.google.com/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
}
OPEN = ("0.0.0.0/0", "::/0")
EXPOSED = ("loadbalancer", "ingress", "route")


class KafkaNoPublicAccess(Rule):
    id = "kafka-no-public-access"
    category = "security"
    description = (
        "No Kafka broker is reachable from the internet: an MSK cluster's "
        "brokerNodeGroupInfo.connectivityInfo.publicAccess.type is not SERVICE_PROVIDED_EIPS; a "
        "Strimzi loadbalancer listener carries an internal load-balancer annotation (on the "
        "listener's bootstrap and broker configuration, or the Kafka's externalBootstrapService "
        "and perPodService templates) or restricts loadBalancerSourceRanges; ingress and route "
        "listeners are not used. Clouds in exemptClouds (on-prem: load balancers hand out "
        "site-private addresses) are not checked."
    )
    why = (
        "A broker with a public address is one leaked credential, or one authentication bug, away "
        "from the whole event stream; cross-region replication needs private connectivity, not "
        "the internet."
    )
    severity = "critical"
    params = (
        Param(
            "internalLoadBalancerAnnotations",
            DEFAULT_INTERNAL,
            "Service annotations (key: value, value compared case-insensitively) that make a "
            "cloud load balancer internal.",
            {"type": "object", "additionalProperties": {"type": "string"}},
        ),
        Param(
            "exemptClouds",
            ["onprem"],
            "Clouds whose load balancers are private by construction; their Strimzi listeners are "
            "not checked.",
            {"type": "array", "items": {"type": "string"}},
        ),
    )

    def check(self, ctx: Context) -> None:
        internal = {k: v.lower() for k, v in ctx["internalLoadBalancerAnnotations"].items()}
        for kafka in kafkas(ctx.view):
            with ctx.guard(kafka):
                # The stack's region (its cluster is the provider's); the label only for a
                # stack that does not say, so a label cannot exempt a cloud cluster.
                region_id = ctx.view.region_id or kafka.labels.get(LABEL_REGION) or ""
                if split_region_id(region_id)[0] in ctx["exemptClouds"]:
                    continue
                template = dig(kafka.props, "spec", "kafka", "template")
                for listener in items(dig(kafka.props, "spec", "kafka", "listeners")):
                    kind = (text(dig(listener, "type")) or "").lower()
                    name = dig(listener, "name")
                    if kind not in EXPOSED:
                        continue
                    if kind != "loadbalancer":
                        ctx.report(
                            kafka,
                            f"Kafka {kafka.k8s_name}: listener {name!r} of type {kind} exposes "
                            f"brokers through an {kind}; use an internal loadbalancer listener "
                            "instead",
                        )
                        continue
                    ranges = [
                        r
                        for r in items(dig(listener, "configuration", "loadBalancerSourceRanges"))
                        if isinstance(r, str)
                    ]
                    if ranges and not any(r in OPEN for r in ranges):
                        continue
                    bootstrap = {
                        **str_map(
                            dig(template, "externalBootstrapService", "metadata", "annotations")
                        ),
                        **str_map(dig(listener, "configuration", "bootstrap", "annotations")),
                    }
                    per_broker = str_map(dig(template, "perPodService", "metadata", "annotations"))
                    brokers = [
                        str_map(dig(b, "annotations"))
                        for b in items(dig(listener, "configuration", "brokers"))
                    ]
                    open_parts = []
                    if not _internal(bootstrap, internal):
                        open_parts.append("bootstrap")
                    if not (
                        _internal(per_broker, internal)
                        or (brokers and all(_internal(b, internal) for b in brokers))
                    ):
                        open_parts.append("per-broker")
                    if open_parts:
                        ctx.report(
                            kafka,
                            f"Kafka {kafka.k8s_name}: loadbalancer listener {name!r} gets public "
                            f"{' and '.join(open_parts)} load balancers; annotate them internal "
                            f"(e.g. {_example(region_id, internal)}) or set "
                            "loadBalancerSourceRanges to private ranges",
                        )
        for msk in ctx.view.of_type(MSK_CLUSTER):
            with ctx.guard(msk):
                access = text(
                    dig(
                        msk.props, "brokerNodeGroupInfo", "connectivityInfo", "publicAccess", "type"
                    )
                ) or text(dig(msk.props, "connectivityInfo", "publicAccess", "type"))
                if access == "SERVICE_PROVIDED_EIPS":
                    ctx.report(
                        msk,
                        "brokers have public IPs (connectivityInfo.publicAccess.type "
                        "SERVICE_PROVIDED_EIPS); set it to DISABLED and reach the cluster over "
                        "private networking",
                    )


def _internal(annotations: dict[str, str], internal: dict[str, str]) -> bool:
    return any(annotations.get(k, "").lower() == v for k, v in internal.items())


def _example(region_id: str, internal: dict[str, str]) -> str:
    cloud = split_region_id(region_id)[0]
    for key, value in internal.items():
        if (cloud == "aws" and "aws" in key) or (
            cloud == "gcp" and ("gke" in key or "google" in key)
        ):
            return f"{key}: {value}"
    key, value = next(iter(internal.items()), ("", ""))
    return f"{key}: {value}"


RULE = KafkaNoPublicAccess()
