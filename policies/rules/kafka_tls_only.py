"""Security: Kafka traffic is encrypted in transit; no plaintext listener."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import MSK_CLUSTER, kafkas, mirror_makers, mm2_sources, mm2_target
from policies.view import as_bool, dig, items, show, text


class KafkaTlsOnly(Rule):
    id = "kafka-tls-only"
    category = "security"
    description = (
        "Kafka traffic is TLS only: every listener of a Strimzi Kafka has tls: true; every "
        "MirrorMaker 2 connection (target and each source) configures tls; an MSK cluster's "
        "clientBroker encryption is TLS (the AWS default when unset) and inCluster encryption is "
        "not turned off."
    )
    why = (
        "Events carry personal and financial data, and cross-region mirrors cross networks rtdi "
        "does not own; a plaintext listener also lets anyone on the network impersonate a broker."
    )
    severity = "critical"

    def check(self, ctx: Context) -> None:
        for kafka in kafkas(ctx.view):
            with ctx.guard(kafka):
                listeners = items(dig(kafka.props, "spec", "kafka", "listeners"))
                for listener in listeners:
                    if as_bool(dig(listener, "tls")) is not True:
                        ctx.report(
                            kafka,
                            f"Kafka {kafka.k8s_name}: listener {dig(listener, 'name')!r} (port "
                            f"{show(dig(listener, 'port'))}) is plaintext; set tls: true on it",
                        )
        for mm2 in mirror_makers(ctx.view):
            with ctx.guard(mm2):
                alias, target = mm2_target(mm2)
                if dig(target, "tls") is None:
                    ctx.report(
                        mm2,
                        f"connects to target {alias} without TLS; configure spec.target.tls with "
                        "the cluster CA",
                    )
                for alias, source in mm2_sources(mm2):
                    if dig(source, "tls") is None:
                        ctx.report(
                            mm2,
                            f"connects to source {alias} without TLS; configure tls with the "
                            "source cluster's CA",
                        )
        for msk in ctx.view.of_type(MSK_CLUSTER):
            with ctx.guard(msk):
                transit = dig(msk.props, "encryptionInfo", "encryptionInTransit")
                client = text(dig(transit, "clientBroker")) or "TLS"
                if client != "TLS":
                    ctx.report(
                        msk,
                        f"encryptionInfo.encryptionInTransit.clientBroker is {client}; set it to "
                        "TLS",
                    )
                if as_bool(dig(transit, "inCluster")) is False:
                    ctx.report(
                        msk, "encryptionInfo.encryptionInTransit.inCluster is false; set it to true"
                    )


RULE = KafkaTlsOnly()
