"""On-prem: an existing Kubernetes cluster (kubeconfig and context) and an existing HDFS or
S3-compatible store.

rtdi does not own on-prem storage: the platform's storage team provisions the HDFS path or the
bucket, with its encryption, snapshots or versioning and retention. rtdi lays out one prefix per
purpose under it and hands workloads the Hadoop configuration or the S3 credentials they need.
Per-prefix retention (the archive's, per data class) is no store lifecycle here: HDFS has none,
and a shared bucket's lifecycle configuration is not rtdi's to replace. A bucket with
expirations gets an hourly expiry CronJob in the region's cluster instead (expiry.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

import pulumi
import pulumi_kubernetes as k8s

from infra.targets.base import Bucket, Lifecycle, SegmentStore, Target, WorkloadIdentity
from infra.targets.expiry import PrefixExpiry
from infra.topology.model import OnpremStack, Topology

HADOOP_CONF_DIR = "/etc/hadoop/conf"
# S3-compatible stores (MinIO, Ceph RGW) accept any signing region; SDKs need one, and this is
# theirs.
S3_COMPATIBLE_REGION = "us-east-1"


class OnpremTarget(Target):
    def __init__(
        self, stack: OnpremStack, topology: Topology, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("rtdi:onprem:Region", stack, topology, opts)
        self.stack: OnpremStack = stack
        cluster = stack.kubernetes
        self.k8s = k8s.Provider(
            f"{self.name}-k8s",
            k8s.ProviderArgs(kubeconfig=cluster.kubeconfig, context=cluster.context),
            opts=self.child(),
        )
        self.storage_class = cluster.storage_class
        self.internal_load_balancer_annotations = dict(cluster.internal_load_balancer_annotations)
        self.cluster_name = cluster.context

    def _create_bucket(self, purpose: str, lifecycle: Lifecycle) -> Bucket:
        """A prefix of the site's store; its expirations become an expiry CronJob (expiry.py).
        Versions and colder classes are the storage team's (module doc)."""
        store = self.stack.object_store
        if store.kind == "hdfs":
            assert store.uri is not None  # infra/topology/checks.py requires it for kind: hdfs
            uri = f"{store.uri.rstrip('/')}/{self.region.id}/{purpose}"
            bucket = Bucket(
                purpose=purpose,
                scheme="hdfs",
                name=pulumi.Output.from_input(uri),
                uri=pulumi.Output.from_input(uri),
            )
        else:
            prefix = f"{self.region.id}/{purpose}/"
            uri = f"s3://{store.bucket}/{prefix}"
            bucket = Bucket(
                purpose=purpose,
                scheme="s3",
                name=pulumi.Output.from_input(str(store.bucket)),
                uri=pulumi.Output.from_input(uri),
                prefix=prefix,
                endpoint=store.endpoint,
                cloud_region=S3_COMPATIBLE_REGION,
            )
        if lifecycle.expirations:
            PrefixExpiry(self, bucket, uri, lifecycle.expirations)
        return bucket

    def cold_storage_class(self) -> str:
        """The site's `coldStorageClass`, else its one class: rtdi does not own on-prem storage."""
        return self.stack.kubernetes.cold_storage_class or self.storage_class

    def segment_store(self, bucket: Bucket) -> SegmentStore:
        """HadoopPinotFS with the Hadoop configuration `workload_identity` mounts (the site's
        namenode as fs.defaultFS), or S3PinotFS against the site's S3-compatible endpoint (path
        style, which S3PinotFS always uses) with the keys `workload_identity` puts in the env."""
        if bucket.scheme == "hdfs":
            return SegmentStore(
                scheme="hdfs",
                pinot_fs="org.apache.pinot.plugin.filesystem.HadoopPinotFS",
                config={"hadoop.conf.path": HADOOP_CONF_DIR},
            )
        config = {"region": bucket.cloud_region or S3_COMPATIBLE_REGION}
        if bucket.endpoint is not None:
            config["endpoint"] = bucket.endpoint
        return SegmentStore(
            scheme="s3", pinot_fs="org.apache.pinot.plugin.filesystem.S3PinotFS", config=config
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
        """The site's store as configured: HDFS through its core-site (the pods' Hadoop user),
        an S3-compatible store through its one access key. Neither gives rights per identity,
        so ``read_only`` buckets are as writable as the others here: restricting them is the
        site's (HDFS permissions, a read-only key), which rtdi does not manage."""
        store = self.stack.object_store
        opts = self.k8s_opts(parent, depends_on=list(depends_on))
        if store.kind == "hdfs":
            assert store.uri is not None  # infra/topology/checks.py requires it for kind: hdfs
            conf = k8s.core.v1.ConfigMap(
                f"{name}-hadoop-conf",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    # One per service account: several share a namespace (one per Flink job).
                    name=f"{service_account}-hadoop-conf",
                    namespace=namespace,
                    labels=self.labels,
                ),
                data={"core-site.xml": _core_site({"fs.defaultFS": _authority(store.uri)})},
                opts=opts,
            )
            return WorkloadIdentity(
                service_account=service_account,
                namespace=namespace,
                env=[{"name": "HADOOP_CONF_DIR", "value": HADOOP_CONF_DIR}],
                volumes=[
                    {
                        "name": "hadoop-conf",
                        "configMap": {"name": f"{service_account}-hadoop-conf"},
                    }
                ],
                volume_mounts=[
                    {"name": "hadoop-conf", "mountPath": HADOOP_CONF_DIR, "readOnly": True}
                ],
                resources=[conf],
            )
        key_id, secret_key = store.access_key_id, self.stack.object_store_secret_access_key
        # infra/topology/checks.py refuses an s3 store without both, before anything is declared.
        assert key_id is not None and secret_key is not None
        secret_name = f"{service_account}-object-store"
        secret = k8s.core.v1.Secret(
            f"{name}-object-store",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=namespace, labels=self.labels
            ),
            type="Opaque",
            string_data={
                "AWS_ACCESS_KEY_ID": key_id,
                "AWS_SECRET_ACCESS_KEY": pulumi.Output.secret(secret_key),
            },
            opts=opts,
        )
        env: list[dict[str, Any]] = [
            {"name": "AWS_ENDPOINT_URL", "value": store.endpoint},
            {"name": "AWS_REGION", "value": S3_COMPATIBLE_REGION},
        ]
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        ]
        return WorkloadIdentity(
            service_account=service_account, namespace=namespace, env=env, resources=[secret]
        )


def _authority(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _core_site(props: dict[str, str]) -> str:
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
        for k, v in props.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'
