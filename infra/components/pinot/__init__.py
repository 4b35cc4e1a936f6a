"""The Pinot layer of one region (paper 4.3): real-time OLAP over the region's aggregate cluster.

Declared from apache/pinot's Helm chart (pinned in infra/versions.py):

* one release ``pinot``: ZooKeeper (the chart's StatefulSet of the official image), controllers,
  brokers and stateless minions, one of each per zone and kept one per zone by a required
  zone anti-affinity (the chart exposes ``affinity``, not topologySpreadConstraints);
* one release per server pool and zone, ``pinot-<pool>-<zone index>``, holding only servers
  (the chart has one server StatefulSet per release, so pools and zones are releases; their
  controller and broker StatefulSets are scaled to 0 and ZooKeeper points at the main
  release's). Each is pinned to its zone (``nodeSelector``; its volumes are zonal anyway) on its
  pool's storage class: ``hot`` on the region's SSD class, ``cold`` on `Target.cold_storage_class`;
* PodDisruptionBudgets: the chart's for controllers, brokers and minions, rtdi's for ZooKeeper
  (the chart has none) and one over every server of the region (a budget per release would let a
  drain take a server in each zone at once, i.e. every replica of a segment);
* the deep store on the region's ``pinot-deep-store`` bucket through the PinotFS the target
  names (`Target.segment_store`), reached as the ``pinot`` service account's workload identity;
* the servers' own Kafka identity on the aggregate cluster (`KafkaLayer.access`), Read on the
  physical topics the region's tables consume;
* a ConfigMap with every schema and table (`infra.topology.pinot.render_schema`/`render_table`)
  and a Job, named after a hash of it, that applies them to the controller and places every
  server in its pool's tenant and its zone's instance pool (apply_tables.py).

Replica groups follow zones: the servers of zone *i* form instance pool *i*, and tables assign
one replica group per pool (``tagPoolConfig.poolBased``, ``numPools`` = replication), so a zone
lost leaves a replica of every segment in each other zone. Realtime segments are committed with
the committing server uploading them to the deep store itself and served to peers over HTTP
(``peerSegmentDownloadScheme``) whenever replication is at least 2.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import versions
from infra.components.kafka.access import KafkaAccess, KafkaGrant
from infra.components.kafka.flows import federation_registry, topic_allowed
from infra.targets.base import ZONE_LABEL, SegmentStore, Target, WorkloadIdentity
from infra.topology.errors import ConfigError, Issue
from infra.topology.model import Kafka, Topology
from infra.topology.pinot import (
    PinotStream,
    PinotTable,
    render_schema,
    render_table,
    stream_topics,
    table_regions,
)

NAMESPACE = "pinot"
RELEASE = "pinot"
SERVICE_ACCOUNT = "pinot"
# The servers' Kafka principal: one per region (every table of the region is consumed by the
# same servers, so a per-table identity would not separate anything).
PRINCIPAL = "pinot"
CLUSTER_NAME = "rtdi"  # the Helix cluster every component of the region joins
APP = "pinot"  # the chart's `app` label (its name) on every pod of every release
POOLS = ("hot", "cold")
# A pool's Pinot server tenant: its servers carry `<tenant>_REALTIME` (hot only: consuming
# segments) and `<tenant>_OFFLINE`.
TENANTS = {"hot": "hot", "cold": "cold"}
POOL_TAGS = {"hot": ("hot_OFFLINE", "hot_REALTIME"), "cold": ("cold_OFFLINE",)}
SERVERS_PER_ZONE = {"hot": 1, "cold": 1}
# Per server; st1 volumes (AWS's cold class) are at least 125 GiB.
VOLUME_SIZE = {"hot": "100Gi", "cold": "500Gi"}
ZOOKEEPER_REPLICAS = 3  # a quorum survives one member lost
ZOOKEEPER_PORT = 2181
CONTROLLER_PORT = 9000
TABLES_CONFIGMAP = "pinot-tables"
CONFIG_DIR = "/etc/rtdi/pinot"
APPLY_SCRIPT = Path(__file__).with_name("apply_tables.py")
SKIP_AWAIT = "pulumi.com/skipAwait"  # the Kubernetes provider's: do not wait for completion
SEGMENT_FETCHER = "org.apache.pinot.common.utils.fetcher.PinotFSSegmentFetcher"
# Env variables holding a Kafka property with a secret in it (see `pinot_properties`).
ENV_PREFIX = "PINOT_KAFKA_"
_PLACEHOLDER = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
# The chart's own default extra configs (values.yaml), kept since `extra.configs` replaces them.
CHART_CONFIGS = {
    "controller": [
        "pinot.set.instance.id.to.hostname=true",
        "controller.task.scheduler.enabled=true",
    ],
    "broker": [
        "pinot.set.instance.id.to.hostname=true",
        "pinot.query.server.port=7321",
        "pinot.query.runner.port=7732",
    ],
    "server": [
        "pinot.set.instance.id.to.hostname=true",
        "pinot.server.instance.realtime.alloc.offheap=true",
        "pinot.query.server.port=7321",
        "pinot.query.runner.port=7732",
    ],
    "minionStateless": ["pinot.set.instance.id.to.hostname=true"],
}
RESOURCES = {
    "controller": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
    "broker": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "4Gi"}},
    "server": {"requests": {"cpu": "2", "memory": "16Gi"}, "limits": {"memory": "16Gi"}},
    "minionStateless": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
    "zookeeper": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
}
JVM_OPTS = {
    "controller": "-XX:ActiveProcessorCount=2 -Xms1G -Xmx1G -XX:+UseG1GC",
    "broker": "-XX:ActiveProcessorCount=2 -Xms3G -Xmx3G -XX:+UseG1GC",
    # Segments are memory-mapped: the heap is a small part of the server's memory.
    "server": "-Xms4G -Xmx4G -XX:+UseG1GC -XX:MaxGCPauseMillis=200",
    "minionStateless": "-XX:ActiveProcessorCount=2 -Xms1G -Xmx1G -XX:+UseG1GC",
}


@dataclass(frozen=True)
class PinotLayerArgs:
    """What the Pinot layer of a region needs: the tables (from the global stack), the topology
    and Kafka settings to resolve their topics, and how to give the servers their own identity
    on the aggregate cluster (`KafkaLayer.access`: role, grants, parent, depends_on)."""

    tables: Sequence[PinotTable]
    topology: Topology
    kafka: Kafka
    access: Callable[..., dict[str, KafkaAccess]]
    stack_file: str = "stacks"


def server_release(pool: str, zone_index: int) -> str:
    """The Helm release (and so the StatefulSet prefix) of ``pool``'s servers in a zone."""
    return f"{RELEASE}-{pool}-{zone_index}"


def server_statefulset(pool: str, zone_index: int) -> str:
    """The chart's server StatefulSet name: a release name holding the chart's name is its
    full name, and the server's is `<fullname>-server`."""
    return f"{server_release(pool, zone_index)}-server"


def server_pools(zones: Sequence[str]) -> dict[str, Any]:
    """What the apply Job places: each server StatefulSet's pod-name prefix -> its tags and
    instance pool (its zone's index), and how many servers to expect."""
    pools = {
        f"{server_statefulset(pool, i)}-": {"tags": list(POOL_TAGS[pool]), "pool": i, "zone": z}
        for pool in POOLS
        for i, z in enumerate(zones)
    }
    expected = sum(SERVERS_PER_ZONE[p] for p in POOLS) * len(zones)
    return {"pools": pools, "expected": expected}


def deep_store_configs(role: str, store: SegmentStore, uri: str) -> list[str]:
    """The lines of ``role``'s Pinot configuration that put its deep store at ``uri``.

    The controller keeps segments under `controller.data.dir`; servers upload the segments
    they commit to `pinot.server.instance.segment.store.uri` themselves (peer-to-peer commit,
    with `realtime.segment.serverUploadToDeepStore` in the table's stream config) and fetch
    segments with the PinotFS; minions read and write segments through it too."""
    s = store.scheme
    prefix = {"controller": "pinot.controller", "server": "pinot.server"}.get(role, "pinot.minion")
    lines = []
    if role == "controller":
        lines += [
            f"controller.data.dir={uri}",
            "controller.local.temp.dir=/var/pinot/controller/data/tmp",
            # A segment committed while the deep store was down (its servers serve it to peers)
            # is uploaded from a server holding it once the store is back (off by default).
            "controller.realtime.segment.deepStoreUploadRetryEnabled=true",
        ]
    elif role == "server":
        lines.append(f"pinot.server.instance.segment.store.uri={uri}")
    lines.append(f"{prefix}.storage.factory.class.{s}={store.pinot_fs}")
    lines += [f"{prefix}.storage.factory.{s}.{k}={v}" for k, v in sorted(store.config.items())]
    lines += [
        f"{prefix}.segment.fetcher.protocols=file,http,{s}",
        f"{prefix}.segment.fetcher.{s}.class={SEGMENT_FETCHER}",
    ]
    return lines


def pinot_properties(props: Mapping[str, str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Kafka client properties as a Pinot stream config may hold them, and the env that fills
    them.

    Pinot replaces a table config value that is exactly ``${NAME}`` with the env variable
    NAME of the process reading it (ConfigUtils.applyConfigWithEnvVariablesAndSystemProperties,
    on every read of the config from ZooKeeper), and nothing inside a longer value. So a
    property holding a ``${env:NAME}`` placeholder (the SCRAM JAAS line with its password)
    becomes ``${PINOT_KAFKA_<KEY>}``, an env variable Kubernetes composes from NAME with
    ``$(NAME)``: the table config, its ConfigMap and ZooKeeper never hold the secret."""
    out: dict[str, str] = {}
    env: list[dict[str, str]] = []
    for key, value in sorted(props.items()):
        if _PLACEHOLDER.search(value):
            name = ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key).upper()
            env.append({"name": name, "value": _PLACEHOLDER.sub(r"$(\1)", value)})
            out[key] = "${" + name + "}"
        else:
            out[key] = value
    return out, env


def zone_anti_affinity(component: str, release: str, required: bool) -> dict[str, Any]:
    """At most one pod of ``component`` per zone (``required``), or as few as the scheduler
    can (preferred), by the chart's labels."""
    term = {
        "topologyKey": ZONE_LABEL,
        "labelSelector": {"matchLabels": {"app": APP, "release": release, "component": component}},
    }
    if required:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": term}
            ]
        }
    }


@dataclass(frozen=True)
class PodWiring:
    """What every Pinot process needs besides the chart: env (deep store credentials, Kafka
    secrets), volumes and mounts (Hadoop configuration, Kafka trust store)."""

    env: pulumi.Output[list[dict]]
    volumes: list[dict]
    mounts: list[dict]


def component_values(
    component: str, wiring: PodWiring, configs: Sequence[pulumi.Input[str]]
) -> dict[str, Any]:
    """Values every Pinot component of the chart shares: env, volumes, its configuration."""
    return {
        "extraEnv": wiring.env.apply(
            lambda env: [{"name": "LOG4J_CONSOLE_LEVEL", "value": "info"}, *env]
        ),
        "persistence": {"extraVolumes": wiring.volumes, "extraVolumeMounts": wiring.mounts},
        "extra": {"configs": pulumi.Output.all(*configs).apply(lambda c: "\n".join(c))},
        "resources": RESOURCES[component],
        "jvmOpts": JVM_OPTS[component],
    }


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged into it, maps key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class PinotLayer(pulumi.ComponentResource):
    def __init__(
        self, target: Target, args: PinotLayerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        name = f"{target.region.id}-pinot"
        super().__init__("rtdi:pinot:Pinot", name, None, opts)
        region = target.region
        zones = list(region.zones)
        mine = [t for t in args.tables if region.id in table_regions(t, args.topology)]
        self._check(mine, args, region.id)
        deep = target.bucket("pinot-deep-store")
        store = target.segment_store(deep)
        ns = k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=target.labels),
            opts=target.k8s_opts(self),
        )
        identity = target.workload_identity(
            name, NAMESPACE, SERVICE_ACCOUNT, [deep], parent=self, depends_on=[ns]
        )
        sa = target.service_account(f"{name}-sa", identity, self, [ns])
        registry = federation_registry(args.topology, args.kafka)
        topics = {t.name: stream_topics(t, registry, region.id) for t in mine}
        reads = sorted({n for names in topics.values() for n in names})
        access: KafkaAccess | None = None
        if reads:
            grant = KafkaGrant(principal=PRINCIPAL, identity=identity, read_topics=tuple(reads))
            access = args.access("aggregate", [grant], self, [ns])[PRINCIPAL]
        empty: pulumi.Output[dict[str, str]] = pulumi.Output.from_input({})
        props = pulumi.Output.from_input(access.properties if access else empty)
        stream_props = props.apply(lambda p: pinot_properties(p)[0])
        wiring = self._wiring(identity, access, props)
        ready: list[pulumi.Resource] = [ns, sa, *identity.resources]
        if access is not None:
            ready += list(access.resources)
        uri = deep.uri
        image_repo, _, image_tag = target.sources.image(
            f"{versions.PINOT_IMAGE}:{versions.PINOT_VERSION}"
        ).rpartition(":")
        zk_repo, _, zk_tag = target.sources.image(
            f"{versions.ZOOKEEPER_IMAGE}:{versions.ZOOKEEPER_VERSION}"
        ).rpartition(":")
        common = {
            "image": {"repository": image_repo, "tag": image_tag, "pullPolicy": "IfNotPresent"},
            "cluster": {"name": CLUSTER_NAME},
            # rtdi's ServiceAccount, with the workload identity's annotations.
            "serviceAccount": {"create": False, "name": SERVICE_ACCOUNT},
        }
        spread = len(zones)

        def configs(role: str) -> list[pulumi.Input[str]]:
            deep_lines = uri.apply(lambda u: "\n".join(deep_store_configs(role, store, u)))
            return [*CHART_CONFIGS[role], deep_lines]

        main = merge(
            common,
            {
                "controller": merge(
                    component_values("controller", wiring, configs("controller")),
                    {
                        "replicaCount": spread,
                        "pdb": {"enabled": True, "maxUnavailable": 1},
                        "external": {"enabled": False},
                        "persistence": {"storageClass": target.storage_class},
                        "affinity": zone_anti_affinity("controller", RELEASE, True),
                        "probes": {"livenessEnabled": True, "readinessEnabled": True},
                    },
                ),
                "broker": merge(
                    component_values("broker", wiring, CHART_CONFIGS["broker"]),
                    {
                        "replicaCount": spread,
                        "pdb": {"enabled": True, "maxUnavailable": 1},
                        "external": {"enabled": False},
                        "affinity": zone_anti_affinity("broker", RELEASE, True),
                    },
                ),
                # Servers are the pool releases' (see module doc).
                "server": {"replicaCount": 0},
                "minionStateless": merge(
                    component_values("minionStateless", wiring, configs("minionStateless")),
                    {
                        "enabled": True,
                        "replicaCount": spread,
                        "pdb": {"enabled": True, "maxUnavailable": 1},
                        "affinity": zone_anti_affinity("minion-stateless", RELEASE, False),
                    },
                ),
                "zookeeper": {
                    "enabled": True,
                    "replicaCount": ZOOKEEPER_REPLICAS,
                    "port": ZOOKEEPER_PORT,
                    "image": {"repository": zk_repo, "tag": zk_tag, "pullPolicy": "IfNotPresent"},
                    "resources": RESOURCES["zookeeper"],
                    "heapSize": "1024",
                    "persistence": {"enabled": True, "storageClass": target.storage_class},
                    # One member per zone where there are enough zones: a zone lost keeps the
                    # quorum.
                    "affinity": zone_anti_affinity(
                        "zookeeper", RELEASE, spread >= ZOOKEEPER_REPLICAS
                    ),
                },
            },
        )
        chart = target.sources.release_args(versions.PINOT_CHART_NAME)
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        self.releases[RELEASE] = k8s.helm.v3.Release(
            name,
            k8s.helm.v3.ReleaseArgs(name=RELEASE, namespace=NAMESPACE, **chart, values=main),
            opts=target.k8s_opts(self, depends_on=ready),
        )
        classes = {"hot": target.storage_class, "cold": target.cold_storage_class()}
        for pool in POOLS:
            for i, zone in enumerate(zones):
                release = server_release(pool, i)
                values = merge(
                    common,
                    {
                        "server": merge(
                            component_values("server", wiring, configs("server")),
                            {
                                "replicaCount": SERVERS_PER_ZONE[pool],
                                "nodeSelector": {ZONE_LABEL: zone},
                                "persistence": {
                                    "storageClass": classes[pool],
                                    "size": VOLUME_SIZE[pool],
                                },
                                # rtdi's budget covers the servers of every release.
                                "pdb": {"enabled": False},
                                "podAnnotations": {"rtdi-pinot-pool": pool},
                                "probes": {"livenessEnabled": True, "readinessEnabled": True},
                            },
                        ),
                        # This release holds servers only: the chart always renders controller
                        # and broker StatefulSets, here with no pods and no public Service.
                        "controller": {
                            "replicaCount": 0,
                            "external": {"enabled": False},
                            "persistence": {"enabled": False},
                        },
                        "broker": {"replicaCount": 0, "external": {"enabled": False}},
                        "minionStateless": {"enabled": False},
                        "zookeeper": {
                            "enabled": False,
                            "urlOverride": f"{RELEASE}-zookeeper:{ZOOKEEPER_PORT}",
                        },
                    },
                )
                self.releases[release] = k8s.helm.v3.Release(
                    f"{target.region.id}-{release}",
                    k8s.helm.v3.ReleaseArgs(
                        name=release, namespace=NAMESPACE, **chart, values=values
                    ),
                    opts=target.k8s_opts(self, depends_on=[*ready, self.releases[RELEASE]]),
                )
        self._budget(f"{name}-zookeeper-pdb", "pinot-zookeeper", target, ns, component="zookeeper")
        self._budget(f"{name}-servers-pdb", "pinot-servers", target, ns, component="server")
        self.tables = self._tables(mine, topics, stream_props, zones, target, ns)
        self.table_names = [t.name for t in mine]
        self.register_outputs({"tables": self.table_names, "deepStore": uri})

    def _check(self, tables: Sequence[PinotTable], args: PinotLayerArgs, region_id: str) -> None:
        """The global stack checked this already; a regional stack refuses a table whose topic
        its region may not hold (an older global stack) rather than consume it."""
        region = args.topology.region(region_id)
        topics = {t.name: t for t in args.kafka.topics}
        for table in tables:
            if table.topic is None:
                continue
            topic = topics.get(table.topic)
            if topic is None or not topic_allowed(args.kafka, topic, region):
                raise ConfigError(
                    [
                        Issue(
                            f"jobs/pinot ({table.name})",
                            "topic",
                            f"not a topic region {region_id} may hold; allowed: topics of its "
                            "data classes",
                            table.topic,
                        )
                    ]
                )

    def _wiring(
        self,
        identity: WorkloadIdentity,
        access: KafkaAccess | None,
        props: pulumi.Output[dict[str, str]],
    ) -> PodWiring:
        """Env, volumes and mounts of every Pinot process: each reads table configs (and so
        needs every ``${...}`` of their stream configs resolvable), the controller and servers
        reach Kafka and the deep store, and Pinot reads the deep store's credentials from the
        environment of its process."""
        env = [*identity.env]
        volumes = [*identity.volumes]
        mounts = [*identity.volume_mounts]
        if access is not None:
            env += access.env
            volumes += access.volumes
            mounts += access.volume_mounts
        # After the variables they compose (Kubernetes expands $(NAME) of earlier ones only).
        full = pulumi.Output.all(env, props).apply(lambda a: [*a[0], *pinot_properties(a[1])[1]])
        return PodWiring(env=full, volumes=volumes, mounts=mounts)

    def _budget(
        self, resource: str, name: str, target: Target, ns: pulumi.Resource, component: str
    ) -> None:
        """At most one pod of ``component`` (every release's) down at a time."""
        k8s.policy.v1.PodDisruptionBudget(
            resource,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name, namespace=NAMESPACE, labels=target.labels
            ),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"app": APP, "component": component}
                ),
            ),
            opts=target.k8s_opts(self, depends_on=[ns]),
        )

    def _tables(
        self,
        tables: Sequence[PinotTable],
        topics: Mapping[str, tuple[str, ...]],
        stream_props: pulumi.Output[dict[str, str]],
        zones: Sequence[str],
        target: Target,
        ns: pulumi.Resource,
    ) -> pulumi.Output[dict[str, str]]:
        """The ConfigMap of schemas and tables and the Job that applies them (module doc)."""

        def data(props: dict[str, str]) -> dict[str, str]:
            out = {
                "apply_tables.py": APPLY_SCRIPT.read_text(),
                "servers.json": _json(server_pools(zones)),
            }
            for table in tables:
                stream = PinotStream(
                    topics=topics[table.name],
                    consumer_properties=props if table.topic is not None else {},
                    server_tags=TENANTS,
                    replication=len(zones),
                )
                out[f"schema.{table.name}.json"] = _json(render_schema(table))
                for config in render_table(table, stream):
                    key = f"table.{config['tableName']}_{config['tableType']}.json"
                    out[key] = _json(config)
            return out

        contents = stream_props.apply(data)
        cm = k8s.core.v1.ConfigMap(
            f"{target.region.id}-pinot-tables",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TABLES_CONFIGMAP, namespace=NAMESPACE, labels=target.labels
            ),
            data=contents,
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        digest = contents.apply(lambda d: hashlib.sha256(_json(d).encode()).hexdigest()[:10])
        image = target.sources.image(versions.PINOT_APPLY_IMAGE)
        k8s.batch.v1.Job(
            f"{target.region.id}-pinot-apply",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                # A new name for every change of the ConfigMap: a Job runs once, so a changed
                # layout is a new Job (the old one is deleted when it is replaced).
                name=digest.apply(lambda d: f"pinot-apply-{d}"),
                namespace=NAMESPACE,
                labels=target.labels,
                # `pulumi up` waits for the Job to succeed, as it waits for the releases; a site
                # that does not wait for readiness (`rtdi:helm.wait: false`) waits for neither.
                annotations=None if target.sources.helm.wait else {SKIP_AWAIT: "true"},
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=6,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=target.labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="OnFailure",
                        automount_service_account_token=False,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="apply",
                                image=image,
                                command=["python3", f"{CONFIG_DIR}/apply_tables.py"],
                                env=[
                                    k8s.core.v1.EnvVarArgs(
                                        name="RTDI_PINOT_CONTROLLER",
                                        value=f"http://{RELEASE}-controller.{NAMESPACE}.svc:"
                                        f"{CONTROLLER_PORT}",
                                    ),
                                    k8s.core.v1.EnvVarArgs(
                                        name="RTDI_PINOT_CONFIG", value=CONFIG_DIR
                                    ),
                                ],
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="config", mount_path=CONFIG_DIR, read_only=True
                                    )
                                ],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "100m", "memory": "128Mi"},
                                    limits={"memory": "128Mi"},
                                ),
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="config",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                                    name=TABLES_CONFIGMAP
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=target.k8s_opts(self, depends_on=[cm, *self.releases.values()]),
        )
        return contents


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)
