"""The Kafka layer as declared: clusters, zones, durability, flows, topics and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra import versions
from infra.components.kafka.flows import federation_registry, replication_graph
from infra.plan import Project, plan_stacks
from infra.plan.engine import run_stack
from infra.program import main
from infra.topology.config import StackConfig, parse_global, read_stack_file
from infra.topology.errors import ConfigError
from plantools import mock_output

ROOT = Path(__file__).resolve().parent.parent
REGIONAL = ["aws-eu-west-1", "aws-us-east-1", "gcp-europe-west4", "onprem-dc1"]
CR = "kubernetes:kafka.strimzi.io/v1:"


@pytest.fixture(scope="module")
def plans():
    return plan_stacks(Project.find(ROOT), REGIONAL + ["global"])


@pytest.fixture(scope="module")
def global_model():
    return parse_global(
        read_stack_file(ROOT / "stacks/Pulumi.global.yaml", "stacks/Pulumi.global.yaml")
    )


def crs(plan, kind):
    return [r.inputs for r in plan.of_type(CR + kind)]


def engine(global_model, stack, role):
    return getattr(global_model.topology.region(stack).kafka, role).engine


@pytest.mark.parametrize("stack", REGIONAL)
def test_regional_and_aggregate_clusters_span_every_zone(plans, global_model, stack):
    plan = plans[stack]
    zones = global_model.topology.region(stack).zones
    kafkas = {k["metadata"]["name"]: k for k in crs(plan, "Kafka")}
    msk = {
        r.inputs["tags"]["rtdi-kafka-role"]: r.inputs
        for r in plan.of_type("aws:msk/cluster:Cluster")
    }
    managed = {
        r.inputs["labels"]["rtdi-kafka-role"]: r.inputs
        for r in plan.of_type("gcp:managedkafka/cluster:Cluster")
    }
    for name in ("regional", "aggregate"):
        kind = engine(global_model, stack, name)
        assert (name in kafkas, name in msk, name in managed) == (
            kind == "strimzi",
            kind == "msk",
            kind == "gcp-managed",
        )
        if kind == "msk":
            m = msk[name]
            info = m["brokerNodeGroupInfo"]
            assert (
                len(info["clientSubnets"]) == len(zones)
                and m["numberOfBrokerNodes"] % len(zones) == 0
            )
            assert info["connectivityInfo"]["publicAccess"]["type"] == "DISABLED"
            assert m["encryptionInfo"]["encryptionInTransit"] == {
                "clientBroker": "TLS",
                "inCluster": True,
            }
            assert m["encryptionInfo"]["encryptionAtRestKmsKeyArn"].startswith("arn:aws:kms:")
            assert m["storageMode"] == "TIERED"
            continue
        if kind == "gcp-managed":
            assert (
                managed[name]["gcpConfig"]["kmsKey"]
                and managed[name]["location"] == stack.split("-", 1)[1]
            )
            continue
        spec = kafkas[name]["spec"]["kafka"]
        assert spec["version"] == versions.KAFKA_VERSION
        assert spec["rack"]["topologyKey"] == "topology.kubernetes.io/zone"
        assert spec["config"]["replica.selector.class"].endswith("RackAwareReplicaSelector")
        assert spec["config"]["default.replication.factor"] == 3
        assert spec["config"]["min.insync.replicas"] == 2
        assert spec["config"]["unclean.leader.election.enable"] is False
        assert all(listener["tls"] for listener in spec["listeners"]), "no plaintext listener"
        brokers = [
            p
            for p in crs(plan, "KafkaNodePool")
            if p["metadata"]["labels"]["strimzi.io/cluster"] == name
            and p["spec"]["roles"] == ["broker"]
        ]
        pinned = {
            p["spec"]["template"]["pod"]["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"
            ]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0]
            for p in brokers
        }
        assert pinned == set(zones)
        controllers = [
            p
            for p in crs(plan, "KafkaNodePool")
            if p["metadata"]["labels"]["strimzi.io/cluster"] == name
            and p["spec"]["roles"] == ["controller"]
        ]
        assert len(controllers) % 2 == 1 and len(controllers) >= 3


def test_msk_brokers_get_the_durable_defaults(plans):
    for config in plans["aws-eu-west-1"].of_type("aws:msk/configuration:Configuration"):
        props = dict(line.split("=", 1) for line in config.inputs["serverProperties"].splitlines())
        assert props["default.replication.factor"] == "3" and props["min.insync.replicas"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
        assert props["replica.selector.class"].endswith("RackAwareReplicaSelector")


def test_msk_broker_logs_go_to_an_encrypted_log_group_with_retention(plans):
    plan = plans["aws-eu-west-1"]
    clusters = plan.of_type("aws:msk/cluster:Cluster")
    assert clusters, "the sample runs MSK in aws-eu-west-1"
    (key,) = plan.of_type("aws:kms/key:Key")
    groups = {g.inputs["name"]: g.inputs for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for cluster in clusters:
        logs = cluster.inputs["loggingInfo"]["brokerLogs"]["cloudwatchLogs"]
        assert logs["enabled"] is True
        assert logs["logGroup"] == f"/rtdi/msk/{cluster.inputs['clusterName']}"
        group = groups[logs["logGroup"]]
        assert group["retentionInDays"] > 0
        assert group["kmsKeyId"] == mock_output(key, "arn")


def mirror_sources(plan) -> list[str]:
    mm2 = crs(plan, "KafkaMirrorMaker2")
    via_mm2 = [m["source"]["alias"] for x in mm2 for m in x["spec"]["mirrors"]]
    via_replicator = [
        r.inputs["tags"]["rtdi-source-region"]
        for r in plan.of_type("aws:msk/replicator:Replicator")
    ]
    return via_mm2 + via_replicator


@pytest.mark.parametrize("stack", REGIONAL)
def test_aggregate_receives_every_region_with_offset_sync(plans, global_model, stack):
    assert sorted(mirror_sources(plans[stack])) == sorted(global_model.topology.region_ids)
    for mm2 in crs(plans[stack], "KafkaMirrorMaker2"):
        assert mm2["spec"]["target"]["alias"] == stack
        for key in (
            "config.storage.replication.factor",
            "offset.storage.replication.factor",
            "status.storage.replication.factor",
        ):
            assert mm2["spec"]["target"]["config"][key] == 3
        for mirror in mm2["spec"]["mirrors"]:
            checkpoint = mirror["checkpointConnector"]["config"]
            assert (
                checkpoint["sync.group.offsets.enabled"] is True
                and checkpoint["emit.checkpoints.enabled"] is True
            )
            assert checkpoint["checkpoints.topic.replication.factor"] == 3
            source = mirror["sourceConnector"]["config"]
            assert source["replication.factor"] == 3 and source["producer.override.acks"] == "all"
            # A tiered regional topic's storage keys must not reach an aggregate without tiered
            # storage.
            excluded = {k.strip() for k in source["config.properties.exclude"].split(",")}
            assert {
                "remote.storage.enable",
                "local.retention.ms",
                "min.insync.replicas",
            } <= excluded
            alias = mirror["source"]["alias"]
            kind = engine(global_model, alias, "regional")
            auth = mirror["source"]["authentication"]
            assert (
                auth["type"]
                == {"strimzi": "scram-sha-512", "msk": "scram-sha-512", "gcp-managed": "plain"}[
                    kind
                ]
            )
            assert auth["passwordSecret"]["secretName"] == f"kafka-mirror-{alias}"
            if kind == "strimzi":
                assert (
                    mirror["source"]["tls"]["trustedCertificates"][0]["secretName"]
                    == "rtdi-kafka-mesh-ca"
                )
                if alias != stack:
                    assert (
                        mirror["source"]["bootstrapServers"]
                        == f"regional.{alias}.kafka.acme.internal:9095"
                    )
    for rep in plans[stack].of_type("aws:msk/replicator:Replicator"):
        info = rep.inputs["replicationInfoList"]
        assert info["consumerGroupReplications"][0]["synchroniseConsumerGroupOffsets"] is True
        assert (
            info["topicReplications"][0]["topicNameConfiguration"]["type"]
            == "PREFIXED_WITH_SOURCE_CLUSTER_ALIAS"
        )


def topic_names(plan) -> set[str]:
    return (
        {t["spec"]["topicName"] for t in crs(plan, "KafkaTopic")}
        | {r.inputs["name"] for r in plan.of_type("aws:msk/topic:Topic")}
        | {r.inputs["topicId"] for r in plan.of_type("gcp:managedkafka/topic:Topic")}
    )


def test_topics_follow_their_data_class(plans):
    names = {stack: topic_names(plans[stack]) for stack in REGIONAL}
    for stack in REGIONAL:
        assert {
            "trips",
            "trips.eta-service.retry",
            "trips.eta-service.dlq",
            "trips.surge-pricing.dlq",
        } <= names[stack]
    assert (
        "rider-profiles" in names["aws-eu-west-1"] and "rider-profiles" in names["gcp-europe-west4"]
    )
    assert (
        "rider-profiles" not in names["aws-us-east-1"]
        and "rider-profiles" not in names["onprem-dc1"]
    )
    (mm2,) = crs(plans["aws-us-east-1"], "KafkaMirrorMaker2")
    assert all("rider-profiles" not in m["topicsPattern"] for m in mm2["spec"]["mirrors"])


def test_federation_registry_config_map_and_output(plans):
    cm = next(
        r.inputs
        for r in plans["gcp-europe-west4"].of_type("kubernetes:core/v1:ConfigMap")
        if r.inputs["metadata"]["name"] == "kafka-federation"
    )
    registry = json.loads(cm["data"]["registry.json"])
    trips = registry["topics"]["trips"]["regions"]
    assert set(trips) == set(REGIONAL)
    # The managed regional cluster's address comes from the cluster itself, in its own region.
    assert trips["gcp-europe-west4"]["produce"]["engine"] == "gcp-managed"
    assert trips["gcp-europe-west4"]["produce"]["bootstrap"].startswith(
        "bootstrap.acme-rtdi-regional.europe-west4.managedkafka."
    )
    assert (
        trips["aws-us-east-1"]["produce"]["crossRegionBootstrap"]
        == "regional.aws-us-east-1.kafka.acme.internal:9095"
    )
    assert sorted(trips["gcp-europe-west4"]["consume"]["topics"]) == sorted(
        f"{r}.trips" for r in REGIONAL
    )
    assert (
        trips["gcp-europe-west4"]["consume"]["bootstrap"]
        == "aggregate-kafka-bootstrap.kafka.svc:9093"
    )
    static = plans["global"].outputs["kafkaFederation"]["topics"]["trips"]["regions"]
    assert (
        static["gcp-europe-west4"]["produce"].get("bootstrap") is None
    )  # known only once the cluster exists
    assert plans["gcp-europe-west4"].outputs["kafkaFederation"] == _without_nulls(
        registry
    )  # stack outputs drop nulls


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _strimzi_release(plan):
    """The Strimzi release of a plan (the Flink layer installs its operator too)."""
    releases = plan.of_type("kubernetes:helm.sh/v3:Release")
    (release,) = [r for r in releases if r.name.endswith("-kafka-strimzi")]
    return release


def test_strimzi_operator_chart_is_pinned(plans):
    release = _strimzi_release(plans["onprem-dc1"])
    assert release.inputs["chart"] == versions.STRIMZI_CHART
    assert release.inputs["version"] == versions.STRIMZI_VERSION
    assert release.inputs["values"]["watchNamespaces"] == ["kafka"]


def test_strimzi_operator_states_every_resource_value(plans):
    """Requests and limits for CPU and memory, so the chart's defaults never apply unseen."""
    for stack in REGIONAL:
        resources = _strimzi_release(plans[stack]).inputs["values"]["resources"]
        assert resources == {
            "requests": {"cpu": "200m", "memory": "384Mi"},
            "limits": {"cpu": "1", "memory": "384Mi"},
        }


def test_shared_ca_secrets_and_mirror_passwords_stay_secret(plans):
    secrets = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in plans["aws-us-east-1"].of_type("kubernetes:core/v1:Secret")
    }
    assert secrets["regional-cluster-ca"]["metadata"]["annotations"] == {
        "strimzi.io/ca-key-generation": "0"
    }
    assert secrets["regional-cluster-ca"]["data"] == {"ca.key": "[secret]"}
    assert {f"kafka-mirror-{r}" for r in REGIONAL} <= set(secrets)
    kafka = next(
        k for k in crs(plans["aws-us-east-1"], "Kafka") if k["metadata"]["name"] == "regional"
    )
    assert kafka["spec"]["clusterCa"] == {"generateCertificateAuthority": False}


# ------------------------------------------------------------------ adding a region


def _global_with(extra_region: dict | None) -> StackConfig:
    cfg = read_stack_file(ROOT / "stacks/Pulumi.global.yaml", "stacks/Pulumi.global.yaml")
    topology = json.loads(cfg.values["rtdi:topology"])
    if extra_region:
        topology["regions"].append(extra_region)
    cfg.values["rtdi:topology"] = json.dumps(topology)
    return cfg


def test_replication_graph_is_complete_and_grows_with_a_region(global_model):
    graph = replication_graph(global_model.topology, global_model.kafka)
    ids = global_model.topology.region_ids
    assert {t: sorted(f.source for f in flows) for t, flows in graph.items()} == {
        t: sorted(ids) for t in ids
    }
    bigger = parse_global(
        _global_with(
            {
                "cloud": "gcp",
                "name": "us-central1",
                "zones": ["us-central1-a", "us-central1-b", "us-central1-c"],
                "jurisdiction": "us",
            }
        )
    )
    graph = replication_graph(bigger.topology, bigger.kafka)
    assert len(graph) == len(ids) + 1
    assert all(
        sorted(f.source for f in flows) == sorted(ids + ["gcp-us-central1"])
        for flows in graph.values()
    )
    assert (
        "gcp-us-central1"
        in federation_registry(bigger.topology, bigger.kafka)["topics"]["trips"]["regions"]
    )


def test_adding_a_region_adds_its_flow_to_an_existing_stack_plan():
    """Only the global config changes; the existing regional stack's next plan gains the source."""
    new_region = {
        "cloud": "aws",
        "name": "us-west-2",
        "zones": ["us-west-2a", "us-west-2b", "us-west-2c"],
        "jurisdiction": "us",
    }
    global_plan = run_stack(_global_with(new_region), main, {})
    regional_cfg = read_stack_file(
        ROOT / "stacks/Pulumi.onprem-dc1.yaml", "stacks/Pulumi.onprem-dc1.yaml"
    )
    plan = run_stack(regional_cfg, main, {"global": global_plan.values})
    (mm2,) = [r.inputs for r in plan.of_type(CR + "KafkaMirrorMaker2")]
    assert "aws-us-west-2" in [m["source"]["alias"] for m in mm2["spec"]["mirrors"]]
    secrets = {r.inputs["metadata"]["name"] for r in plan.of_type("kubernetes:core/v1:Secret")}
    assert "kafka-mirror-aws-us-west-2" in secrets


# ------------------------------------------------------------------ bad Kafka settings


def _bad(mutate) -> str:
    cfg = read_stack_file(ROOT / "stacks/Pulumi.global.yaml", "stacks/Pulumi.global.yaml")
    topology, kafka = json.loads(cfg.values["rtdi:topology"]), json.loads(cfg.values["rtdi:kafka"])
    mutate(topology, kafka)
    cfg.values["rtdi:topology"], cfg.values["rtdi:kafka"] = json.dumps(topology), json.dumps(kafka)
    with pytest.raises(ConfigError) as info:
        parse_global(cfg)
    assert len(info.value.issues) == 1
    return str(info.value)


def test_fewer_zones_than_replication_factor():
    def two_zones(t, k):
        t["regions"][0]["zones"] = ["us-east-1a", "us-east-1b"]

    msg = _bad(two_zones)
    assert msg.startswith(
        "stacks/Pulumi.global.yaml: rtdi:topology.regions[0].zones = ['us-east-1a', 'us-east-1b']"
    )
    assert "allowed: 3 or more zones" in msg


def test_min_insync_not_below_replication_factor():
    msg = _bad(lambda t, k: k.update(minInsyncReplicas=3))
    assert "rtdi:kafka.minInsyncReplicas = 3" in msg and "allowed: 1 to 2" in msg


def test_engine_the_cloud_does_not_offer():
    def msk_on_gcp(t, k):
        t["regions"][2]["kafka"] = {"regional": {"engine": "msk"}}

    msg = _bad(msk_on_gcp)
    assert (
        "rtdi:topology.regions[2].kafka.regional.engine = 'msk'" in msg
        and "allowed: strimzi, gcp-managed" in msg
    )


def test_topic_with_unknown_data_class():
    msg = _bad(lambda t, k: k["topics"][0].update(dataClass="secret-sauce"))
    assert (
        "rtdi:kafka.topics[0].dataClass = 'secret-sauce'" in msg
        and "allowed: operational, personal-eu" in msg
    )
