"""The offset sync job (paper section 6, the offset management service), declared per region.

An active-passive consumer group (a topic's consumer group marked `mode: active-passive`, or the
group `flink-<job>` of an active-passive Flink job) consumes only in the primary region's
aggregate cluster. So that it resumes elsewhere after a primary flip with nothing lost, every
other region runs `jobs/offset-sync/`: it translates the group's committed offsets from the
primary's aggregate into its own through MirrorMaker 2's offset syncs (both aggregates copy the
same regional topics; see the job's class comment for the two steps) and commits them here,
only while the group is inactive here and only forward.

What the job reads is its own Kafka identity on this region's aggregate (`KafkaLayer.access`):
the groups' topics (`<source region>.<topic>`), MirrorMaker 2's offset-syncs topics of those
sources, and Read on the groups (Kafka's Read implies Describe; MSK gets AlterGroup and
DescribeGroup). The primary's aggregate is in another region, which rtdi does not yet expose to
workloads there: its client properties (address, credentials) come from the Secret
`offset-sync-primary` (key `primary.properties`, `primary.cluster.*` lines) that the operator
provides (an optional volume: until it exists the pod runs and waits). `sync_properties`
writes the same file for the DR drill's `--once` run, which reaches both clusters from where it
runs.

Flows a cloud replicator fills (the MSK Replicator, between two MSK clusters) keep no
MirrorMaker 2 offset syncs: the job reports their partitions untranslated, with the reason
(`replicated_sources` names them).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.components.kafka.access import KafkaAccess, KafkaGrant
from infra.components.kafka.flows import topic_allowed
from infra.targets.base import Target
from infra.topology.jobs import Job
from infra.topology.model import Kafka, Topology

NAMESPACE = "offset-sync"
APP = "offset-sync"
PRINCIPAL = "offset-sync"
CONFIG_DIR = "/etc/rtdi/offset-sync"
CONFIG_FILE = "offset-sync.properties"
PRIMARY_SECRET = "offset-sync-primary"
PRIMARY_KEY = "primary.properties"
PRIMARY_DIR = "/etc/rtdi/offset-sync-primary"
HEALTH_PORT = 8080
# MirrorMaker 2 emits checkpoints and syncs group offsets every 30 s (mirror.py); the job keeps
# the same pace, so a flip finds offsets no older than MirrorMaker 2's own sync would leave.
INTERVAL_SECONDS = 30
CONFIG_HASH = "rtdi.io/config-sha256"
SKIP_AWAIT = "pulumi.com/skipAwait"  # the Kubernetes provider's: do not wait for readiness
RUN_AS = 10001  # the image's USER (jobs/offset-sync/Dockerfile)


def flink_group(job: Job) -> str:
    """The Flink job's consumer group (`infra.components.flink.group_id`), named here so that
    this module does not import the Flink layer."""
    return f"flink-{job.name}"


@dataclass(frozen=True)
class SyncedGroup:
    """An active-passive consumer group and the logical topics it consumes."""

    name: str
    topics: tuple[str, ...]


def active_passive_groups(kafka: Kafka, jobs: Sequence[Job]) -> list[SyncedGroup]:
    """Every group the topology marks active-passive, and each active-passive Flink job's,
    sorted by name; a group listed under several topics consumes them all."""
    topics: dict[str, set[str]] = {}
    for topic in kafka.topics:
        for group in topic.consumer_groups:
            if group.mode == "active-passive":
                topics.setdefault(group.name, set()).add(topic.name)
    for job in jobs:
        if job.mode == "active-passive" and job.sources:
            topics.setdefault(flink_group(job), set()).update(t.topic for t in job.sources)
    return [SyncedGroup(g, tuple(sorted(t))) for g, t in sorted(topics.items())]


def consumed_topics(
    group: SyncedGroup, region_id: str, registry: Mapping[str, Any]
) -> tuple[str, ...]:
    """The physical topics ``group`` consumes on ``region_id``'s aggregate, as the federation
    registry resolves them (`<source region>.<topic>`); none where the region may not hold it."""
    out: set[str] = set()
    for topic in group.topics:
        regions = registry["topics"][topic]["regions"]
        if region_id in regions:
            out.update(regions[region_id]["consume"]["topics"])
    return tuple(sorted(out))


def offset_syncs_topic(source_region: str) -> str:
    """Where MirrorMaker 2 keeps the offset syncs of a source, on the target cluster
    (`offset-syncs.topic.location: target`): DefaultReplicationPolicy's name."""
    return f"mm2-offset-syncs.{source_region}.internal"


def source_of(physical: str, topology: Topology) -> str:
    """The source region of an aggregate's copy `<source region>.<topic>`."""
    return next(r for r in topology.region_ids if physical.startswith(f"{r}."))


def replicated_sources(topology: Topology, region_id: str) -> set[str]:
    """Sources whose copies on ``region_id``'s aggregate a cloud replicator fills, not
    MirrorMaker 2 (see `Engine.replicates_from`)."""
    from infra.components.kafka.engines import engine_of

    aggregate = engine_of(topology.region(region_id).kafka.aggregate)
    return {
        r.id for r in topology.regions if aggregate.replicates_from(engine_of(r.kafka.regional))
    }


def _escape(text: str) -> str:
    """A value as java.util.Properties reads it back."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def sync_properties(
    groups: Iterable[str],
    primary: str | None,
    local: str,
    local_client: Mapping[str, str],
    primary_client: Mapping[str, str] | None = None,
) -> str:
    """The job's `--config` file: the groups, the two regions, and each aggregate's client
    properties (``${env:NAME}`` placeholders are filled by the job from its environment).
    Without ``primary_client`` the primary's side comes from another file (the Secret); without
    ``primary`` the region comes from `--primary-region` (the Deployment's args)."""
    lines = [
        "# rtdi's offset sync job (jobs/offset-sync/), from infra/components/kafka/offset_sync.py",
        f"groups={_escape(','.join(groups))}",
        *([f"primary.region={_escape(primary)}"] if primary else []),
        f"local.region={_escape(local)}",
    ]
    for side, client in (("local", local_client), ("primary", primary_client or {})):
        lines += [f"{side}.cluster.{k}={_escape(v)}" for k, v in sorted(client.items())]
    return "\n".join(lines) + "\n"


# The job's jar as `make offset-sync-jar` builds it (jobs/offset-sync/).
JAR = (
    Path(__file__).resolve().parents[3] / "jobs" / "offset-sync" / "target" / "rtdi-offset-sync.jar"
)


class SyncFailed(Exception):
    """The job refused its input (exit 2) or its pass failed (exit 1): its one line."""

    def __init__(self, code: int, line: str):
        super().__init__(line)
        self.code = code


def run_once(properties: str, jar: Path = JAR, java: str = "java", timeout: float = 180) -> dict:
    """One pass of the job over ``properties`` (a `sync_properties` text whose clusters are both
    reachable from here): its JSON report, per group and partition the primary's committed
    (source) offset, the regional offset it maps to, the translated offset, the offset it replaced
    here and whether it was committed (with the reason when not). What the DR drill's "sync
    offsets" step calls."""
    with tempfile.NamedTemporaryFile("w", suffix=".properties", delete=False) as f:
        f.write(properties)
    try:
        done = subprocess.run(
            [java, "-jar", str(jar), "--config", f.name, "--once"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() if x.startswith("offset-sync: ")]
        raise SyncFailed(done.returncode, lines[-1] if lines else done.stderr.strip()[-500:])
    report: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return report


AccessFn = Callable[..., dict[str, KafkaAccess]]


class OffsetSync(pulumi.ComponentResource):
    """The offset sync job of one region: its namespace, service account, Kafka identity, config
    and Deployment, running in every region but the primary. In the primary it is declared at
    zero replicas, so that a flip changes the primary's name and two replica counts, and keeps
    every identity (a new `KafkaUser` would mint a new password each flip). Declares nothing
    where no group is active-passive."""

    def __init__(
        self,
        name: str,
        target: Target,
        topology: Topology,
        kafka: Kafka,
        registry: Mapping[str, Any],
        jobs: Sequence[Job],
        access: AccessFn,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rtdi:kafka:OffsetSync", name, None, opts)
        region = target.region
        self.deployment: k8s.apps.v1.Deployment | None = None
        self.groups: dict[str, tuple[str, ...]] = {}
        primary = topology.region(topology.primary)
        for group in active_passive_groups(kafka, jobs):
            # A group fails over only over what both regions hold.
            held = [
                t
                for t in group.topics
                if topic_allowed(kafka, next(x for x in kafka.topics if x.name == t), primary)
            ]
            topics = consumed_topics(SyncedGroup(group.name, tuple(held)), region.id, registry)
            if topics:
                self.groups[group.name] = topics
        if not self.groups:
            self.register_outputs({})
            return
        read = sorted({t for ts in self.groups.values() for t in ts})
        syncs = sorted({offset_syncs_topic(source_of(t, topology)) for t in read})
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=target.labels),
            opts=target.k8s_opts(self),
        )
        identity = target.workload_identity(
            f"{region.id}-{APP}", NAMESPACE, APP, [], parent=self, depends_on=[ns]
        )
        # The pod talks to Kafka only; no Kubernetes API token in it.
        sa = target.service_account(f"{name}-sa", identity, self, [ns], automount_token=False)
        self.grant = KafkaGrant(
            principal=PRINCIPAL,
            identity=identity,
            read_topics=tuple(read + syncs),
            groups=tuple(self.groups),
        )
        mine = access("aggregate", [self.grant], self, [ns])[PRINCIPAL]
        config = mine.properties.apply(
            lambda props: sync_properties(self.groups, None, region.id, props)
        )
        labels = {**target.labels, "app.kubernetes.io/name": APP}
        config_hash = config.apply(lambda text: hashlib.sha256(text.encode()).hexdigest())
        cm = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=NAMESPACE, labels=labels),
            data={CONFIG_FILE: config},
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        env = [*identity.env, *mine.env]
        volumes = [
            *identity.volumes,
            *mine.volumes,
            {"name": "config", "configMap": {"name": APP}},
            # Optional: the pod starts without it and waits, not ready, until the operator
            # creates it (the job reads the file again every pass).
            {"name": "primary", "secret": {"secretName": PRIMARY_SECRET, "optional": True}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ]
        mounts = [
            *identity.volume_mounts,
            *mine.volume_mounts,
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "primary", "mountPath": PRIMARY_DIR, "readOnly": True},
            # Kafka's compression codecs unpack their native libraries into /tmp.
            {"name": "tmp", "mountPath": "/tmp"},
        ]
        probe = {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 30}
        spec: Any = {
            # One writer of a group's offsets at a time: never two pods, even while rolling.
            "replicas": 0 if region.id == topology.primary else 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": APP}},
            "template": {
                # A new config rolls the pod: it reads its files once, at start.
                "metadata": {"labels": labels, "annotations": {CONFIG_HASH: config_hash}},
                "spec": {
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
                            "name": APP,
                            "image": target.sources.image(versions.OFFSET_SYNC_IMAGE),
                            "args": [
                                "--config",
                                f"{CONFIG_DIR}/{CONFIG_FILE}",
                                "--primary-config",
                                f"{PRIMARY_DIR}/{PRIMARY_KEY}",
                                "--primary-region",
                                topology.primary,
                                "--interval-seconds",
                                str(INTERVAL_SECONDS),
                                "--health-port",
                                str(HEALTH_PORT),
                            ],
                            "env": env,
                            "ports": [{"name": "health", "containerPort": HEALTH_PORT}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "384Mi"},
                                "limits": {"memory": "384Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            # A pass reads every offset-syncs topic once at start: give it
                            # a few passes before liveness counts.
                            "startupProbe": {**probe, "failureThreshold": 10},
                            "livenessProbe": {**probe, "failureThreshold": 3},
                            "readinessProbe": probe,
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        }
        # `pulumi up` waits for the rollout as for the Helm releases (`rtdi:helm.wait`): ready
        # means the job runs its passes, waiting for the primary's Secret included (its own
        # /readyz says whether it translated), so a first deployment converges without it.
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=APP,
                namespace=NAMESPACE,
                labels=labels,
                annotations=None if target.sources.helm.wait else {SKIP_AWAIT: "true"},
            ),
            spec=spec,
            opts=target.k8s_opts(
                self, depends_on=[ns, sa, cm, *identity.resources, *mine.resources]
            ),
        )
        self.register_outputs({"groups": {g: list(t) for g, t in self.groups.items()}})
