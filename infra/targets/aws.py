"""AWS: a VPC over the region's zones, a private EKS cluster with one node group per zone, S3.

Workloads reach S3 through IRSA: an IAM role per workload whose trust policy names exactly one
Kubernetes service account of this cluster's OIDC issuer.

The secure default posture: the region's KMS key has an explicit key policy naming who may use
it; the VPC has flow logs and every data bucket has server access logs, both into the region's
log bucket; EKS logs every control-plane log type into an encrypted log group with retention;
the VPC CNI enforces Kubernetes NetworkPolicies (those Strimzi creates among them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TypeAlias

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import versions
from infra.targets.base import (
    ABORT_MULTIPART_DAYS,
    LABEL_PURPOSE,
    ZONE_LABEL,
    Bucket,
    Lifecycle,
    SegmentStore,
    Target,
    WorkloadIdentity,
    exec_kubeconfig,
)
from infra.topology.checks import subnet_plan
from infra.topology.errors import ConfigError, Issue
from infra.topology.model import AwsStack, Topology

_EKS_CLUSTER_POLICIES = ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]
_EKS_NODE_POLICIES = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
]
_EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
STORAGE_CLASS = "rtdi-ssd"
# Throughput-optimized HDD (st1): a third of gp3's price per GiB, for data scanned in bulk.
COLD_STORAGE_CLASS = "rtdi-hdd"
_SseDefault: TypeAlias = (
    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
)
# Every control-plane log type EKS has: api, audit, authenticator, controllerManager, scheduler.
EKS_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
# The VPC CNI's network policy agent: without it NetworkPolicies are accepted and ignored.
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}
# How long CloudWatch keeps control-plane logs, and the log bucket keeps access and flow logs.
LOG_RETENTION_DAYS = 365
LOG_NONCURRENT_DAYS = 30
# Key prefixes inside the log bucket, one per kind of log.
ACCESS_LOG_PREFIX = "s3-access"
FLOW_LOG_PREFIX = "vpc-flow-logs"
# AWS services that use the region's key on behalf of a caller of this account.
_KMS_VIA_SERVICES = ("s3", "kafka", "secretsmanager", "ec2")
_KMS_USE = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


def _assume(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


class AwsTarget(Target):
    internal_load_balancer_annotations = {
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    }

    def __init__(
        self, stack: AwsStack, topology: Topology, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("rtdi:aws:Region", stack, topology, opts)
        self.stack: AwsStack = stack
        self.provider = aws.Provider(
            f"{self.name}-aws",
            aws.ProviderArgs(
                region=self.region.name,
                allowed_account_ids=[stack.aws_account_id] if stack.aws_account_id else None,
                default_tags=aws.ProviderDefaultTagsArgs(tags=self.labels),
            ),
            opts=self.child(),
        )
        self.account_id: pulumi.Input[str] = (
            stack.aws_account_id
            or aws.get_caller_identity_output(
                opts=pulumi.InvokeOutputOptions(provider=self.provider, parent=self)
            ).account_id
        )
        # The cluster role exists before the key: KMS refuses a key policy naming a missing role.
        self.cluster_role = aws.iam.Role(
            f"{self.name}-eks",
            aws.iam.RoleArgs(
                name=self.physical_name("eks"), assume_role_policy=_assume("eks.amazonaws.com")
            ),
            opts=self._opts(),
        )
        self.kms_key = aws.kms.Key(
            f"{self.name}-kms",
            aws.kms.KeyArgs(
                description=f"rtdi {self.name}: EKS secrets, EBS volumes, S3 objects, MSK, logs",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=pulumi.Output.all(self.account_id, self.cluster_role.arn).apply(
                    lambda a: json.dumps(self._key_policy(a[0], a[1]))
                ),
            ),
            opts=self._opts(),
        )
        aws.kms.Alias(
            f"{self.name}-kms-alias",
            aws.kms.AliasArgs(
                name=f"alias/{self.physical_name('data')}", target_key_id=self.kms_key.key_id
            ),
            opts=self._opts(),
        )
        self.log_bucket = self._create_log_bucket()
        self._network()
        self._cluster()

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.provider, **kwargs)

    # ---------------------------------------------------------------- KMS and logs

    def _key_policy(self, account: str, cluster_role_arn: str) -> dict:
        """Who may use the region's key, each by name; no statement is open to any principal.

        The account root administers the key (and lets IAM policies grant its use, which is how
        workload roles reach S3 objects). EKS's cluster role encrypts Secrets. The EBS CSI role
        is created after the cluster, hence after the key: KMS refuses a key policy whose
        principal does not exist yet, so it is named by a condition on the calling role's ARN.
        S3, MSK, Secrets Manager and EC2 (EBS) use the key only for callers of this account, and
        CloudWatch Logs only for this account's log groups in this region.
        """
        region = self.region.name
        root = f"arn:aws:iam::{account}:root"
        ebs_csi_role = f"arn:aws:iam::{account}:role/{self._ebs_csi_role_name}"
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "EksSecretsEncryption",
                    "Effect": "Allow",
                    "Principal": {"AWS": cluster_role_arn},
                    "Action": [*_KMS_USE, "kms:CreateGrant", "kms:ListGrants"],
                    "Resource": "*",
                },
                {
                    "Sid": "EbsVolumesViaCsiRole",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": [*_KMS_USE, "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                    "Resource": "*",
                    "Condition": {"ArnEquals": {"aws:PrincipalArn": ebs_csi_role}},
                },
                {
                    "Sid": "ServicesForThisAccount",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": [*_KMS_USE, "kms:CreateGrant"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": [
                                f"{service}.{region}.amazonaws.com" for service in _KMS_VIA_SERVICES
                            ],
                        }
                    },
                },
                {
                    "Sid": "CloudWatchLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    "Action": _KMS_USE,
                    "Resource": "*",
                    "Condition": {
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": (
                                f"arn:aws:logs:{region}:{account}:log-group:*"
                            )
                        }
                    },
                },
            ],
        }

    @property
    def _ebs_csi_role_name(self) -> str:
        return self.physical_name("ebs-csi")[:64]

    def _create_log_bucket(self) -> aws.s3.Bucket:
        """The region's log bucket: S3 server access logs of every data bucket, VPC flow logs.

        Encrypted with SSE-S3, not the region's KMS key: AWS documents SSE-S3 as the default
        encryption a server access log destination bucket may have (log delivery does not use
        a customer managed key). Private, versioned, TLS only, logs expire after a year. Its
        policy lets exactly S3's log delivery (from this account's `<topology>-<region>-*`
        buckets) and the VPC flow log delivery (from this account) write under their prefixes.
        """
        purpose = "logs"
        name = self.physical_name(purpose)
        region = self.region.name
        bucket_arn = f"arn:aws:s3:::{name}"

        def statements(account: str) -> list[dict]:
            return [
                {
                    "Sid": "S3ServerAccessLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{ACCESS_LOG_PREFIX}/*",
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{self.physical_name()}-*"},
                        "StringEquals": {"aws:SourceAccount": account},
                    },
                },
                {
                    "Sid": "VpcFlowLogsWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": "delivery.logs.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/{FLOW_LOG_PREFIX}/AWSLogs/{account}/*",
                    "Condition": {
                        "StringEquals": {
                            "aws:SourceAccount": account,
                            "s3:x-amz-acl": "bucket-owner-full-control",
                        },
                        "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{region}:{account}:*"},
                    },
                },
                {
                    "Sid": "VpcFlowLogsAclCheck",
                    "Effect": "Allow",
                    "Principal": {"Service": "delivery.logs.amazonaws.com"},
                    "Action": "s3:GetBucketAcl",
                    "Resource": bucket_arn,
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{region}:{account}:*"},
                    },
                },
            ]

        bucket, _ = self._s3_bucket(
            purpose,
            name,
            encryption=_SseDefault(sse_algorithm="AES256"),
            lifecycle_rule=aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=f"rtdi-{purpose}",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=LOG_RETENTION_DAYS
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=ABORT_MULTIPART_DAYS
                ),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=LOG_NONCURRENT_DAYS
                ),
            ),
            extra_statements=pulumi.Output.from_input(self.account_id).apply(statements),
        )
        return bucket

    def log_group(
        self, resource_name: str, log_group_name: str, parent: pulumi.Resource
    ) -> aws.cloudwatch.LogGroup:
        """A CloudWatch log group encrypted with the region's key, kept LOG_RETENTION_DAYS."""
        return aws.cloudwatch.LogGroup(
            resource_name,
            aws.cloudwatch.LogGroupArgs(
                name=log_group_name,
                retention_in_days=LOG_RETENTION_DAYS,
                kms_key_id=self.kms_key.arn,
            ),
            opts=pulumi.ResourceOptions(parent=parent, provider=self.provider),
        )

    # ---------------------------------------------------------------- network

    def _network(self) -> None:
        net = self.stack.network
        if net.mode == "existing":
            self.vpc_id: pulumi.Input[str] = net.vpc_id  # type: ignore[assignment]
            self.private_subnet_ids: dict[str, pulumi.Input[str]] = dict(
                net.private_subnet_ids or {}
            )
            self._flow_log()
            return
        n = f"{self.name}-vpc"
        private, public = subnet_plan(net.cidr, self.zones)
        vpc = aws.ec2.Vpc(
            n,
            aws.ec2.VpcArgs(
                cidr_block=str(net.cidr),
                enable_dns_hostnames=True,
                enable_dns_support=True,
                tags={"Name": self.physical_name()},
            ),
            opts=self._opts(),
        )
        igw = aws.ec2.InternetGateway(
            f"{n}-igw", aws.ec2.InternetGatewayArgs(vpc_id=vpc.id), opts=self._opts()
        )
        public_rt = aws.ec2.RouteTable(
            f"{n}-public",
            aws.ec2.RouteTableArgs(
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            ),
            opts=self._opts(),
        )
        private_rts = []
        self.private_subnet_ids = {}
        for zone in self.zones:
            pub = aws.ec2.Subnet(
                f"{n}-public-{zone}",
                aws.ec2.SubnetArgs(
                    vpc_id=vpc.id,
                    cidr_block=str(public[zone]),
                    availability_zone=zone,
                    tags={
                        "Name": self.physical_name("public", zone),
                        "kubernetes.io/role/elb": "1",
                    },
                ),
                opts=self._opts(),
            )
            aws.ec2.RouteTableAssociation(
                f"{n}-public-{zone}",
                aws.ec2.RouteTableAssociationArgs(subnet_id=pub.id, route_table_id=public_rt.id),
                opts=self._opts(),
            )
            eip = aws.ec2.Eip(f"{n}-nat-{zone}", aws.ec2.EipArgs(domain="vpc"), opts=self._opts())
            nat = aws.ec2.NatGateway(
                f"{n}-nat-{zone}",
                aws.ec2.NatGatewayArgs(subnet_id=pub.id, allocation_id=eip.id),
                opts=self._opts(),
            )
            priv = aws.ec2.Subnet(
                f"{n}-private-{zone}",
                aws.ec2.SubnetArgs(
                    vpc_id=vpc.id,
                    cidr_block=str(private[zone]),
                    availability_zone=zone,
                    tags={
                        "Name": self.physical_name("private", zone),
                        "kubernetes.io/role/internal-elb": "1",
                    },
                ),
                opts=self._opts(),
            )
            rt = aws.ec2.RouteTable(
                f"{n}-private-{zone}",
                aws.ec2.RouteTableArgs(
                    vpc_id=vpc.id,
                    routes=[
                        aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)
                    ],
                ),
                opts=self._opts(),
            )
            aws.ec2.RouteTableAssociation(
                f"{n}-private-{zone}",
                aws.ec2.RouteTableAssociationArgs(subnet_id=priv.id, route_table_id=rt.id),
                opts=self._opts(),
            )
            private_rts.append(rt.id)
            self.private_subnet_ids[zone] = priv.id
        # S3 traffic (tiered storage, checkpoints, archive) stays off the NAT gateways.
        aws.ec2.VpcEndpoint(
            f"{n}-s3",
            aws.ec2.VpcEndpointArgs(
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{self.region.name}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=private_rts,
            ),
            opts=self._opts(),
        )
        self.vpc_id = vpc.id
        self._flow_log()

    def _flow_log(self) -> None:
        """Every accepted and rejected flow of the VPC into the log bucket.

        Also on a VPC the network team owns: AWS allows several flow logs on one VPC, and rtdi
        cannot see whether theirs exist or how long they are kept, so the region records its own.
        """
        aws.ec2.FlowLog(
            f"{self.name}-vpc-flow-log",
            aws.ec2.FlowLogArgs(
                vpc_id=self.vpc_id,
                traffic_type="ALL",
                log_destination_type="s3",
                log_destination=self.log_bucket.arn.apply(lambda a: f"{a}/{FLOW_LOG_PREFIX}/"),
                tags={"Name": self.physical_name("flow-log")},
            ),
            opts=self._opts(),
        )

    # ---------------------------------------------------------------- EKS

    def _cluster(self) -> None:
        spec = self.stack.kubernetes
        n = f"{self.name}-eks"
        self.cluster_name = self.physical_name()
        role = self.cluster_role
        attachments = self._attach(n, role, _EKS_CLUSTER_POLICIES)
        # EKS writes control-plane logs here; declared so they are encrypted and expire.
        logs = self.log_group(f"{n}-logs", f"/aws/eks/{self.cluster_name}/cluster", self)
        public = [str(c) for c in spec.public_access_cidrs]
        self.cluster = aws.eks.Cluster(
            n,
            aws.eks.ClusterArgs(
                name=self.cluster_name,
                version=spec.version,
                role_arn=role.arn,
                vpc_config=aws.eks.ClusterVpcConfigArgs(
                    subnet_ids=list(self.private_subnet_ids.values()),
                    endpoint_private_access=True,
                    endpoint_public_access=bool(public),
                    public_access_cidrs=public or None,
                ),
                access_config=aws.eks.ClusterAccessConfigArgs(
                    authentication_mode="API",
                    bootstrap_cluster_creator_admin_permissions=True,
                ),
                encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                    resources=["secrets"],
                    provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.kms_key.arn),
                ),
                enabled_cluster_log_types=EKS_LOG_TYPES,
                deletion_protection=True,
            ),
            opts=self._opts(depends_on=[*attachments, logs]),
        )
        issuer = self.cluster.identities[0].oidcs[0].issuer
        self.oidc = aws.iam.OpenIdConnectProvider(
            f"{n}-oidc",
            aws.iam.OpenIdConnectProviderArgs(url=issuer, client_id_lists=["sts.amazonaws.com"]),
            opts=self._opts(),
        )
        self.oidc_issuer = issuer.apply(lambda url: url.removeprefix("https://"))

        node_role = aws.iam.Role(
            f"{n}-nodes",
            aws.iam.RoleArgs(
                name=self.physical_name("eks-nodes"),
                assume_role_policy=_assume("ec2.amazonaws.com"),
            ),
            opts=self._opts(),
        )
        node_attachments = self._attach(f"{n}-nodes", node_role, _EKS_NODE_POLICIES)
        # One node group per zone: stateful pods are pinned to a zone by their volumes, so the
        # autoscaler must be able to add a node in exactly that zone.
        groups = []
        for zone, subnet in self.private_subnet_ids.items():
            groups.append(
                aws.eks.NodeGroup(
                    f"{n}-{zone}",
                    aws.eks.NodeGroupArgs(
                        cluster_name=self.cluster.name,
                        node_group_name=f"{zone}",
                        node_role_arn=node_role.arn,
                        subnet_ids=[subnet],
                        instance_types=[spec.instance_type],
                        disk_size=spec.disk_gib,
                        scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                            desired_size=spec.nodes_per_zone,
                            min_size=spec.nodes_per_zone,
                            max_size=spec.max_nodes_per_zone,
                        ),
                        update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
                        labels={ZONE_LABEL: zone},
                    ),
                    opts=self._opts(depends_on=node_attachments),
                )
            )
        ebs_role = self._irsa_role(
            f"{n}-ebs-csi", "ebs-csi", "kube-system", "ebs-csi-controller-sa", parent=self
        )
        self._attach(f"{n}-ebs-csi", ebs_role, [_EBS_CSI_POLICY])
        # The managed policy covers only AWS-managed keys; volumes use the region's key.
        aws.iam.RolePolicy(
            f"{n}-ebs-csi-kms",
            aws.iam.RolePolicyArgs(
                role=ebs_role.id,
                policy=self.kms_key.arn.apply(
                    lambda arn: json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": [
                                        *_KMS_USE,
                                        "kms:CreateGrant",
                                        "kms:ListGrants",
                                        "kms:RevokeGrant",
                                    ],
                                    "Resource": [arn],
                                }
                            ],
                        }
                    )
                ),
            ),
            opts=self._opts(),
        )
        addons = []
        for addon, version in versions.EKS_ADDONS.items():
            addons.append(
                aws.eks.Addon(
                    f"{n}-{addon}",
                    aws.eks.AddonArgs(
                        cluster_name=self.cluster.name,
                        addon_name=addon,
                        addon_version=version,
                        resolve_conflicts_on_create="OVERWRITE",
                        resolve_conflicts_on_update="OVERWRITE",
                        service_account_role_arn=ebs_role.arn
                        if addon == "aws-ebs-csi-driver"
                        else None,
                        configuration_values=json.dumps(VPC_CNI_CONFIGURATION)
                        if addon == "vpc-cni"
                        else None,
                    ),
                    opts=self._opts(depends_on=groups),
                )
            )
        kubeconfig = pulumi.Output.all(
            self.cluster.endpoint, self.cluster.certificate_authority.data, self.cluster.name
        ).apply(lambda a: _kubeconfig(a[0], a[1], a[2], self.region.name))
        self.k8s = k8s.Provider(
            f"{self.name}-k8s",
            k8s.ProviderArgs(kubeconfig=kubeconfig),
            opts=self.child(depends_on=addons),
        )
        self.storage_class = STORAGE_CLASS
        self._ebs_class(STORAGE_CLASS, "gp3")

    def _attach(
        self, prefix: str, role: aws.iam.Role, arns: list[str]
    ) -> list[aws.iam.RolePolicyAttachment]:
        return [
            aws.iam.RolePolicyAttachment(
                f"{prefix}-{arn.rsplit('/', 1)[1]}",
                aws.iam.RolePolicyAttachmentArgs(role=role.name, policy_arn=arn),
                opts=self._opts(),
            )
            for arn in arns
        ]

    def _irsa_role(
        self,
        resource_name: str,
        role: str,
        namespace: str,
        service_account: str,
        parent: pulumi.Resource,
    ) -> aws.iam.Role:
        subject = f"system:serviceaccount:{namespace}:{service_account}"
        trust = pulumi.Output.all(self.oidc.arn, self.oidc_issuer).apply(
            lambda a: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": a[0]},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{a[1]}:sub": subject,
                                    f"{a[1]}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                }
            )
        )
        return aws.iam.Role(
            resource_name,
            aws.iam.RoleArgs(name=_iam_name(self.physical_name(role)), assume_role_policy=trust),
            opts=pulumi.ResourceOptions(parent=parent, provider=self.provider),
        )

    # ---------------------------------------------------------------- S3

    def segment_store(self, bucket: Bucket) -> SegmentStore:
        """S3PinotFS through IRSA: the plugin's default credentials chain (AWS SDK v2, with its
        sts module) takes the web identity token EKS mounts for the pod's role."""
        return SegmentStore(
            scheme="s3",
            pinot_fs="org.apache.pinot.plugin.filesystem.S3PinotFS",
            config={"region": bucket.cloud_region or self.region.name},
        )

    def _ebs_class(self, name: str, volume_type: str) -> k8s.storage.v1.StorageClass:
        """An EBS StorageClass of ``volume_type``, encrypted with the region's key; volumes kept
        when their claim goes (Retain) and made in the zone of the pod that first uses them."""
        return k8s.storage.v1.StorageClass(
            f"{self.name}-{name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name),
            provisioner="ebs.csi.aws.com",
            parameters={
                "type": volume_type,
                "encrypted": "true",
                "kmsKeyId": self.kms_key.arn,
                "csi.storage.k8s.io/fstype": "xfs",
            },
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain",
            opts=self.k8s_opts(self),
        )

    def cold_storage_class(self) -> str:
        """st1 volumes (at least 125 GiB each), encrypted with the region's key, created on
        first request."""
        if self._cold_class is None:
            self._cold_class = self._ebs_class(COLD_STORAGE_CLASS, "st1")
        return COLD_STORAGE_CLASS

    def _create_bucket(self, purpose: str, lifecycle: Lifecycle) -> Bucket:
        n = f"{self.name}-bucket-{purpose}"
        name = self.physical_name(purpose)
        transitions = None
        if lifecycle.cold_after_days:
            transitions = [
                aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                    days=lifecycle.cold_after_days, storage_class="STANDARD_IA"
                )
            ]
        bucket, guards = self._s3_bucket(
            purpose,
            name,
            encryption=_SseDefault(sse_algorithm="aws:kms", kms_master_key_id=self.kms_key.arn),
            lifecycle_rule=aws.s3.BucketLifecycleConfigurationRuleArgs(
                id=f"rtdi-{purpose}",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=ABORT_MULTIPART_DAYS
                ),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=lifecycle.noncurrent_days
                ),
                transitions=transitions,
            ),
            extra_rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id=_rule_id(f"rtdi-{purpose}-expire-{prefix}"),
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                )
                for prefix, days in _expirations(lifecycle)
            ],
        )
        # Server access logs: who read or wrote which object, kept in the region's log bucket.
        guards.append(
            aws.s3.BucketLogging(
                n,
                aws.s3.BucketLoggingInitArgs(
                    bucket=bucket.id,
                    target_bucket=self.log_bucket.id,
                    target_prefix=f"{ACCESS_LOG_PREFIX}/{name}/",
                ),
                opts=self._opts(),
            )
        )
        return Bucket(
            purpose=purpose,
            scheme="s3",
            name=bucket.bucket,
            uri=bucket.bucket.apply(lambda b: f"s3://{b}"),
            resources=[bucket, *guards],
            cloud_region=self.region.name,
        )

    def _s3_bucket(
        self,
        purpose: str,
        name: str,
        encryption: _SseDefault,
        lifecycle_rule: aws.s3.BucketLifecycleConfigurationRuleArgs,
        extra_statements: pulumi.Output[list[dict]] | None = None,
        extra_rules: Sequence[aws.s3.BucketLifecycleConfigurationRuleArgs] = (),
    ) -> tuple[aws.s3.Bucket, list[pulumi.Resource]]:
        """A private, versioned, encrypted bucket that refuses plain HTTP, with its lifecycle."""
        n = f"{self.name}-bucket-{purpose}"
        opts = self._opts()
        bucket = aws.s3.Bucket(
            n, aws.s3.BucketArgs(bucket=name, tags={LABEL_PURPOSE: purpose}), opts=opts
        )
        extra = extra_statements if extra_statements is not None else pulumi.Output.from_input([])
        versioning = aws.s3.BucketVersioning(
            n,
            aws.s3.BucketVersioningInitArgs(
                bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                    status="Enabled"
                ),
            ),
            opts=opts,
        )
        guards: list[pulumi.Resource] = [
            aws.s3.BucketPublicAccessBlock(
                n,
                aws.s3.BucketPublicAccessBlockArgs(
                    bucket=bucket.id,
                    block_public_acls=True,
                    block_public_policy=True,
                    ignore_public_acls=True,
                    restrict_public_buckets=True,
                ),
                opts=opts,
            ),
            aws.s3.BucketOwnershipControls(
                n,
                aws.s3.BucketOwnershipControlsArgs(
                    bucket=bucket.id,
                    rule=aws.s3.BucketOwnershipControlsRuleArgs(
                        object_ownership="BucketOwnerEnforced"
                    ),
                ),
                opts=opts,
            ),
            aws.s3.BucketServerSideEncryptionConfiguration(
                n,
                aws.s3.BucketServerSideEncryptionConfigurationInitArgs(
                    bucket=bucket.id,
                    rules=[
                        aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                            apply_server_side_encryption_by_default=encryption,
                            bucket_key_enabled=True,
                        )
                    ],
                ),
                opts=opts,
            ),
            versioning,
            aws.s3.BucketPolicy(
                n,
                aws.s3.BucketPolicyArgs(
                    bucket=bucket.id,
                    policy=pulumi.Output.all(bucket.arn, extra).apply(
                        lambda a: json.dumps(
                            {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Sid": "DenyInsecureTransport",
                                        "Effect": "Deny",
                                        "Principal": "*",
                                        "Action": "s3:*",
                                        "Resource": [a[0], f"{a[0]}/*"],
                                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    },
                                    *a[1],
                                ],
                            }
                        )
                    ),
                ),
                opts=opts,
            ),
            aws.s3.BucketLifecycleConfiguration(
                n,
                aws.s3.BucketLifecycleConfigurationArgs(
                    bucket=bucket.id, rules=[lifecycle_rule, *extra_rules]
                ),
                opts=self._opts(depends_on=[versioning]),
            ),
        ]
        return bucket, guards

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
        role = self._irsa_role(
            f"{name}-irsa", name.removeprefix(f"{self.name}-"), namespace, service_account, parent
        )
        resources: list[pulumi.Resource] = [role]
        names = [b.name for b in (*buckets, *read_only)]
        # No bucket, no S3 policy: IAM refuses a statement whose Resource is empty
        # (MalformedPolicyDocument), so an identity for Kafka only (offset sync) has none.
        if names:
            policy = pulumi.Output.all(self.kms_key.arn, *names).apply(
                lambda a: json.dumps(
                    _bucket_policy(a[0], a[1 : 1 + len(buckets)], a[1 + len(buckets) :])
                )
            )
            resources.append(
                aws.iam.RolePolicy(
                    f"{name}-irsa",
                    aws.iam.RolePolicyArgs(role=role.id, policy=policy),
                    opts=pulumi.ResourceOptions(parent=parent, provider=self.provider),
                )
            )
        return WorkloadIdentity(
            service_account=service_account,
            namespace=namespace,
            # EKS's pod identity webhook injects AWS_ROLE_ARN, the token file and AWS_REGION itself.
            annotations={"eks.amazonaws.com/role-arn": role.arn},
            grantee=role.id,  # the role's name, as RolePolicy takes it
            resources=resources,
        )


def _bucket_policy(key_arn: str, writes: Sequence[str], reads: Sequence[str]) -> dict:
    """An identity's S3 rights: list every bucket; read and write the objects of ``writes``;
    only read those of ``reads``; decrypt with the region's key, and encrypt only to write."""
    objects = [
        (
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            writes,
        ),
        (["s3:GetObject"], reads),
    ]
    statements: list[dict] = [
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [f"arn:aws:s3:::{b}" for b in (*writes, *reads)],
        },
        *(
            {"Effect": "Allow", "Action": actions, "Resource": [f"arn:aws:s3:::{b}/*" for b in on]}
            for actions, on in objects
            if on
        ),
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"] if writes else ["kms:Decrypt"],
            "Resource": [key_arn],
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def _iam_name(raw: str) -> str:
    """An IAM role name (at most 64 characters), hashed when too long so that two long names
    sharing a prefix (two Flink jobs) never become one role."""
    if len(raw) <= 64:
        return raw
    return f"{raw[:57].rstrip('-')}-{hashlib.sha256(raw.encode()).hexdigest()[:6]}"


def _kubeconfig(endpoint: str, ca_data: str, cluster_name: str, region: str) -> str:
    token = ["eks", "get-token", "--cluster-name", cluster_name, "--region", region]
    return exec_kubeconfig(
        cluster_name, endpoint, ca_data, {"command": "aws", "args": [*token, "--output", "json"]}
    )


# S3 takes at most 1,000 rules in a bucket's lifecycle configuration, each id at most 255
# characters (PutBucketLifecycleConfiguration); one rule is the purpose's own.
S3_MAX_LIFECYCLE_RULES = 1000
S3_MAX_RULE_ID = 255


def _expirations(lifecycle: Lifecycle) -> tuple[tuple[str, int], ...]:
    """The per-prefix expirations, refused in words when S3 would refuse the configuration."""
    if len(lifecycle.expirations) + 1 > S3_MAX_LIFECYCLE_RULES:
        raise ConfigError(
            [
                Issue(
                    "rtdi:kafka",
                    "dataClasses.archiveRetentionDays",
                    f"{len(lifecycle.expirations)} archived topics with a retention need as many "
                    f"S3 lifecycle rules; allowed: at most {S3_MAX_LIFECYCLE_RULES - 1} (S3 takes "
                    f"{S3_MAX_LIFECYCLE_RULES} rules per bucket)",
                )
            ]
        )
    return lifecycle.expirations


def _rule_id(text: str) -> str:
    """A lifecycle rule id within S3's length; a long one ends in a hash of the whole."""
    if len(text) <= S3_MAX_RULE_ID:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: S3_MAX_RULE_ID - 17]}-{digest}"
