"""The query layer of one region (paper 4.4, 4.5): an SQL engine over the region's Pinot and its
Parquet archive.

* the engine from its Helm chart (Trino by default, Presto as the region's ``query.engine``;
  `engines.py` answers everything that differs), running as its own service account with the
  target's workload identity on the region's `archive` bucket (IRSA, Workload Identity, or the
  on-prem keys or Hadoop configuration);
* its catalogs: `pinot`, the region's own Pinot controller, and `archive`, Hive over the archive
  bucket with the region's metastore;
* a standalone Hive metastore (Apache's image, two replicas) over a PostgreSQL database of its
  own (a StatefulSet on the region's block storage). In the cluster rather than a managed
  database per cloud: the same on the three targets, nothing to network or secure outside the
  cluster, and what it holds is derived (table definitions over the archive and its partitions,
  which the partition job below re-registers from the files): losing it costs one run of that job;
* the archive's tables, one per physical aggregate topic (the archive job's
  `infra/components/flink/archive.py`), declared and their new
  hourly partitions registered by an idempotent script the engine's own CLI runs every 15
  minutes (a CronJob): a table appears once its topic exists, an hour once it is written.

Residency: the engine's catalogs point only at the region's own stores, and the archive catalog's
tables are only the region's aggregate topics, which hold only data classes the region's
jurisdiction may hold (`policies/rules/query_catalogs_resident.py` checks what is declared).
No Iceberg catalog: the archive is written by Flink's file sink as plain Parquet in Hive
partitions, not as Iceberg commits, so an Iceberg catalog would have no table to show.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra import versions
from infra.components.flink.archive import ArchiveTable
from infra.components.query.engines import Endpoints, QueryEngine, engine_of, properties
from infra.targets.base import Bucket, Target

NAMESPACE = "query"
SKIP_AWAIT = "pulumi.com/skipAwait"  # the Kubernetes provider's: do not wait for readiness
ENGINE_ACCOUNT = "query-engine"
METASTORE = "hive-metastore"
METASTORE_ACCOUNT = "hive-metastore"
METASTORE_PORT = 9083
DATABASE = "metastore-db"
DATABASE_PORT = 5432
DATABASE_NAME = "metastore"
DATABASE_USER = "hive"
DATABASE_GIB = 20
SQL_DIR = "/opt/rtdi/sql"
ARCHIVE_SQL = "archive.sql"
PARTITION_SCHEDULE = "*/15 * * * *"
# The Pinot chart's controller Service (release `pinot`, namespace `pinot`; the Pinot layer).
PINOT_CONTROLLER = "pinot-controller.pinot.svc.cluster.local:9000"
WORKERS = 2


@dataclass(frozen=True)
class QueryLayerArgs:
    """The region's engine (its topology's ``query.engine``) and the archive's tables."""

    engine: str
    tables: Sequence[ArchiveTable]


def _meta(name: str, labels: dict[str, str], target: Target) -> k8s.meta.v1.ObjectMetaArgs:
    """An object of the namespace; `pulumi up` waits for it to be ready (a Service for its
    endpoints) exactly when it waits for the Helm releases (`rtdi:helm.wait`), as the other
    layers' workloads do, so a cluster that runs no pods yet still converges."""
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=NAMESPACE,
        labels=labels,
        annotations=None if target.sources.helm.wait else {SKIP_AWAIT: "true"},
    )


def metastore_site(archive: str, endpoint: str | None = None) -> str:
    """metastore-site.xml: the database comes from SERVICE_OPTS (its password from a Secret);
    the warehouse is the archive, and S3A authenticates with the pod's web identity (IRSA),
    which its default provider chain lacks (as Flink's).

    The warehouse ends with `/`: Hive 3 cannot make a path of a bare `s3://bucket` ("Can not
    create a Path from an empty string"). The engines name S3 locations `s3://`, for which
    Hadoop 3 has no file system of its own: the metastore, which checks and creates every
    database, table and partition location, maps it to S3A."""
    props = {
        "metastore.warehouse.dir": archive.rstrip("/") + "/",
        "metastore.thrift.port": str(METASTORE_PORT),
        "fs.s3a.aws.credentials.provider": (
            "com.amazonaws.auth.WebIdentityTokenCredentialsProvider,"
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
        ),
    }
    if archive.startswith("s3://"):
        props["fs.s3.impl"] = "org.apache.hadoop.fs.s3a.S3AFileSystem"
    if archive.startswith("s3://") and endpoint is not None:
        # An S3-compatible store, here and not as -D options: the metastore takes only its own
        # and `hive.` settings from system properties, so Hadoop's would be lost.
        props["fs.s3a.endpoint"] = endpoint
        props["fs.s3a.path.style.access"] = "true"
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
        for k, v in props.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


class QueryLayer(pulumi.ComponentResource):
    def __init__(
        self, target: Target, args: QueryLayerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        name = f"{target.region.id}-query"
        super().__init__("rtdi:query:Query", name, None, opts)
        self.engine: QueryEngine = engine_of(args.engine)
        archive = target.bucket("archive")
        labels = {**target.labels, "app.kubernetes.io/part-of": "rtdi-query"}
        ns = k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NAMESPACE, labels=target.labels),
            opts=target.k8s_opts(self),
        )
        db = self._database(name, target, labels, ns)
        metastore = self._metastore(name, target, archive, labels, ns, db)
        endpoints = Endpoints(
            metastore=f"thrift://{METASTORE}.{NAMESPACE}.svc.cluster.local:{METASTORE_PORT}",
            pinot_controller=PINOT_CONTROLLER,
        )
        self.catalogs = self.engine.catalogs(archive, endpoints)
        # The engine only reads the archive (the Hive connector writes no external table).
        identity = target.workload_identity(
            f"{name}-engine",
            NAMESPACE,
            ENGINE_ACCOUNT,
            [],
            parent=self,
            depends_on=[ns],
            read_only=[archive],
        )
        sa = target.service_account(f"{name}-engine-sa", identity, self, [ns], False)
        release = self.engine.name
        values = self.engine.values(
            target.sources.image(f"{self.engine.image}:{self.engine.version}"),
            {c: properties(p) for c, p in self.catalogs.items()},
            identity.service_account,
            identity.env,
            identity.volumes,
            identity.volume_mounts,
            WORKERS,
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-{release}",
            k8s.helm.v3.ReleaseArgs(
                name=release,
                namespace=NAMESPACE,
                **target.sources.release_args(self.engine.chart_name),
                values=values,
            ),
            opts=target.k8s_opts(self, depends_on=[ns, sa, metastore, *identity.resources]),
        )
        self.coordinator = self.engine.service(release, NAMESPACE)
        self.tables = sorted(args.tables, key=lambda t: t.table)  # a stable script and output
        self._partitions(name, target, archive, labels, ns)
        self.register_outputs({"engine": self.engine.name, "coordinator": self.coordinator})

    @property
    def exported(self) -> dict[str, Any]:
        """The stack's `query` output: the engine, where to reach it, its catalogs and tables."""
        return {
            "engine": self.engine.name,
            "version": self.engine.version,
            "coordinator": self.coordinator,
            "catalogs": sorted(self.catalogs),
            "archiveTables": [t.table for t in self.tables],
        }

    def _database(
        self, name: str, target: Target, labels: dict[str, str], ns: pulumi.Resource
    ) -> list[pulumi.Resource]:
        """The metastore's own PostgreSQL: a StatefulSet with one volume, its password random."""
        password = random.RandomPassword(
            f"{name}-db-password",
            random.RandomPasswordArgs(length=32, special=False),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=random.Provider(
                    f"{name}-random", opts=pulumi.ResourceOptions(parent=self)
                ),
            ),
        )
        value: pulumi.Output[str] = pulumi.Output.secret(password.result)
        secret = k8s.core.v1.Secret(
            f"{name}-db-secret",
            metadata=_meta(DATABASE, labels, target),
            type="Opaque",
            # `data`, not `stringData`: the API server keeps no stringData, so a later
            # `pulumi up` would see it gone and replace the password's Secret every time.
            data={"password": value.apply(lambda t: base64.b64encode(t.encode()).decode())},
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        selector = {"app.kubernetes.io/name": DATABASE}
        # Any: checked against the provider's TypedDicts, such a literal takes mypy
        # gigabytes of memory; the CRD and API schemas are what the tests check.
        database_spec: Any = {
            "serviceName": DATABASE,
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**labels, **selector}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "postgres",
                            "image": target.sources.image(versions.METASTORE_POSTGRES_IMAGE),
                            "ports": [{"name": "postgres", "containerPort": DATABASE_PORT}],
                            "env": [
                                {"name": "POSTGRES_DB", "value": DATABASE_NAME},
                                {"name": "POSTGRES_USER", "value": DATABASE_USER},
                                {
                                    "name": "POSTGRES_PASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": DATABASE, "key": "password"}
                                    },
                                },
                                {"name": "PGDATA", "value": "/var/lib/postgresql/data/pg"},
                            ],
                            "readinessProbe": {
                                "exec": {"command": ["pg_isready", "-U", DATABASE_USER]},
                                "periodSeconds": 10,
                            },
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "512Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/var/lib/postgresql/data"}
                            ],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": target.storage_class,
                        "resources": {"requests": {"storage": f"{DATABASE_GIB}Gi"}},
                    },
                }
            ],
        }
        sts = k8s.apps.v1.StatefulSet(
            f"{name}-db",
            metadata=_meta(DATABASE, labels, target),
            spec=database_spec,
            opts=target.k8s_opts(self, depends_on=[ns, secret]),
        )
        # One replica: the budget makes a drain wait for the metastore's database to move
        # rather than evict it unannounced mid-query.
        svc = self._reached(
            f"{name}-db", DATABASE, labels, selector, "postgres", DATABASE_PORT, target, ns
        )
        return [secret, sts, svc]

    def _metastore(
        self,
        name: str,
        target: Target,
        archive: Bucket,
        labels: dict[str, str],
        ns: pulumi.Resource,
        db: list[pulumi.Resource],
    ) -> pulumi.Resource:
        """Hive's standalone metastore on the region's database, reaching the archive with its
        own workload identity (it checks and creates table locations)."""
        identity = target.workload_identity(
            f"{name}-metastore",
            NAMESPACE,
            METASTORE_ACCOUNT,
            [archive],
            parent=self,
            depends_on=[ns],
        )
        sa = target.service_account(f"{name}-metastore-sa", identity, self, [ns], False)
        conf = k8s.core.v1.ConfigMap(
            f"{name}-metastore-conf",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{METASTORE}-conf", namespace=NAMESPACE, labels=labels
            ),
            data={
                "metastore-site.xml": archive.uri.apply(
                    lambda u: metastore_site(u, archive.endpoint)
                )
            },
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        jdbc = (
            f"jdbc:postgresql://{DATABASE}.{NAMESPACE}.svc.cluster.local:{DATABASE_PORT}/"
            f"{DATABASE_NAME}"
        )
        selector = {"app.kubernetes.io/name": METASTORE}
        env = [
            *identity.env,
            {"name": "SERVICE_NAME", "value": "metastore"},
            {"name": "DB_DRIVER", "value": "postgres"},
            # Hadoop's S3A (hadoop-aws and the AWS SDK bundle) from the image's own Hadoop.
            {"name": "HADOOP_CLASSPATH", "value": "/opt/hadoop/share/hadoop/tools/lib/*"},
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": DATABASE, "key": "password"}},
            },
            {
                "name": "SERVICE_OPTS",
                "value": "-Djavax.jdo.option.ConnectionDriverName=org.postgresql.Driver"
                f" -Djavax.jdo.option.ConnectionURL={jdbc}"
                f" -Djavax.jdo.option.ConnectionUserName={DATABASE_USER}"
                " -Djavax.jdo.option.ConnectionPassword=$(DB_PASSWORD)",
            },
        ]
        metastore_spec: Any = {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**labels, **selector}},
                "spec": {
                    "serviceAccountName": identity.service_account,
                    "containers": [
                        {
                            "name": "metastore",
                            # Apache's image of the engine's Hive plus the JDBC driver and the
                            # GCS connector (jobs/metastore/Dockerfile): nothing fetched at start.
                            "image": target.sources.image(
                                f"{versions.METASTORE_IMAGE_REPOSITORY}:"
                                f"{self.engine.metastore_version}-{versions.METASTORE_IMAGE_REVISION}"
                            ),
                            "ports": [{"name": "thrift", "containerPort": METASTORE_PORT}],
                            "env": env,
                            "readinessProbe": {
                                "tcpSocket": {"port": METASTORE_PORT},
                                "periodSeconds": 10,
                            },
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "2Gi"},
                                "limits": {"memory": "2Gi"},
                            },
                            "volumeMounts": [
                                *identity.volume_mounts,
                                {
                                    "name": "conf",
                                    "mountPath": "/opt/hive/conf/metastore-site.xml",
                                    "subPath": "metastore-site.xml",
                                },
                            ],
                        }
                    ],
                    "volumes": [
                        *identity.volumes,
                        {"name": "conf", "configMap": {"name": f"{METASTORE}-conf"}},
                    ],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector},
                        }
                    ],
                },
            },
        }
        deployment = k8s.apps.v1.Deployment(
            f"{name}-metastore",
            metadata=_meta(METASTORE, labels, target),
            spec=metastore_spec,
            opts=target.k8s_opts(self, depends_on=[ns, sa, conf, *db, *identity.resources]),
        )
        self._reached(
            f"{name}-metastore", METASTORE, labels, selector, "thrift", METASTORE_PORT, target, ns
        )
        return deployment

    def _reached(
        self,
        name: str,
        app: str,
        labels: dict[str, str],
        selector: dict[str, str],
        port_name: str,
        port: int,
        target: Target,
        ns: pulumi.Resource,
    ) -> k8s.core.v1.Service:
        """The Service other pods reach ``app`` by, and the budget that lets a drain take at
        most one of its pods at a time: the database and the metastore alike."""
        svc = k8s.core.v1.Service(
            f"{name}-svc",
            metadata=_meta(app, labels, target),
            spec={"selector": selector, "ports": [{"name": port_name, "port": port}]},
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=_meta(app, labels, target),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
            ),
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        return svc

    def _partitions(
        self,
        name: str,
        target: Target,
        archive: Bucket,
        labels: dict[str, str],
        ns: pulumi.Resource,
    ) -> None:
        """The archive's tables and their partitions: the script in a ConfigMap, run by the
        engine's own CLI every 15 minutes against the coordinator (it is idempotent)."""
        locations = pulumi.Output.all(archive.uri, *[t.location for t in self.tables])
        sql = locations.apply(
            lambda a: self.engine.archive_sql(
                a[0], [(t.table, loc) for t, loc in zip(self.tables, a[1:], strict=True)]
            )
        )
        cm = k8s.core.v1.ConfigMap(
            f"{name}-archive-sql",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="archive-tables", namespace=NAMESPACE, labels=labels
            ),
            data={ARCHIVE_SQL: sql},
            opts=target.k8s_opts(self, depends_on=[ns]),
        )
        partitions_spec: Any = {
            "schedule": PARTITION_SCHEDULE,
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "automountServiceAccountToken": False,
                            "containers": [
                                {
                                    "name": "sync",
                                    "image": target.sources.image(
                                        f"{self.engine.image}:{self.engine.version}"
                                    ),
                                    "command": self.engine.cli(
                                        self.coordinator, f"{SQL_DIR}/{ARCHIVE_SQL}"
                                    ),
                                    "volumeMounts": [
                                        {"name": "sql", "mountPath": SQL_DIR, "readOnly": True}
                                    ],
                                }
                            ],
                            "volumes": [{"name": "sql", "configMap": {"name": "archive-tables"}}],
                        },
                    },
                }
            },
        }
        k8s.batch.v1.CronJob(
            f"{name}-archive-partitions",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="archive-partitions", namespace=NAMESPACE, labels=labels
            ),
            spec=partitions_spec,
            opts=target.k8s_opts(self, depends_on=[ns, cm, self.release]),
        )
