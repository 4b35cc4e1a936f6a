"""The Pinot layer of every planned region (infra/components/pinot): what is declared, read back
from the plans of the sample stacks."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from infra import versions
from infra.components.pinot import (
    APPLY_SCRIPT,
    POOL_TAGS,
    TABLES_CONFIGMAP,
    deep_store_configs,
    pinot_properties,
    server_pools,
)
from infra.targets.base import SegmentStore
from plantools import STACK_NAMES

REGIONS = [s for s in STACK_NAMES if s != "global"]
RELEASE = "kubernetes:helm.sh/v3:Release"
ZONE = "topology.kubernetes.io/zone"


def props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def pinot_releases(plan) -> dict[str, dict]:
    return {
        r.inputs["name"]: r.inputs for r in plan.of_type(RELEASE) if r.inputs["chart"] == "pinot"
    }


def tables_configmap(plan) -> dict:
    (cm,) = [
        r
        for r in plan.of_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"]["name"] == TABLES_CONFIGMAP
    ]
    return cm.inputs


@pytest.mark.parametrize("stack", REGIONS)
def test_a_server_release_per_pool_and_zone_and_one_release_of_everything_else(
    plans, topology, stack
):
    plan = plans[stack]
    zones = topology.region(stack).zones
    releases = pinot_releases(plan)
    expected = {"pinot"} | {f"pinot-{p}-{i}" for p in ("hot", "cold") for i in range(len(zones))}
    assert set(releases) == expected
    for release in releases.values():
        assert release["version"] == versions.PINOT_CHART_VERSION
        assert release["values"]["image"]["tag"] == versions.PINOT_VERSION
        # Nothing of Pinot is reachable from outside the cluster.
        assert release["values"]["controller"]["external"] == {"enabled": False}
        assert release["values"]["broker"]["external"] == {"enabled": False}
        assert release["values"]["serviceAccount"] == {"create": False, "name": "pinot"}
    main = releases["pinot"]["values"]
    assert main["server"]["replicaCount"] == 0
    for component in ("controller", "broker"):
        assert main[component]["replicaCount"] == len(zones)
        assert main[component]["pdb"] == {"enabled": True, "maxUnavailable": 1}
        (term,) = main[component]["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term["topologyKey"] == ZONE
        assert term["labelSelector"]["matchLabels"]["component"] == component
    zk = main["zookeeper"]
    assert zk["enabled"] and zk["replicaCount"] == 3
    assert (zk["image"]["repository"].rsplit("/", 1)[-1], zk["image"]["tag"]) == (
        versions.ZOOKEEPER_IMAGE,
        versions.ZOOKEEPER_VERSION,
    )
    for pool in ("hot", "cold"):
        pinned = []
        for i in range(len(zones)):
            values = releases[f"pinot-{pool}-{i}"]["values"]
            server = values["server"]
            assert server["replicaCount"] >= 1
            pinned.append(server["nodeSelector"][ZONE])
            # Servers only: no controller or broker pods, ZooKeeper is the main release's.
            assert values["controller"]["replicaCount"] == 0
            assert values["broker"]["replicaCount"] == 0
            assert values["minionStateless"] == {"enabled": False}
            assert values["zookeeper"] == {"enabled": False, "urlOverride": "pinot-zookeeper:2181"}
        assert pinned == list(zones), f"{pool} servers: one release per zone, in zone order"


@pytest.mark.parametrize("stack", REGIONS)
def test_hot_and_cold_servers_use_the_targets_classes(plans, stack):
    plan = plans[stack]
    releases = pinot_releases(plan)
    hot = releases["pinot-hot-0"]["values"]["server"]["persistence"]["storageClass"]
    cold = releases["pinot-cold-0"]["values"]["server"]["persistence"]["storageClass"]
    # The region's zonal block class, the one ZooKeeper and controllers use too.
    assert hot == releases["pinot"]["values"]["zookeeper"]["persistence"]["storageClass"]
    classes = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in plan.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    }
    if stack.startswith("onprem"):
        # The site's classes (rtdi:kubernetes.storageClass, coldStorageClass): rtdi makes none.
        assert (hot, cold) == ("local-nvme", "local-hdd") and not classes
        return
    assert hot == "rtdi-ssd" and hot != cold and {hot, cold} <= set(classes)
    kind = classes[cold]["parameters"]["type"]
    assert kind == ("st1" if stack.startswith("aws") else "pd-standard")
    # Encrypted with the region's key like the hot class.
    assert {"kmsKeyId", "disk-encryption-kms-key"} & set(classes[cold]["parameters"])


@pytest.mark.parametrize("stack", REGIONS)
def test_deep_store_is_the_regions_bucket_through_the_targets_pinotfs(plans, stack):
    plan = plans[stack]
    uri = plan.outputs["buckets"]["pinot-deep-store"]
    scheme = uri.split("://", 1)[0]
    fs = {"s3": "S3PinotFS", "gs": "GcsPinotFS", "hdfs": "HadoopPinotFS"}[scheme]
    releases = pinot_releases(plan)
    controller = props(releases["pinot"]["values"]["controller"]["extra"]["configs"])
    assert controller["controller.data.dir"] == uri
    assert controller[f"pinot.controller.storage.factory.class.{scheme}"].endswith(fs)
    assert controller["controller.realtime.segment.deepStoreUploadRetryEnabled"] == "true"
    for name, release in releases.items():
        if name == "pinot":
            continue
        server = props(release["values"]["server"]["extra"]["configs"])
        # Servers upload what they commit themselves (peer-to-peer commit).
        assert server["pinot.server.instance.segment.store.uri"] == uri
        assert server[f"pinot.server.storage.factory.class.{scheme}"].endswith(fs)
        assert scheme in server["pinot.server.segment.fetcher.protocols"].split(",")
        # The chart's own defaults are kept.
        assert server["pinot.set.instance.id.to.hostname"] == "true"
    if scheme == "hdfs":
        env = releases["pinot-hot-0"]["values"]["server"]["extraEnv"]
        assert {"name": "HADOOP_CONF_DIR", "value": "/etc/hadoop/conf"} in env


def test_deep_store_lines_for_each_role():
    store = SegmentStore("gs", "org.apache.pinot.plugin.filesystem.GcsPinotFS", {"projectId": "p"})
    assert deep_store_configs("minionStateless", store, "gs://b") == [
        "pinot.minion.storage.factory.class.gs=org.apache.pinot.plugin.filesystem.GcsPinotFS",
        "pinot.minion.storage.factory.gs.projectId=p",
        "pinot.minion.segment.fetcher.protocols=file,http,gs",
        "pinot.minion.segment.fetcher.gs.class="
        "org.apache.pinot.common.utils.fetcher.PinotFSSegmentFetcher",
    ]


@pytest.mark.parametrize("stack", REGIONS)
def test_tables_hold_no_secret_and_every_pinot_process_can_resolve_them(plans, stack):
    plan = plans[stack]
    data = tables_configmap(plan)["data"]
    tables = {k: json.loads(v) for k, v in data.items() if k.startswith("table.")}
    assert tables, "the sample tables run in every region"
    text = json.dumps(tables)
    assert "password=" not in text and "${env:" not in text
    placeholders = set()
    for config in tables.values():
        for stream in config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"]:
            placeholders |= {
                v[2:-1] for v in stream.values() if v.startswith("${") and v.endswith("}")
            }
    releases = pinot_releases(plan)
    for component in ("controller", "broker", "minionStateless"):
        names = {e["name"] for e in releases["pinot"]["values"][component]["extraEnv"]}
        assert placeholders <= names, component
    names = {e["name"] for e in releases["pinot-hot-0"]["values"]["server"]["extraEnv"]}
    assert placeholders <= names


def test_a_secret_inside_a_property_becomes_a_whole_value_placeholder():
    stream, env = pinot_properties(
        {
            "security.protocol": "SASL_SSL",
            "sasl.jaas.config": 'Scram required username="u" password="${env:KAFKA_X_PASSWORD}";',
        }
    )
    assert stream == {
        "security.protocol": "SASL_SSL",
        "sasl.jaas.config": "${PINOT_KAFKA_SASL_JAAS_CONFIG}",
    }
    assert env == [
        {
            "name": "PINOT_KAFKA_SASL_JAAS_CONFIG",
            "value": 'Scram required username="u" password="$(KAFKA_X_PASSWORD)";',
        }
    ]


def test_strimzi_aggregate_grants_pinot_read_on_exactly_the_consumed_topics(plans):
    plan = plans["aws-us-east-1"]
    data = tables_configmap(plan)["data"]
    consumed = {
        s["stream.kafka.topic.name"]
        for k, v in data.items()
        if k.startswith("table.")
        for s in json.loads(v)["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"]
    }
    (user,) = [
        r
        for r in plan.of_type("kubernetes:kafka.strimzi.io/v1:KafkaUser")
        if r.inputs["metadata"]["name"] == "pinot-aggregate"
    ]
    acls = user.inputs["spec"]["authorization"]["acls"]
    reads = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "topic"}
    assert reads == consumed
    assert all(a["operations"] == ["Read", "Describe"] for a in acls)


@pytest.mark.parametrize("stack", REGIONS)
def test_the_apply_job_is_named_after_what_it_applies(plans, stack):
    plan = plans[stack]
    data = tables_configmap(plan)["data"]
    (job,) = plan.of_type("kubernetes:batch/v1:Job")
    digest = hashlib.sha256(json.dumps(data, indent=1, sort_keys=True).encode()).hexdigest()
    assert job.inputs["metadata"]["name"] == f"pinot-apply-{digest[:10]}"
    assert data["apply_tables.py"] == APPLY_SCRIPT.read_text()
    volume = job.inputs["spec"]["template"]["spec"]["volumes"][0]
    assert volume["configMap"]["name"] == TABLES_CONFIGMAP
    pools = json.loads(data["servers.json"])
    assert pools == json.loads(json.dumps(server_pools(list(pools_zones(pools)))))


def pools_zones(pools: dict) -> list[str]:
    hot = sorted(
        (p["pool"], p["zone"]) for prefix, p in pools["pools"].items() if "-hot-" in prefix
    )
    return [z for _, z in hot]


@pytest.mark.parametrize("stack", REGIONS)
def test_budgets_cover_zookeeper_and_every_server(plans, stack):
    budgets = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in plans[stack].of_type("kubernetes:policy/v1:PodDisruptionBudget")
        if r.inputs["metadata"]["namespace"] == "pinot"
    }
    assert budgets["pinot-zookeeper"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app": "pinot", "component": "zookeeper"}},
    }
    # One budget over the servers of every release: one server down in the whole region.
    assert budgets["pinot-servers"]["selector"] == {
        "matchLabels": {"app": "pinot", "component": "server"}
    }


def test_the_plan_writes_each_table_and_schema_as_json(cli_plan, plans):
    for stack in REGIONS:
        data = tables_configmap(plans[stack])["data"]
        written = {p.name: p.read_text() for p in (cli_plan.out / stack / "pinot").glob("*.json")}
        expected = {k: v + "\n" for k, v in data.items() if k.startswith(("table.", "schema."))}
        assert written == expected


def load_apply_script():
    spec = importlib.util.spec_from_file_location("apply_tables", APPLY_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_apply_job_places_a_server_by_its_statefulset():
    script = load_apply_script()
    pools = server_pools([f"z{i}" for i in range(11)])["pools"]
    host = "Server_pinot-hot-1-server-0.pinot-hot-1-server-headless.pinot.svc.cluster.local_8098"
    assert script.pool_of(host, pools) == {"tags": list(POOL_TAGS["hot"]), "pool": 1, "zone": "z1"}
    ten = host.replace("hot-1-", "hot-10-")
    assert script.pool_of(ten, pools)["pool"] == 10
    assert script.pool_of("Server_elsewhere_8098", pools) is None


def test_the_apply_script_is_stdlib_only():
    imported = {
        line.split()[1].split(".")[0]
        for line in Path(APPLY_SCRIPT).read_text().splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imported <= {"__future__", "json", "os", "sys", "time", "urllib", "pathlib"}


def test_a_regional_stack_refuses_a_published_table_its_region_may_not_consume(plans):
    """A global stack published by an older rtdi (or edited by hand) is checked again: the
    region never consumes a topic its data classes do not allow."""
    from infra.plan.engine import run_stack
    from infra.program import main
    from plantools import sample_config

    published = json.loads(json.dumps(plans["global"].values))
    (trips,) = [t for t in published["rtdi"]["pinotTables"] if t["name"] == "trips"]
    trips["topic"] = "rider-profiles"
    with pytest.raises(Exception) as exc:
        run_stack(sample_config("aws-us-east-1"), main, {"global": published})
    assert str(exc.value) == (
        "jobs/pinot (trips): topic = 'rider-profiles': not a topic region aws-us-east-1 may "
        "hold; allowed: topics of its data classes"
    )


def test_the_apply_job_is_awaited_exactly_when_the_releases_are(plans):
    from test_sources import MIRROR, with_values

    from infra.plan.engine import run_stack
    from infra.program import main

    (job,) = plans["onprem-dc1"].of_type("kubernetes:batch/v1:Job")
    assert "annotations" not in job.inputs["metadata"]
    cfg = with_values("onprem-dc1", helm={"wait": False}, imageRegistry=MIRROR)
    plan = run_stack(cfg, main, {"global": plans["global"].values})
    (job,) = plan.of_type("kubernetes:batch/v1:Job")
    assert job.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    # An air-gapped site pulls Pinot, ZooKeeper and the Job's image from its mirror.
    (container,) = job.inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{MIRROR}/library/{versions.PINOT_APPLY_IMAGE}"
    main_values = pinot_releases(plan)["pinot"]["values"]
    assert main_values["image"]["repository"] == f"{MIRROR}/{versions.PINOT_IMAGE}"
    assert main_values["zookeeper"]["image"]["repository"] == (
        f"{MIRROR}/library/{versions.ZOOKEEPER_IMAGE}"
    )
