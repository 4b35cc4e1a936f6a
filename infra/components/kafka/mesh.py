"""Cross-region Kafka trust, minted once in the global stack and read by every regional stack."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_random as random
import pulumi_tls as tls

from infra.topology.model import Topology

CA_VALIDITY_HOURS = 10 * 365 * 24
EXPORT = "kafkaMesh"


class KafkaMesh(pulumi.ComponentResource):
    """A CA every region's clusters share, and one SCRAM password per region's `mirror` user."""

    def __init__(self, name: str, topology: Topology, opts: pulumi.ResourceOptions | None = None):
        super().__init__("rtdi:kafka:Mesh", name, None, opts)
        tls_provider = tls.Provider(f"{name}-tls", opts=pulumi.ResourceOptions(parent=self))
        random_provider = random.Provider(
            f"{name}-random", opts=pulumi.ResourceOptions(parent=self)
        )
        key = tls.PrivateKey(
            f"{name}-ca",
            tls.PrivateKeyArgs(algorithm="ECDSA", ecdsa_curve="P384"),
            opts=pulumi.ResourceOptions(parent=self, provider=tls_provider),
        )
        cert = tls.SelfSignedCert(
            f"{name}-ca",
            tls.SelfSignedCertArgs(
                private_key_pem=key.private_key_pem,
                is_ca_certificate=True,
                validity_period_hours=CA_VALIDITY_HOURS,
                early_renewal_hours=CA_VALIDITY_HOURS // 10,
                allowed_uses=[
                    "cert_signing",
                    "crl_signing",
                    "digital_signature",
                    "key_encipherment",
                ],
                subject=tls.SelfSignedCertSubjectArgs(
                    common_name=f"{topology.name} kafka mesh CA", organization="rtdi"
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=tls_provider),
        )

        def passwords(user: str) -> pulumi.Output:
            return pulumi.Output.all(
                **{
                    r.id: random.RandomPassword(
                        f"{name}-{user}-{r.id}",
                        random.RandomPasswordArgs(length=40, special=False),
                        opts=pulumi.ResourceOptions(parent=self, provider=random_provider),
                    ).result
                    for r in topology.regions
                }
            )

        # `mirror` reads a region's regional cluster; `mirror-maker` writes its aggregate cluster.
        self.published: pulumi.Output[dict[str, Any]] = pulumi.Output.secret(
            pulumi.Output.all(
                cert.cert_pem,
                key.private_key_pem,
                passwords("mirror"),
                passwords("mirror-maker"),
            ).apply(
                lambda a: {
                    "caCert": a[0],
                    "caKey": a[1],
                    "mirrorPasswords": a[2],
                    "mirrorMakerPasswords": a[3],
                }
            )
        )
        self.register_outputs({"caCert": cert.cert_pem})
