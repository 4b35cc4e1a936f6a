"""The AWS target as declared: explicit providers, private EKS, zonal node groups, S3, IRSA."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pytest

from infra import versions
from infra.plan.mocks import ACCOUNT
from infra.targets.aws import EKS_LOG_TYPES, LOG_RETENTION_DAYS
from infra.targets.base import ABORT_MULTIPART_DAYS, BUCKET_PURPOSES, LABEL_PURPOSE, ZONE_LABEL
from plantools import (
    GRANTED,
    NAMESPACE_WL,
    S3_READ_WRITE,
    SERVICE_ACCOUNT,
    WORKLOAD,
    amend,
    assert_explicit_providers,
    assert_k8s_on_region_provider,
    assert_named_after_region,
    assert_owned_by_region,
    kubeconfig_of,
    mock_id,
    mock_output,
    one,
    provider_of,
    run_program,
    s3_rights,
    sample_config,
    target_only,
    workload,
)

CREATE, EXISTING = (
    "aws-us-east-1",
    "aws-eu-west-1",
)  # the samples: a new VPC, and the network team's VPC
AWS = [CREATE, EXISTING]
S3 = "aws:s3/"


@pytest.fixture(scope="module")
def workload_plan(topology):
    """The target plus every bucket purpose and one workload identity (IRSA) on a ServiceAccount."""
    return run_program(sample_config(CREATE), workload, topology)


@pytest.fixture(scope="module")
def public_plan(topology):
    cfg = amend(
        sample_config(CREATE),
        "kubernetes",
        {"publicAccessCidrs": ["203.0.113.0/24", "198.51.100.7/32"]},
    )
    return run_program(cfg, target_only, topology)


def _zones(topology, stack):
    return topology.region(stack).zones


# -------------------------------------------------------------------------- providers and ownership


@pytest.mark.parametrize("stack", AWS)
def test_every_aws_resource_uses_the_region_provider(plans, topology, stack):
    plan = plans[stack]
    region = topology.region(stack)
    assert assert_explicit_providers(plan, "aws", {"region": region.name}, stack) >= 20
    (provider,) = plan.of_type("pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"])["tags"] == {
        "rtdi-region": stack,
        "rtdi-jurisdiction": region.jurisdiction,
    }


def test_workload_resources_use_the_region_provider(workload_plan, topology):
    assert (
        assert_explicit_providers(
            workload_plan, "aws", {"region": topology.region(CREATE).name}, CREATE
        )
        >= 30
    )


@pytest.mark.parametrize("stack", AWS)
def test_target_resources_sit_under_the_region(target_plans, stack):
    assert_owned_by_region(target_plans[stack], stack)


@pytest.mark.parametrize("stack", AWS)
def test_every_resource_of_the_stack_is_named_after_the_region(plans, stack):
    assert_named_after_region(plans[stack], stack)


def test_workload_resources_sit_under_the_asking_component(workload_plan):
    assert_owned_by_region(workload_plan, CREATE, owners=[f"{CREATE}-{WORKLOAD}"])
    owner = one(workload_plan, "test:index:Workload").urn
    iam = [
        r
        for r in workload_plan.resources
        if r.type in ("aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy")
        and r.name.startswith(f"{CREATE}-{WORKLOAD}")
    ]
    assert sorted(r.type for r in iam) == ["aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"]
    assert all(r.parent == owner for r in iam), "deleted with the component that asked for them"


@pytest.mark.parametrize("stack", AWS)
def test_kubernetes_resources_use_the_eks_provider(plans, stack):
    plan = plans[stack]
    assert_k8s_on_region_provider(plan, stack)
    # The SSD class; the Pinot layer asks for a cold one too (test_pinot_layer.py).
    sc = one(plan, "kubernetes:storage.k8s.io/v1:StorageClass", f"{stack}-rtdi-ssd")
    kubeconfig = kubeconfig_of(plan, sc)
    cluster = one(plan, "aws:eks/cluster:Cluster")
    assert kubeconfig["current-context"] == cluster.inputs["name"]
    assert kubeconfig["clusters"][0]["cluster"]["server"] == mock_output(cluster, "endpoint")
    user = kubeconfig["users"][0]["user"]["exec"]
    assert user["command"] == "aws"
    assert user["args"][:4] == ["eks", "get-token", "--cluster-name", cluster.inputs["name"]]
    assert user["args"][user["args"].index("--region") + 1] == stack.removeprefix("aws-")


@pytest.mark.parametrize("stack", AWS)
def test_storage_class_is_zonal_encrypted_gp3(target_plans, stack):
    plan = target_plans[stack]
    sc = one(plan, "kubernetes:storage.k8s.io/v1:StorageClass").inputs
    key = one(plan, "aws:kms/key:Key")
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["parameters"]["encrypted"] == "true" and sc["parameters"]["kmsKeyId"] == mock_output(
        key, "arn"
    )
    assert sc["reclaimPolicy"] == "Retain"


# --------------------------------------------------------------------------- EKS


@pytest.mark.parametrize("stack", AWS)
def test_eks_endpoint_is_private_by_default(target_plans, stack):
    vpc = one(target_plans[stack], "aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert not vpc.get("publicAccessCidrs")


def test_eks_endpoint_is_public_only_to_the_configured_cidrs(public_plan):
    vpc = one(public_plan, "aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert vpc["endpointPrivateAccess"] is True


@pytest.mark.parametrize("stack", AWS)
def test_eks_cluster_encrypts_secrets_and_pins_its_version(target_plans, stack):
    plan = target_plans[stack]
    cluster = one(plan, "aws:eks/cluster:Cluster").inputs
    assert cluster["version"] == versions.EKS_VERSION
    assert cluster["encryptionConfig"] == {
        "provider": {"keyArn": mock_output(one(plan, "aws:kms/key:Key"), "arn")},
        "resources": ["secrets"],
    }
    assert cluster["name"] == plan.outputs["kubernetesCluster"] == f"acme-rtdi-{stack}"
    assert one(plan, "aws:kms/key:Key").inputs["enableKeyRotation"] is True


@pytest.mark.parametrize("stack", AWS)
def test_one_node_group_per_zone_pinned_to_its_subnet(target_plans, topology, stack):
    plan = target_plans[stack]
    zones = _zones(topology, stack)
    subnets = _private_subnets(plan, stack, zones)
    groups = {
        g.inputs["nodeGroupName"]: g.inputs for g in plan.of_type("aws:eks/nodeGroup:NodeGroup")
    }
    assert sorted(groups) == sorted(zones)
    spec = json.loads(sample_config(stack).values["rtdi:kubernetes"])
    for zone, g in groups.items():
        assert g["subnetIds"] == [subnets[zone]], (
            f"node group {zone} must live in {zone}'s subnet only"
        )
        assert g["labels"] == {ZONE_LABEL: zone}
        assert g["scalingConfig"] == {
            "minSize": spec["nodesPerZone"],
            "desiredSize": spec["nodesPerZone"],
            "maxSize": spec["maxNodesPerZone"],
        }
    cluster = one(plan, "aws:eks/cluster:Cluster").inputs
    assert cluster["vpcConfig"]["subnetIds"] == [subnets[z] for z in zones]


def _private_subnets(plan, stack, zones) -> dict[str, str]:
    """zone -> the subnet id the plan hands EKS: the configured one or the one it creates."""
    net = json.loads(sample_config(stack).values["rtdi:network"])
    if net.get("mode") == "existing":
        return net["privateSubnetIds"]
    return {
        z: mock_id(one(plan, "aws:ec2/subnet:Subnet", f"{stack}-vpc-private-{z}")) for z in zones
    }


@pytest.mark.parametrize("stack", AWS)
def test_eks_addons_are_pinned_in_versions(target_plans, stack):
    plan = target_plans[stack]
    addons = {a.inputs["addonName"]: a.inputs for a in plan.of_type("aws:eks/addon:Addon")}
    assert {name: a["addonVersion"] for name, a in addons.items()} == versions.EKS_ADDONS
    ebs_role = one(plan, "aws:iam/role:Role", f"{stack}-eks-ebs-csi")
    assert addons["aws-ebs-csi-driver"]["serviceAccountRoleArn"] == mock_output(ebs_role, "arn")
    trust = json.loads(ebs_role.inputs["assumeRolePolicy"])["Statement"][0]
    assert (
        "system:serviceaccount:kube-system:ebs-csi-controller-sa"
        in trust["Condition"]["StringEquals"].values()
    )


# --------------------------------------------------------------------------- network


def test_created_vpc_has_a_private_and_a_public_subnet_per_zone(target_plans, topology):
    plan = target_plans[CREATE]
    zones = _zones(topology, CREATE)
    vpc = one(plan, "aws:ec2/vpc:Vpc")
    cidr = IPv4Network(json.loads(sample_config(CREATE).values["rtdi:network"])["cidr"])
    assert vpc.inputs["cidrBlock"] == str(cidr)
    subnets = plan.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 2 * len(zones)
    ranges = [IPv4Network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(r.subnet_of(cidr) for r in ranges)
    assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])
    for s in subnets:
        assert s.inputs["vpcId"] == mock_id(vpc)
    for zone in zones:
        private = one(plan, "aws:ec2/subnet:Subnet", f"{CREATE}-vpc-private-{zone}")
        public = one(plan, "aws:ec2/subnet:Subnet", f"{CREATE}-vpc-public-{zone}")
        assert private.inputs["availabilityZone"] == zone == public.inputs["availabilityZone"]
        assert private.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
        # Each zone leaves through its own NAT gateway, in its own public subnet.
        nat = one(plan, "aws:ec2/natGateway:NatGateway", f"{CREATE}-vpc-nat-{zone}")
        assert nat.inputs["subnetId"] == mock_id(public)
        rt = one(plan, "aws:ec2/routeTable:RouteTable", f"{CREATE}-vpc-private-{zone}")
        assert rt.inputs["routes"] == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": mock_id(nat)}]
        assoc = one(
            plan,
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
            f"{CREATE}-vpc-private-{zone}",
        )
        assert assoc.inputs == {"subnetId": mock_id(private), "routeTableId": mock_id(rt)}
    endpoint = one(plan, "aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    assert (
        endpoint["serviceName"] == "com.amazonaws.us-east-1.s3"
        and endpoint["vpcEndpointType"] == "Gateway"
    )
    assert sorted(endpoint["routeTableIds"]) == sorted(
        mock_id(one(plan, "aws:ec2/routeTable:RouteTable", f"{CREATE}-vpc-private-{z}"))
        for z in zones
    )


def test_existing_vpc_creates_no_network(target_plans, plans):
    net = json.loads(sample_config(EXISTING).values["rtdi:network"])
    target = target_plans[EXISTING]
    # The one network resource: the region's own flow log on the network team's VPC.
    assert [r.type for r in target.resources if r.type.startswith("aws:ec2/")] == [
        "aws:ec2/flowLog:FlowLog"
    ]
    cluster = one(target, "aws:eks/cluster:Cluster").inputs
    assert sorted(cluster["vpcConfig"]["subnetIds"]) == sorted(net["privateSubnetIds"].values())
    # Nothing else in the stack builds network either, and whatever names a VPC names the configured
    # one.
    network_types = {
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/eip:Eip",
    }
    assert [r.name for r in plans[EXISTING].resources if r.type in network_types] == []
    vpc_ids = {r.inputs["vpcId"] for r in plans[EXISTING].resources if "vpcId" in r.inputs}
    assert vpc_ids <= {net["vpcId"]}
    subnet_ids = {s for r in plans[EXISTING].resources for s in r.inputs.get("subnetIds", []) or []}
    assert subnet_ids <= set(net["privateSubnetIds"].values())


# --------------------------------------------------------------------------- S3


def _s3_bucket_checks(plan, topology, stack, purpose):
    n = f"{stack}-bucket-{purpose}"
    bucket = one(plan, "aws:s3/bucket:Bucket", n)
    assert bucket.inputs["bucket"] == f"{topology.name}-{stack}-{purpose}"
    assert bucket.inputs["tags"] == {LABEL_PURPOSE: purpose}
    bucket_id = mock_id(bucket)
    key_arn = mock_output(one(plan, "aws:kms/key:Key"), "arn")
    guards = {
        r.type: r.inputs
        for r in plan.resources
        if r.name == n and r.type.startswith(S3) and r.type != bucket.type
    }
    assert all(g["bucket"] == bucket_id for g in guards.values()), (
        "every guard applies to this bucket"
    )

    block = guards["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"]
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    (sse,) = guards[
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ]["rules"]
    assert sse["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key_arn,
    }
    assert guards["aws:s3/bucketVersioning:BucketVersioning"]["versioningConfiguration"] == {
        "status": "Enabled"
    }
    assert guards["aws:s3/bucketOwnershipControls:BucketOwnershipControls"]["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"
    }
    (deny,) = json.loads(guards["aws:s3/bucketPolicy:BucketPolicy"]["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }

    logging = guards["aws:s3/bucketLogging:BucketLogging"]
    assert logging["targetBucket"] == mock_id(
        one(plan, "aws:s3/bucket:Bucket", f"{stack}-bucket-logs")
    )
    assert logging["targetPrefix"] == f"s3-access/{topology.name}-{stack}-{purpose}/"

    lifecycle = BUCKET_PURPOSES[purpose]
    (rule,) = guards["aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"]["rules"]
    assert rule["status"] == "Enabled"
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": lifecycle.noncurrent_days}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": ABORT_MULTIPART_DAYS}
    if lifecycle.cold_after_days:
        assert rule["transitions"] == [
            {"days": lifecycle.cold_after_days, "storageClass": "STANDARD_IA"}
        ]
    else:
        assert not rule.get("transitions")


@pytest.mark.parametrize("stack", AWS)
def test_archive_bucket_is_private_encrypted_versioned(target_plans, topology, stack):
    _s3_bucket_checks(target_plans[stack], topology, stack, "archive")
    assert target_plans[stack].outputs["archive"] == f"s3://{topology.name}-{stack}-archive"


@pytest.mark.parametrize("purpose", sorted(BUCKET_PURPOSES))
def test_every_bucket_purpose_is_private_encrypted_versioned(workload_plan, topology, purpose):
    _s3_bucket_checks(workload_plan, topology, CREATE, purpose)


# --------------------------------------------------------------------------- IRSA


def test_irsa_role_trusts_exactly_one_service_account(workload_plan):
    plan = workload_plan
    role = one(plan, "aws:iam/role:Role", f"{CREATE}-{WORKLOAD}-irsa")
    oidc = one(plan, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    issuer = oidc.inputs["url"].removeprefix("https://")
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Federated": mock_output(oidc, "arn")}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": f"system:serviceaccount:{NAMESPACE_WL}:{SERVICE_ACCOUNT}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }
    assert provider_of(plan, role).inputs["region"] == "us-east-1"


def test_irsa_policy_grants_only_the_requested_buckets(workload_plan):
    plan = workload_plan
    role = one(plan, "aws:iam/role:Role", f"{CREATE}-{WORKLOAD}-irsa")
    policy = one(plan, "aws:iam/rolePolicy:RolePolicy", f"{CREATE}-{WORKLOAD}-irsa")
    assert policy.inputs["role"] == mock_id(role)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    names = [
        one(plan, "aws:s3/bucket:Bucket", f"{CREATE}-bucket-{p}").inputs["bucket"] for p in GRANTED
    ]
    resources = [res for s in statements for res in s["Resource"]]
    assert {f"arn:aws:s3:::{n}" for n in names} | {f"arn:aws:s3:::{n}/*" for n in names} <= set(
        resources
    )
    others = [p for p in BUCKET_PURPOSES if p not in GRANTED]
    assert not any(f"-{p}" in res for p in others for res in resources), (
        "no access to buckets it did not ask for"
    )
    assert mock_output(one(plan, "aws:kms/key:Key"), "arn") in resources


def test_service_account_is_annotated_with_the_role(workload_plan):
    plan = workload_plan
    sa = one(plan, "kubernetes:core/v1:ServiceAccount").inputs["metadata"]
    role = one(plan, "aws:iam/role:Role", f"{CREATE}-{WORKLOAD}-irsa")
    assert sa == {
        "name": SERVICE_ACCOUNT,
        "namespace": NAMESPACE_WL,
        "annotations": {"eks.amazonaws.com/role-arn": mock_output(role, "arn")},
    }
    env = {e["name"] for e in plan.outputs["identity"]["env"]}
    assert not env & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}, (
        "IRSA: no static credentials"
    )


# --------------------------------------------------------------------------- posture


def _statements(policy: str) -> dict[str, dict]:
    return {st["Sid"]: st for st in json.loads(policy)["Statement"]}


def _no_open_allow(statements) -> None:
    """No Allow statement names every principal."""
    for st in statements:
        if st["Effect"] == "Allow":
            assert st["Principal"] != "*" and "*" not in st["Principal"].values(), st


@pytest.mark.parametrize("stack", AWS)
def test_vpc_cni_enforces_network_policies(target_plans, stack):
    addons = {
        a.inputs["addonName"]: a.inputs for a in target_plans[stack].of_type("aws:eks/addon:Addon")
    }
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}
    assert [n for n, a in addons.items() if a.get("configurationValues")] == ["vpc-cni"]


@pytest.mark.parametrize("stack", AWS)
def test_eks_logs_every_control_plane_type_encrypted_with_retention(target_plans, stack):
    plan = target_plans[stack]
    cluster = one(plan, "aws:eks/cluster:Cluster")
    assert cluster.inputs["enabledClusterLogTypes"] == EKS_LOG_TYPES
    assert set(EKS_LOG_TYPES) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    group = one(plan, "aws:cloudwatch/logGroup:LogGroup", f"{stack}-eks-logs").inputs
    assert group["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
    assert group["retentionInDays"] == LOG_RETENTION_DAYS
    assert group["kmsKeyId"] == mock_output(one(plan, "aws:kms/key:Key"), "arn")


@pytest.mark.parametrize("stack", AWS)
def test_flow_log_records_the_vpc_into_the_log_bucket(target_plans, stack):
    plan = target_plans[stack]
    (flow,) = plan.of_type("aws:ec2/flowLog:FlowLog")
    if stack == CREATE:
        vpc_id = mock_id(one(plan, "aws:ec2/vpc:Vpc"))
    else:
        vpc_id = json.loads(sample_config(stack).values["rtdi:network"])["vpcId"]
    log_bucket = one(plan, "aws:s3/bucket:Bucket", f"{stack}-bucket-logs")
    assert flow.inputs["vpcId"] == vpc_id
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestinationType"] == "s3"
    assert flow.inputs["logDestination"] == f"{mock_output(log_bucket, 'arn')}/vpc-flow-logs/"


@pytest.mark.parametrize("stack", AWS)
def test_log_bucket_is_private_versioned_sse_s3_and_takes_only_log_delivery(
    target_plans, topology, stack
):
    plan = target_plans[stack]
    n = f"{stack}-bucket-logs"
    bucket = one(plan, "aws:s3/bucket:Bucket", n)
    name = f"{topology.name}-{stack}-logs"
    assert bucket.inputs["bucket"] == name and bucket.inputs["tags"] == {LABEL_PURPOSE: "logs"}
    guards = {r.type: r.inputs for r in plan.resources if r.name == n and r.type != bucket.type}
    assert all(g["bucket"] == mock_id(bucket) for g in guards.values())
    block = guards["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"]
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy"))
    assert all(block[k] is True for k in ("ignorePublicAcls", "restrictPublicBuckets"))
    (sse,) = guards[
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ]["rules"]
    # Server access log delivery writes only into an SSE-S3 bucket.
    assert sse["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    assert guards["aws:s3/bucketVersioning:BucketVersioning"]["versioningConfiguration"] == {
        "status": "Enabled"
    }
    (rule,) = guards["aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"]["rules"]
    assert rule["expiration"] == {"days": LOG_RETENTION_DAYS}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": ABORT_MULTIPART_DAYS}
    # A log bucket does not log into itself.
    assert "aws:s3/bucketLogging:BucketLogging" not in guards
    statements = _statements(guards["aws:s3/bucketPolicy:BucketPolicy"]["policy"])
    _no_open_allow(statements.values())
    assert statements["DenyInsecureTransport"]["Effect"] == "Deny"
    access = statements["S3ServerAccessLogs"]
    assert access["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert access["Resource"] == f"arn:aws:s3:::{name}/s3-access/*"
    assert access["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert access["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:s3:::{topology.name}-{stack}-*"
    }
    flow = statements["VpcFlowLogsWrite"]
    assert flow["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert flow["Resource"] == f"arn:aws:s3:::{name}/vpc-flow-logs/AWSLogs/{ACCOUNT}/*"
    assert flow["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    assert statements["VpcFlowLogsAclCheck"]["Action"] == "s3:GetBucketAcl"


def test_every_data_bucket_and_only_those_log_to_the_log_bucket(workload_plan):
    plan = workload_plan
    data = [b for b in plan.of_type("aws:s3/bucket:Bucket") if b.name != f"{CREATE}-bucket-logs"]
    logging = plan.of_type("aws:s3/bucketLogging:BucketLogging")
    assert sorted(g.inputs["bucket"] for g in logging) == sorted(mock_id(b) for b in data)
    assert len(data) == len(BUCKET_PURPOSES)


def _key_policy_checks(plan, stack, account):
    key = one(plan, "aws:kms/key:Key")
    statements = _statements(key.inputs["policy"])
    _no_open_allow(statements.values())
    root = f"arn:aws:iam::{account}:root"
    admin = statements["AccountAdministers"]
    assert admin["Principal"] == {"AWS": root} and admin["Action"] == "kms:*"
    cluster_role = one(plan, "aws:iam/role:Role", f"{stack}-eks")
    eks = statements["EksSecretsEncryption"]
    # The role's own ARN, as the cloud returns it (the mocks answer with their own account).
    assert eks["Principal"] == {"AWS": mock_output(cluster_role, "arn")}
    assert {"kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"} <= set(eks["Action"])
    csi_role = one(plan, "aws:iam/role:Role", f"{stack}-eks-ebs-csi")
    ebs = statements["EbsVolumesViaCsiRole"]
    assert ebs["Principal"] == {"AWS": root}
    assert ebs["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": mock_output(csi_role, "arn").replace(ACCOUNT, account)}
    }
    region = key_region(plan)
    services = statements["ServicesForThisAccount"]["Condition"]["StringEquals"]
    assert services["kms:CallerAccount"] == account
    assert sorted(services["kms:ViaService"]) == sorted(
        f"{s}.{region}.amazonaws.com" for s in ("s3", "kafka", "secretsmanager", "ec2")
    )
    logs = statements["CloudWatchLogs"]
    assert logs["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
    assert logs["Condition"]["ArnLike"] == {
        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account}:log-group:*"
    }


def key_region(plan) -> str:
    (provider,) = plan.of_type("pulumi:providers:aws")
    return provider.inputs["region"]


@pytest.mark.parametrize("stack", AWS)
def test_kms_key_policy_names_who_uses_the_key(target_plans, stack):
    _key_policy_checks(target_plans[stack], stack, ACCOUNT)


def test_kms_key_policy_uses_the_configured_account_without_asking(topology):
    cfg = sample_config(CREATE)
    cfg.values["rtdi:awsAccountId"] = "123456789012"
    plan = run_program(cfg, target_only, topology)
    _key_policy_checks(plan, CREATE, "123456789012")


def test_ebs_csi_role_may_use_the_region_key(target_plans):
    plan = target_plans[CREATE]
    key_arn = mock_output(one(plan, "aws:kms/key:Key"), "arn")
    policy = one(plan, "aws:iam/rolePolicy:RolePolicy", f"{CREATE}-eks-ebs-csi-kms").inputs
    assert policy["role"] == mock_id(one(plan, "aws:iam/role:Role", f"{CREATE}-eks-ebs-csi"))
    (st,) = json.loads(policy["policy"])["Statement"]
    assert st["Resource"] == [key_arn] and "kms:CreateGrant" in st["Action"]


def test_each_workload_reaches_only_the_buckets_it_uses(plans):
    """Least privilege by what each workload does: a stream job keeps to its state, only the
    archive job writes the archive, the query engine only reads it."""
    plan = plans[CREATE]
    rw = S3_READ_WRITE
    assert s3_rights(plan, CREATE, "flink-surge-pricing") == {"flink-state": rw}
    assert s3_rights(plan, CREATE, "flink-payments") == {"flink-state": rw}
    assert s3_rights(plan, CREATE, "flink-archive") == {"flink-state": rw, "archive": rw}
    assert s3_rights(plan, CREATE, "query-engine") == {"archive": {"s3:GetObject"}}
    engine = one(plan, "aws:iam/rolePolicy:RolePolicy", f"{CREATE}-query-engine-irsa")
    kms = [
        s for s in json.loads(engine.inputs["policy"])["Statement"] if "kms:Decrypt" in s["Action"]
    ]
    assert [s["Action"] for s in kms] == [["kms:Decrypt"]]  # it never encrypts: it never writes


@pytest.mark.parametrize("stack", AWS)
def test_no_iam_statement_has_an_empty_resource(plans, stack):
    """IAM refuses such a document (MalformedPolicyDocument): an identity without buckets (the
    offset sync's, for Kafka only) gets no S3 policy at all."""
    for policy in plans[stack].of_type("aws:iam/rolePolicy:RolePolicy"):
        for s in json.loads(policy.inputs["policy"])["Statement"]:
            assert s.get("Resource"), (policy.name, s)
    names = {p.name for p in plans[stack].of_type("aws:iam/rolePolicy:RolePolicy")}
    assert f"{stack}-offset-sync-irsa" not in names
