"""The query engines a region may run (paper 4.5): Trino (the default) and Presto.

An engine object answers everything that differs between them: its chart and image, its catalog
properties (the names change with the engine and its version), the SQL types and DDL of the
archive's tables, and how its CLI runs a script. The query component asks it and never compares
engine names, as the Kafka layer asks `infra/components/kafka/engines.py`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from infra import versions
from infra.targets.base import Bucket

# The archive's columns (the contract with the archival job, infra/components/flink): exact and
# schema-agnostic; `dt` and `hr` are the partitions, from the record's Kafka timestamp in UTC.
ARCHIVE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "varbinary"),
    ("value", "varbinary"),
    ("headers", "map(varchar, varbinary)"),
    ("kafka_partition", "integer"),
    ("kafka_offset", "bigint"),
    ("kafka_timestamp", "timestamp(3)"),
)
PARTITIONS = ("dt", "hr")
ARCHIVE_SCHEMA = "kafka"  # the archive catalog's schema holding one table per aggregate topic


@dataclass(frozen=True)
class Endpoints:
    """Where a region's catalogs point: the metastore's Thrift URI and the Pinot controller."""

    metastore: str
    pinot_controller: str


def properties(props: Mapping[str, str]) -> str:
    """A catalog file's text: one ``key=value`` per line, sorted, as the charts mount it."""
    return "".join(f"{k}={v}\n" for k, v in sorted(props.items()))


def parse_properties(text: str) -> dict[str, str]:
    """The inverse of `properties` (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


class QueryEngine(abc.ABC):
    """What differs between engines; one subclass per engine, chosen by `engine_of`."""

    name: ClassVar[str]
    chart_name: ClassVar[str]
    image: ClassVar[str]
    version: ClassVar[str]
    port: ClassVar[int] = 8080
    # The Hive metastore version whose Thrift API the engine's Hive connector speaks.
    metastore_version: ClassVar[str] = versions.HIVE_METASTORE_VERSION
    # The engine's spelling of the archive's column types (a table's DDL).
    types: ClassVar[Mapping[str, str]] = {}

    @abc.abstractmethod
    def filesystem(self, bucket: Bucket) -> dict[str, str]:
        """The Hive catalog's file-system properties for the archive in ``bucket``."""

    @abc.abstractmethod
    def hive_catalog(self, bucket: Bucket, endpoints: Endpoints) -> dict[str, str]:
        """The `archive` catalog: Hive over the archive bucket with the region's metastore."""

    @abc.abstractmethod
    def pinot_catalog(self, endpoints: Endpoints) -> dict[str, str]:
        """The `pinot` catalog: the region's own Pinot controller."""

    @abc.abstractmethod
    def values(
        self,
        image: str,
        catalogs: Mapping[str, str],
        service_account: str,
        env: Sequence[dict],
        volumes: Sequence[dict],
        mounts: Sequence[dict],
        workers: int,
    ) -> dict[str, Any]:
        """The chart's values: the engine's image, catalogs, service account and identity."""

    @abc.abstractmethod
    def cli(self, server: str, script: str) -> list[str]:
        """The command (in the engine's image) that runs ``script`` against ``server``."""

    def service(self, release: str, namespace: str) -> str:
        """The coordinator's in-cluster address: the chart names its Service after the release."""
        return f"http://{release}.{namespace}.svc.cluster.local:{self.port}"

    def catalogs(self, bucket: Bucket, endpoints: Endpoints) -> dict[str, dict[str, str]]:
        """Every catalog the region's engine gets, by name; residency is decided by the caller
        (which tables the archive holds), the catalogs only point at the region's own stores."""
        return {
            "archive": self.hive_catalog(bucket, endpoints),
            "pinot": self.pinot_catalog(endpoints),
        }

    def column_type(self, sql_type: str) -> str:
        return self.types.get(sql_type, sql_type)

    def archive_sql(self, location_root: str, tables: Sequence[tuple[str, str]]) -> str:
        """The idempotent script that declares the archive's tables and registers the hourly
        partitions written since it last ran: ``tables`` is (table name, location URI)."""
        # The root with its slash: Trino refuses a bare `s3://bucket` as a location.
        root = location_root.rstrip("/") + "/"
        parts = [
            f"CREATE SCHEMA IF NOT EXISTS archive.{ARCHIVE_SCHEMA} WITH (location = '{root}');"
        ]
        for table, location in tables:
            columns = [f"  {name} {self.column_type(t)}" for name, t in ARCHIVE_COLUMNS]
            columns += [f"  {p} varchar" for p in PARTITIONS]
            body = ",\n".join(columns)
            parts.append(
                f"CREATE TABLE IF NOT EXISTS archive.{ARCHIVE_SCHEMA}.{table} (\n{body}\n) WITH (\n"
                f"  external_location = '{location}',\n  format = 'PARQUET',\n"
                f"  partitioned_by = ARRAY['dt', 'hr']\n);"
            )
            parts.append(
                f"CALL archive.system.sync_partition_metadata('{ARCHIVE_SCHEMA}', '{table}', "
                "'FULL');"
            )
        return "\n".join(parts) + "\n"


def trino_fs_switch(kind: str, version: str) -> str:
    """The property that turns on Trino's native file system ``kind`` (s3, gcs, azure): Trino 481
    renamed `fs.native-<kind>.enabled` to `fs.<kind>.enabled`; older versions refuse the new
    name and newer ones the old one, so it follows the pinned version."""
    return f"fs.{kind}.enabled" if int(version) >= 481 else f"fs.native-{kind}.enabled"


class Trino(QueryEngine):
    name = "trino"
    chart_name = versions.TRINO_CHART_NAME
    image = versions.TRINO_IMAGE
    version = versions.TRINO_VERSION

    def filesystem(self, bucket: Bucket) -> dict[str, str]:
        if bucket.scheme == "hdfs":
            # The on-prem Hadoop configuration the target's workload identity mounts.
            return {
                "fs.hadoop.enabled": "true",
                "hive.config.resources": "/etc/hadoop/conf/core-site.xml",
            }
        if bucket.scheme == "gs":
            # Workload Identity: the pod's Google credentials (application default).
            return {trino_fs_switch("gcs", self.version): "true"}
        props = {trino_fs_switch("s3", self.version): "true"}
        if bucket.cloud_region:
            props["s3.region"] = bucket.cloud_region
        if bucket.endpoint:
            # An S3-compatible store: its address, path-style; the keys come from the pod's
            # AWS_* environment (the target's identity), never from this file.
            props["s3.endpoint"] = bucket.endpoint
            props["s3.path-style-access"] = "true"
        return props

    def hive_catalog(self, bucket: Bucket, endpoints: Endpoints) -> dict[str, str]:
        return {
            "connector.name": "hive",
            "hive.metastore": "thrift",
            "hive.metastore.uri": endpoints.metastore,
            "hive.storage-format": "PARQUET",
            # The archive is the archival job's: the engine reads it, never writes into it.
            "hive.non-managed-table-writes-enabled": "false",
            **self.filesystem(bucket),
        }

    def pinot_catalog(self, endpoints: Endpoints) -> dict[str, str]:
        return {"connector.name": "pinot", "pinot.controller-urls": endpoints.pinot_controller}

    def values(self, image, catalogs, service_account, env, volumes, mounts, workers):
        repository, _, tag = image.rpartition(":")
        node = {
            "additionalVolumes": list(volumes),
            "additionalVolumeMounts": list(mounts),
            "resources": {
                "requests": {"cpu": "2", "memory": "8Gi"},
                "limits": {"memory": "8Gi"},
            },
            "jvm": {"maxHeapSize": "6G"},
        }
        return {
            "image": {"repository": repository, "tag": tag},
            "server": {"workers": workers},
            # rtdi's catalogs only: the chart's sample tpch/tpcds catalogs are dropped.
            "catalogs": dict(catalogs),
            "serviceAccount": {"create": False, "name": service_account},
            "env": list(env),
            "coordinator": node,
            "worker": {
                **node,
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        # The chart's worker pod labels (release = the engine's name).
                        "labelSelector": {
                            "matchLabels": {
                                "app.kubernetes.io/name": "trino",
                                "app.kubernetes.io/instance": self.name,
                                "app.kubernetes.io/component": "worker",
                            }
                        },
                    }
                ],
            },
        }

    def cli(self, server: str, script: str) -> list[str]:
        return ["trino", "--server", server, "--file", script]


class Presto(QueryEngine):
    name = "presto"
    chart_name = versions.PRESTO_CHART_NAME
    image = versions.PRESTO_IMAGE
    version = versions.PRESTO_VERSION
    # Its metastore client calls `get_table`, which Hive 4 no longer serves.
    metastore_version = versions.HIVE_METASTORE_PRESTO_VERSION
    # Presto has no timestamp precision: its timestamp is milliseconds, the archive's precision.
    types = {"timestamp(3)": "timestamp"}

    def filesystem(self, bucket: Bucket) -> dict[str, str]:
        if bucket.scheme == "hdfs":
            return {"hive.config.resources": "/etc/hadoop/conf/core-site.xml"}
        if bucket.scheme == "gs":
            return {}  # the Hadoop GCS connector with the pod's application default credentials
        # Not the instance profile (its default) but the SDK's default chain: IRSA's web
        # identity on AWS, the pod's AWS_* keys on an S3-compatible store.
        props = {"hive.s3.use-instance-credentials": "false"}
        if bucket.endpoint:
            props["hive.s3.endpoint"] = bucket.endpoint
            props["hive.s3.path-style-access"] = "true"
        return props

    def hive_catalog(self, bucket: Bucket, endpoints: Endpoints) -> dict[str, str]:
        return {
            "connector.name": "hive-hadoop2",
            "hive.metastore.uri": endpoints.metastore,
            "hive.storage-format": "PARQUET",
            "hive.non-managed-table-writes-enabled": "false",
            **self.filesystem(bucket),
        }

    def pinot_catalog(self, endpoints: Endpoints) -> dict[str, str]:
        return {"connector.name": "pinot", "pinot.controller-urls": endpoints.pinot_controller}

    def values(self, image, catalogs, service_account, env, volumes, mounts, workers):
        repository, _, tag = image.rpartition(":")
        return {
            "image": {"repository": repository, "tag": tag},
            "catalog": dict(catalogs),
            "serviceAccount": {"create": False, "name": service_account},
            "env": list(env),
            "volumes": list(volumes),
            "volumeMounts": list(mounts),
            "worker": {"replicas": workers},
        }

    def cli(self, server: str, script: str) -> list[str]:
        # Presto refuses a table whose external location has no object yet ("External location
        # must be a directory": a topic not archived yet), and its CLI stops at the first
        # failure; --ignore-errors runs every statement (and still exits 1 after a failure), so
        # one idle topic does not keep the others' tables and hours from being registered.
        return [
            "presto-cli",
            "--server",
            server.removeprefix("http://"),
            "--file",
            script,
            "--ignore-errors",
        ]


ENGINES: dict[str, type[QueryEngine]] = {"trino": Trino, "presto": Presto}


def engine_of(name: str) -> QueryEngine:
    """The engine object for a region's ``query.engine`` (the topology allows only these)."""
    return ENGINES[name]()
