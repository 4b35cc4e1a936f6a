"""The on-prem target: a kubeconfig context, no cloud, HDFS or an S3-compatible store."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from pulumi.runtime import rpc

from infra.plan import engine
from infra.plan.mocks import PlanMocks
from infra.plan.writer import write
from infra.targets.base import BUCKET_PURPOSES
from infra.targets.onprem import HADOOP_CONF_DIR
from plantools import (
    NAMESPACE_WL,
    SERVICE_ACCOUNT,
    WORKLOAD,
    assert_k8s_on_region_provider,
    assert_named_after_region,
    assert_owned_by_region,
    config,
    one,
    plan_text,
    provider_of,
    run_program,
    sample_config,
    workload,
)

STACK = "onprem-dc1"
CLUSTER = {
    "kubeconfig": "~/.kube/dc1.yaml",
    "context": "dc1-prod",
    "storageClass": "local-nvme",
    "coldStorageClass": "local-hdd",
    "internalLoadBalancerAnnotations": {"metallb.universe.tf/address-pool": "dc1-internal"},
}
HDFS_URI = "hdfs://namenode.dc1.acme.internal:8020/rtdi"
SECRET_VALUE = "plan-test-not-a-real-secret-0123456789"
S3_STORE = {
    "kind": "s3",
    "endpoint": "https://rgw.dc1.acme.internal",
    "bucket": "rtdi-dc1",
    "accessKeyId": "RGWPLANTESTKEY",
}


def s3_config():
    return config(
        STACK,
        {
            "cloud": "onprem",
            "region": STACK,
            "kubernetes": CLUSTER,
            "objectStore": S3_STORE,
            "objectStoreSecretAccessKey": SECRET_VALUE,
        },
        secret_keys=["objectStoreSecretAccessKey"],
    )


@pytest.fixture(scope="module")
def plan(plans):
    return plans[STACK]


@pytest.fixture(scope="module")
def hdfs_plan(topology):
    return run_program(sample_config(STACK), workload, topology)


class _Capture(PlanMocks):
    """The plan's mocks, also keeping the raw inputs the SDK sends (secrets unmasked)."""

    raw: dict = {}

    def new_resource(self, args):
        type(self).raw[(args.typ, args.name)] = args.inputs
        return super().new_resource(args)


@pytest.fixture(scope="module")
def s3_run(topology):
    mp = pytest.MonkeyPatch()
    _Capture.raw = {}
    mp.setattr(engine, "PlanMocks", _Capture)
    try:
        plan = run_program(s3_config(), workload, topology)
    finally:
        mp.undo()
    return plan, dict(_Capture.raw)


def test_sample_is_the_expected_cluster_and_store():
    values = sample_config(STACK).values
    assert json.loads(values["rtdi:kubernetes"]) == CLUSTER
    assert json.loads(values["rtdi:objectStore"]) == {"kind": "hdfs", "uri": HDFS_URI}


# --------------------------------------------------------------------------- cluster and provider


@pytest.mark.parametrize("which", ["sample", "hdfs", "s3"])
def test_kubernetes_provider_is_the_configured_cluster(plan, hdfs_plan, s3_run, which):
    p = {"sample": plan, "hdfs": hdfs_plan, "s3": s3_run[0]}[which]
    provider = assert_k8s_on_region_provider(p, STACK)
    assert provider.inputs == {"kubeconfig": CLUSTER["kubeconfig"], "context": CLUSTER["context"]}


def test_cross_region_listener_stays_on_the_sites_internal_network(plan):
    (kafka,) = [
        r.inputs
        for r in plan.of_type("kubernetes:kafka.strimzi.io/v1:Kafka")
        if r.inputs["metadata"]["name"] == "regional"
    ]
    template = kafka["spec"]["kafka"]["template"]
    for service in ("externalBootstrapService", "perPodService"):
        annotations = template[service]["metadata"]["annotations"]
        assert annotations["metallb.universe.tf/address-pool"] == "dc1-internal"


@pytest.mark.parametrize("which", ["sample", "hdfs", "s3"])
def test_no_cloud_resources(plan, hdfs_plan, s3_run, which):
    p = {"sample": plan, "hdfs": hdfs_plan, "s3": s3_run[0]}[which]
    packages = {r.type.split(":")[0] for r in p.resources if r.custom}
    # `random` mints the Flink jobs' Kafka passwords in the stack's state: no cloud behind it.
    assert packages <= {"kubernetes", "pulumi", "random"}, packages
    assert {r.type for r in p.resources if r.type.startswith("pulumi:providers:")} <= {
        "pulumi:providers:kubernetes",
        "pulumi:providers:random",
    }


def test_uses_the_existing_storage_class(plan, hdfs_plan):
    assert plan.of_type("kubernetes:storage.k8s.io/v1:StorageClass") == [], (
        "rtdi does not own on-prem storage classes"
    )
    assert hdfs_plan.outputs["storageClass"] == CLUSTER["storageClass"]
    assert plan.outputs["kubernetesCluster"] == CLUSTER["context"]


def test_target_resources_sit_under_the_region(target_plans, hdfs_plan):
    assert_owned_by_region(target_plans[STACK], STACK)
    assert_owned_by_region(hdfs_plan, STACK, owners=[f"{STACK}-{WORKLOAD}"])


def test_every_resource_of_the_stack_is_named_after_the_region(plan):
    assert_named_after_region(plan, STACK)


# --------------------------------------------------------------------------- HDFS


def test_hdfs_buckets_are_prefixes_per_region_and_purpose(plan, hdfs_plan):
    assert plan.outputs["archive"] == f"{HDFS_URI}/{STACK}/archive"
    assert hdfs_plan.outputs["buckets"] == {p: f"{HDFS_URI}/{STACK}/{p}" for p in BUCKET_PURPOSES}


def test_hdfs_identity_is_a_core_site_config_map(hdfs_plan):
    plan = hdfs_plan
    cm = one(plan, "kubernetes:core/v1:ConfigMap", f"{STACK}-{WORKLOAD}-hadoop-conf")
    assert cm.parent == one(plan, "test:index:Workload").urn
    assert provider_of(plan, cm).inputs["context"] == CLUSTER["context"]
    assert (
        cm.inputs["metadata"]["name"] == f"{SERVICE_ACCOUNT}-hadoop-conf"
        and cm.inputs["metadata"]["namespace"] == NAMESPACE_WL
    )
    site = ET.fromstring(cm.inputs["data"]["core-site.xml"])
    props = {p.findtext("name"): p.findtext("value") for p in site.iter("property")}
    assert props == {"fs.defaultFS": "hdfs://namenode.dc1.acme.internal:8020"}
    identity = plan.outputs["identity"]
    assert identity["env"] == [{"name": "HADOOP_CONF_DIR", "value": HADOOP_CONF_DIR}]
    assert identity["volumes"] == [
        {"name": "hadoop-conf", "configMap": {"name": f"{SERVICE_ACCOUNT}-hadoop-conf"}}
    ]
    assert identity["volumeMounts"] == [
        {"name": "hadoop-conf", "mountPath": HADOOP_CONF_DIR, "readOnly": True}
    ]
    assert plan.of_type("kubernetes:core/v1:Secret") == []


# --------------------------------------------------------------------------- S3-compatible


def test_s3_buckets_are_prefixes_in_the_configured_bucket(s3_run):
    plan, _ = s3_run
    assert plan.outputs["buckets"] == {
        p: f"s3://{S3_STORE['bucket']}/{STACK}/{p}/" for p in BUCKET_PURPOSES
    }


def test_s3_credentials_are_a_secret_masked_in_the_plan(s3_run, tmp_path):
    plan, raw = s3_run
    secret = one(plan, "kubernetes:core/v1:Secret", f"{STACK}-{WORKLOAD}-object-store")
    assert secret.inputs["metadata"]["name"] == f"{SERVICE_ACCOUNT}-object-store"
    assert secret.inputs["metadata"]["namespace"] == NAMESPACE_WL
    assert secret.inputs["stringData"] == {
        "AWS_ACCESS_KEY_ID": "[secret]",
        "AWS_SECRET_ACCESS_KEY": "[secret]",
    }
    assert SECRET_VALUE not in plan_text(plan)
    write(plan, tmp_path)
    for f in (tmp_path / STACK).rglob("*"):
        if f.is_file():
            assert SECRET_VALUE not in f.read_text(), f"{f.name} leaks the secret access key"
    # What the SDK hands the engine: the configured key, marked secret.
    sent = raw[("kubernetes:core/v1:Secret", secret.name)]["stringData"]
    assert sent.get(rpc._special_sig_key) == rpc._special_secret_sig, (
        "stringData is sent as a secret"
    )
    assert sent["value"] == {
        "AWS_ACCESS_KEY_ID": S3_STORE["accessKeyId"],
        "AWS_SECRET_ACCESS_KEY": SECRET_VALUE,
    }


def test_s3_env_reads_the_secret(s3_run):
    plan, _ = s3_run
    env = {e["name"]: e for e in plan.outputs["identity"]["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == S3_STORE["endpoint"]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key] == {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": f"{SERVICE_ACCOUNT}-object-store", "key": key}},
        }
    assert plan.of_type("kubernetes:core/v1:ConfigMap") == []
