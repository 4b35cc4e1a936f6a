"""GCP: a VPC-native network, a private regional GKE cluster over the region's zones, GCS with CMEK.

Workloads reach GCS through Workload Identity: one Google service account per workload that only
its Kubernetes service account may impersonate.

The secure default posture: GKE runs Dataplane V2, which enforces Kubernetes NetworkPolicies
(those Strimzi creates among them), and logs its system components, API server, controller
manager, scheduler and workloads; the subnetwork has flow logs; every data bucket writes usage
logs into the region's log bucket.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from infra import versions
from infra.targets.base import (
    ABORT_MULTIPART_DAYS,
    LABEL_PURPOSE,
    Bucket,
    Lifecycle,
    SegmentStore,
    Target,
    WorkloadIdentity,
    exec_kubeconfig,
)
from infra.topology.errors import ConfigError, Issue
from infra.topology.model import GcpStack, Topology

STORAGE_CLASS = "rtdi-ssd"
# Standard persistent disks: a fifth of pd-ssd's price per GiB, for data scanned in bulk.
COLD_STORAGE_CLASS = "rtdi-standard"
# Prefixes a GCS bucket's lifecycle configuration takes (matchesPrefix, all rules together).
GCS_MAX_PREFIXES_PER_CONDITION = 1000
_NODE_ROLES = [
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
]
KEY_ROTATION = "7776000s"  # 90 days
# GKE components whose logs go to Cloud Logging: the whole control plane and the workloads.
GKE_LOG_COMPONENTS = [
    "SYSTEM_COMPONENTS",
    "APISERVER",
    "CONTROLLER_MANAGER",
    "SCHEDULER",
    "WORKLOADS",
]
# Dataplane V2 (Cilium) enforces NetworkPolicy itself; GKE refuses it together with Calico.
GKE_DATAPATH = "ADVANCED_DATAPATH"
LOG_RETENTION_DAYS = 365
# Google's usage-log writer; with uniform bucket-level access it needs an IAM grant.
STORAGE_ANALYTICS = "group:cloud-storage-analytics@google.com"


def account_id(*parts: str) -> str:
    """A service-account id (6-30 chars), stable for the same parts; hashed only when too long."""
    raw = "-".join(parts)
    if len(raw) <= 30:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:6]
    return f"{raw[:23].rstrip('-')}-{digest}"


def _service_agent(project_number: pulumi.Output[Any], domain: str) -> pulumi.Output[str]:
    """The IAM member of a Google service's agent in the project (its address holds the number)."""
    return project_number.apply(lambda num: f"serviceAccount:service-{num}@{domain}")


class GcpTarget(Target):
    internal_load_balancer_annotations = {"networking.gke.io/load-balancer-type": "Internal"}

    def __init__(
        self, stack: GcpStack, topology: Topology, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("rtdi:gcp:Region", stack, topology, opts)
        self.stack: GcpStack = stack
        self.project = stack.gcp_project
        self.provider = gcp.Provider(
            f"{self.name}-gcp",
            gcp.ProviderArgs(
                project=self.project, region=self.region.name, default_labels=self.labels
            ),
            opts=self.child(),
        )
        self._kms()
        self.log_bucket = self._create_log_bucket()
        self._network()
        self._cluster()

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.provider, **kwargs)

    def _kms(self) -> None:
        n = f"{self.name}-kms"
        ring = gcp.kms.KeyRing(
            n,
            gcp.kms.KeyRingArgs(name=self.physical_name(), location=self.region.name),
            opts=self._opts(retain_on_delete=True),
        )  # GCP never deletes key rings
        self.kms_key = gcp.kms.CryptoKey(
            n,
            gcp.kms.CryptoKeyArgs(
                name="data",
                key_ring=ring.id,
                rotation_period=KEY_ROTATION,
                purpose="ENCRYPT_DECRYPT",
            ),
            opts=self._opts(),
        )
        number = gcp.organizations.get_project_output(
            project_id=self.project,
            opts=pulumi.InvokeOutputOptions(provider=self.provider, parent=self),
        ).number
        # Google's service agents encrypt for us: GCS objects, persistent disks, managed Kafka.
        self.kms_grants = [
            gcp.kms.CryptoKeyIAMMember(
                f"{n}-{agent}",
                gcp.kms.CryptoKeyIAMMemberArgs(
                    crypto_key_id=self.kms_key.id,
                    role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
                    member=_service_agent(number, domain),
                ),
                opts=self._opts(),
            )
            for agent, domain in (
                ("gcs", "gs-project-accounts.iam.gserviceaccount.com"),
                ("compute", "compute-system.iam.gserviceaccount.com"),
                ("managedkafka", "gcp-sa-managedkafka.iam.gserviceaccount.com"),
            )
        ]

    def _create_log_bucket(self) -> gcp.storage.Bucket:
        """The region's log bucket: the usage logs of every data bucket.

        Private, versioned, encrypted with the region's key (GCS's service agent may use it),
        logs deleted after a year; Google's usage-log writer may only create objects in it.
        """
        n = f"{self.name}-bucket-logs"
        bucket = gcp.storage.Bucket(
            n,
            gcp.storage.BucketArgs(
                name=self.physical_name("logs"),
                location=self.region.name.upper(),
                storage_class="STANDARD",
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                versioning=gcp.storage.BucketVersioningArgs(enabled=True),
                encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=self.kms_key.id),
                lifecycle_rules=[
                    gcp.storage.BucketLifecycleRuleArgs(
                        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                            age=LOG_RETENTION_DAYS
                        ),
                    ),
                    gcp.storage.BucketLifecycleRuleArgs(
                        action=gcp.storage.BucketLifecycleRuleActionArgs(
                            type="AbortIncompleteMultipartUpload"
                        ),
                        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                            age=ABORT_MULTIPART_DAYS
                        ),
                    ),
                ],
                labels={LABEL_PURPOSE: "logs"},
            ),
            opts=self._opts(depends_on=self.kms_grants),
        )
        self.log_writer = gcp.storage.BucketIAMMember(
            n,
            gcp.storage.BucketIAMMemberArgs(
                bucket=bucket.name, role="roles/storage.objectCreator", member=STORAGE_ANALYTICS
            ),
            opts=self._opts(),
        )
        return bucket

    def _network(self) -> None:
        net = self.stack.network
        if net.mode == "existing":
            self.network: pulumi.Input[str] = net.network  # type: ignore[assignment]
            self.subnetwork: pulumi.Input[str] = net.subnetwork  # type: ignore[assignment]
            self.pods_range, self.services_range = net.pods_range_name, net.services_range_name
            return
        n = f"{self.name}-vpc"
        network = gcp.compute.Network(
            n,
            gcp.compute.NetworkArgs(
                name=self.physical_name(), auto_create_subnetworks=False, routing_mode="REGIONAL"
            ),
            opts=self._opts(),
        )
        self.pods_range, self.services_range = "pods", "services"
        subnet = gcp.compute.Subnetwork(
            n,
            gcp.compute.SubnetworkArgs(
                name=self.physical_name(),
                network=network.id,
                region=self.region.name,
                ip_cidr_range=str(net.cidr),
                private_ip_google_access=True,
                secondary_ip_ranges=[
                    gcp.compute.SubnetworkSecondaryIpRangeArgs(
                        range_name=self.pods_range, ip_cidr_range=str(net.pods_cidr)
                    ),
                    gcp.compute.SubnetworkSecondaryIpRangeArgs(
                        range_name=self.services_range, ip_cidr_range=str(net.services_cidr)
                    ),
                ],
                log_config=gcp.compute.SubnetworkLogConfigArgs(
                    aggregation_interval="INTERVAL_5_SEC", flow_sampling=0.5
                ),
            ),
            opts=self._opts(),
        )
        router = gcp.compute.Router(
            n,
            gcp.compute.RouterArgs(
                name=self.physical_name(), network=network.id, region=self.region.name
            ),
            opts=self._opts(),
        )
        gcp.compute.RouterNat(
            n,
            gcp.compute.RouterNatArgs(
                name=self.physical_name(),
                router=router.name,
                region=self.region.name,
                nat_ip_allocate_option="AUTO_ONLY",
                source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            ),
            opts=self._opts(),
        )
        self.network, self.subnetwork = network.id, subnet.id

    def _cluster(self) -> None:
        spec = self.stack.kubernetes
        n = f"{self.name}-gke"
        self.cluster_name = self.physical_name()
        node_sa = gcp.serviceaccount.Account(
            f"{n}-nodes",
            gcp.serviceaccount.AccountArgs(
                account_id=account_id("gke-nodes", self.region.name),
                display_name=f"rtdi {self.name} GKE nodes",
            ),
            opts=self._opts(),
        )
        for role in _NODE_ROLES:
            gcp.projects.IAMMember(
                f"{n}-nodes-{role.split('/')[1]}",
                gcp.projects.IAMMemberArgs(
                    project=self.project,
                    role=role,
                    member=node_sa.email.apply(lambda e: f"serviceAccount:{e}"),
                ),
                opts=self._opts(),
            )
        authorized = [
            gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                cidr_block=str(c), display_name=f"authorized-{i}"
            )
            for i, c in enumerate(spec.authorized_cidrs)
        ]
        self.cluster = gcp.container.Cluster(
            n,
            gcp.container.ClusterArgs(
                name=self.cluster_name,
                location=self.region.name,
                node_locations=self.zones,
                min_master_version=spec.version,
                release_channel=gcp.container.ClusterReleaseChannelArgs(
                    channel=versions.GKE_RELEASE_CHANNEL
                ),
                network=self.network,
                subnetwork=self.subnetwork,
                networking_mode="VPC_NATIVE",
                ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                    cluster_secondary_range_name=self.pods_range,
                    services_secondary_range_name=self.services_range,
                ),
                private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                    enable_private_nodes=True,
                    enable_private_endpoint=True,
                    master_ipv4_cidr_block=str(spec.master_cidr),
                ),
                master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                    cidr_blocks=authorized
                ),
                workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                    workload_pool=f"{self.project}.svc.id.goog"
                ),
                database_encryption=gcp.container.ClusterDatabaseEncryptionArgs(
                    state="ENCRYPTED", key_name=self.kms_key.id
                ),
                enable_shielded_nodes=True,
                datapath_provider=GKE_DATAPATH,
                logging_config=gcp.container.ClusterLoggingConfigArgs(
                    enable_components=GKE_LOG_COMPONENTS
                ),
                remove_default_node_pool=True,
                initial_node_count=1,
                deletion_protection=True,
                addons_config=gcp.container.ClusterAddonsConfigArgs(
                    gce_persistent_disk_csi_driver_config=gcp.container.ClusterAddonsConfigGcePersistentDiskCsiDriverConfigArgs(
                        enabled=True
                    ),
                ),
            ),
            opts=self._opts(depends_on=self.kms_grants),
        )
        pool = gcp.container.NodePool(
            n,
            gcp.container.NodePoolArgs(
                name="rtdi",
                cluster=self.cluster.id,
                location=self.region.name,
                node_locations=self.zones,
                node_count=spec.nodes_per_zone,
                autoscaling=gcp.container.NodePoolAutoscalingArgs(
                    min_node_count=spec.nodes_per_zone, max_node_count=spec.max_nodes_per_zone
                ),
                management=gcp.container.NodePoolManagementArgs(
                    auto_repair=True, auto_upgrade=True
                ),
                node_config=gcp.container.NodePoolNodeConfigArgs(
                    machine_type=spec.machine_type,
                    disk_size_gb=spec.disk_gib,
                    disk_type="pd-ssd",
                    boot_disk_kms_key=self.kms_key.id,
                    service_account=node_sa.email,
                    oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                    workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                        mode="GKE_METADATA"
                    ),
                    shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                        enable_secure_boot=True, enable_integrity_monitoring=True
                    ),
                ),
            ),
            opts=self._opts(),
        )
        kubeconfig = pulumi.Output.all(
            self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate
        ).apply(lambda a: _kubeconfig(self.cluster_name, a[0], a[1]))
        self.k8s = k8s.Provider(
            f"{self.name}-k8s",
            k8s.ProviderArgs(kubeconfig=kubeconfig),
            opts=self.child(depends_on=[pool]),
        )
        self.storage_class = STORAGE_CLASS
        self._pd_class(STORAGE_CLASS, "pd-ssd")

    def segment_store(self, bucket: Bucket) -> SegmentStore:
        """GcsPinotFS with no key: Google's application default credentials, i.e. the pod's
        Google service account through Workload Identity."""
        return SegmentStore(
            scheme="gs",
            pinot_fs="org.apache.pinot.plugin.filesystem.GcsPinotFS",
            config={"projectId": self.project},
        )

    def _pd_class(self, name: str, disk_type: str) -> k8s.storage.v1.StorageClass:
        """A persistent disk StorageClass of ``disk_type`` with the region's key (CMEK); disks
        kept when their claim goes (Retain), made in the zone of the pod that first uses them."""
        return k8s.storage.v1.StorageClass(
            f"{self.name}-{name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name),
            provisioner="pd.csi.storage.gke.io",
            parameters={"type": disk_type, "disk-encryption-kms-key": self.kms_key.id},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain",
            opts=self.k8s_opts(self),
        )

    def cold_storage_class(self) -> str:
        """pd-standard volumes with the region's key (CMEK), created on first request."""
        if self._cold_class is None:
            self._cold_class = self._pd_class(COLD_STORAGE_CLASS, "pd-standard")
        return COLD_STORAGE_CLASS

    def _create_bucket(self, purpose: str, lifecycle: Lifecycle) -> Bucket:
        rules = [
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    days_since_noncurrent_time=lifecycle.noncurrent_days, with_state="ARCHIVED"
                ),
            ),
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(
                    type="AbortIncompleteMultipartUpload"
                ),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=ABORT_MULTIPART_DAYS),
            ),
        ]
        if lifecycle.cold_after_days:
            rules.append(
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(
                        type="SetStorageClass", storage_class="NEARLINE"
                    ),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        age=lifecycle.cold_after_days, with_state="LIVE"
                    ),
                )
            )
        if len(lifecycle.expirations) > GCS_MAX_PREFIXES_PER_CONDITION:
            raise ConfigError(
                [
                    Issue(
                        "rtdi:kafka",
                        "dataClasses.archiveRetentionDays",
                        f"{len(lifecycle.expirations)} archived topics with a retention; allowed: "
                        f"at most {GCS_MAX_PREFIXES_PER_CONDITION} (a GCS lifecycle condition's "
                        f"prefixes)",
                    )
                ]
            )
        # One Delete rule per retention, over every prefix that keeps it (GCS takes at most 100
        # lifecycle rules per bucket, and a condition takes many prefixes).
        by_days: dict[int, list[str]] = {}
        for prefix, days in lifecycle.expirations:
            by_days.setdefault(days, []).append(prefix)
        rules += [
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    age=days, matches_prefixes=sorted(prefixes), with_state="LIVE"
                ),
            )
            for days, prefixes in sorted(by_days.items())
        ]
        bucket = gcp.storage.Bucket(
            f"{self.name}-bucket-{purpose}",
            gcp.storage.BucketArgs(
                name=self.physical_name(purpose),
                location=self.region.name.upper(),
                storage_class="STANDARD",
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                versioning=gcp.storage.BucketVersioningArgs(enabled=True),
                encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=self.kms_key.id),
                lifecycle_rules=rules,
                labels={LABEL_PURPOSE: purpose},
                logging=gcp.storage.BucketLoggingArgs(
                    log_bucket=self.log_bucket.name, log_object_prefix=self.physical_name(purpose)
                ),
            ),
            opts=self._opts(depends_on=[*self.kms_grants, self.log_writer]),
        )
        return Bucket(
            purpose=purpose,
            scheme="gs",
            name=bucket.name,
            uri=bucket.name.apply(lambda b: f"gs://{b}"),
            resources=[bucket],
        )

    def workload_identity(
        self,
        name,
        namespace,
        service_account,
        buckets: Sequence[Bucket],
        parent,
        depends_on=(),
        read_only: Sequence[Bucket] = (),
    ) -> WorkloadIdentity:
        opts = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        short = name.removeprefix(f"{self.name}-")
        gsa = gcp.serviceaccount.Account(
            f"{name}-gsa",
            gcp.serviceaccount.AccountArgs(
                account_id=account_id(short, self.region.name), display_name=f"rtdi {name}"
            ),
            opts=opts,
        )
        grants: list[pulumi.Resource] = [
            gsa,
            gcp.serviceaccount.IAMMember(
                f"{name}-wi",
                gcp.serviceaccount.IAMMemberArgs(
                    service_account_id=gsa.name,
                    role="roles/iam.workloadIdentityUser",
                    member=f"serviceAccount:{self.project}.svc.id.goog[{namespace}/{service_account}]",
                ),
                opts=opts,
            ),
        ]
        roles = [(b, "roles/storage.objectUser") for b in buckets]
        roles += [(b, "roles/storage.objectViewer") for b in read_only]
        for bucket, role in roles:
            grants.append(
                gcp.storage.BucketIAMMember(
                    f"{name}-{bucket.purpose}",
                    gcp.storage.BucketIAMMemberArgs(
                        bucket=bucket.name,
                        role=role,
                        member=gsa.email.apply(lambda e: f"serviceAccount:{e}"),
                    ),
                    opts=opts,
                )
            )
        return WorkloadIdentity(
            service_account=service_account,
            namespace=namespace,
            annotations={"iam.gke.io/gcp-service-account": gsa.email},
            grantee=gsa.email,
            resources=grants,
        )


def _kubeconfig(cluster_name: str, endpoint: str, ca: str) -> str:
    plugin = {"command": "gke-gcloud-auth-plugin", "provideClusterInfo": True}
    return exec_kubeconfig(cluster_name, f"https://{endpoint}", ca, plugin)
