"""The typed shape of rtdi's stack configuration.

Pydantic checks structure and types; `checks.py` checks what relates one value to another
(zones to regions, primaries to regions, regional stacks to the global topology). Every model
forbids unknown keys, because a typo that passes silently is a misconfiguration in production.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt
from pydantic.alias_generators import to_camel

from infra import versions

Cloud = Literal["aws", "gcp", "onprem"]
CLOUDS: tuple[str, ...] = ("aws", "gcp", "onprem")
Slug = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        frozen=True,
    )


# --------------------------------------------------------------------------- global stack


KafkaEngine = Literal["strimzi", "msk", "gcp-managed"]
KAFKA_ENGINES_BY_CLOUD: dict[str, tuple[str, ...]] = {
    "aws": ("strimzi", "msk"),
    "gcp": ("strimzi", "gcp-managed"),
    "onprem": ("strimzi",),
}


class KafkaCluster(Strict):
    engine: KafkaEngine = "strimzi"
    brokers_per_zone: PositiveInt = 1
    storage_gib: PositiveInt = 500
    broker_cpu: PositiveInt = 4
    broker_memory_gib: PositiveInt = 16
    tiered_storage_image: str | None = Field(
        default=None,
        description="strimzi only: a Kafka image holding the Aiven tiered-storage plugin in "
        "/opt/kafka/plugins/tiered-storage; set it to tier old segments to the region's object "
        "store.",
    )
    msk_instance_type: str = Field(
        default="kafka.m7g.xlarge", pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$", description="msk only"
    )


class RegionKafka(Strict):
    """The region's two clusters: producers write to `regional`; `aggregate` receives all."""

    regional: KafkaCluster = KafkaCluster()
    aggregate: KafkaCluster = KafkaCluster()


class Region(Strict):
    cloud: Cloud
    name: str = Field(
        description="The cloud's region name (us-east-1, europe-west4) or the on-prem site."
    )
    zones: list[str] = Field(min_length=1)
    jurisdiction: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,30}$", description="Data-residency label, e.g. us, eu."
    )
    kafka: RegionKafka = RegionKafka()

    @property
    def id(self) -> str:
        """The region's identity everywhere in rtdi, and the name of its stack."""
        return f"{self.cloud}-{self.name}"


class Topology(Strict):
    name: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$",
        description="Prefix of every physical name (buckets, clusters); globally unique per "
        "organisation.",
    )
    primary: str
    regions: list[Region] = Field(min_length=1)

    def region(self, region_id: str) -> Region:
        return next(r for r in self.regions if r.id == region_id)

    @property
    def region_ids(self) -> list[str]:
        return [r.id for r in self.regions]


_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,199}$")


def _topic_name(value: str) -> str:
    """Kafka's topic name characters, and no leading `.` (so never `.` or `..`, which Kafka
    refuses); 200 characters leave room for the retry and dead-letter suffixes, whose full
    length `checks.check_topic_names` measures against Kafka's 249."""
    if not _TOPIC_NAME.match(value):
        raise ValueError(
            "allowed: 1 to 200 letters, digits, '.', '_' and '-' (Kafka's topic name "
            "characters), not starting with '.'"
        )
    return value


TopicName = Annotated[str, AfterValidator(_topic_name)]


class ConsumerGroup(Strict):
    """A consumer group with its own retry and dead-letter topics (paper 4.1.2)."""

    name: TopicName
    retry: bool = True
    dead_letter: bool = True


class Topic(Strict):
    name: TopicName
    partitions: PositiveInt
    retention_hours: PositiveInt = 168
    data_class: str
    consumer_groups: list[ConsumerGroup] = Field(default_factory=list)


class DataClass(Strict):
    jurisdictions: list[str] = Field(
        min_length=1, description="Jurisdictions whose regions may hold this data."
    )


class Kafka(Strict):
    """Kafka settings that span regions; declared once in the global stack."""

    dns_domain: str = Field(
        default="kafka.rtdi.internal",
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$",
        description="Cross-region bootstrap names are <cluster>.<region>.<dnsDomain>.",
    )
    replication_factor: PositiveInt = 3
    min_insync_replicas: PositiveInt = 2
    peer_cidrs: list[IPv4Network] = Field(
        default_factory=lambda: [IPv4Network("10.0.0.0/8")],
        description="Networks of every region, allowed to reach managed clusters' cross-region "
        "ports.",
    )
    data_classes: dict[str, DataClass] = Field(default_factory=dict)
    topics: list[Topic] = Field(default_factory=list)


class GlobalStack(Strict):
    """Keys of the `global` stack (``rtdi:<key>``)."""

    topology: Topology
    kafka: Kafka = Kafka()


# --------------------------------------------------------------------------- regional stacks


class AwsNetwork(Strict):
    mode: Literal["create", "existing"] = "create"
    cidr: IPv4Network = IPv4Network("10.0.0.0/16")
    vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    private_subnet_ids: dict[str, str] | None = Field(default=None, description="zone -> subnet id")


class GcpNetwork(Strict):
    mode: Literal["create", "existing"] = "create"
    cidr: IPv4Network = IPv4Network("10.0.0.0/20")
    pods_cidr: IPv4Network = IPv4Network("10.4.0.0/14")
    services_cidr: IPv4Network = IPv4Network("10.8.0.0/20")
    network: str | None = None
    subnetwork: str | None = None
    pods_range_name: str | None = None
    services_range_name: str | None = None


class NodePool(Strict):
    nodes_per_zone: PositiveInt = 2
    max_nodes_per_zone: PositiveInt = 6
    disk_gib: PositiveInt = 100


class EksCluster(NodePool):
    version: str = versions.EKS_VERSION
    instance_type: str = "m6i.2xlarge"
    public_access_cidrs: list[IPv4Network] = Field(
        default_factory=list,
        description="Empty keeps the API endpoint private to the VPC.",
    )


class GkeCluster(NodePool):
    version: str = versions.GKE_VERSION
    machine_type: str = "n2-standard-8"
    master_cidr: IPv4Network = IPv4Network("172.16.0.0/28")
    authorized_cidrs: list[IPv4Network] = Field(
        default_factory=list,
        description="Networks allowed to reach the private API endpoint.",
    )


class ExistingCluster(Strict):
    kubeconfig: str = Field(min_length=1, description="Path to a kubeconfig file.")
    context: str = Field(min_length=1)
    storage_class: str = Field(
        min_length=1, description="A zonal block-storage StorageClass for stateful workloads."
    )
    internal_load_balancer_annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations that keep a LoadBalancer Service on the site's internal network, "
        "e.g. a MetalLB address pool; Kafka's cross-region listener uses them.",
    )


class S3Store(Strict):
    kind: Literal["s3"] = "s3"


class GcsStore(Strict):
    kind: Literal["gcs"] = "gcs"


class OnpremStore(Strict):
    kind: Literal["hdfs", "s3"]
    uri: str | None = Field(
        default=None, pattern=r"^hdfs://[^/\s]+(:\d+)?(/\S*)?$", description="hdfs only"
    )
    endpoint: str | None = Field(
        default=None, pattern=r"^https?://[^/\s]+(:\d+)?/?$", description="s3 only"
    )
    bucket: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="s3 only"
    )
    access_key_id: str | None = Field(default=None, description="s3 only")


class RegionalBase(Strict):
    region: str = Field(description="The topology region this stack deploys, <cloud>-<region>.")
    global_stack: str | None = Field(default=None, description="Fully qualified global stack name.")


class AwsStack(RegionalBase):
    cloud: Literal["aws"]
    aws_account_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    network: AwsNetwork = AwsNetwork()
    kubernetes: EksCluster = EksCluster()
    object_store: S3Store = S3Store()


class GcpStack(RegionalBase):
    cloud: Literal["gcp"]
    gcp_project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    network: GcpNetwork = GcpNetwork()
    kubernetes: GkeCluster = GkeCluster()
    object_store: GcsStore = GcsStore()


class OnpremStack(RegionalBase):
    cloud: Literal["onprem"]
    kubernetes: ExistingCluster
    object_store: OnpremStore
    object_store_secret_access_key: str | None = Field(default=None, description="secret; s3 only")


REGIONAL_MODELS: dict[str, type[RegionalBase]] = {
    "aws": AwsStack,
    "gcp": GcpStack,
    "onprem": OnpremStack,
}
