"""Bad stack configuration: exit code 2, one line naming file, key path, bad value, what is allowed.

Each case edits a copy of the sample project (Pulumi.yaml + stacks/) in a temporary folder and runs
``rtdi plan --all`` there, in process. The same edited file is then run as a `pulumi up` would run
it (the real program under the mock engine), which must fail with a RunError carrying the same line.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pytest
import yaml

from infra import versions
from infra.cli import EXIT_BAD_INPUT
from infra.cli import main as cli_main
from infra.plan.engine import run_stack
from infra.program import main as program_main
from infra.topology.config import StackConfig, parse_global, parse_regional, read_stack_file
from infra.topology.errors import ConfigError
from plantools import ROOT, STACK_NAMES

Edit = Callable[[dict], None]


@dataclass(frozen=True)
class Case:
    id: str
    stack: str  # the stack file the edit breaks
    edit: Edit | None  # edits the parsed `config:` mapping
    head: str  # the exact start of the one line: "<file>: <key path> = <value>: "
    allowed: str  # what the line must say is allowed
    text: str | None = None  # replaces the file's text instead (for YAML syntax errors)
    xfail: str | None = None


def regions(c: dict) -> list[dict]:
    return c["rtdi:topology"]["regions"]


def _rename_zones(c: dict) -> None:
    regions(c)[0]["zonez"] = regions(c)[0].pop("zones")


def _add_zonez(c: dict) -> None:
    regions(c)[0]["zonez"] = ["us-east-1a"]


def _rename_network(c: dict) -> None:
    c["rtdi:netwrok"] = c.pop("rtdi:network")


def _duplicate_region(c: dict) -> None:
    regions(c).append(dict(regions(c)[0]))


def topics(c: dict) -> list[dict]:
    return c["rtdi:kafka"]["topics"]


def _add_topic(name: str, groups: list[dict] | None = None) -> Edit:
    def edit(c: dict) -> None:
        topics(c).append(
            {
                "name": name,
                "partitions": 3,
                "dataClass": "operational",
                "consumerGroups": groups or [],
            }
        )

    return edit


LONG_TOPIC, LONG_GROUP = "t" * 200, "g" * 43  # retry: 200 + 1 + 43 + 6 = 250 characters
MID_TOPIC, MID_GROUP = "m" * 170, "h" * 70  # dlq: 245; copied from gcp-europe-west4: 262


def _long_zone(c: dict) -> None:
    regions(c)[3]["zones"][0] = "dc1-rack-a-" + "z" * 25  # 36 characters, a valid label


def _set(key: str, value: object) -> Edit:
    def edit(c: dict) -> None:
        c[key] = value

    return edit


def _gcp_stack_for_aws_region(c: dict) -> None:
    c.clear()
    c.update(
        {"rtdi:cloud": "gcp", "rtdi:region": "aws-eu-west-1", "rtdi:gcpProject": "acme-rtdi-prod"}
    )


G = "stacks/Pulumi.global.yaml"
# A topic a case appends comes after the sample's own topics.
N_TOPICS = len(yaml.safe_load((ROOT / G).read_text())["config"]["rtdi:kafka"]["topics"])
T, T1 = f"rtdi:kafka.topics[{N_TOPICS}]", f"rtdi:kafka.topics[{N_TOPICS + 1}]"
DC1 = "stacks/Pulumi.onprem-dc1.yaml"
STRIMZI = versions.STRIMZI_CHART_NAME
USE1 = "stacks/Pulumi.aws-us-east-1.yaml"
GCP = "stacks/Pulumi.gcp-europe-west4.yaml"
ALL_REGIONS = "aws-us-east-1, aws-eu-west-1, gcp-europe-west4, onprem-dc1"

CASES = [
    Case(
        "yaml-syntax",
        "aws-us-east-1",
        None,
        f"{USE1}:6:4: invalid YAML: ",
        "expected <block end>",
        text="config:\n  rtdi:cloud: aws\n  rtdi:region: aws-us-east-1\n  rtdi:network:\n"
        "    mode: create\n   cidr: 10.10.0.0/16\n",
    ),
    Case(
        "duplicate-nested-key",
        "aws-us-east-1",
        None,
        f"{USE1}:6: rtdi:network.mode: key written twice in one mapping (first at line 5); ",
        "allowed: each key once",
        text="config:\n  rtdi:cloud: aws\n  rtdi:region: aws-us-east-1\n  rtdi:network:\n"
        "    mode: create\n    mode: existing\n",
    ),
    Case(
        "yaml-1.1-boolean-stays-a-string",
        "global",
        None,
        f"{G}: rtdi:topology.primary = 'no': ",
        f"allowed: {ALL_REGIONS}",
        text=(ROOT / "stacks" / "Pulumi.global.yaml")
        .read_text()
        .replace("primary: aws-us-east-1", "primary: no"),
    ),
    Case(
        "unknown-top-level-key",
        "aws-us-east-1",
        _rename_network,
        f"{USE1}: rtdi:netwrok: unknown key (did you mean rtdi:network?); ",
        "rtdi:network",
    ),
    Case(
        "unknown-nested-key-added",
        "global",
        _add_zonez,
        f"{G}: rtdi:topology.regions[0].zonez: unknown key (did you mean zones?); ",
        "cloud, name, zones",
    ),
    Case(
        "unknown-nested-key-typo",
        "global",
        _rename_zones,
        f"{G}: rtdi:topology.regions[0].zonez: unknown key (did you mean zones?); ",
        "cloud, name, zones",
    ),
    Case(
        "provider-key",
        "aws-us-east-1",
        lambda c: c.update({"aws:region": "us-east-1"}),
        f"{USE1}: aws:region: rtdi configures every provider explicitly",
        "allowed keys: rtdi:region",
    ),
    Case(
        "unknown-cloud-in-topology",
        "global",
        lambda c: regions(c)[2].update(cloud="azure"),
        f"{G}: rtdi:topology.regions[2].cloud = 'azure': ",
        "allowed: 'aws', 'gcp' or 'onprem'",
    ),
    Case(
        "unknown-cloud-in-regional-stack",
        "aws-us-east-1",
        lambda c: c.update({"rtdi:cloud": "azure"}),
        f"{USE1}: rtdi:cloud = 'azure': ",
        "allowed: aws, gcp, onprem",
    ),
    Case(
        "no-zones",
        "global",
        lambda c: regions(c)[0].update(zones=[]),
        f"{G}: rtdi:topology.regions[0].zones = []: ",
        "at least 1 item",
    ),
    Case(
        "zone-outside-region",
        "global",
        lambda c: regions(c)[0]["zones"].__setitem__(0, "us-west-2a"),
        f"{G}: rtdi:topology.regions[0].zones[0] = 'us-west-2a': ",
        "allowed: us-east-1 followed by one letter",
    ),
    Case(
        "primary-not-a-region",
        "global",
        lambda c: c["rtdi:topology"].update(primary="aws-us-west-2"),
        f"{G}: rtdi:topology.primary = 'aws-us-west-2': ",
        f"allowed: {ALL_REGIONS}",
    ),
    Case(
        "region-listed-twice",
        "global",
        _duplicate_region,
        f"{G}: rtdi:topology.regions[4] = 'aws-us-east-1': ",
        "each cloud region may appear once",
    ),
    Case(
        "regional-stack-region-absent",
        "aws-us-east-1",
        lambda c: c.update({"rtdi:region": "aws-us-west-2"}),
        f"{USE1}: rtdi:region = 'aws-us-west-2': ",
        f"allowed: {ALL_REGIONS}",
    ),
    Case(
        "regional-stack-cloud-differs",
        "aws-eu-west-1",
        _gcp_stack_for_aws_region,
        "stacks/Pulumi.aws-eu-west-1.yaml: rtdi:cloud = 'gcp': ",
        "allowed: aws",
    ),
    Case(
        "zero-nodes-per-zone",
        "aws-us-east-1",
        lambda c: c["rtdi:kubernetes"].update(nodesPerZone=0),
        f"{USE1}: rtdi:kubernetes.nodesPerZone = 0: too small; ",
        "allowed: a whole number from 1 to 1,666 (Kubernetes' 5,000 nodes over 3 zones)",
    ),
    Case(
        "negative-disk",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(diskGib=-5),
        "stacks/Pulumi.gcp-europe-west4.yaml: rtdi:kubernetes.diskGib = -5: too small; ",
        "allowed: a whole number from 1 to 16,384",
    ),
    Case(
        "topic-name-characters",
        "global",
        lambda c: topics(c)[0].update(name="trips!"),
        f"{G}: rtdi:kafka.topics[0].name = 'trips!': ",
        "allowed: 1 to 200 letters, digits, '.', '_' and '-'",
    ),
    Case(
        "topic-name-dots",
        "global",
        lambda c: topics(c)[1].update(name=".."),
        f"{G}: rtdi:kafka.topics[1].name = '..': ",
        "not starting with '.'",
    ),
    Case(
        "retry-topic-over-kafka-limit",
        "global",
        _add_topic(LONG_TOPIC, [{"name": LONG_GROUP, "deadLetter": False}]),
        f"{G}: {T}.consumerGroups[0].name = '{LONG_GROUP}': the retry topic ",
        "(250 characters); Kafka allows at most 249",
    ),
    Case(
        "mirrored-topic-over-kafka-limit",
        "global",
        _add_topic(MID_TOPIC, [{"name": MID_GROUP, "retry": False}]),
        f"{G}: {T}.consumerGroups[0].name = '{MID_GROUP}': the copy of ",
        "from gcp-europe-west4 in aggregate clusters is named 'gcp-europe-west4.mmm",
    ),
    Case(
        "topics-collide-once-dot-is-underscore",
        "global",
        lambda c: [_add_topic("trips.v2")(c), _add_topic("trips_v2")(c)],
        f"{G}: {T1}.name = 'trips_v2': the topic is named 'trips_v2', ",
        f"collides with the topic 'trips.v2' (at {T}.name) once '.' is replaced",
    ),
    Case(
        "declared-topic-is-a-retry-topic",
        "global",
        _add_topic("trips.eta-service.retry"),
        f"{G}: {T}.name = 'trips.eta-service.retry': ",
        "also the name of the retry topic of topics[0] 'trips' "
        "(at rtdi:kafka.topics[0].consumerGroups[0].name)",
    ),
    Case(
        "retry-topic-is-a-declared-topic",
        "global",
        lambda c: [
            _add_topic("rides.pricing.dlq")(c),
            _add_topic("rides", [{"name": "pricing"}])(c),
        ],
        f"{G}: {T1}.consumerGroups[0].name = 'pricing': the dead-letter topic ",
        f"also the name of the topic (at {T}.name)",
    ),
    Case(
        "declared-topic-looks-mirrored",
        "global",
        _add_topic("aws-us-east-1.trips"),
        f"{G}: {T}.name = 'aws-us-east-1.trips': the topic is named ",
        "never copies it into aws-us-east-1's aggregate cluster; allowed: a name in which no "
        "region id is followed by '.'",
    ),
    Case(
        "consumer-group-named-like-a-region",
        "global",
        lambda c: topics(c)[0]["consumerGroups"].append({"name": "onprem-dc1"}),
        f"{G}: rtdi:kafka.topics[0].consumerGroups[2].name = 'onprem-dc1': the retry topic ",
        "reads 'onprem-dc1.' in a name as 'mirrored from onprem-dc1'",
    ),
    Case(
        "topic-mirrormaker-never-mirrors",
        "global",
        _add_topic("audit.replica"),
        f"{G}: {T}.name = 'audit.replica': MirrorMaker 2 never mirrors ",
        "allowed: a name without that prefix or suffix",
    ),
    Case(
        "zone-makes-strimzi-pod-name-too-long",
        "global",
        _long_zone,
        f"{G}: rtdi:topology.regions[3].zones[0] = 'dc1-rack-a-{'z' * 25}': Strimzi would name ",
        "Kubernetes allows at most 63 in a pod hostname and a label value; allowed: a zone name "
        "of at most 29 characters",
    ),
    Case(
        "max-below-min-nodes",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(maxNodesPerZone=1),
        "stacks/Pulumi.gcp-europe-west4.yaml: rtdi:kubernetes.maxNodesPerZone = 1: ",
        "allowed: 2 or more",
    ),
    # ---- strict types: the YAML's type, as Pulumi's JSON hands it over, not Python's coercions
    Case(
        "boolean-brokers-per-zone",
        "global",
        lambda c: regions(c)[0]["kafka"]["regional"].update(brokersPerZone=True),
        f"{G}: rtdi:topology.regions[0].kafka.regional.brokersPerZone = true: a boolean is not a "
        "number; ",
        "allowed: a whole number from 1 to 1,666",
    ),
    Case(
        "quoted-number-partitions",
        "global",
        lambda c: topics(c)[0].update(partitions="24"),
        f"{G}: rtdi:kafka.topics[0].partitions = '24': text is not a whole number; ",
        "allowed: a whole number from 1 to 80,000",
    ),
    Case(
        "fraction-replication-factor",
        "global",
        lambda c: c["rtdi:kafka"].update(replicationFactor=2.5),
        f"{G}: rtdi:kafka.replicationFactor = 2.5: a fraction is not a whole number; ",
        "allowed: a whole number from 1 to 32,767",
    ),
    Case(
        "yes-is-not-a-boolean",
        "global",
        lambda c: topics(c)[0]["consumerGroups"][0].update(retry="yes"),
        f"{G}: rtdi:kafka.topics[0].consumerGroups[0].retry = 'yes': not a boolean; ",
        "allowed: true or false",
    ),
    Case(
        "number-as-cidr",
        "aws-us-east-1",
        lambda c: c["rtdi:network"].update(cidr=167772160),
        f"{USE1}: rtdi:network.cidr = 167772160: not a network; ",
        "allowed: an IPv4 network such as 10.0.0.0/16",
    ),
    # ---- bounds of the systems that receive the values
    Case(
        "billion-partitions",
        "global",
        lambda c: topics(c)[0].update(partitions=10**9),
        f"{G}: rtdi:kafka.topics[0].partitions = 1000000000: too large; ",
        "allowed: a whole number from 1 to 80,000 (4,000 replicas per broker",
    ),
    Case(
        "retention-overflows-int64",
        "global",
        lambda c: topics(c)[1].update(retentionHours=2**62),  # float64 in Pulumi's JSON
        f"{G}: rtdi:kafka.topics[1].retentionHours = 4611686018427388000: too large; ",
        "allowed: a whole number from 1 to 2,562,047,788,015 (Kafka keeps retention.ms in a "
        "64-bit integer)",
    ),
    Case(
        "dead-letter-retention-overflows-int64",
        "global",
        lambda c: topics(c)[0].update(retentionHours=1_000_000_000_000),
        f"{G}: rtdi:kafka.topics[0].retentionHours = 1000000000000: its dead-letter topics keep "
        "4 times as long",
        "allowed: a whole number from 1 to 640,511,947,003",
    ),
    Case(
        "million-brokers-per-zone",
        "global",
        lambda c: regions(c)[0]["kafka"]["regional"].update(brokersPerZone=10**6),
        f"{G}: rtdi:topology.regions[0].kafka.regional.brokersPerZone = 1000000: too large; ",
        "allowed: a whole number from 1 to 1,666 (Kubernetes' 5,000 nodes over 3 zones)",
    ),
    Case(
        "brokers-over-kubernetes-nodes-in-many-zones",
        "global",
        lambda c: [
            regions(c)[3].update(zones=[f"dc1-rack-{x}" for x in "abcd"]),
            regions(c)[3].update(kafka={"regional": {"brokersPerZone": 1500}}),
        ],
        f"{G}: rtdi:topology.regions[3].kafka.regional.brokersPerZone = 1500: 6,000 brokers in "
        "4 zones",
        "allowed: at most 1,250 per zone",
    ),
    Case(
        "msk-storage-over-16-tib",
        "global",
        lambda c: regions(c)[1]["kafka"]["aggregate"].update(storageGib=20_000),
        f"{G}: rtdi:topology.regions[1].kafka.aggregate.storageGib = 20000: too large; ",
        "allowed: a whole number from 1 to 16,384",
    ),
    Case(
        "gcp-managed-kafka-memory-per-vcpu",
        "global",
        lambda c: regions(c)[2]["kafka"]["regional"].update(brokerCpu=1, brokerMemoryGib=100),
        f"{G}: rtdi:topology.regions[2].kafka.regional.brokerMemoryGib = 100: 100 GiB per vCPU "
        "with brokerCpu 1; GCP Managed Kafka provisions 1 to 8 GiB",
        "allowed: 1 to 8 with brokerCpu 1",
    ),
    Case(
        "gcp-managed-kafka-too-little-memory",
        "global",
        lambda c: regions(c)[2]["kafka"]["regional"].update(brokerCpu=8, brokerMemoryGib=4),
        f"{G}: rtdi:topology.regions[2].kafka.regional.brokerMemoryGib = 4: 0.5 GiB per vCPU ",
        "allowed: 8 to 64 with brokerCpu 8",
    ),
    Case(
        "gcp-managed-kafka-small-disk",
        "global",
        lambda c: regions(c)[2]["kafka"]["regional"].update(storageGib=50),
        f"{G}: rtdi:topology.regions[2].kafka.regional.storageGib = 50: GCP Managed Kafka ",
        "allowed: 100 to 16,384",
    ),
    Case(
        "msk-instance-type",
        "global",
        lambda c: regions(c)[1]["kafka"]["regional"].update(mskInstanceType="kafka.m7g.huge"),
        f"{G}: rtdi:topology.regions[1].kafka.regional.mskInstanceType = 'kafka.m7g.huge': not "
        "an MSK Standard broker type; ",
        "allowed: kafka.t3.small, kafka.m5.large to kafka.m5.24xlarge, kafka.m7g.large to",
    ),
    # ---- versions and machine types the cloud APIs would refuse
    Case(
        "eks-version-latest",
        "aws-us-east-1",
        lambda c: c["rtdi:kubernetes"].update(version="latest"),
        f"{USE1}: rtdi:kubernetes.version = 'latest': not an EKS version; ",
        "allowed: a Kubernetes minor version such as 1.33",
    ),
    Case(
        "eks-version-gke-style",
        "aws-us-east-1",
        lambda c: c["rtdi:kubernetes"].update(version="1.33.5-gke.1234"),
        f"{USE1}: rtdi:kubernetes.version = '1.33.5-gke.1234': not an EKS version; ",
        "allowed: a Kubernetes minor version",
    ),
    Case(
        "gke-version-latest",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(version="latest"),
        "stacks/Pulumi.gcp-europe-west4.yaml: rtdi:kubernetes.version = 'latest': not a GKE ",
        "allowed: a minor version such as 1.33, or a GKE version such as 1.33.<patch>-gke.<build>",
    ),
    Case(
        "ec2-instance-type-banana",
        "aws-us-east-1",
        lambda c: c["rtdi:kubernetes"].update(instanceType="banana"),
        f"{USE1}: rtdi:kubernetes.instanceType = 'banana': not an EC2 instance type; ",
        "allowed: <family>.<size> such as m6i.2xlarge",
    ),
    Case(
        "gce-machine-type-banana",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(machineType="banana"),
        "stacks/Pulumi.gcp-europe-west4.yaml: rtdi:kubernetes.machineType = 'banana': not a ",
        "allowed: <series>-<type>-<vCPUs> such as n2-standard-8",
    ),
    Case(
        "replication-factor-one",
        "global",
        lambda c: c["rtdi:kafka"].update(replicationFactor=1, minInsyncReplicas=1),
        f"{G}: rtdi:kafka.replicationFactor = 1: one replica leaves no copy when a broker is down",
        "allowed: 2 or more",
    ),
    Case(
        "aws-vpc-wider-than-a-16",
        "aws-us-east-1",
        lambda c: c["rtdi:network"].update(cidr="10.0.0.0/8"),
        f"{USE1}: rtdi:network.cidr = '10.0.0.0/8': AWS allows a VPC range of a /16 to a /28; ",
        "allowed: a /16 or a smaller range",
    ),
    Case(
        "eks-disk-below-ami-snapshot",
        "aws-us-east-1",
        lambda c: c["rtdi:kubernetes"].update(diskGib=10),
        f"{USE1}: rtdi:kubernetes.diskGib = 10: EKS nodes boot Amazon Linux 2023",
        "allowed: 20 to 16,384",
    ),
    Case(
        "gke-disk-below-minimum",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(diskGib=5),
        f"{GCP}: rtdi:kubernetes.diskGib = 5: GKE refuses a node boot disk below 10 GB; ",
        "allowed: 10 to 16,384",
    ),
    Case(
        "gke-master-range-not-a-28",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(masterCidr="172.16.0.0/24"),
        f"{GCP}: rtdi:kubernetes.masterCidr = '172.16.0.0/24': GKE puts a private cluster's ",
        "allowed: a private /28 such as 172.16.0.0/28",
    ),
    # ---- formats said in words, never as a regular expression
    Case(
        "vpc-id-format",
        "aws-eu-west-1",
        lambda c: c["rtdi:network"].update(vpcId="vpc-123"),
        "stacks/Pulumi.aws-eu-west-1.yaml: rtdi:network.vpcId = 'vpc-123': not a VPC id; ",
        "allowed: vpc- followed by 8 or 17 hexadecimal digits",
    ),
    Case(
        "subnet-id-format",
        "aws-eu-west-1",
        lambda c: c["rtdi:network"]["privateSubnetIds"].update({"eu-west-1a": "sn-1"}),
        "stacks/Pulumi.aws-eu-west-1.yaml: rtdi:network.privateSubnetIds.eu-west-1a = 'sn-1': "
        "not a subnet id; ",
        "allowed: subnet- followed by 8 or 17 hexadecimal digits",
    ),
    Case(
        "aws-account-id-lost-its-leading-zero",
        "aws-us-east-1",
        None,
        f"{USE1}: rtdi:awsAccountId = '12345678901': not an AWS account id; ",
        "allowed: its 12 digits, quoted in YAML so a leading 0 is kept",
        text=(ROOT / "stacks" / "Pulumi.aws-us-east-1.yaml")
        .read_text()
        .replace("  rtdi:cloud: aws\n", "  rtdi:cloud: aws\n  rtdi:awsAccountId: 012345678901\n"),
    ),
    Case(
        "gcp-project-format",
        "gcp-europe-west4",
        lambda c: c.update({"rtdi:gcpProject": "Acme"}),
        f"{GCP}: rtdi:gcpProject = 'Acme': not a GCP project id; ",
        "allowed: 6 to 30 lower-case letters, digits and dashes",
    ),
    Case(
        "topology-name-format",
        "global",
        lambda c: c["rtdi:topology"].update(name="Acme_RTDI"),
        f"{G}: rtdi:topology.name = 'Acme_RTDI': not a topology name; ",
        "allowed: 3 to 20 lower-case letters, digits and dashes",
    ),
    Case(
        "dns-domain-format",
        "global",
        lambda c: c["rtdi:kafka"].update(dnsDomain="kafka"),
        f"{G}: rtdi:kafka.dnsDomain = 'kafka': not a DNS domain; ",
        "allowed: lower-case labels of letters, digits and dashes joined by dots",
    ),
    Case(
        "s3-endpoint-with-a-path",
        "onprem-dc1",
        lambda c: c.update(
            {
                "rtdi:objectStore": {
                    "kind": "s3",
                    "endpoint": "https://minio.dc1/rtdi",
                    "bucket": "rtdi-dc1",
                    "accessKeyId": "rtdi",
                },
            }
        ),
        "stacks/Pulumi.onprem-dc1.yaml: rtdi:objectStore.endpoint = 'https://minio.dc1/rtdi': "
        "not an S3 endpoint; ",
        "allowed: http(s)://<host>[:<port>] without a path",
    ),
    Case(
        "image-reference-format",
        "global",
        lambda c: regions(c)[0]["kafka"]["regional"].update(tieredStorageImage="Kafka Tiered"),
        f"{G}: rtdi:topology.regions[0].kafka.regional.tieredStorageImage = 'Kafka Tiered': not "
        "an image reference; ",
        "allowed: [registry/]repository[:tag][@sha256:digest]",
    ),
    Case(
        "storage-class-name-format",
        "onprem-dc1",
        lambda c: c["rtdi:kubernetes"].update(storageClass="Local_NVMe"),
        "stacks/Pulumi.onprem-dc1.yaml: rtdi:kubernetes.storageClass = 'Local_NVMe': not a "
        "Kubernetes object name; ",
        "allowed: up to 253 lower-case letters, digits, '-' and '.'",
    ),
    Case(
        "annotation-key-format",
        "onprem-dc1",
        lambda c: c["rtdi:kubernetes"]["internalLoadBalancerAnnotations"].update(
            {"metallb pool": "dc1"}
        ),
        "stacks/Pulumi.onprem-dc1.yaml: rtdi:kubernetes.internalLoadBalancerAnnotations = "
        "'metallb pool': not a Kubernetes annotation key; ",
        "allowed: [<dns-prefix>/]<name>",
    ),
    # ---- networks open to the world
    Case(
        "peer-cidrs-whole-internet",
        "global",
        lambda c: c["rtdi:kafka"].update(peerCidrs=["0.0.0.0/0"]),
        f"{G}: rtdi:kafka.peerCidrs = ['0.0.0.0/0']: together these networks cover every IPv4 "
        "address, the whole internet; ",
        "allowed: the private networks of the regions only",
    ),
    Case(
        "peer-cidrs-two-halves",
        "global",
        lambda c: c["rtdi:kafka"].update(peerCidrs=["10.0.0.0/8", "0.0.0.0/1", "128.0.0.0/1"]),
        f"{G}: rtdi:kafka.peerCidrs = ['10.0.0.0/8', '0.0.0.0/1', '128.0.0.0/1']: together these "
        "networks cover every IPv4 address",
        "allowed: the private networks of the regions only",
    ),
    Case(
        "peer-cidrs-wider-than-private",
        "global",
        lambda c: c["rtdi:kafka"].update(peerCidrs=["10.0.0.0/8", "172.0.0.0/8"]),
        f"{G}: rtdi:kafka.peerCidrs = ['10.0.0.0/8', '172.0.0.0/8']: together these networks "
        "cover 33,554,432 addresses, more than the largest private range (a /8)",
        "allowed: the private networks of the regions only",
    ),
    Case(
        "eks-public-access-halves",
        "aws-us-east-1",
        lambda c: c["rtdi:kubernetes"].update(publicAccessCidrs=["0.0.0.0/1", "128.0.0.0/1"]),
        f"{USE1}: rtdi:kubernetes.publicAccessCidrs = ['0.0.0.0/1', '128.0.0.0/1']: together ",
        "may reach the Kubernetes API; allowed: the networks of the people and systems",
    ),
    Case(
        "gke-authorized-whole-internet",
        "gcp-europe-west4",
        lambda c: c["rtdi:kubernetes"].update(authorizedCidrs=["0.0.0.0/0"]),
        "stacks/Pulumi.gcp-europe-west4.yaml: rtdi:kubernetes.authorizedCidrs = ['0.0.0.0/0']: ",
        "allowed: the networks of the people and systems that administer the cluster",
    ),
    # ---- one stack per region, named after it; secrets only as secure values
    Case(
        "stack-named-after-another-region",
        "aws-us-east-1",
        lambda c: c.update(
            {
                "rtdi:region": "aws-eu-west-1",
                "rtdi:network": {"mode": "create", "cidr": "10.30.0.0/16"},
            }
        ),
        f"{USE1}: rtdi:region = 'aws-eu-west-1': this stack is named aws-us-east-1, and peer ",
        "allowed: aws-us-east-1, or name the stack (and its file) aws-eu-west-1",
    ),
    Case(
        "plain-text-secret",
        "onprem-dc1",
        lambda c: c.update(
            {
                "rtdi:objectStore": {
                    "kind": "s3",
                    "endpoint": "https://minio.dc1.acme.internal",
                    "bucket": "rtdi-dc1",
                    "accessKeyId": "rtdi",
                },
                "rtdi:objectStoreSecretAccessKey": "hunter2-plain",
            }
        ),
        "stacks/Pulumi.onprem-dc1.yaml: rtdi:objectStoreSecretAccessKey: a secret written in "
        "plain text; ",
        "allowed: a `secure:` value, set with `pulumi config set --secret "
        "objectStoreSecretAccessKey`",
    ),
    # Where charts and images come from (rtdi:charts, rtdi:helm, rtdi:imageRegistry).
    Case(
        "chart-unknown-name",
        "onprem-dc1",
        _set("rtdi:charts", {"strimzi": {"source": "local", "path": "charts/strimzi"}}),
        f"{DC1}: rtdi:charts.strimzi = 'strimzi': not a chart rtdi installs; ",
        f"allowed: {STRIMZI}",
    ),
    Case(
        "chart-unknown-source",
        "onprem-dc1",
        _set("rtdi:charts", {STRIMZI: {"source": "git"}}),
        f"{DC1}: rtdi:charts.{STRIMZI}.source = 'git': ",
        "allowed: 'public', 'oci', 'http' or 'local'",
    ),
    Case(
        "chart-local-without-path",
        "onprem-dc1",
        _set("rtdi:charts", {STRIMZI: {"source": "local"}}),
        f"{DC1}: rtdi:charts.{STRIMZI}.path: required key is missing; ",
        "allowed: a chart folder",
    ),
    Case(
        "chart-local-path-missing",
        "onprem-dc1",
        _set("rtdi:charts", {STRIMZI: {"source": "local", "path": "charts/nowhere"}}),
        f"{DC1}: rtdi:charts.{STRIMZI}.path = 'charts/nowhere': no such folder; ",
        f"allowed: a folder holding chart {STRIMZI} {versions.STRIMZI_VERSION}",
    ),
    Case(
        "chart-local-path-not-a-chart",
        "onprem-dc1",
        _set("rtdi:charts", {STRIMZI: {"source": "local", "path": "stacks"}}),
        f"{DC1}: rtdi:charts.{STRIMZI}.path = 'stacks': not a chart folder (no Chart.yaml); ",
        f"allowed: a folder holding chart {STRIMZI} {versions.STRIMZI_VERSION}",
    ),
    Case(
        "chart-oci-with-an-http-url",
        "onprem-dc1",
        _set("rtdi:charts", {STRIMZI: {"source": "oci", "repository": "https://charts.dc1/x"}}),
        f"{DC1}: rtdi:charts.{STRIMZI}.repository = 'https://charts.dc1/x': not a repository "
        "for source oci; ",
        "allowed: oci://<registry>[:<port>]/<path>",
    ),
    Case(
        "chart-http-with-an-oci-url",
        "onprem-dc1",
        _set("rtdi:charts", {STRIMZI: {"source": "http", "repository": "oci://registry.dc1/x"}}),
        f"{DC1}: rtdi:charts.{STRIMZI}.repository = 'oci://registry.dc1/x': not a repository "
        "for source http; ",
        "allowed: a Helm repository URL, http(s)://",
    ),
    Case(
        "chart-public-with-a-repository",
        "onprem-dc1",
        _set("rtdi:charts", {STRIMZI: {"repository": "oci://registry.dc1/x"}}),
        f"{DC1}: rtdi:charts.{STRIMZI}.repository = 'oci://registry.dc1/x': not used with "
        "source public; ",
        "allowed: this key only with source oci or http",
    ),
    Case(
        "chart-path-with-oci",
        "onprem-dc1",
        _set(
            "rtdi:charts",
            {STRIMZI: {"source": "oci", "repository": "oci://registry.dc1/x", "path": "c"}},
        ),
        f"{DC1}: rtdi:charts.{STRIMZI}.path = 'c': not used with source oci; ",
        "allowed: this key only with source local",
    ),
    Case(
        "helm-atomic-without-wait",
        "onprem-dc1",
        _set("rtdi:helm", {"wait": False, "atomic": True}),
        f"{DC1}: rtdi:helm.atomic = true: an atomic release waits for readiness",
        "allowed: false (or leave it out) with wait: false, or wait: true",
    ),
    Case(
        "helm-wait-not-a-boolean",
        "onprem-dc1",
        _set("rtdi:helm", {"wait": "no"}),
        f"{DC1}: rtdi:helm.wait = 'no': not a boolean; ",
        "allowed: true or false",
    ),
    Case(
        "helm-timeout-zero",
        "onprem-dc1",
        _set("rtdi:helm", {"timeoutSeconds": 0}),
        f"{DC1}: rtdi:helm.timeoutSeconds = 0: too small; ",
        "allowed: a whole number from 1 to 2,147,483,647",
    ),
    Case(
        "helm-timeout-beyond-32-bits",
        "aws-us-east-1",
        _set("rtdi:helm", {"timeoutSeconds": 2**31}),
        f"{USE1}: rtdi:helm.timeoutSeconds = 2147483648: too large; ",
        "allowed: a whole number from 1 to 2,147,483,647",
    ),
    Case(
        "image-registry-with-a-scheme",
        "onprem-dc1",
        _set("rtdi:imageRegistry", "https://registry.dc1.acme.internal"),
        f"{DC1}: rtdi:imageRegistry = 'https://registry.dc1.acme.internal': not an image "
        "registry; ",
        "allowed: <host>[:<port>][/<path>] without a scheme",
    ),
    Case(
        "image-registry-read-as-docker-hub",
        "gcp-europe-west4",
        _set("rtdi:imageRegistry", "mirror/strimzi"),
        f"{GCP}: rtdi:imageRegistry = 'mirror/strimzi': not an image registry; ",
        "the host with a dot or a port (or localhost)",
    ),
    Case(
        "image-registry-trailing-slash",
        "onprem-dc1",
        _set("rtdi:imageRegistry", "registry.dc1.acme.internal/"),
        f"{DC1}: rtdi:imageRegistry = 'registry.dc1.acme.internal/': not an image registry; ",
        "without a scheme or trailing slash",
    ),
]


# Checks that need several stacks at once: `rtdi plan` and `rtdi check` run them, a `pulumi up` of
# one stack cannot.
CROSS_STACK_CASES = [
    Case(
        "vpc-overlaps-another-region",
        "gcp-europe-west4",
        lambda c: c["rtdi:network"].update(cidr="10.10.16.0/20"),
        f"{GCP}: rtdi:network.cidr = '10.10.16.0/20': overlaps rtdi:network.cidr 10.10.0.0/16 of "
        f"{USE1}; regions of one topology route to each other",
        "allowed: a range disjoint from every other region's",
    ),
    Case(
        "pods-range-overlaps-another-region",
        "gcp-europe-west4",
        lambda c: c["rtdi:network"].update(podsCidr="10.8.0.0/14"),
        f"{GCP}: rtdi:network.podsCidr = '10.8.0.0/14': overlaps rtdi:network.cidr 10.10.0.0/16 "
        f"of {USE1}; ",
        "allowed: a range disjoint from every other region's",
    ),
    Case(
        "vpc-outside-peer-cidrs-of-msk",
        "aws-us-east-1",
        lambda c: c["rtdi:network"].update(cidr="172.20.0.0/16"),
        f"{USE1}: rtdi:network.cidr = '172.20.0.0/16': not inside rtdi:kafka.peerCidrs of the "
        "global stack (10.0.0.0/8), the networks the MSK clusters of aws-eu-west-1 admit; ",
        "allowed: a range inside one of them, or add it to peerCidrs",
    ),
    Case(
        "pods-outside-peer-cidrs-of-msk",
        "gcp-europe-west4",
        lambda c: c["rtdi:network"].update(podsCidr="100.64.0.0/14"),
        f"{GCP}: rtdi:network.podsCidr = '100.64.0.0/14': not inside rtdi:kafka.peerCidrs ",
        "allowed: a range inside one of them, or add it to peerCidrs",
    ),
    Case(
        "earlier-stack-overlaps-a-later-one",
        "aws-us-east-1",
        lambda c: c["rtdi:network"].update(cidr="10.28.0.0/16"),
        f"{GCP}: rtdi:network.servicesCidr = '10.28.0.0/20': overlaps rtdi:network.cidr "
        f"10.28.0.0/16 of {USE1}; ",
        "allowed: a range disjoint from every other region's",
    ),
]


def _params(cases):
    return [
        pytest.param(
            c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        )
        for c in cases
    ]


def broken_project(tmp_path: Path, case: Case) -> Path:
    """A copy of the sample project with ``case`` applied to one stack file."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    path = tmp_path / "stacks" / f"Pulumi.{case.stack}.yaml"
    if case.text is not None:
        path.write_text(case.text)
    else:
        doc = yaml.safe_load(path.read_text())
        case.edit(doc["config"])
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_line(text: str, case: Case) -> None:
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one message, got:\n{text}"
    line = lines[0]
    assert line.startswith(case.head), f"{line!r} does not start with {case.head!r}"
    assert case.allowed in line[len(case.head) :], (
        f"{line!r} does not say what is allowed ({case.allowed!r})"
    )


@pytest.mark.parametrize("case", _params(CASES + CROSS_STACK_CASES))
def test_cli_rejects_bad_config(tmp_path, monkeypatch, case):
    monkeypatch.chdir(broken_project(tmp_path, case))
    code, stdout, stderr = run_cli(["plan", "--all", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT
    assert stdout == "", "nothing is planned when any stack is bad"
    assert not (tmp_path / "out").exists(), "nothing is written when any stack is bad"
    assert_one_line(stderr, case)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.text is None]))
def test_pulumi_up_raises_run_error_with_the_same_line(tmp_path, monkeypatch, plans, case):
    """The program itself (what `pulumi up` runs) validates the same way: a RunError, no trace."""
    project = broken_project(tmp_path, case)
    monkeypatch.chdir(project)
    _, _, cli_stderr = run_cli(["plan", case.stack, "--out", str(tmp_path / "out")])
    cfg = read_stack_file(
        project / "stacks" / f"Pulumi.{case.stack}.yaml", f"stacks/Pulumi.{case.stack}.yaml"
    )
    outputs = {} if cfg.is_global else {"global": plans["global"].values}
    with pytest.raises(pulumi.RunError) as info:
        run_stack(cfg, program_main, outputs)
    message = str(info.value)
    assert_one_line(message, case)
    assert message == cli_stderr.strip(), "`rtdi plan` and `pulumi up` must print the same message"


def test_regional_stack_before_the_global_stack_is_up(plans):
    """`pulumi up` on a regional stack whose global stack exports nothing: one actionable line."""
    cfg = read_stack_file(ROOT / "stacks" / "Pulumi.aws-us-east-1.yaml", USE1)
    with pytest.raises(pulumi.RunError) as info:
        run_stack(cfg, program_main, {})
    lines = str(info.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{USE1}: rtdi:globalStack = ")
    assert "exports no `rtdi` output; run `pulumi up` on the global stack first" in lines[0]


def test_sample_project_copy_is_valid(tmp_path, monkeypatch):
    """Control for the cases above: the unedited copy plans, so each failure is the edit's."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    monkeypatch.chdir(tmp_path)
    from infra.plan import Project
    from infra.plan.project import validate

    assert sorted(validate(Project.find(), STACK_NAMES)) == STACK_NAMES


def test_one_stack_is_compared_with_its_siblings(tmp_path, monkeypatch):
    """Planning one stack alone still compares its networks with the project's other regions."""
    case = next(c for c in CROSS_STACK_CASES if c.id == "vpc-overlaps-another-region")
    monkeypatch.chdir(broken_project(tmp_path, case))
    code, stdout, stderr = run_cli(["plan", "aws-us-east-1", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert_one_line(stderr, case)


def test_a_range_outside_peer_cidrs_is_fine_without_msk(tmp_path, monkeypatch):
    """Control for `vpc-outside-peer-cidrs-of-msk`: peerCidrs only open MSK's security group, so
    with no MSK cluster in the topology any private range plans."""
    case = next(c for c in CROSS_STACK_CASES if c.id == "vpc-outside-peer-cidrs-of-msk")
    project = broken_project(tmp_path, case)
    path = project / "stacks" / "Pulumi.global.yaml"
    doc = yaml.safe_load(path.read_text())
    for region in regions(doc["config"]):
        for role in region.get("kafka", {}).values():
            if role.get("engine") == "msk":
                role["engine"] = "strimzi"
                role.pop("mskInstanceType", None)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.chdir(project)
    from infra.plan import Project
    from infra.plan.project import validate

    validated = validate(Project.find(), STACK_NAMES)
    assert str(validated["aws-us-east-1"].model.network.cidr) == "172.20.0.0/16"


def test_a_second_file_for_one_region_is_refused(tmp_path, monkeypatch):
    """Peers find a region's stack by the region id: a second stack for the region is refused."""
    project = broken_project(tmp_path, CASES[0])  # any copy; the edited file is put back below
    shutil.copy(ROOT / "stacks" / "Pulumi.aws-us-east-1.yaml", project / "stacks")
    shutil.copy(
        ROOT / "stacks" / "Pulumi.aws-us-east-1.yaml",
        project / "stacks" / "Pulumi.aws-us-east-1-copy.yaml",
    )
    monkeypatch.chdir(project)
    code, stdout, stderr = run_cli(["plan", "--all", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr.strip() == (
        "stacks/Pulumi.aws-us-east-1-copy.yaml: rtdi:region = 'aws-us-east-1': this stack is "
        "named aws-us-east-1-copy, and peer stacks find a region's stack by its region id, so "
        "one stack per region is named after it; allowed: aws-us-east-1-copy, or name the stack "
        "(and its file) aws-us-east-1"
    )


def test_a_secure_secret_is_accepted(tmp_path, plans):
    """Control for `plain-text-secret`: the same key as a `secure:` value passes, offline and
    under `pulumi up` (where the engine names the secret keys)."""
    path = tmp_path / "Pulumi.onprem-dc1.yaml"
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.onprem-dc1.yaml").read_text())
    doc["config"]["rtdi:objectStore"] = {
        "kind": "s3",
        "endpoint": "https://minio.dc1.acme.internal",
        "bucket": "rtdi-dc1",
        "accessKeyId": "rtdi",
    }
    doc["config"]["rtdi:objectStoreSecretAccessKey"] = {"secure": "v1:c2FsdA==:c2VjcmV0"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    cfg = read_stack_file(path, "stacks/Pulumi.onprem-dc1.yaml")
    assert cfg.secret_keys == {"rtdi:objectStoreSecretAccessKey"}
    topology = parse_global(read_stack_file(ROOT / "stacks" / "Pulumi.global.yaml")).topology
    model = parse_regional(cfg, topology)
    assert model.object_store_secret_access_key == "[secret]"
    planned = run_stack(cfg, program_main, {"global": plans["global"].values})
    assert planned.registered, "the engine, told the key is secret, plans the stack"
    plain = StackConfig(cfg.stack, cfg.file, cfg.values, secret_keys=set())
    with pytest.raises(ConfigError, match="a secret written in plain text"):
        parse_regional(plain, topology)


def _models() -> list[type]:
    import infra.topology.model as m

    return [v for v in vars(m).values() if isinstance(v, type) and issubclass(v, m.Strict)]


def test_no_format_is_explained_by_a_regular_expression():
    """Pydantic explains a `pattern=` by printing the expression; every format says it in words
    (a `matching(...)` validator) instead, so no model may use `pattern=`."""
    raw = [
        f"{model.__name__}.{name}"
        for model in _models()
        for name, info in model.model_fields.items()
        if any(getattr(meta, "pattern", None) for meta in info.metadata)
    ]
    assert _models() and raw == []


def test_no_integer_or_boolean_is_coerced():
    """Every int and bool field refuses another JSON type: pydantic's lax mode would take `true`
    as 1 and `"3"` as 3, which is not what the YAML said."""
    loose = []
    for model in _models():
        for name, info in model.model_fields.items():
            if info.annotation in (int, bool) and not any(
                type(meta).__name__ == "BeforeValidator" for meta in info.metadata
            ):
                loose.append(f"{model.__name__}.{name}")
    assert loose == []


def test_no_stack_named_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, stdout, stderr = run_cli(["plan", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr.strip() == "rtdi: name at least one stack, or pass --all"
