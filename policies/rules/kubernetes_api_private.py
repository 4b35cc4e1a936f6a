"""Security: Kubernetes control planes and nodes are not open to the internet."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import EKS_CLUSTER, GKE_CLUSTER
from policies.view import as_bool, dig, items, text

OPEN = ("0.0.0.0/0", "::/0")


class KubernetesApiPrivate(Rule):
    id = "kubernetes-api-private"
    category = "security"
    description = (
        "Kubernetes API servers are not open to the internet: an EKS cluster has "
        "endpointPublicAccess false, or publicAccessCidrs set and without 0.0.0.0/0 (AWS's "
        "default when public access is on); a GKE cluster has "
        "privateClusterConfig.enablePrivateNodes true and either enablePrivateEndpoint true or "
        "masterAuthorizedNetworksConfig without 0.0.0.0/0."
    )
    why = (
        "The API server controls every workload and secret in the region; exposing it to the "
        "internet turns any credential leak or API server CVE into a full compromise."
    )
    severity = "critical"

    def check(self, ctx: Context) -> None:
        for cluster in ctx.view.of_type(EKS_CLUSTER):
            with ctx.guard(cluster):
                vpc = dig(cluster.props, "vpcConfig")
                public = as_bool(dig(vpc, "endpointPublicAccess"))
                if public is False:
                    continue
                cidrs = [c for c in items(dig(vpc, "publicAccessCidrs")) if isinstance(c, str)]
                if not cidrs or any(c in OPEN for c in cidrs):
                    ctx.report(
                        cluster,
                        "API endpoint is public to "
                        f"{', '.join(cidrs) if cidrs else '0.0.0.0/0 (the default)'}; set "
                        "vpcConfig.endpointPublicAccess false, or publicAccessCidrs to the "
                        "operators' ranges",
                    )
        for cluster in ctx.view.of_type(GKE_CLUSTER):
            with ctx.guard(cluster):
                private = dig(cluster.props, "privateClusterConfig")
                if as_bool(dig(private, "enablePrivateNodes")) is not True:
                    ctx.report(
                        cluster,
                        "nodes get public IPs; set privateClusterConfig.enablePrivateNodes true",
                    )
                if as_bool(dig(private, "enablePrivateEndpoint")) is True:
                    continue
                authorized = dig(cluster.props, "masterAuthorizedNetworksConfig")
                blocks = [text(dig(b, "cidrBlock")) for b in items(dig(authorized, "cidrBlocks"))]
                if authorized is None or any(c in OPEN for c in blocks):
                    ctx.report(
                        cluster,
                        "API endpoint is public to any address; set "
                        "privateClusterConfig.enablePrivateEndpoint true, or "
                        "masterAuthorizedNetworksConfig with the operators' ranges",
                    )


RULE = KubernetesApiPrivate()
