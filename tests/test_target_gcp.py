"""The GCP target: explicit provider, private regional GKE, CMEK GCS, Workload Identity."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pytest

from infra import versions
from infra.plan.mocks import PROJECT_NUMBER
from infra.targets.base import ABORT_MULTIPART_DAYS, BUCKET_PURPOSES, LABEL_PURPOSE
from infra.targets.gcp import GKE_LOG_COMPONENTS, LOG_RETENTION_DAYS, account_id
from plantools import (
    GRANTED,
    NAMESPACE_WL,
    SERVICE_ACCOUNT,
    WORKLOAD,
    assert_explicit_providers,
    assert_k8s_on_region_provider,
    assert_named_after_region,
    assert_owned_by_region,
    kubeconfig_of,
    mock_id,
    mock_output,
    one,
    run_program,
    sample_config,
    target_only,
    workload,
)

STACK = "gcp-europe-west4"
PROJECT = "acme-rtdi-prod"
REGION = "europe-west4"
EXISTING_NETWORK = {
    "mode": "existing",
    "network": "projects/acme-net/global/networks/shared",
    "subnetwork": "projects/acme-net/regions/europe-west4/subnetworks/rtdi",
    "podsRangeName": "rtdi-pods",
    "servicesRangeName": "rtdi-services",
}


@pytest.fixture(scope="module")
def plan(target_plans):
    """The region's target alone; whole-stack invariants are asserted on `plans[STACK]`."""
    return target_plans[STACK]


@pytest.fixture(scope="module")
def workload_plan(topology):
    return run_program(sample_config(STACK), workload, topology)


@pytest.fixture(scope="module")
def existing_network_plan(topology):
    cfg = sample_config(STACK)
    cfg.values["rtdi:network"] = json.dumps(EXISTING_NETWORK)
    return run_program(cfg, target_only, topology)


def spec():
    return json.loads(sample_config(STACK).values["rtdi:kubernetes"])


# -------------------------------------------------------------------------- providers and ownership


def test_sample_project_and_region():
    values = sample_config(STACK).values
    assert values["rtdi:gcpProject"] == PROJECT and values["rtdi:region"] == f"gcp-{REGION}"


def test_every_gcp_resource_uses_the_region_provider(plans, topology):
    full = plans[STACK]
    assert (
        assert_explicit_providers(full, "gcp", {"project": PROJECT, "region": REGION}, STACK) >= 15
    )
    (provider,) = full.of_type("pulumi:providers:gcp")
    assert json.loads(provider.inputs["defaultLabels"]) == {
        "rtdi-region": STACK,
        "rtdi-jurisdiction": topology.region(STACK).jurisdiction,
    }


def test_workload_resources_use_the_region_provider(workload_plan):
    assert (
        assert_explicit_providers(
            workload_plan, "gcp", {"project": PROJECT, "region": REGION}, STACK
        )
        >= 20
    )


def test_target_resources_sit_under_the_region(plan):
    assert_owned_by_region(plan, STACK)


def test_every_resource_of_the_stack_is_named_after_the_region(plans):
    assert_named_after_region(plans[STACK], STACK)


def test_workload_resources_sit_under_the_asking_component(workload_plan):
    assert_owned_by_region(workload_plan, STACK, owners=[f"{STACK}-{WORKLOAD}"])


def test_kubernetes_resources_use_the_gke_provider(plans, plan):
    assert_k8s_on_region_provider(plans[STACK], STACK)
    sc = one(plan, "kubernetes:storage.k8s.io/v1:StorageClass")
    kubeconfig = kubeconfig_of(plan, sc)
    cluster = one(plan, "gcp:container/cluster:Cluster")
    assert kubeconfig["current-context"] == cluster.inputs["name"]
    assert (
        kubeconfig["clusters"][0]["cluster"]["server"]
        == f"https://{mock_output(cluster, 'endpoint')}"
    )
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"


def test_storage_class_is_zonal_cmek_pd_ssd(plan):
    sc = one(plan, "kubernetes:storage.k8s.io/v1:StorageClass").inputs
    assert sc["provisioner"] == "pd.csi.storage.gke.io"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["parameters"] == {
        "type": "pd-ssd",
        "disk-encryption-kms-key": mock_id(one(plan, "gcp:kms/cryptoKey:CryptoKey")),
    }


# --------------------------------------------------------------------------- GKE


def test_gke_nodes_and_endpoint_are_private(plan):
    cluster = one(plan, "gcp:container/cluster:Cluster").inputs
    private = cluster["privateClusterConfig"]
    assert private["enablePrivateNodes"] is True and private["enablePrivateEndpoint"] is True
    assert IPv4Network(private["masterIpv4CidrBlock"]).prefixlen == 28
    authorized = [c["cidrBlock"] for c in cluster["masterAuthorizedNetworksConfig"]["cidrBlocks"]]
    assert authorized == spec()["authorizedCidrs"]


def test_gke_spans_exactly_the_region_zones(plan, topology):
    zones = topology.region(STACK).zones
    cluster = one(plan, "gcp:container/cluster:Cluster").inputs
    assert cluster["location"] == REGION, "a regional cluster: control plane in every zone"
    assert cluster["nodeLocations"] == zones
    pool = one(plan, "gcp:container/nodePool:NodePool").inputs
    assert pool["nodeLocations"] == zones
    assert pool["cluster"] == mock_id(one(plan, "gcp:container/cluster:Cluster"))
    assert pool["nodeCount"] == spec()["nodesPerZone"]
    assert pool["autoscaling"] == {
        "minNodeCount": spec()["nodesPerZone"],
        "maxNodeCount": spec()["maxNodesPerZone"],
    }
    assert pool["nodeConfig"]["machineType"] == spec()["machineType"]


def test_gke_workload_identity_pool_and_metadata_server(plan):
    cluster = one(plan, "gcp:container/cluster:Cluster").inputs
    assert cluster["workloadIdentityConfig"] == {"workloadPool": f"{PROJECT}.svc.id.goog"}
    node = one(plan, "gcp:container/nodePool:NodePool").inputs["nodeConfig"]
    assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert node["serviceAccount"] == mock_output(
        one(plan, "gcp:serviceaccount/account:Account"), "email"
    )


def test_gke_encrypts_secrets_and_disks_with_the_region_key(plan):
    key_id = mock_id(one(plan, "gcp:kms/cryptoKey:CryptoKey"))
    cluster = one(plan, "gcp:container/cluster:Cluster").inputs
    assert cluster["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": key_id}
    assert (
        one(plan, "gcp:container/nodePool:NodePool").inputs["nodeConfig"]["bootDiskKmsKey"]
        == key_id
    )
    assert cluster["minMasterVersion"] == versions.GKE_VERSION
    assert cluster["releaseChannel"] == {"channel": versions.GKE_RELEASE_CHANNEL}


def test_google_service_agents_may_use_the_key(plan):
    key_id = mock_id(one(plan, "gcp:kms/cryptoKey:CryptoKey"))
    grants = {
        g.inputs["member"]: g.inputs
        for g in plan.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    }
    assert {
        f"serviceAccount:service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com",
        f"serviceAccount:service-{PROJECT_NUMBER}@compute-system.iam.gserviceaccount.com",
    } <= set(grants), "GCS and Compute Engine must be able to use the key for buckets and disks"
    assert all(m.startswith(f"serviceAccount:service-{PROJECT_NUMBER}@") for m in grants), (
        "only Google service agents"
    )
    assert all(
        g["cryptoKeyId"] == key_id and g["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        for g in grants.values()
    )


# --------------------------------------------------------------------------- network


def test_created_network_is_vpc_native(plan):
    net = json.loads(sample_config(STACK).values["rtdi:network"])
    network = one(plan, "gcp:compute/network:Network")
    assert network.inputs["autoCreateSubnetworks"] is False
    subnet = one(plan, "gcp:compute/subnetwork:Subnetwork")
    assert subnet.inputs["network"] == mock_id(network)
    assert subnet.inputs["region"] == REGION
    assert subnet.inputs["ipCidrRange"] == net["cidr"]
    assert subnet.inputs["privateIpGoogleAccess"] is True
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet.inputs["secondaryIpRanges"]}
    assert ranges == {"pods": net["podsCidr"], "services": net["servicesCidr"]}
    cluster = one(plan, "gcp:container/cluster:Cluster").inputs
    assert cluster["network"] == mock_id(network) and cluster["subnetwork"] == mock_id(subnet)
    assert cluster["ipAllocationPolicy"] == {
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    }
    assert one(plan, "gcp:compute/routerNat:RouterNat").inputs["region"] == REGION
    # Flow logs: every subnetwork rtdi creates records its flows.
    assert subnet.inputs["logConfig"]["flowSampling"] > 0
    assert subnet.inputs["logConfig"]["aggregationInterval"] == "INTERVAL_5_SEC"


def test_existing_network_creates_none_and_uses_the_configured_names(existing_network_plan):
    plan = existing_network_plan
    assert [r.type for r in plan.resources if r.type.startswith("gcp:compute/")] == []
    cluster = one(plan, "gcp:container/cluster:Cluster").inputs
    assert cluster["network"] == EXISTING_NETWORK["network"]
    assert cluster["subnetwork"] == EXISTING_NETWORK["subnetwork"]
    assert cluster["ipAllocationPolicy"] == {
        "clusterSecondaryRangeName": "rtdi-pods",
        "servicesSecondaryRangeName": "rtdi-services",
    }


# --------------------------------------------------------------------------- GCS


def _gcs_bucket_checks(plan, topology, purpose):
    bucket = one(plan, "gcp:storage/bucket:Bucket", f"{STACK}-bucket-{purpose}").inputs
    assert bucket["name"] == f"{topology.name}-{STACK}-{purpose}"
    assert bucket["location"] == REGION.upper()
    assert bucket["labels"] == {LABEL_PURPOSE: purpose}
    assert bucket["encryption"] == {
        "defaultKmsKeyName": mock_id(one(plan, "gcp:kms/cryptoKey:CryptoKey"))
    }
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["versioning"] == {"enabled": True}
    lifecycle = BUCKET_PURPOSES[purpose]
    rules = {r["action"]["type"]: r for r in bucket["lifecycleRules"]}
    assert rules["Delete"]["condition"] == {
        "daysSinceNoncurrentTime": lifecycle.noncurrent_days,
        "withState": "ARCHIVED",
    }
    assert rules["AbortIncompleteMultipartUpload"]["condition"] == {"age": ABORT_MULTIPART_DAYS}
    if lifecycle.cold_after_days:
        assert rules["SetStorageClass"]["condition"] == {
            "age": lifecycle.cold_after_days,
            "withState": "LIVE",
        }
    else:
        assert "SetStorageClass" not in rules
    # Usage logs: who read or wrote which object, kept in the region's log bucket.
    log_bucket = one(plan, "gcp:storage/bucket:Bucket", f"{STACK}-bucket-logs").inputs
    assert bucket["logging"] == {
        "logBucket": log_bucket["name"],
        "logObjectPrefix": f"{topology.name}-{STACK}-{purpose}",
    }


def test_archive_bucket_is_private_encrypted_versioned(plan, topology):
    _gcs_bucket_checks(plan, topology, "archive")
    assert plan.outputs["archive"] == f"gs://{topology.name}-{STACK}-archive"


@pytest.mark.parametrize("purpose", sorted(BUCKET_PURPOSES))
def test_every_bucket_purpose_is_private_encrypted_versioned(workload_plan, topology, purpose):
    _gcs_bucket_checks(workload_plan, topology, purpose)


# --------------------------------------------------------------------------- Workload Identity


def test_only_the_kubernetes_service_account_may_impersonate(workload_plan):
    plan = workload_plan
    gsa = one(plan, "gcp:serviceaccount/account:Account", f"{STACK}-{WORKLOAD}-gsa")
    assert gsa.inputs["accountId"] == account_id(WORKLOAD, REGION)
    (binding,) = plan.of_type("gcp:serviceaccount/iAMMember:IAMMember")
    assert binding.inputs == {
        "serviceAccountId": mock_output(gsa, "name"),
        "role": "roles/iam.workloadIdentityUser",
        "member": f"serviceAccount:{PROJECT}.svc.id.goog[{NAMESPACE_WL}/{SERVICE_ACCOUNT}]",
    }


def test_service_account_reaches_only_the_requested_buckets(workload_plan):
    plan = workload_plan
    email = mock_output(
        one(plan, "gcp:serviceaccount/account:Account", f"{STACK}-{WORKLOAD}-gsa"), "email"
    )
    grants = plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    # The one other grant: Google's usage-log writer on the log bucket.
    (log_writer,) = [g for g in grants if g.name == f"{STACK}-bucket-logs"]
    grants = [g for g in grants if g is not log_writer]
    names = {
        one(plan, "gcp:storage/bucket:Bucket", f"{STACK}-bucket-{p}").inputs["name"]
        for p in GRANTED
    }
    assert {g.inputs["bucket"] for g in grants} == names
    assert all(
        g.inputs["member"] == f"serviceAccount:{email}"
        and g.inputs["role"] == "roles/storage.objectUser"
        for g in grants
    )


def test_kubernetes_service_account_is_annotated_with_the_google_one(workload_plan):
    plan = workload_plan
    email = mock_output(
        one(plan, "gcp:serviceaccount/account:Account", f"{STACK}-{WORKLOAD}-gsa"), "email"
    )
    sa = one(plan, "kubernetes:core/v1:ServiceAccount").inputs["metadata"]
    assert sa == {
        "name": SERVICE_ACCOUNT,
        "namespace": NAMESPACE_WL,
        "annotations": {"iam.gke.io/gcp-service-account": email},
    }


def test_account_ids_fit_gcp_limits():
    assert account_id("flink", "europe-west4") == "flink-europe-west4"
    long = account_id("pinot-deep-store-writer", "northamerica-northeast1")
    assert 6 <= len(long) <= 30 and long == account_id(
        "pinot-deep-store-writer", "northamerica-northeast1"
    )
    assert long != account_id("pinot-deep-store-reader", "northamerica-northeast1")


# --------------------------------------------------------------------------- posture


def test_gke_enforces_network_policies_with_dataplane_v2(plan):
    cluster = one(plan, "gcp:container/cluster:Cluster").inputs
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    # GKE refuses Calico network policy together with Dataplane V2.
    assert "networkPolicy" not in cluster
    assert "networkPolicyConfig" not in cluster["addonsConfig"]


def test_gke_logs_its_whole_control_plane_and_workloads(plan):
    cluster = one(plan, "gcp:container/cluster:Cluster").inputs
    assert cluster["loggingConfig"] == {"enableComponents": GKE_LOG_COMPONENTS}
    assert set(GKE_LOG_COMPONENTS) == {
        "SYSTEM_COMPONENTS",
        "APISERVER",
        "CONTROLLER_MANAGER",
        "SCHEDULER",
        "WORKLOADS",
    }


def test_log_bucket_is_private_encrypted_and_only_google_writes_usage_logs(plan, topology):
    bucket = one(plan, "gcp:storage/bucket:Bucket", f"{STACK}-bucket-logs")
    inputs = bucket.inputs
    assert inputs["name"] == f"{topology.name}-{STACK}-logs"
    assert inputs["location"] == REGION.upper() and inputs["labels"] == {LABEL_PURPOSE: "logs"}
    assert inputs["publicAccessPrevention"] == "enforced"
    assert inputs["uniformBucketLevelAccess"] is True
    assert inputs["versioning"] == {"enabled": True}
    assert inputs["encryption"] == {
        "defaultKmsKeyName": mock_id(one(plan, "gcp:kms/cryptoKey:CryptoKey"))
    }
    rules = {r["action"]["type"]: r["condition"] for r in inputs["lifecycleRules"]}
    assert rules["Delete"] == {"age": LOG_RETENTION_DAYS}
    # A log bucket does not log into itself.
    assert "logging" not in inputs
    writer = one(plan, "gcp:storage/bucketIAMMember:BucketIAMMember", f"{STACK}-bucket-logs")
    assert writer.inputs == {
        "bucket": inputs["name"],
        "role": "roles/storage.objectCreator",
        "member": "group:cloud-storage-analytics@google.com",
    }


def test_every_data_bucket_logs_to_the_log_bucket(workload_plan):
    buckets = workload_plan.of_type("gcp:storage/bucket:Bucket")
    data = [b for b in buckets if b.name != f"{STACK}-bucket-logs"]
    assert len(data) == len(BUCKET_PURPOSES)
    log_name = one(workload_plan, "gcp:storage/bucket:Bucket", f"{STACK}-bucket-logs").inputs[
        "name"
    ]
    assert all(b.inputs["logging"]["logBucket"] == log_name for b in data)


def test_each_workload_reaches_only_the_buckets_it_uses(plans):
    """A stream job keeps to its state; only the archive job may write the archive; the query
    engine may only read it (objectViewer: no create, no delete)."""
    grants: dict[str, dict[str, str]] = {}
    for g in plans[STACK].of_type("gcp:storage/bucketIAMMember:BucketIAMMember"):
        name = g.name.removeprefix(f"{STACK}-")
        purpose = next((p for p in ("flink-state", "archive") if name.endswith(f"-{p}")), None)
        if purpose is not None:
            who = name.removesuffix(f"-{purpose}")
            grants.setdefault(who, {})[purpose] = g.inputs["role"]
    user, viewer = "roles/storage.objectUser", "roles/storage.objectViewer"
    assert grants["flink-surge-pricing"] == {"flink-state": user}
    assert grants["flink-archive"] == {"flink-state": user, "archive": user}
    assert grants["query-engine"] == {"archive": viewer}
