"""The Flink layer of one region (paper 4.2, 6): the Flink Kubernetes Operator from its Helm chart
and one `FlinkDeployment` per job spec (`infra/topology/jobs.py`) declared in this region.

State lives in the region's `flink-state` bucket, reached through the target's workload identity:
checkpoints (RocksDB, incremental, retained on cancellation), savepoints and Kubernetes HA
metadata under ``<bucket>/<job>/``. Each job runs as its own service account (`flink-<job>`) with
its own workload identity and its own Kafka identity on each cluster it uses (see
`kafka_grants`), so no two jobs share a credential. The operator's own admission rules are
enforced here, before anything is declared (`admission_issues`), because rtdi installs the
operator without its webhook (the webhook needs cert-manager): what the webhook would refuse at
`kubectl apply`, rtdi refuses at config time with one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.components.flink import archive as archiving
from infra.components.flink import handover as flip
from infra.components.flink.backfill import BackfillRun
from infra.components.kafka.access import KafkaAccess, KafkaGrant
from infra.components.kafka.flows import federation_registry, topic_allowed, topics_pattern
from infra.components.operator import operator_release
from infra.targets.base import ZONE_LABEL, Bucket, Target
from infra.topology.errors import ConfigError, Issue
from infra.topology.jobs import JOB_NAME_PATTERN, TRANSACTION_TIMEOUT_MS, Job, job_regions
from infra.topology.model import Backfill, FlinkHandover, Kafka, Topology

NAMESPACE = "flink"
OPERATOR_NAMESPACE = "flink-operator"
SERVICE_ACCOUNT = "flink"
# The Role the operator's chart grants its job service account in each watched namespace (the
# rights a JobManager needs: TaskManager pods, HA ConfigMaps); each job's own account is bound
# to it too.
JOB_ROLE = "flink"
API = "flink.apache.org/v1beta1"
RUNNER_JAR = "local:///opt/flink/usrlib/rtdi-sql-runner.jar"
SQL_DIR = "/opt/rtdi/sql"
SQL_FILE = "job.sql"
MAIN_CONTAINER = "flink-main-container"  # the operator merges the pod template into this one
# How long a source partition may be quiet before event time moves on without it. Longer than a
# copy's usual MirrorMaker 2 lag, short enough that surge-like windows still close in time.
SOURCE_IDLE_SECONDS = 30
# flinkConfiguration keys the operator owns and its validator refuses (1.15).
FORBIDDEN_KEYS = ("kubernetes.namespace", "kubernetes.cluster-id", "high-availability.cluster-id")


@dataclass(frozen=True)
class FlinkLayerArgs:
    """What the Flink layer of a region needs: the jobs (from the global stack), the topology
    and Kafka settings to resolve their topics, the federation registry, and how to give a job
    its own identity on the region's clusters (`KafkaLayer.access`: role, grants, parent,
    depends_on -> access by principal); the stack's handover savepoints for a flip
    (`handover.py`) and its file, which their errors name."""

    jobs: Sequence[Job]
    topology: Topology
    kafka: Kafka
    registry: pulumi.Input[dict]
    access: Callable[..., dict[str, KafkaAccess]]
    # Whether a role's cluster enforces a grant's consumer quota (`KafkaLayer.enforces_quotas`).
    enforces_quotas: Callable[[str], bool]
    # The region's `rtdi:backfills` (checked by `check_backfills`).
    backfills: Sequence[Backfill] = ()
    handover: Mapping[str, FlinkHandover] = field(default_factory=dict)
    stack_file: str = "stacks"


def principal(job: Job) -> str:
    """The job's Kafka principal and service account: one per job, never shared."""
    return f"flink-{job.name}"


def group_id(job: Job) -> str:
    """One group per job, the same in every region: MirrorMaker 2 translates its offsets, so a
    job moved to another region starts where the old one stopped."""
    return f"flink-{job.name}"


def transactional_prefix(job: Job) -> str:
    """What every transactional id of the job's sinks starts with. Dots end it: job names hold
    none, so no job's prefix is another's (`rtdi.pay.` never matches `rtdi.pay-x.`)."""
    return f"rtdi.{job.name}."


def kafka_grants(
    job: Job, region_id: str, registry: dict, identity: Any, run: BackfillRun | None = None
) -> dict[str, KafkaGrant]:
    """What ``job`` may do in ``region_id``, by cluster role: read its sources' physical topics
    on the aggregate (as the registry resolved them) with its own group, write its sinks'
    topics on the regional cluster with its own transactional ids. A role it does not use gets
    no grant. ``registry`` is the static federation registry: topic names never wait on a peer.
    A backfill ``run`` is its own principal: its own group, its backfill topics, its own
    transactional ids, and its consumer quota."""
    topics = registry["topics"]
    reads = source_topics(job, region_id, registry) if run is None or run.reads_kafka else []
    sinks = [t.topic if run is None else run.sink_topic(t.table) for t in job.sinks]
    writes = sorted({topics[s]["regions"][region_id]["produce"]["topic"] for s in sinks})
    who = principal(job) if run is None else run.principal
    grants: dict[str, KafkaGrant] = {}
    if reads:
        grants["aggregate"] = KafkaGrant(
            principal=who,
            identity=identity,
            read_topics=tuple(reads),
            groups=(group_id(job) if run is None else run.group,),
            consumer_byte_rate=None if run is None else run.max_bytes_per_second,
        )
    if job.sinks:
        prefix = transactional_prefix(job) if run is None else run.transactional_prefix
        grants["regional"] = KafkaGrant(
            principal=who,
            identity=identity,
            write_topics=tuple(writes),
            transactional_id_prefix=prefix if job.exactly_once else None,
        )
    return grants


def archive_access(job: Job, run: BackfillRun | None) -> tuple[bool, bool]:
    """(writes, reads) of the region's archive bucket: only the archive job writes it, only a
    backfill over it reads it; every other job keeps to its `flink-state` and Kafka."""
    if job.kind == "archive":
        return True, False
    return False, run is not None and not run.reads_kafka


def source_topics(job: Job, region_id: str, registry: dict) -> list[str]:
    """The physical topics ``job`` reads on the region's aggregate: its sources' copies, or for
    the archive job every copy the region holds (archive.py)."""
    if job.kind == "archive":
        return sorted(p for _, p, _ in archiving.archived_topics(region_id, registry))
    topics = registry["topics"]
    return sorted(
        {n for t in job.sources for n in topics[t.topic]["regions"][region_id]["consume"]["topics"]}
    )


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


def flink_configuration(
    job: Job, state_uri: str, bucket: Bucket, subdir: str | None = None
) -> dict[str, str]:
    """The Flink 2.2 configuration of ``job`` with its state under ``state_uri`` (in ``subdir``
    of the job's directory for a backfill)."""
    base = f"{state_scheme(bucket)}://{state_uri.split('://', 1)[1].rstrip('/')}/{job.name}"
    if subdir:
        base = f"{base}/{subdir}"
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
    if job.mode == "active-passive":
        # A flip deletes the running resource (handover.py): stop with a savepoint, not cancel.
        config[flip.SAVEPOINT_ON_DELETION] = "true"
    return config


def configuration(
    job: Job, state_uri: str, bucket: Bucket, subdir: str | None, run: BackfillRun | None
) -> dict[str, str]:
    """`flink_configuration`, and for a backfill its runtime mode (backfill.py says why)."""
    config = flink_configuration(job, state_uri, bucket, subdir)
    if run is not None:
        config["execution.runtime-mode"] = "STREAMING"
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
    job: Job,
    table: Any,
    topics: Sequence[str],
    props: dict[str, str],
    source: bool,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """A Kafka table over ``topics`` of one cluster; the SQL author writes only the logic.
    ``overrides`` replace or add table options (a backfill's bounds, group and prefix).

    ``props`` are the job's own client properties for that cluster (`KafkaAccess.properties`):
    secrets only as ``${env:NAME}`` placeholders, which the runner fills from its environment."""
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
        **{f"properties.{k}": _quote(v) for k, v in sorted(props.items())},
    }
    if source:
        options["properties.group.id"] = group_id(job)
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
        options["sink.transactional-id-prefix"] = f"{transactional_prefix(job)}{table.table}"
        if job.exactly_once:
            # The sink's default (1 h) exceeds what brokers allow by default (Kafka's
            # transaction.max.timeout.ms, 15 min, also on MSK): its producers would fail to
            # start (tests/integration/test_flink_backfill.py found it).
            options["properties.transaction.timeout.ms"] = str(TRANSACTION_TIMEOUT_MS)
    options.update(overrides or {})
    body = ",\n".join(columns)
    opts = ",\n".join(f"  '{k}' = '{v}'" for k, v in options.items())
    return f"CREATE TABLE `{table.table}` (\n{body}\n) WITH (\n{opts}\n);\n"


def _quote(value: str) -> str:
    """A SQL string literal's body: a quote is doubled."""
    return value.replace("'", "''")


def job_sql(
    job: Job,
    region_id: str,
    registry: dict,
    agg: dict,
    reg: dict,
    bounds: BackfillRun | None = None,
    archive: tuple[Bucket, str] | None = None,
) -> str:
    """The runner's script: the tables rtdi derives from the registry, then the job's SQL.
    With ``bounds``, the same script for a backfill: bounded sources, its own sink topics; a
    backfill over the archive reads ``archive`` (the region's bucket and its URI) instead."""
    topics = registry["topics"]
    what = job.name if bounds is None else f"{job.name} backfill {bounds.run_id}"
    parts = [f"-- {what} in {region_id}: tables resolved by rtdi from the federation registry"]
    for t in job.sources:
        entry = topics[t.topic]["regions"][region_id]["consume"]
        if bounds is not None and not bounds.reads_kafka:
            assert archive is not None
            parts += bounds.archive_sources(t, entry["topics"], *archive)
            continue
        over = None if bounds is None else bounds.source_options()
        parts.append(table_ddl(job, t, entry["topics"], agg, source=True, overrides=over))
    for t in job.sinks:
        logical = t.topic if bounds is None else bounds.sink_topic(t.table)
        entry = topics[logical]["regions"][region_id]["produce"]
        over = None if bounds is None else bounds.sink_options(t.table)
        parts.append(table_ddl(job, t, [entry["topic"]], reg, source=False, overrides=over))
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
        static = federation_registry(args.topology, args.kafka)
        # An archive job where the region holds no topic would have nothing to run.
        mine = [
            j
            for j in args.jobs
            if region.id in job_regions(j, args.topology)
            and (j.kind != "archive" or source_topics(j, region.id, static))
        ]
        self.deployments: dict[str, k8s.apiextensions.CustomResource] = {}
        # Each job's desired state here: `running`, or `suspended` outside the primary.
        self.states: dict[str, str] = {}
        state = target.bucket("flink-state")
        archive = self.archive = target.bucket("archive")
        ns = k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=target.labels),
            opts=target.k8s_opts(self),
        )
        operator = FlinkOperator(
            f"{name}-operator", target, ns, opts=pulumi.ResourceOptions(parent=self)
        )
        image = target.sources.image(runner_image(state))
        by_name = {j.name: j for j in mine}
        # Bounded re-runs (backfill.py): each through the same declaration as its job, running
        # in this region whatever the job's state here (it reads the aggregate, the global view).
        runs: list[BackfillRun] = []
        for b in args.backfills:
            if b.job not in by_name:  # `check_backfills` refused this already; never a KeyError
                raise ConfigError(
                    [Issue("rtdi:backfills", "job", f"not a job of {region.id}", b.job)]
                )
            runs.append(
                BackfillRun(by_name[b.job], b, quota_enforced=args.enforces_quotas("aggregate"))
            )
        for job in mine:
            self._check(job, args, region.id)
        issues = list(
            flip.handover_issues(
                args.handover,
                mine,
                region.id,
                args.topology.primary,
                args.stack_file,
                sorted({state.scheme, state_scheme(state)}),
            )
        )
        if issues:
            raise ConfigError(issues)
        # Each deployment (a job, or a backfill of one) is its own workload: its own service
        # account, cloud identity and Kafka principal.
        workloads: list[tuple[Job, BackfillRun | None]] = [(j, None) for j in mine]
        workloads += [(r.job, r) for r in runs]
        identities: dict[str, Any] = {}
        accounts: dict[str, list[pulumi.Resource]] = {}
        grants: dict[str, dict[str, KafkaGrant]] = {}
        for job, run in workloads:
            key = job.name if run is None else run.name
            who = principal(job) if run is None else run.principal
            writes, reads = archive_access(job, run)
            buckets = [state, *([archive] if writes else [])]
            identities[key], accounts[key] = self._account(
                key, who, target, buckets, ns, [archive] if reads else []
            )
            grants[key] = kafka_grants(job, region.id, static, identities[key], run)
        # Every grant of a cluster in one call (an engine may merge ACLs of shared topics).
        access = {
            role: args.access(
                role,
                [g[role] for g in grants.values() if role in g],
                self,
                [ns],
            )
            for role in ("aggregate", "regional")
        }
        self.backfills: dict[str, k8s.apiextensions.CustomResource] = {}
        for job, run in workloads:
            key = job.name if run is None else run.name
            running = run is not None or job.mode == "all-active"
            running = running or region.id == args.topology.primary
            mine_access = {role: access[role][g.principal] for role, g in grants[key].items()}
            deployment = self._job(
                job,
                target,
                state,
                identities[key],
                image,
                mine_access,
                args.registry,
                running,
                [ns, operator, *accounts[key]],
                args,
                run,
            )
            if run is None:
                self.states[job.name] = "running" if running else "suspended"
                self.deployments[job.name] = deployment
            else:
                self.backfills[run.name] = deployment
        self.register_outputs({"jobs": [j.name for j in mine]})

    def _account(
        self,
        deployment: str,
        account: str,
        target: Target,
        buckets: list[Bucket],
        ns: pulumi.Resource,
        read_only: list[Bucket],
    ) -> tuple[Any, list[pulumi.Resource]]:
        """A deployment's own service account ``account``, its workload identity (``buckets``
        read and written, ``read_only`` only read; the cloud identity its Kafka grants name) and
        the operator's job Role bound to it."""
        name = f"{target.region.id}-flink-{deployment}"
        identity = target.workload_identity(
            name, NAMESPACE, account, buckets, parent=self, depends_on=[ns], read_only=read_only
        )
        sa = target.service_account(f"{name}-sa", identity, self, [ns])
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=identity.service_account, namespace=NAMESPACE, labels=target.labels
            ),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=JOB_ROLE
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=identity.service_account, namespace=NAMESPACE
                )
            ],
            opts=target.k8s_opts(self, depends_on=[ns, sa]),
        )
        return identity, [sa, binding, *identity.resources]

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

    def _sql(
        self,
        job: Job,
        region_id: str,
        access: dict[str, KafkaAccess],
        registry: pulumi.Input[dict],
        topology: Topology,
        run: BackfillRun | None,
    ) -> pulumi.Output[str]:
        """The runner's script: the job's SQL under the tables rtdi derives, or for the archive
        job the script archive.py writes over the region's archive bucket."""
        empty: pulumi.Output[dict[str, str]] = pulumi.Output.from_input({})
        agg = access["aggregate"].properties if "aggregate" in access else empty
        if job.kind == "archive":
            archive = self.archive
            return pulumi.Output.all(agg, registry, archive.uri).apply(
                lambda p: archiving.archive_sql(
                    job.name,
                    region_id,
                    archiving.archive_tables(region_id, topology, p[1], p[2]),
                    p[0],
                    group_id(job),
                    archive,
                    p[2],
                )
            )
        reg = access["regional"].properties if "regional" in access else empty
        props = pulumi.Output.all(agg, reg, registry, self.archive.uri)
        return props.apply(
            lambda p: job_sql(job, region_id, p[2], p[0], p[1], run, (self.archive, p[3]))
        )

    def _job(
        self,
        job: Job,
        target: Target,
        state: Bucket,
        identity: Any,
        image: str,
        access: dict[str, KafkaAccess],
        registry: pulumi.Input[dict],
        running: bool,
        ready: list,
        args: FlinkLayerArgs,
        run: BackfillRun | None = None,
    ) -> k8s.apiextensions.CustomResource:
        """The job's FlinkDeployment (its SQL ConfigMap, its TaskManagers' budget); with ``run``
        the same declaration for a backfill of it, where only what ``run`` says differs."""
        region_id = target.region.id
        # What the operator names the deployment (and labels its pods `app` with).
        deployment_name = job.name if run is None else run.name
        name = f"{target.region.id}-flink-{deployment_name}"
        labels = {**target.labels, "rtdi-flink-job": job.name}
        if run is not None:
            labels["rtdi-flink-backfill"] = run.run_id
        env = [*identity.env]
        if plugins(state):
            env.append({"name": "ENABLE_BUILT_IN_PLUGINS", "value": plugins(state)})
        mounts = [*identity.volume_mounts]
        volumes = [*identity.volumes]
        # The job's Kafka identities: password env from Secrets, trust stores as volumes.
        for role in sorted(access):
            env += access[role].env
            volumes += access[role].volumes
            mounts += access[role].volume_mounts
        ready = [*ready, *(r for a in access.values() for r in a.resources)]
        depends = list(ready)
        if job.sql is not None or job.kind == "archive":
            sql = self._sql(job, region_id, access, registry, args.topology, run)
            cm = k8s.core.v1.ConfigMap(
                f"{name}-sql",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{deployment_name}-sql", namespace=NAMESPACE, labels=labels
                ),
                data={SQL_FILE: sql},
                opts=target.k8s_opts(self, depends_on=ready),
            )
            depends.append(cm)
            mounts.append({"name": "sql", "mountPath": SQL_DIR, "readOnly": True})
            volumes.append({"name": "sql", "configMap": {"name": f"{deployment_name}-sql"}})
            job_spec: dict[str, Any] = {
                "jarURI": RUNNER_JAR,
                "args": ["--sql-file", f"{SQL_DIR}/{SQL_FILE}"],
            }
        else:
            job_spec = {"jarURI": job.jar}
            if job.entry_class:
                job_spec["entryClass"] = job.entry_class
            # A jar names its Kafka source's and sinks' uids after the region, so that a
            # handover savepoint's Kafka state (the old cluster's offsets and transactions) is
            # left unclaimed (handover.py).
            env.append({"name": flip.REGION_ENV, "value": region_id})
        handover = args.handover.get(job.name) if running and run is None else None
        job_spec.update(
            parallelism=job.parallelism if run is None else run.parallelism,
            # A backfill that changes starts over from its range: nothing to carry over.
            upgradeMode=job.upgrade_mode if run is None else "stateless",
            state="running" if running else "suspended",
            **flip.job_fields(handover),
        )
        ha = job.mode == "active-passive"
        selector = {"app": deployment_name, "component": "taskmanager"}
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
        subdir = None if run is None else run.state_dir
        probe = {
            **spec,
            "flinkConfiguration": configuration(job, "x://bucket", state, subdir, run),
        }
        where = f"jobs/flink ({job.name})" if run is None else f"rtdi:backfills ({run.name})"
        issues = list(admission_issues(deployment_name, probe, where))
        if issues:
            raise ConfigError(issues)

        def complete(uri: str) -> dict[str, Any]:
            if handover is not None and not flip.in_bucket(handover.savepoint, uri):
                # Known only once the bucket's name is; a RunError is printed as its message
                # alone by `pulumi up` (program.py), a ConfigError here would be a traceback.
                issue = Issue(
                    args.stack_file,
                    f"{flip.KEY}.{job.name}.savepoint",
                    f"not in this region's flink-state bucket; allowed: a URI under "
                    f"{uri}/ (copy the savepoint there first)",
                    handover.savepoint,
                )
                raise pulumi.RunError(str(issue))
            full: dict[str, Any] = json.loads(json.dumps(spec))
            full["flinkConfiguration"] = configuration(job, uri, state, subdir, run)
            return full

        deployment = k8s.apiextensions.CustomResource(
            name,
            api_version=API,
            kind="FlinkDeployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=deployment_name, namespace=NAMESPACE, labels=labels
            ),
            spec=state.uri.apply(complete),
            opts=pulumi.ResourceOptions.merge(
                target.k8s_opts(self, depends_on=depends),
                # An active-passive job's running and suspended spells are distinct resources:
                # see handover.py for why an in-place change of job.state is never safe.
                pulumi.ResourceOptions(
                    replace_on_changes=flip.REPLACE_ON_CHANGES, delete_before_replace=True
                )
                if job.mode == "active-passive" and run is None
                else None,
            ),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-tm-pdb",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{deployment_name}-taskmanager", namespace=NAMESPACE, labels=labels
            ),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
            ),
            opts=target.k8s_opts(self, depends_on=ready[:1]),
        )
        return deployment
