"""What the offline plan says a cloud would return: each value is visibly a placeholder.

The mock engine gives a resource back its inputs. Programs also read outputs that only the cloud
knows (an EKS endpoint, a service account's email); these are synthesised here from the inputs,
with the account ``000000000000`` and the marker ``plan-placeholder`` so nobody mistakes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc
import pulumi

from infra.peers import READ_STACK_OUTPUTS

ACCOUNT = "000000000000"
MARK = "plan-placeholder"
PROJECT_NUMBER = "000000000000"


def _aws_arn(service: str, name: str) -> str:
    return f"arn:aws:{service}::{ACCOUNT}:{name}"


def _msk_bootstrap(cluster: str, port: int) -> str:
    return f"b-1.{cluster}.{MARK}.kafka.amazonaws.com:{port}"


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
        "bootstrapBrokersSaslScram": _msk_bootstrap(i.get("clusterName", n), 9096),
        "bootstrapBrokersSaslIam": _msk_bootstrap(i.get("clusterName", n), 9098),
    },
    "aws:msk/configuration:Configuration": lambda n, i: {
        "arn": _aws_arn("kafka", f"configuration/{n}/{MARK}"),
        "latestRevision": 1,
    },
    "aws:secretsmanager/secret:Secret": lambda n, i: {
        "arn": _aws_arn("secretsmanager", f"secret:{i.get('name', n)}")
    },
    "gcp:managedkafka/cluster:Cluster": lambda n, i: {
        "bootstrapAddress": (
            f"bootstrap.{i.get('clusterId', n)}.{i.get('location')}"
            f".managedkafka.{MARK}.cloud.goog:9092"
        ),
    },
    "gcp:serviceaccount/key:Key": lambda n, i: {"privateKey": MARK},
    "random:index/randomPassword:RandomPassword": lambda n, i: {"result": f"{MARK}-{n}"},
}

_CALLS: dict[str, Callable[[dict], dict]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": lambda a: {
        "accountId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{MARK}",
        "userId": MARK,
        "id": ACCOUNT,
    },
    "gcp:organizations/getProject:getProject": lambda a: {
        "number": PROJECT_NUMBER,
        "projectId": a.get("projectId"),
    },
}


class StackOutputsFor(dict):
    """A planned stack's outputs (secrets revealed) and which of them are secret, as the engine's
    state holds them. A plain dict is taken as a stack whose outputs hold no secret."""

    def __init__(self, values: dict[str, Any], secret_names: Iterable[str] = ()):
        super().__init__(values)
        self.secret_names = sorted(secret_names)


class EngineError(grpc.RpcError):
    """What the engine's resource monitor answers when an invoke fails (a gRPC error)."""

    def __init__(self, details: str):
        super().__init__(details)
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return self._details


def read_stack(stack_outputs: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """The engine's answer to reading stack ``name`` (a StackReference, `readStackOutputs`).

    A stack that is not among the planned ones does not exist, so the read fails with the
    engine's words; a planned stack answers with its outputs, like the engine (no placeholders).
    """
    stack = name.rsplit("/", 1)[-1]
    if stack not in stack_outputs:
        raise EngineError(
            f'invocation of {READ_STACK_OUTPUTS} returned an error: unknown stack "{name}"'
        )
    outputs = stack_outputs[stack]
    return {
        "name": name,
        "outputs": dict(outputs),
        "secretOutputNames": list(getattr(outputs, "secret_names", [])),
    }


class PlanMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs, add placeholder outputs, and serve other stacks' planned exports."""

    def __init__(self, stack_outputs: dict[str, dict[str, Any]]):
        self.stack_outputs = stack_outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            # The engine fails the update on a StackReference to a missing stack: so does this.
            name = args.inputs.get("name", args.name)
            return name, read_stack(self.stack_outputs, name)
        extra = _OUTPUTS.get(args.typ)
        if extra:
            state.update(extra(args.name, args.inputs))
        resource_id = state.get("id") or f"{args.name}-{MARK}-id"
        state.setdefault("name", args.inputs.get("name", args.name))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == READ_STACK_OUTPUTS:
            return read_stack(self.stack_outputs, args.args["name"])
        handler = _CALLS.get(args.token)
        return handler(args.args) if handler else {}
