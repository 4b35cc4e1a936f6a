"""How a MirrorMaker 2 reaches a cluster of any engine: the `source` or `target` block it needs.

Each engine (infra/components/kafka/engines.py) builds its Endpoint from these pieces.

Every engine speaks TLS. Strimzi clusters present certificates from the shared mesh CA; MSK and
GCP Managed Kafka present publicly trusted certificates, so an empty `tls` block (the JVM's trust
store) is right for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

MESH_CA_SECRET = "rtdi-kafka-mesh-ca"
MIRROR_USER = "mirror"
MIRROR_MAKER_USER = "mirror-maker"
MESH_TRUST = {"trustedCertificates": [{"secretName": MESH_CA_SECRET, "certificate": "ca.crt"}]}
PUBLIC_TRUST: dict = {}


def mirror_secret(region_id: str) -> str:
    """The Secret holding the password that reads ``region_id``'s regional cluster."""
    return f"kafka-mirror-{region_id}"


MIRROR_MAKER_SECRET = "kafka-mirror-maker"


@dataclass(frozen=True)
class Endpoint:
    engine: str
    bootstrap: pulumi.Input[str]
    tls: dict
    authentication: pulumi.Input[dict]

    def block(self, alias: str) -> pulumi.Output[dict]:
        return pulumi.Output.all(self.bootstrap, self.authentication).apply(
            lambda a: {
                "alias": alias,
                "bootstrapServers": a[0],
                "tls": self.tls,
                "authentication": a[1],
            }
        )


def scram(user: str, secret: str) -> dict:
    return {
        "type": "scram-sha-512",
        "username": user,
        "passwordSecret": {"secretName": secret, "password": "password"},
    }


def plain(user: pulumi.Input[str], secret: str) -> dict:
    return {
        "type": "plain",
        "username": user,
        "passwordSecret": {"secretName": secret, "password": "password"},
    }
