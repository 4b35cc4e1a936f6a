"""What the offline plan says a cloud would return: each value is visibly a placeholder.

The mock engine gives a resource back its inputs. Programs also read outputs that only the cloud
knows (an EKS endpoint, a service account's email); these are synthesised here from the inputs,
with the account ``000000000000`` and the marker ``plan-placeholder`` so nobody mistakes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

ACCOUNT = "000000000000"
MARK = "plan-placeholder"
PROJECT_NUMBER = "000000000000"


def _aws_arn(service: str, name: str) -> str:
    return f"arn:aws:{service}::{ACCOUNT}:{name}"


_OUTPUTS: dict[str, Callable[[str, dict], dict]] = {
    "aws:eks/cluster:Cluster": lambda n, i: {
        "arn": _aws_arn("eks", f"cluster/{i.get('name', n)}"),
        "endpoint": f"https://{MARK}.eks.amazonaws.com",
        "certificateAuthority": {"data": MARK},
        "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.amazonaws.com/id/{MARK}"}]}],
    },
    "aws:iam/role:Role": lambda n, i: {"arn": _aws_arn("iam", f"role/{i.get('name', n)}")},
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda n, i: {
        "arn": _aws_arn("iam", f"oidc-provider/{MARK}")
    },
    "aws:kms/key:Key": lambda n, i: {
        "arn": _aws_arn("kms", f"key/{MARK}-{n}"),
        "keyId": f"{MARK}-{n}",
    },
    "aws:s3/bucket:Bucket": lambda n, i: {"arn": f"arn:aws:s3:::{i.get('bucket', n)}"},
    "gcp:container/cluster:Cluster": lambda n, i: {
        "endpoint": "10.0.0.2",
        "masterAuth": {"clusterCaCertificate": MARK},
    },
    "gcp:serviceaccount/account:Account": lambda n, i: {
        "email": f"{i.get('accountId', n)}@{MARK}.iam.gserviceaccount.com",
        "name": f"projects/{MARK}/serviceAccounts/{i.get('accountId', n)}",
    },
    "gcp:kms/cryptoKey:CryptoKey": lambda n, i: {
        "id": f"{i.get('keyRing', MARK)}/cryptoKeys/{i.get('name', n)}"
    },
    "gcp:kms/keyRing:KeyRing": lambda n, i: {
        "id": f"projects/{MARK}/locations/{i.get('location')}/keyRings/{i.get('name', n)}"
    },
    "gcp:compute/network:Network": lambda n, i: {
        "id": f"projects/{MARK}/global/networks/{i.get('name', n)}"
    },
    "gcp:compute/subnetwork:Subnetwork": lambda n, i: {
        "id": f"projects/{MARK}/regions/{i.get('region')}/subnetworks/{i.get('name', n)}"
    },
    "tls:index/privateKey:PrivateKey": lambda n, i: {
        "privateKeyPem": f"-----BEGIN PRIVATE KEY-----\n{MARK}\n-----END PRIVATE KEY-----\n"
    },
    "tls:index/selfSignedCert:SelfSignedCert": lambda n, i: {
        "certPem": f"-----BEGIN CERTIFICATE-----\n{MARK}\n-----END CERTIFICATE-----\n"
    },
    "aws:msk/cluster:Cluster": lambda n, i: {
        "arn": f"arn:aws:kafka:{MARK}:{ACCOUNT}:cluster/{i.get('clusterName', n)}/{MARK}",
        "bootstrapBrokersSaslScram": f"b-1.{i.get('clusterName', n)}.{MARK}.kafka.amazonaws.com:9096",
        "bootstrapBrokersSaslIam": f"b-1.{i.get('clusterName', n)}.{MARK}.kafka.amazonaws.com:9098",
    },
    "aws:msk/configuration:Configuration": lambda n, i: {
        "arn": _aws_arn("kafka", f"configuration/{n}/{MARK}"),
        "latestRevision": 1,
    },
    "aws:secretsmanager/secret:Secret": lambda n, i: {
        "arn": _aws_arn("secretsmanager", f"secret:{i.get('name', n)}")
    },
    "gcp:managedkafka/cluster:Cluster": lambda n, i: {
        "bootstrapAddress": f"bootstrap.{i.get('clusterId', n)}.{i.get('location')}.managedkafka.{MARK}.cloud.goog:9092",
    },
    "gcp:serviceaccount/key:Key": lambda n, i: {"privateKey": MARK},
    "random:index/randomPassword:RandomPassword": lambda n, i: {"result": f"{MARK}-{n}"},
}

_CALLS: dict[str, Callable[[dict], dict]] = {
    "gcp:organizations/getProject:getProject": lambda a: {
        "number": PROJECT_NUMBER,
        "projectId": a.get("projectId"),
    },
}


def _other_stack(stack: str) -> dict:
    """Placeholders for a stack that is not planned with this one (another region's stack)."""
    return {
        "kafkaRegional": {
            "engine": MARK,
            "arn": f"arn:aws:kafka:{MARK}:{ACCOUNT}:cluster/{stack}-regional/{MARK}",
            "bootstrap": f"{MARK}.{stack}.kafka:9096",
            "securityGroupIds": [f"sg-{MARK}"],
            "subnetIds": [f"subnet-{MARK}"],
            "username": f"mirror@{MARK}",
            "password": MARK,
        }
    }


class PlanMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs, add placeholder outputs, and serve other stacks' planned exports."""

    def __init__(self, stack_outputs: dict[str, dict[str, Any]]):
        self.stack_outputs = stack_outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            name = args.inputs.get("name", args.name)
            stack = name.rsplit("/", 1)[-1]
            outputs = self.stack_outputs.get(stack) or _other_stack(stack)
            return name, {"name": name, "outputs": outputs, "secretOutputNames": []}
        extra = _OUTPUTS.get(args.typ)
        if extra:
            state.update(extra(args.name, args.inputs))
        resource_id = state.get("id") or f"{args.name}-{MARK}-id"
        state.setdefault("name", args.inputs.get("name", args.name))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        handler = _CALLS.get(args.token)
        return handler(args.args) if handler else {}
