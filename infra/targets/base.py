"""What a component may ask of the cloud it runs on.

Components receive a `Target` and never learn which cloud it is: they get a Kubernetes provider,
the zones, a storage class for zonal block volumes, object-store buckets by purpose, and the
wiring that lets a pod's service account reach those buckets. Only the three implementations
(`aws.py`, `gcp.py`, `onprem.py`) know the cloud.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import ServiceAccount

from infra.targets.sources import Sources
from infra.topology.model import Region, RegionalBase, Topology

LABEL_REGION = "rtdi-region"
LABEL_JURISDICTION = "rtdi-jurisdiction"
LABEL_PURPOSE = "rtdi-purpose"
ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class Lifecycle:
    """How long a purpose keeps what it overwrites, and when its data may move to a colder class."""

    noncurrent_days: int
    cold_after_days: int | None = None
    # Key prefix (below the bucket's own prefix) -> days after which its objects expire: the
    # archive's retention per data class (infra/components/flink/archive.py `expirations`).
    expirations: tuple[tuple[str, int], ...] = ()


# Every bucket rtdi creates, by purpose. A purpose is created only when a component asks for it.
BUCKET_PURPOSES: dict[str, Lifecycle] = {
    "archive": Lifecycle(noncurrent_days=30, cold_after_days=90),
    "kafka-tiered": Lifecycle(noncurrent_days=7),
    "flink-state": Lifecycle(noncurrent_days=7),
    "pinot-deep-store": Lifecycle(noncurrent_days=14),
}
ABORT_MULTIPART_DAYS = 7


@dataclass(frozen=True)
class Bucket:
    purpose: str
    scheme: str  # s3, gs or hdfs: what Flink, Pinot, Kafka and Trino put in front of the path
    name: pulumi.Output[str]
    uri: pulumi.Output[str]
    resources: Sequence[pulumi.Resource] = ()
    prefix: str = ""  # key prefix inside the bucket, where several purposes share one (on-prem S3)
    endpoint: str | None = None  # an S3-compatible endpoint; None means the cloud's own
    cloud_region: str | None = None  # the cloud's region name for the bucket's API


@dataclass(frozen=True)
class WorkloadIdentity:
    """What a pod needs to reach its buckets: annotations for its service account, env, volumes.

    ``grantee`` is the cloud identity the pods act as, for services that grant rights to it (MSK
    IAM access control, Managed Kafka ACLs): the IAM role's name on AWS, the Google service
    account's email on GCP; None where pods have no cloud identity (on-prem).
    """

    service_account: str
    namespace: str
    grantee: pulumi.Input[str] | None = None
    annotations: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    env: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    volume_mounts: list[dict] = field(default_factory=list)
    resources: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class SegmentStore:
    """How Pinot reaches a bucket as its deep store: the URI scheme its segment URIs carry, the
    PinotFS class registered for it, and that class's settings (`<prefix>.storage.factory.
    <scheme>.<key>`). Credentials never appear here: they come from the workload identity."""

    scheme: str
    pinot_fs: str
    config: dict[str, str] = field(default_factory=dict)


class Target(pulumi.ComponentResource, abc.ABC):
    """One region of one cloud: providers, network, Kubernetes and object storage."""

    k8s: k8s.Provider
    storage_class: str
    cluster_name: str
    # Annotations that make a Service of type LoadBalancer private to the region's network.
    internal_load_balancer_annotations: dict[str, str] = {}

    def __init__(
        self,
        type_: str,
        stack: RegionalBase,
        topology: Topology,
        opts: pulumi.ResourceOptions | None = None,
    ):
        self.stack = stack
        self.topology = topology
        self.region: Region = topology.region(stack.region)
        # Where this region's charts and images come from (public, or the site's mirrors).
        self.sources = Sources(stack)
        super().__init__(type_, self.region.id, None, opts)
        self._buckets: dict[str, Bucket] = {}
        # The cold StorageClass, where a target creates one (`cold_storage_class`).
        self._cold_class: pulumi.Resource | None = None

    @property
    def name(self) -> str:
        return self.region.id

    @property
    def zones(self) -> list[str]:
        return list(self.region.zones)

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_REGION: self.region.id, LABEL_JURISDICTION: self.region.jurisdiction}

    def physical_name(self, *parts: str) -> str:
        """Predictable physical names, no random suffixes: ``<topology>-<region>-<parts>``."""
        return "-".join((self.topology.name, self.region.id, *parts))

    def child(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def bucket(self, purpose: str, expirations: Mapping[str, int] | None = None) -> Bucket:
        """The region's bucket for ``purpose``, created on first request; ``expirations`` (key
        prefix -> days) are its per-prefix retention, given by whoever creates it."""
        if purpose not in BUCKET_PURPOSES:
            raise ValueError(
                f"unknown bucket purpose {purpose!r}; known: {', '.join(BUCKET_PURPOSES)}"
            )
        if purpose not in self._buckets:
            lifecycle = dataclasses.replace(
                BUCKET_PURPOSES[purpose], expirations=tuple(sorted((expirations or {}).items()))
            )
            self._buckets[purpose] = self._create_bucket(purpose, lifecycle)
        elif expirations is not None:
            raise ValueError(f"the {purpose} bucket exists already: its lifecycle is set")
        return self._buckets[purpose]

    @property
    def buckets(self) -> dict[str, Bucket]:
        return dict(self._buckets)

    @abc.abstractmethod
    def _create_bucket(self, purpose: str, lifecycle: Lifecycle) -> Bucket: ...

    @abc.abstractmethod
    def workload_identity(
        self,
        name: str,
        namespace: str,
        service_account: str,
        buckets: Sequence[Bucket],
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource] = (),
        read_only: Sequence[Bucket] = (),
    ) -> WorkloadIdentity:
        """Let pods running as ``namespace/service_account`` read and write ``buckets``, and
        only read ``read_only`` (a query engine over the archive, a backfill reading it): a
        reader that cannot delete cannot lose the archive. Where the store has no per-identity
        rights (on-prem: one Hadoop user, one S3 access key) the target says so in its doc.

        The returned annotations go on the Kubernetes ServiceAccount the component creates. Cloud
        resources are parented to ``parent`` (the asking component) so they are deleted with it.
        """

    @abc.abstractmethod
    def segment_store(self, bucket: Bucket) -> SegmentStore:
        """The PinotFS that reads and writes ``bucket`` (Pinot's deep store) from pods running
        with the workload identity `workload_identity` gave for it."""

    def cold_storage_class(self) -> str:
        """A zonal block-storage class cheaper per GiB than `storage_class`, for data read
        rarely and in bulk (Pinot's cold segments). The region's only class where it has no
        other (see each target)."""
        return self.storage_class

    def k8s_opts(self, parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, provider=self.k8s, **kwargs)

    def service_account(
        self,
        resource_name: str,
        identity: WorkloadIdentity,
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource],
        automount_token: bool | None = None,
    ) -> ServiceAccount:
        """The Kubernetes ServiceAccount ``identity`` names, carrying its cloud identity's
        annotations (IRSA role, Google service account). ``automount_token`` False for a pod that
        never talks to the Kubernetes API."""
        return ServiceAccount(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=identity.service_account,
                namespace=identity.namespace,
                labels=self.labels,
                # Left out when empty: the API server drops an empty map, and the plan must say
                # what is live.
                annotations=identity.annotations or None,
            ),
            automount_service_account_token=automount_token,
            opts=self.k8s_opts(parent, depends_on=list(depends_on)),
        )

    def finish(self, outputs: dict) -> None:
        self.register_outputs(outputs)


def exec_kubeconfig(cluster_name: str, server: str, ca_data: str, exec_: dict[str, Any]) -> str:
    """A kubeconfig of one cluster whose user gets its token from an exec plugin: what EKS
    (`aws eks get-token`) and GKE (`gke-gcloud-auth-plugin`) both want, apart from ``exec_``."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": server, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", **exec_}
                    },
                }
            ],
        }
    )
