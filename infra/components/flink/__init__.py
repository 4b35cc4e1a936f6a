"""The Flink layer of one region (paper 4.2, 6): the Flink Kubernetes Operator from its Helm chart
and one `FlinkDeployment` per job spec (`infra/topology/jobs.py`) declared in this region.

State lives in the region's `flink-state` bucket, reached through the target's workload identity:
checkpoints (RocksDB, incremental, retained on cancellation), savepoints and Kubernetes HA
metadata under ``<bucket>/<job>/``. The operator's own admission rules are enforced here, before
anything is declared (`admission_issues`), because rtdi installs the operator without its webhook
(the webhook needs cert-manager): what the webhook would refuse at `kubectl apply`, rtdi refuses
at config time with one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.components.kafka.engines import KafkaClient
from infra.components.kafka.flows import topic_allowed, topics_pattern
from infra.components.operator import operator_release
from infra.targets.base import ZONE_LABEL, Bucket, Target
from infra.topology.errors import ConfigError, Issue
from infra.topology.jobs import JOB_NAME_PATTERN, TRANSACTION_SECONDS, Job, job_regions
from infra.topology.model import Kafka, Topology

NAMESPACE = "flink"
OPERATOR_NAMESPACE = "flink-operator"
SERVICE_ACCOUNT = "flink"
API = "flink.apache.org/v1beta1"
RUNNER_JAR = "local:///opt/flink/usrlib/rtdi-sql-runner.jar"
SQL_DIR = "/opt/rtdi/sql"
SQL_FILE = "job.sql"
MAIN_CONTAINER = "flink-main-container"  # the operator merges the pod template into this one
# How long a source partition may be quiet before event time moves on without it. Longer than a
# copy's usual MirrorMaker 2 lag, short enough that surge-like windows still close in time.
SOURCE_IDLE_SECONDS = 30
# Kafka's default transaction.max.timeout.ms: the longest transaction a broker grants.
TRANSACTION_TIMEOUT_MS = TRANSACTION_SECONDS * 1000
# flinkConfiguration keys the operator owns and its validator refuses (1.15).
FORBIDDEN_KEYS = ("kubernetes.namespace", "kubernetes.cluster-id", "high-availability.cluster-id")


@dataclass(frozen=True)
class FlinkLayerArgs:
    """What the Flink layer of a region needs: the jobs (from the global stack), the topology
    and Kafka settings to resolve their topics, the federation registry, and how to reach the
    region's clusters (`KafkaLayer.client`)."""

    jobs: Sequence[Job]
    topology: Topology
    kafka: Kafka
    registry: pulumi.Input[dict]
    aggregate: KafkaClient
    regional: KafkaClient


def state_scheme(bucket: Bucket) -> str:
    """The URI scheme Flink's checkpoints use for ``bucket``: the presto S3 plugin (`s3p://`) on
    S3, since the hadoop one is slow at the many small checkpoint files; gs and hdfs as is."""
    return "s3p" if bucket.scheme == "s3" else bucket.scheme


def plugins(bucket: Bucket) -> str:
    """`ENABLE_BUILT_IN_PLUGINS` for ``bucket``: the image's own plugin jars, of exactly its
    Flink version, or the filesystem fails to load. HDFS needs no plugin but Hadoop itself."""
    v = versions.FLINK_VERSION
    jars = {
        "s3": [f"flink-s3-fs-presto-{v}.jar", f"flink-s3-fs-hadoop-{v}.jar"],
        "gs": [f"flink-gs-fs-hadoop-{v}.jar"],
    }.get(bucket.scheme, [])
    return ";".join(jars)


def runner_image(bucket: Bucket) -> str:
    """The runner image for state in ``bucket``: S3 and GCS are the Flink image's own plugins,
    but HDFS needs Hadoop's client in /opt/flink/lib, which Flink does not ship: the runner
    image's `hdfs` build (jobs/runner/Dockerfile)."""
    if bucket.scheme == "hdfs":
        return versions.FLINK_SQL_RUNNER_HDFS_IMAGE
    return versions.FLINK_SQL_RUNNER_IMAGE


def storage_config(bucket: Bucket, uri: str) -> dict[str, str]:
    """Filesystem settings for ``bucket``: an S3-compatible endpoint needs its address and
    path-style access; the cloud's own S3 is reached through IRSA, which the S3A plugin's default
    provider chain does not include, so the web-identity provider is named explicitly."""
    config: dict[str, str] = {}
    if bucket.scheme == "s3" and bucket.endpoint is not None:
        config["s3.endpoint"] = bucket.endpoint
        config["s3.path.style.access"] = "true"
    elif bucket.scheme == "s3":
        config["fs.s3a.aws.credentials.provider"] = (
            "com.amazonaws.auth.WebIdentityTokenCredentialsProvider"
        )
    return config


def flink_configuration(job: Job, state_uri: str, bucket: Bucket) -> dict[str, str]:
    """The Flink 2.2 configuration of ``job`` with its state under ``state_uri``."""
    base = f"{state_scheme(bucket)}://{state_uri.split('://', 1)[1].rstrip('/')}/{job.name}"
    config = {
        "execution.checkpointing.interval": f"{job.checkpoint_interval_seconds} s",
        "execution.checkpointing.mode": "EXACTLY_ONCE" if job.exactly_once else "AT_LEAST_ONCE",
        "execution.checkpointing.dir": f"{base}/checkpoints",
        "execution.checkpointing.savepoint-dir": f"{base}/savepoints",
        "execution.checkpointing.incremental": "true",
        "execution.checkpointing.num-retained": "3",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.backend.type": "rocksdb",
        "taskmanager.numberOfTaskSlots": str(job.task_manager.slots),
        "restart-strategy.type": "exponential-delay",
        **storage_config(bucket, state_uri),
    }
    if job.mode == "active-passive" or job.stateful:
        config["high-availability.type"] = "kubernetes"
        config["high-availability.storageDir"] = f"{base}/ha"
    return config


def admission_issues(name: str, spec: dict[str, Any], where: str) -> Iterator[Issue]:
    """The Flink operator validator's rules (1.15) a FlinkDeployment ``spec`` breaks, in words."""
    conf = spec.get("flinkConfiguration", {})
    job = spec.get("job", {})
    if not re.match(JOB_NAME_PATTERN, name):
        yield Issue(
            where, "name", f"not a name the Flink operator accepts ({JOB_NAME_PATTERN})", name
        )
    for key in FORBIDDEN_KEYS:
        if key in conf:
            yield Issue(where, key, "set by the Flink operator; allowed: leave it out", conf[key])
    mode = job.get("upgradeMode", "stateless")
    if mode != "stateless" and "execution.checkpointing.dir" not in conf:
        yield Issue(
            where,
            "upgradeMode",
            "a stateful upgrade mode needs execution.checkpointing.dir; allowed: stateless",
            mode,
        )
    if mode == "savepoint" and "execution.checkpointing.savepoint-dir" not in conf:
        yield Issue(
            where, "upgradeMode", "savepoint mode needs execution.checkpointing.savepoint-dir", mode
        )
    ha = conf.get("high-availability.type") in ("kubernetes", "zookeeper")
    if mode == "last-state" and not ha:
        yield Issue(where, "upgradeMode", "last-state needs Kubernetes HA", mode)
    replicas = spec.get("jobManager", {}).get("replicas", 1)
    if replicas > 1 and not ha:
        yield Issue(
            where,
            "jobManager.replicas",
            "more than one JobManager needs high-availability.type kubernetes",
            replicas,
        )
    if "savepointRedeployNonce" in job and not job.get("initialSavepointPath"):
        yield Issue(
            where,
            "job.savepointRedeployNonce",
            "a savepoint redeploy needs job.initialSavepointPath",
            job["savepointRedeployNonce"],
        )


def table_ddl(
    job: Job, table: Any, topics: Sequence[str], props: dict[str, str], source: bool
) -> str:
    """A Kafka table over ``topics`` of one cluster; the SQL author writes only the logic."""
    columns = [f"  `{c.name}` {c.type}" for c in table.columns]
    if table.watermark:
        col, delay = table.watermark.column, table.watermark.delay_seconds
        columns.append(f"  WATERMARK FOR `{col}` AS `{col}` - INTERVAL '{delay}' SECOND")
    options = {
        "connector": "kafka",
        # A source subscribes by pattern: a copy MirrorMaker 2 has not created yet (a first
        # deployment, a pending peer) is joined when it appears instead of failing the job.
        **(
            {"topic-pattern": topics_pattern(tuple(topics))}
            if source
            else {"topic": ";".join(topics)}
        ),
        "format": table.format,
        **{f"properties.{k}": v for k, v in sorted(props.items())},
    }
    if source:
        # One group per job, the same in every region: MirrorMaker 2 translates its offsets, so
        # a job moved to another region starts where the old one stopped.
        options["properties.group.id"] = f"flink-{job.name}"
        options["scan.startup.mode"] = "group-offsets"
        options["properties.auto.offset.reset"] = "earliest"
        options["scan.topic-partition-discovery.interval"] = "60 s"
        options["properties.isolation.level"] = "read_committed"
        if table.watermark:
            # The watermark is the slowest partition's: one quiet copy (a new region, a quiet
            # night) would hold back every region's windows forever (found by
            # tests/integration/test_flink_planned.py). A partition quiet this long stops counting
            # until it has records again.
            options["scan.watermark.idle-timeout"] = f"{SOURCE_IDLE_SECONDS} s"
    else:
        options["sink.delivery-guarantee"] = "exactly-once" if job.exactly_once else "at-least-once"
        options["sink.transactional-id-prefix"] = f"rtdi-{job.name}-{table.table}"
        if job.exactly_once:
            # Flink's Kafka sink asks for 1 h transactions unless told, more than brokers allow
            # by default (transaction.max.timeout.ms, 15 min, on Strimzi, MSK and Google's
            # Kafka alike): InitProducerId fails and the job restarts forever (found by
            # tests/integration/test_flink_planned.py). The brokers' maximum, far above a
            # checkpoint interval, so a commit never finds its transaction aborted.
            options["properties.transaction.timeout.ms"] = str(TRANSACTION_TIMEOUT_MS)
    body = ",\n".join(columns)
    opts = ",\n".join(f"  '{k}' = '{v}'" for k, v in options.items())
    return f"CREATE TABLE `{table.table}` (\n{body}\n) WITH (\n{opts}\n);\n"


def job_sql(job: Job, region_id: str, registry: dict, agg: dict, reg: dict) -> str:
    """The runner's script: the tables rtdi derives from the registry, then the job's SQL."""
    topics = registry["topics"]
    parts = [f"-- {job.name} in {region_id}: tables resolved by rtdi from the federation registry"]
    for t in job.sources:
        entry = topics[t.topic]["regions"][region_id]["consume"]
        parts.append(table_ddl(job, t, entry["topics"], agg, source=True))
    for t in job.sinks:
        entry = topics[t.topic]["regions"][region_id]["produce"]
        parts.append(table_ddl(job, t, [entry["topic"]], reg, source=False))
    parts.append(job.sql_text or "")
    return "\n".join(parts)


class FlinkOperator(pulumi.ComponentResource):
    """The Flink Kubernetes Operator, watching the Flink namespace; no webhook (see module doc)."""

    def __init__(
        self,
        name: str,
        target: Target,
        watch: k8s.core.v1.Namespace,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rtdi:flink:FlinkOperator", name, None, opts)
        repository, _, _ = target.sources.image(
            f"{versions.FLINK_OPERATOR_IMAGE}:{versions.FLINK_OPERATOR_VERSION}"
        ).rpartition(":")
        values = {
            "watchNamespaces": [NAMESPACE],
            "image": {"repository": repository, "tag": versions.FLINK_OPERATOR_VERSION},
            "webhook": {"create": False},
            # rtdi creates the job service account itself, with its workload identity.
            "jobServiceAccount": {"create": False, "name": SERVICE_ACCOUNT},
            "operatorPod": {
                "resources": {
                    "requests": {"cpu": "200m", "memory": "512Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                }
            },
        }
        ns, self.release = operator_release(
            self,
            name,
            target,
            OPERATOR_NAMESPACE,
            "flink-kubernetes-operator",
            versions.FLINK_OPERATOR_CHART_NAME,
            values,
            watch,
        )
        self.register_outputs(
            {"namespace": ns.metadata.name, "chartVersion": versions.FLINK_OPERATOR_VERSION}
        )


class FlinkLayer(pulumi.ComponentResource):
    def __init__(
        self, target: Target, args: FlinkLayerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        name = f"{target.region.id}-flink"
        super().__init__("rtdi:flink:Flink", name, None, opts)
        region = target.region
        mine = [j for j in args.jobs if region.id in job_regions(j, args.topology)]
        self.deployments: dict[str, k8s.apiextensions.CustomResource] = {}
        # Each job's desired state here: `running`, or `suspended` outside the primary.
        self.states: dict[str, str] = {}
        state = target.bucket("flink-state")
        archive = target.bucket("archive")
        ns = k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=target.labels),
            opts=target.k8s_opts(self),
        )
        identity = target.workload_identity(
            name, NAMESPACE, SERVICE_ACCOUNT, [state, archive], parent=self, depends_on=[ns]
        )
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=identity.service_account,
                namespace=NAMESPACE,
                labels=target.labels,
                # Left out when empty: the API server drops an empty map, and the plan must say
                # what is live.
                annotations=identity.annotations or None,
            ),
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        operator = FlinkOperator(
            f"{name}-operator", target, ns, opts=pulumi.ResourceOptions(parent=self)
        )
        ready = [ns, sa, operator, *identity.resources]
        image = target.sources.image(runner_image(state))
        props = pulumi.Output.all(
            args.aggregate.properties(), args.regional.properties(), args.registry
        )
        for job in mine:
            self._check(job, args, region.id)
            running = job.mode == "all-active" or region.id == args.topology.primary
            self.states[job.name] = "running" if running else "suspended"
            self.deployments[job.name] = self._job(
                job, target, state, identity, image, props, running, ready
            )
        self.register_outputs({"jobs": [j.name for j in mine]})

    def _check(self, job: Job, args: FlinkLayerArgs, region_id: str) -> None:
        """The global stack checked this already; a regional stack refuses a job spec that
        somehow disagrees with its topology (an older global stack) rather than deploy it."""
        region = args.topology.region(region_id)
        topics = {t.name: t for t in args.kafka.topics}
        for side in ("sources", "sinks"):
            for i, t in enumerate(getattr(job, side)):
                topic = topics.get(t.topic)
                if topic is None or not topic_allowed(args.kafka, topic, region):
                    raise ConfigError(
                        [
                            Issue(
                                f"jobs/flink ({job.name})",
                                f"{side}[{i}].topic",
                                f"not a topic region {region_id} may hold; allowed: topics of "
                                f"its data classes",
                                t.topic,
                            )
                        ]
                    )

    def _job(
        self,
        job: Job,
        target: Target,
        state: Bucket,
        identity: Any,
        image: str,
        props: pulumi.Output,
        running: bool,
        ready: list,
    ) -> k8s.apiextensions.CustomResource:
        region_id = target.region.id
        name = f"{target.region.id}-flink-{job.name}"
        labels = {**target.labels, "rtdi-flink-job": job.name}
        env = [*identity.env]
        if plugins(state):
            env.append({"name": "ENABLE_BUILT_IN_PLUGINS", "value": plugins(state)})
        mounts = [*identity.volume_mounts]
        volumes = [*identity.volumes]
        depends = list(ready)
        if job.sql is not None:
            sql = props.apply(lambda p: job_sql(job, region_id, p[2], p[0], p[1]))
            cm = k8s.core.v1.ConfigMap(
                f"{name}-sql",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{job.name}-sql", namespace=NAMESPACE, labels=labels
                ),
                data={SQL_FILE: sql},
                opts=target.k8s_opts(self, depends_on=ready),
            )
            depends.append(cm)
            mounts.append({"name": "sql", "mountPath": SQL_DIR, "readOnly": True})
            volumes.append({"name": "sql", "configMap": {"name": f"{job.name}-sql"}})
            job_spec: dict[str, Any] = {
                "jarURI": RUNNER_JAR,
                "args": ["--sql-file", f"{SQL_DIR}/{SQL_FILE}"],
            }
        else:
            job_spec = {"jarURI": job.jar}
            if job.entry_class:
                job_spec["entryClass"] = job.entry_class
        job_spec.update(
            parallelism=job.parallelism,
            upgradeMode=job.upgrade_mode,
            state="running" if running else "suspended",
        )
        ha = job.mode == "active-passive"
        selector = {"app": job.name, "component": "taskmanager"}
        spec = {
            "image": image,
            "flinkVersion": versions.FLINK_CRD_VERSION,
            "mode": "native",
            "serviceAccount": identity.service_account,
            "flinkConfiguration": {},  # filled below from the bucket's URI
            "podTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": MAIN_CONTAINER, "env": env, "volumeMounts": mounts}],
                    "volumes": volumes,
                },
            },
            "jobManager": {
                "replicas": 2 if ha else 1,
                "resource": {
                    "cpu": job.job_manager.cpu,
                    "memory": f"{job.job_manager.memory_mib}m",
                },
            },
            "taskManager": {
                "resource": {
                    "cpu": job.task_manager.cpu,
                    "memory": f"{job.task_manager.memory_mib}m",
                },
                "podTemplate": {
                    "spec": {
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": ZONE_LABEL,
                                "whenUnsatisfiable": "ScheduleAnyway",
                                "labelSelector": {"matchLabels": selector},
                            }
                        ]
                    }
                },
            },
            "job": job_spec,
        }

        # The operator's admission rules, checked before anything is declared: the keys they
        # look at do not depend on the bucket's name, which is only known once it exists.
        probe = {**spec, "flinkConfiguration": flink_configuration(job, "x://bucket", state)}
        issues = list(admission_issues(job.name, probe, f"jobs/flink ({job.name})"))
        if issues:
            raise ConfigError(issues)

        def complete(uri: str) -> dict[str, Any]:
            full: dict[str, Any] = json.loads(json.dumps(spec))
            full["flinkConfiguration"] = flink_configuration(job, uri, state)
            return full

        deployment = k8s.apiextensions.CustomResource(
            name,
            api_version=API,
            kind="FlinkDeployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=job.name, namespace=NAMESPACE, labels=labels),
            spec=state.uri.apply(complete),
            opts=target.k8s_opts(self, depends_on=depends),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-tm-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{job.name}-taskmanager", namespace=NAMESPACE, labels=labels
            ),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
            ),
            opts=target.k8s_opts(self, depends_on=ready[:1]),
        )
        return deployment
