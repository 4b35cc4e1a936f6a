"""Security: the Kubernetes clusters enforce NetworkPolicies."""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.rules._common import EKS_CLUSTER, GKE_CLUSTER
from policies.view import as_bool, dig, json_object, references, split_region_id, text

EKS_ADDON = "aws:eks/addon:Addon"


class KubernetesNetworkPolicyEnforced(Rule):
    id = "kubernetes-network-policy-enforced"
    category = "security"
    description = (
        "Every Kubernetes cluster enforces NetworkPolicies: an EKS cluster has a vpc-cni "
        "aws.eks.Addon (clusterName = the cluster) whose configurationValues JSON sets "
        'enableNetworkPolicy "true"; a GKE cluster has datapathProvider ADVANCED_DATAPATH '
        "(Dataplane V2), or networkPolicy.enabled true with "
        "addonsConfig.networkPolicyConfig.disabled false, or is Autopilot. A stack in a cloud "
        "whose CNI rtdi does not declare (on-prem) is reported as unverifiable unless its cloud "
        "is in exemptClouds."
    )
    why = (
        "Strimzi creates NetworkPolicies that admit only the brokers' clients; without a CNI that "
        "enforces them they are inert, and every pod in the cluster can reach the brokers, "
        "ZooKeeper-less controllers and the operators."
    )
    severity = "high"
    params = (
        Param(
            "exemptClouds",
            ["onprem"],
            "Clouds whose Kubernetes clusters rtdi does not create (their CNI is the site's); "
            "list a cloud here once its clusters are known to enforce NetworkPolicies.",
            {"type": "array", "items": {"type": "string"}},
        ),
    )

    def check(self, ctx: Context) -> None:
        view = ctx.view
        addons = [
            a for a in view.of_type(EKS_ADDON) if text(dig(a.props, "addonName")) == "vpc-cni"
        ]
        for cluster in view.of_type(EKS_CLUSTER):
            with ctx.guard(cluster):
                mine = [a for a in addons if references(a, "clusterName", cluster)]
                if not mine:
                    ctx.report(
                        cluster,
                        "has no vpc-cni addon, so nothing enforces NetworkPolicies; add "
                        'aws.eks.Addon vpc-cni with configurationValues {"enableNetworkPolicy": '
                        '"true"}',
                    )
                for addon in mine:
                    values = json_object(dig(addon.props, "configurationValues"))
                    if as_bool(values.get("enableNetworkPolicy")) is not True:
                        ctx.report(
                            addon,
                            'vpc-cni addon does not set enableNetworkPolicy "true" in '
                            "configurationValues, so the cluster ignores NetworkPolicies; set it",
                        )
        for cluster in view.of_type(GKE_CLUSTER):
            with ctx.guard(cluster):
                props = cluster.props
                if as_bool(dig(props, "enableAutopilot")) is True:
                    continue
                if text(dig(props, "datapathProvider")) == "ADVANCED_DATAPATH":
                    continue
                calico = as_bool(dig(props, "networkPolicy", "enabled")) is True and (
                    as_bool(dig(props, "addonsConfig", "networkPolicyConfig", "disabled")) is False
                )
                if not calico:
                    ctx.report(
                        cluster,
                        "enforces no NetworkPolicies (datapathProvider is not ADVANCED_DATAPATH "
                        "and networkPolicy with its addon is not on); set datapathProvider "
                        "ADVANCED_DATAPATH (Dataplane V2)",
                    )
        cloud = split_region_id(view.region_id or "")[0]
        if (
            view.region_id
            and cloud not in ctx["exemptClouds"]
            and not view.of_type(EKS_CLUSTER, GKE_CLUSTER)
            and any(r.package == "kubernetes" for r in view.resources)
        ):
            ctx.report(
                view,
                f"declares Kubernetes objects on a {cloud} cluster whose CNI rtdi does not "
                "declare, so NetworkPolicy enforcement cannot be verified; make the site's CNI "
                f"enforce them and add {cloud!r} to exemptClouds",
            )


RULE = KubernetesNetworkPolicyEnforced()
