"""Per-prefix retention for a store rtdi may not give a lifecycle: an hourly expiry CronJob.

On AWS and GCP the archive bucket is rtdi's own, and its lifecycle rules expire each topic's
directory (aws.py, gcp.py). On-prem the archive is a prefix of an existing store: HDFS has no
lifecycle at all, and an S3-compatible bucket's lifecycle API
(PutBucketLifecycleConfiguration) replaces the bucket's whole configuration, so rtdi setting
it would silently drop the rules of everyone else sharing the bucket; rtdi must not own it.

So the on-prem target declares, for a bucket with expirations, a CronJob in the region's
cluster (its own namespace, `<purpose>-expiry`) running jobs/archive-expiry/expire.sh with
`hadoop fs` (Apache's Hadoop image, `versions.ARCHIVE_EXPIRY_IMAGE`, whose client speaks
hdfs:// and, with hadoop-aws, s3a://). It deletes whole hour partitions
(`<prefix>dt=YYYY-MM-DD/hr=HH`) once the hour ended longer ago than the prefix's retention,
deciding from the directory names, which are the records' UTC Kafka timestamps, never from
file times (the script says why). It reaches the store exactly as the region's Flink jobs do:
`Target.workload_identity` for the bucket (the site's core-site.xml on HDFS, the store's keys
from a Secret on S3) and, on HDFS, the HDFS user the archive's writer runs as.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.targets.base import Bucket, Target

SCRIPT = Path(__file__).resolve().parents[2] / "jobs" / "archive-expiry" / "expire.sh"
SCRIPT_DIR = "/opt/rtdi/expiry"
SCRIPT_FILE = "expire.sh"
# Hourly, off the hour (checkpoints and the query layer's partition sync run on round minutes).
SCHEDULE = "23 * * * *"
# A run lists a few directories per topic and deletes in batches: minutes, never an hour.
DEADLINE_SECONDS = 3000
# Apache's Hadoop image runs as its `hadoop` user, uid 1000.
RUN_AS = 1000
# The Flink images run as `flink`, so under HDFS's simple authentication that is the user
# owning what the archive job writes (755 directories): deleting an hour needs write access to
# its day directory, so the expiry acts as the same user (HADOOP_USER_NAME, Hadoop's own switch).
WRITER_HDFS_USER = "flink"
# hadoop-aws (S3A) is in the image but off the default classpath.
S3A_TOOLS = {"name": "HADOOP_OPTIONAL_TOOLS", "value": "hadoop-aws"}


def script() -> str:
    return SCRIPT.read_text()


def hadoop_root(bucket: Bucket, uri: str) -> str:
    """``bucket``'s URI as `hadoop fs` addresses it: S3 through S3A (`s3a://`)."""
    if bucket.scheme == "s3":
        return "s3a://" + uri.split("://", 1)[1]
    return uri


def hadoop_options(bucket: Bucket) -> list[str]:
    """Generic `-D` options for the store: an S3-compatible endpoint, path-style, in the
    signing region the store accepts (the settings the Flink layer gives its S3 file systems)."""
    if bucket.scheme != "s3" or bucket.endpoint is None:
        return []
    options = {
        "fs.s3a.endpoint": bucket.endpoint,
        "fs.s3a.path.style.access": "true",
    }
    if bucket.cloud_region:
        options["fs.s3a.endpoint.region"] = bucket.cloud_region
    return [a for k, v in options.items() for a in ("-D", f"{k}={v}")]


def expiry_args(bucket: Bucket, uri: str, expirations: Sequence[tuple[str, int]]) -> list[str]:
    """The script's arguments: store options, the bucket's root, then `<prefix>=<days>` each."""
    rules = [f"{prefix}={days}" for prefix, days in expirations]
    return [*hadoop_options(bucket), hadoop_root(bucket, uri), *rules]


class PrefixExpiry(pulumi.ComponentResource):
    """The hourly CronJob that expires ``expirations`` (key prefix below the bucket -> days)
    under ``bucket``, whose URI is ``uri``; see the module doc."""

    def __init__(
        self,
        target: Target,
        bucket: Bucket,
        uri: str,
        expirations: Sequence[tuple[str, int]],
    ):
        name = f"{target.region.id}-{bucket.purpose}-expiry"
        super().__init__("rtdi:onprem:PrefixExpiry", name, None, target.child())
        app = f"{bucket.purpose}-expiry"
        labels = {**target.labels, "app.kubernetes.io/name": app}
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, labels=target.labels),
            opts=target.k8s_opts(self),
        )
        identity = target.workload_identity(name, app, app, [bucket], parent=self, depends_on=[ns])
        # The job talks to the store only; no Kubernetes API token in its pods.
        sa = target.service_account(f"{name}-sa", identity, self, [ns], automount_token=False)
        cm = k8s.core.v1.ConfigMap(
            f"{name}-script",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=app, labels=labels),
            data={SCRIPT_FILE: script()},
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        env: list[dict[str, Any]] = [*identity.env]
        if bucket.scheme == "hdfs":
            env.append({"name": "HADOOP_USER_NAME", "value": WRITER_HDFS_USER})
        if bucket.scheme == "s3":
            env.append(S3A_TOOLS)
        spec: Any = {
            "schedule": SCHEDULE,
            # One run at a time: a slow run and the next would list and delete the same hours.
            "concurrencyPolicy": "Forbid",
            # A run missed by more than half an hour waits for the next one.
            "startingDeadlineSeconds": 1800,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": DEADLINE_SECONDS,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": identity.service_account,
                            "automountServiceAccountToken": False,
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": RUN_AS,
                                "runAsGroup": RUN_AS,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [
                                {
                                    "name": "expire",
                                    "image": target.sources.image(versions.ARCHIVE_EXPIRY_IMAGE),
                                    # Not the image's entrypoint (it starts Hadoop daemons).
                                    "command": ["bash", f"{SCRIPT_DIR}/{SCRIPT_FILE}"],
                                    "args": expiry_args(bucket, uri, expirations),
                                    "env": env,
                                    "resources": {
                                        "requests": {"cpu": "100m", "memory": "512Mi"},
                                        "limits": {"memory": "512Mi"},
                                    },
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                    "volumeMounts": [
                                        *identity.volume_mounts,
                                        {
                                            "name": "script",
                                            "mountPath": SCRIPT_DIR,
                                            "readOnly": True,
                                        },
                                        # The Hadoop client's scratch space (hadoop.tmp.dir).
                                        {"name": "tmp", "mountPath": "/tmp"},
                                    ],
                                }
                            ],
                            "volumes": [
                                *identity.volumes,
                                {"name": "script", "configMap": {"name": app}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                            ],
                        },
                    },
                }
            },
        }
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=app, labels=labels),
            spec=spec,
            opts=target.k8s_opts(self, depends_on=[ns, sa, cm, *identity.resources]),
        )
        self.register_outputs({"schedule": SCHEDULE, "prefixes": dict(expirations)})
