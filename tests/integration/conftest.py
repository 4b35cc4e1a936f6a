"""Real systems the integration tests share, started once per session and ended explicitly.

One KRaft broker (`kafka`), one s3proxy (`s3proxy`) and one HDFS (`hdfs`) serve every test that
needs them: each test creates its own topics, buckets and directories (or recreates the plan's
topics, `fresh_topics`), so starting a system once is all the tests pay. Each fixture skips (a
user's machine) or fails (CI) when its jars are not fetched, and stops its JVM at the end of the
session whatever happened.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flink_local as fl
import hdfs_local
import hive_local
import kafka_jars
import kafka_local as kl
import presto_local
import trino_local


def _timed(what: str, started: float) -> None:
    print(f"\n{what} up in {time.monotonic() - started:.1f} s", flush=True)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory) -> Iterator[kl.Broker]:
    """One single-node KRaft cluster on loopback with Kafka's default broker settings."""
    jars = kl.require_kafka(kafka_jars.fetched())
    started = time.monotonic()
    broker = kl.broker("kafka", tmp_path_factory.mktemp("shared-kafka"), {})
    try:
        kl.start_brokers([broker], jars)
        _timed(f"Kafka on {broker.bootstrap}", started)
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def s3proxy(tmp_path_factory) -> Iterator[fl.S3Proxy]:
    """s3proxy on loopback (from the Flink cache); tests create their own buckets."""
    flink = fl.require_flink()
    started = time.monotonic()
    proxy = fl.start_s3proxy(flink, tmp_path_factory.mktemp("shared-s3proxy"))
    try:
        _timed(f"s3proxy on {proxy.endpoint}", started)
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def hdfs(tmp_path_factory) -> Iterator[hdfs_local.Hdfs]:
    """A NameNode and a DataNode on loopback (hadoop-client-minicluster, a JVM of its own)."""
    hadoop = hdfs_local.require_hadoop()
    started = time.monotonic()
    cluster = hdfs_local.start_hdfs(hadoop, tmp_path_factory.mktemp("shared-hdfs"))
    try:
        _timed(f"HDFS on {cluster.uri}", started)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory) -> Iterator[trino_local.Moto]:
    """moto's S3 server on loopback (PyPI moto[server]); tests create their own buckets."""
    started = time.monotonic()
    server = trino_local.start_moto(tmp_path_factory.mktemp("shared-moto"))
    try:
        _timed(f"moto on {server.endpoint}", started)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def trino(plans, moto, trino_metastore, tmp_path_factory) -> Iterator[trino_local.Trino]:
    """One Trino server with the catalogs rtdi plans for the query test's region (endpoints and
    credentials rewritten to loopback: `trino_local.loopback_catalogs` says which keys), its
    archive catalog on the region's planned Hive metastore (`trino_metastore`)."""
    trino_local.require_trino()
    region = trino_local.REGION
    catalogs = trino_local.planned_catalogs(plans[region], region)
    server = trino_local.start_trino(
        tmp_path_factory.mktemp("shared-trino"),
        trino_local.loopback_catalogs(catalogs, moto.endpoint, trino_metastore.uri),
    )
    try:
        print(f"\nTrino on {server.url} up in {server.started_in:.1f} s", flush=True)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def presto_plan(plans):
    """The Presto test's region planned with `query: {engine: presto}` (no sample stack is)."""
    from plantools import with_engine

    return with_engine(plans, presto_local.REGION, "presto")


def _metastore(plan, region: str, version: str, moto, folder) -> Iterator[hive_local.Metastore]:
    """The Hive metastore ``version`` with ``region``'s planned metastore-site.xml (endpoints
    and credentials rewritten: `hive_local.REWRITTEN`) on moto, Derby inside."""
    from kafka_local import free_port

    hive_local.require_metastore(version)
    site = hive_local.planned_site(plan, region)
    # The warehouse's bucket exists before the metastore starts (the plan's archive bucket).
    warehouse = site["metastore.warehouse.dir"].split("://", 1)[1].split("/", 1)[0]
    if warehouse not in {b["Name"] for b in moto.client().list_buckets()["Buckets"]}:
        moto.client().create_bucket(Bucket=warehouse)
    metastore = hive_local.start_metastore(
        version, folder, hive_local.loopback_site(site, moto.endpoint, free_port())
    )
    try:
        print(
            f"\nHive metastore {version} on {metastore.uri} up in {metastore.started_in:.1f} s",
            flush=True,
        )
        yield metastore
    finally:
        metastore.stop()


@pytest.fixture(scope="session")
def presto_metastore(presto_plan, moto, tmp_path_factory) -> Iterator[hive_local.Metastore]:
    """The Hive metastore a Presto region runs (the engine's metastore version)."""
    from infra.components.query.engines import Presto

    yield from _metastore(
        presto_plan,
        presto_local.REGION,
        Presto.metastore_version,
        moto,
        tmp_path_factory.mktemp("shared-hive-metastore-presto"),
    )


@pytest.fixture(scope="session")
def trino_metastore(plans, moto, tmp_path_factory) -> Iterator[hive_local.Metastore]:
    """The Hive metastore a Trino region runs (the engine's metastore version)."""
    from infra.components.query.engines import Trino

    region = trino_local.REGION
    yield from _metastore(
        plans[region],
        region,
        Trino.metastore_version,
        moto,
        tmp_path_factory.mktemp("shared-hive-metastore-trino"),
    )


@pytest.fixture(scope="session")
def presto(presto_plan, presto_metastore, moto, tmp_path_factory) -> Iterator[presto_local.Presto]:
    """One Presto server with the catalogs rtdi plans for a Presto region (endpoints and
    credentials rewritten to loopback: `presto_local.loopback_catalogs` says which keys)."""
    presto_local.require_presto()
    region = presto_local.REGION
    catalogs = presto_local.planned_catalogs(presto_plan, region)
    server = presto_local.start_presto(
        tmp_path_factory.mktemp("shared-presto"),
        presto_local.loopback_catalogs(catalogs, presto_metastore.uri, moto.endpoint),
    )
    try:
        print(f"\nPresto on {server.url} up in {server.started_in:.1f} s", flush=True)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fresh_topics(kafka):
    """``fresh_topics(topics, groups)`` on the shared broker (see `recreate`)."""
    return lambda topics, groups: recreate(kafka, topics, groups)


def recreate(broker: kl.Broker, topics: Iterable[tuple[str, int]], groups: Iterable[str]) -> None:
    """Delete ``topics`` and consumer ``groups`` if an earlier test left them, then create the
    topics anew: tests that run a planned job use the plan's own names, so they share them."""
    topics = list(topics)
    client = kl.admin(broker.bootstrap)
    existing = kl.topics(broker.bootstrap)
    stale = [name for name, _ in topics if name in existing]
    if stale:
        for future in client.delete_topics(stale, request_timeout=30).values():
            future.result(timeout=60)
    for future in client.delete_consumer_groups(list(groups), request_timeout=30).values():
        with contextlib.suppress(Exception):  # the group does not exist: nothing to delete
            future.result(timeout=30)
    for name, partitions in topics:
        kl.retry(
            f"{name} created",
            lambda n=name, p=partitions: kl.create_topic(broker.bootstrap, n, p, {}),
            60,
            alive=[broker.process] if broker.process else [],
        )
