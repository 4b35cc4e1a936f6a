"""The typed shape of rtdi's stack configuration.

Pydantic checks structure and types; `checks.py` checks what relates one value to another
(zones to regions, primaries to regions, regional stacks to the global topology). Every model
forbids unknown keys, because a typo that passes silently is a misconfiguration in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from infra import versions

Cloud = Literal["aws", "gcp", "onprem"]
CLOUDS: tuple[str, ...] = ("aws", "gcp", "onprem")


class Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        frozen=True,
    )


# --------------------------------------------------------------------------- strict values
#
# Pulumi hands the program every top-level value as a string and every structured value as JSON
# (`stackyaml`), so inside a structure the JSON type is the YAML type: `true` is a bool, `"3"` a
# string, `3` and `3.0` the number 3. Pydantic's lax mode would turn `true` into 1 and `"3"` into
# 3; the validators below refuse both, with the bound in words.


def _whole(lo: int, hi: int, why: str) -> Callable[[Any], int]:
    allowed = f"allowed: a whole number from {lo:,} to {hi:,} ({why})"

    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"a boolean is not a number; {allowed}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # Pulumi's JSON round trip: 3.0 and 1e3 arrive as numbers
        if not isinstance(value, int):
            kind = {str: "text", float: "a fraction"}.get(type(value), "a structure")
            raise ValueError(f"{kind} is not a whole number; {allowed}")
        if value < lo:
            raise ValueError(f"too small; {allowed}")
        if value > hi:
            raise ValueError(f"too large; {allowed}")
        return value

    return check


def _format(pattern: str, words: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"not {words}")
        return value

    return check


def matching(pattern: str, words: str) -> AfterValidator:
    """A string in the format ``pattern`` describes; the message says it in ``words``."""
    return AfterValidator(_format(pattern, words))


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not a boolean; allowed: true or false")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]


def _cidr_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("not a network; allowed: an IPv4 network such as 10.0.0.0/16")
    return value


Cidr = Annotated[IPv4Network, BeforeValidator(_cidr_text)]

# Kafka keeps retention.ms in an int64 of milliseconds (LogConfig, a LONG config).
INT64_MAX = 2**63 - 1
MS_PER_HOUR = 3_600_000
# Kubernetes supports clusters of at most 5,000 nodes (kubernetes.io, "Considerations for large
# clusters"); a Strimzi broker is a pod that needs a node's share, MSK and GCP Managed Kafka have
# far lower cluster quotas, and rtdi's regions have at least 3 zones.
MAX_NODES = 5_000
MAX_PER_ZONE = MAX_NODES // 3
# Kafka's guidance (and MSK's best practices for its largest Standard brokers) is at most 4,000
# partition replicas per broker; MSK's KRaft clusters have 60 brokers by default quota: 240,000
# replicas, 80,000 partitions at replication factor 3. No rtdi engine balances a larger topic.
MAX_PARTITIONS = 80_000
# EBS volumes (gp2/gp3, what EKS's StorageClass and MSK use) and MSK's per-broker storage: 16 TiB.
MAX_STORAGE_GIB = 16_384
# The largest machines EC2 and GCE offer have a few hundred vCPUs and tens of TiB of memory.
MAX_BROKER_CPU = 448
MAX_BROKER_MEMORY_GIB = 24_576

# Integers the YAML wrote as numbers, within the bounds of the system that receives them.
PerZone = Annotated[
    int, BeforeValidator(_whole(1, MAX_PER_ZONE, "Kubernetes' 5,000 nodes over 3 zones"))
]
StorageGib = Annotated[
    int,
    BeforeValidator(_whole(1, MAX_STORAGE_GIB, "GiB; EBS volumes and MSK hold at most 16 TiB")),
]
BrokerCpu = Annotated[
    int, BeforeValidator(_whole(1, MAX_BROKER_CPU, "vCPUs per broker; no cloud machine has more"))
]
BrokerMemoryGib = Annotated[
    int,
    BeforeValidator(_whole(1, MAX_BROKER_MEMORY_GIB, "GiB per broker; no cloud machine has more")),
]
Partitions = Annotated[
    int,
    BeforeValidator(
        _whole(1, MAX_PARTITIONS, "4,000 replicas per broker, 60 brokers, 3 replicas each")
    ),
]
RetentionHours = Annotated[
    int,
    BeforeValidator(
        _whole(1, INT64_MAX // MS_PER_HOUR, "Kafka keeps retention.ms in a 64-bit integer")
    ),
]
# CreateTopics carries a replication factor as an INT16.
Replicas = Annotated[
    int, BeforeValidator(_whole(1, 32_767, "Kafka carries it as a 16-bit integer"))
]


def _secret(description: str) -> Any:
    """A key whose value must be a `secure:` value (`pulumi config set --secret`)."""
    return Field(default=None, description=description, json_schema_extra={"secret": True})


def secret_keys(model: type[BaseModel]) -> set[str]:
    """Aliases of the top-level keys of ``model`` that hold secrets."""
    return {
        info.alias or name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("secret")
    }


# Formats of names, each said in words (a message never shows a raw regular expression).
Jurisdiction = Annotated[
    str,
    matching(
        r"^[a-z][a-z0-9-]{0,30}$",
        "a jurisdiction label; allowed: 1 to 31 lower-case letters, digits and dashes, starting "
        "with a letter, e.g. us or eu",
    ),
]
TopologyName = Annotated[
    str,
    matching(
        r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$",
        "a topology name; allowed: 3 to 20 lower-case letters, digits and dashes, starting with a "
        "letter and not ending with a dash (it prefixes bucket and cluster names)",
    ),
]
DnsDomain = Annotated[
    str,
    matching(
        r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$",
        "a DNS domain; allowed: lower-case labels of letters, digits and dashes joined by dots, "
        "ending in letters, e.g. kafka.acme.internal",
    ),
]
VpcId = Annotated[
    str,
    matching(
        r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$",
        "a VPC id; allowed: vpc- followed by 8 or 17 hexadecimal digits",
    ),
]
SubnetId = Annotated[
    str,
    matching(
        r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$",
        "a subnet id; allowed: subnet- followed by 8 or 17 hexadecimal digits",
    ),
]
HdfsUri = Annotated[
    str,
    matching(
        r"^hdfs://[^/\s:]+(:\d+)?(/\S*)?$",
        "an HDFS URI; allowed: hdfs://<namenode>[:<port>][/<path>], e.g. hdfs://namenode.dc1:8020/rtdi",
    ),
]
S3Endpoint = Annotated[
    str,
    matching(
        r"^https?://[^/\s:]+(:\d+)?/?$",
        "an S3 endpoint; allowed: http(s)://<host>[:<port>] without a path",
    ),
]
BucketName = Annotated[
    str,
    matching(
        r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        "an S3 bucket name; allowed: 3 to 63 lower-case letters, digits, dots and dashes, starting "
        "and ending with a letter or digit",
    ),
]
AwsAccountId = Annotated[
    str,
    matching(
        r"^[0-9]{12}$",
        "an AWS account id; allowed: its 12 digits, quoted in YAML so a leading 0 is kept",
    ),
]
GcpProjectId = Annotated[
    str,
    matching(
        r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
        "a GCP project id; allowed: 6 to 30 lower-case letters, digits and dashes, starting with a "
        "letter and not ending with a dash",
    ),
]

# A container image reference as the OCI distribution spec and Docker's reference grammar allow:
# [registry[:port]/]path[:tag][@sha256:digest], lower-case path components.
ImageReference = Annotated[
    str,
    matching(
        r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
        r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$",
        "an image reference; allowed: [registry/]repository[:tag][@sha256:digest] with a "
        "lower-case repository, e.g. registry.acme.internal/kafka/strimzi-tiered:<tag>",
    ),
]
# Kubernetes object names such as a StorageClass's are DNS-1123 subdomains.
DnsSubdomain = Annotated[
    str,
    matching(
        r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
        "a Kubernetes object name; allowed: up to 253 lower-case letters, digits, '-' and '.', "
        "starting and ending with a letter or digit",
    ),
]
# Kubernetes annotation keys: an optional DNS subdomain prefix and '/', then a name of at most 63
# letters, digits, '-', '_' and '.', starting and ending with a letter or digit.
AnnotationKey = Annotated[
    str,
    matching(
        r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*/)?"
        r"(?=[^/]{1,63}$)[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$",
        "a Kubernetes annotation key; allowed: [<dns-prefix>/]<name>, the name at most 63 "
        "letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
    ),
]


# --------------------------------------------------------------------------- global stack


KafkaEngine = Literal["strimzi", "msk", "gcp-managed"]
KAFKA_ENGINES_BY_CLOUD: dict[str, tuple[str, ...]] = {
    "aws": ("strimzi", "msk"),
    "gcp": ("strimzi", "gcp-managed"),
    "onprem": ("strimzi",),
}


# MSK's Standard broker types (docs.aws.amazon.com/msk/latest/developerguide/broker-instance-sizes):
# kafka.t3.small, and large to 24xlarge of m5, large to 16xlarge of m7g.
MSK_INSTANCE_TYPES = (
    "kafka.t3.small",
    *(f"kafka.m5.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")),
    *(f"kafka.m5.{s}" for s in ("16xlarge", "24xlarge")),
    *(f"kafka.m7g.{s}" for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge")),
    "kafka.m7g.16xlarge",
)


def _msk_instance_type(value: str) -> str:
    if value not in MSK_INSTANCE_TYPES:
        raise ValueError(
            "not an MSK Standard broker type; allowed: kafka.t3.small, kafka.m5.large to "
            "kafka.m5.24xlarge, kafka.m7g.large to kafka.m7g.16xlarge"
        )
    return value


MskInstanceType = Annotated[str, AfterValidator(_msk_instance_type)]


class KafkaCluster(Strict):
    engine: KafkaEngine = "strimzi"
    brokers_per_zone: PerZone = 1
    storage_gib: StorageGib = 500
    broker_cpu: BrokerCpu = 4
    broker_memory_gib: BrokerMemoryGib = 16
    tiered_storage_image: ImageReference | None = Field(
        default=None,
        description="strimzi only: a Kafka image holding the Aiven tiered-storage plugin in "
        "/opt/kafka/plugins/tiered-storage; set it to tier old segments to the region's object "
        "store.",
    )
    msk_instance_type: MskInstanceType = Field(default="kafka.m7g.xlarge", description="msk only")


class RegionKafka(Strict):
    """The region's two clusters: producers write to `regional`; `aggregate` receives all."""

    regional: KafkaCluster = KafkaCluster()
    aggregate: KafkaCluster = KafkaCluster()


QueryEngineName = Literal["trino", "presto"]


class RegionQuery(Strict):
    """The region's query engine (paper 4.5) over its Pinot and its archive."""

    engine: QueryEngineName = Field(
        default="trino",
        description="trino (default) or presto: the engine the region runs, with the same "
        "catalogs.",
    )


class Region(Strict):
    cloud: Cloud
    name: str = Field(
        description="The cloud's region name (us-east-1, europe-west4) or the on-prem site."
    )
    zones: list[str] = Field(min_length=1)
    jurisdiction: Jurisdiction = Field(description="Data-residency label, e.g. us, eu.")
    kafka: RegionKafka = RegionKafka()
    query: RegionQuery = RegionQuery()

    @property
    def id(self) -> str:
        """The region's identity everywhere in rtdi, and the name of its stack."""
        return f"{self.cloud}-{self.name}"


class Topology(Strict):
    name: TopologyName = Field(
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


ConsumerMode = Literal["all-active", "active-passive"]


class ConsumerGroup(Strict):
    """A consumer group with its own retry and dead-letter topics (paper 4.1.2), and how it
    fails over (paper 6): an all-active group consumes every region's aggregate; an
    active-passive group consumes the primary's only and resumes in the new primary from offsets
    the offset sync job translated (jobs/offset-sync/)."""

    name: TopicName
    retry: Flag = True
    dead_letter: Flag = True
    mode: ConsumerMode = Field(
        default="all-active",
        description="all-active: consumes in every region; active-passive: in the primary "
        "region only, its offsets kept translated in every other region's aggregate.",
    )


class Topic(Strict):
    name: TopicName
    partitions: Partitions
    retention_hours: RetentionHours = 168
    data_class: str
    consumer_groups: list[ConsumerGroup] = Field(default_factory=list)


# A lifecycle expiration's age in days: S3's `Days` must be a positive 32-bit integer (GCS's `age`
# takes any non-negative one).
ArchiveDays = Annotated[
    int, BeforeValidator(_whole(1, 2**31 - 1, "days, an S3 lifecycle expiration's Days"))
]


class DataClass(Strict):
    jurisdictions: list[str] = Field(
        min_length=1, description="Jurisdictions whose regions may hold this data."
    )
    archive_retention_days: ArchiveDays | None = Field(
        default=None,
        description="How long each region's Parquet archive keeps this class's topics (the "
        "archive bucket's lifecycle expires them); kept until deleted when left out.",
    )


class Kafka(Strict):
    """Kafka settings that span regions; declared once in the global stack."""

    dns_domain: DnsDomain = Field(
        default="kafka.rtdi.internal",
        description="Cross-region bootstrap names are <cluster>.<region>.<dnsDomain>.",
    )
    replication_factor: Replicas = 3
    min_insync_replicas: Replicas = 2
    peer_cidrs: list[Cidr] = Field(
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
    cidr: Cidr = IPv4Network("10.0.0.0/16")
    vpc_id: VpcId | None = None
    private_subnet_ids: dict[str, SubnetId] | None = Field(
        default=None, description="zone -> subnet id"
    )


class GcpNetwork(Strict):
    mode: Literal["create", "existing"] = "create"
    cidr: Cidr = IPv4Network("10.0.0.0/20")
    pods_cidr: Cidr = IPv4Network("10.4.0.0/14")
    services_cidr: Cidr = IPv4Network("10.8.0.0/20")
    network: str | None = None
    subnetwork: str | None = None
    pods_range_name: str | None = None
    services_range_name: str | None = None


# EKS takes a Kubernetes minor version (as versions.EKS_VERSION); it has no "latest".
EksVersion = Annotated[
    str,
    AfterValidator(
        _format(
            r"^1\.[0-9]{2}$",
            f"an EKS version; allowed: a Kubernetes minor version such as {versions.EKS_VERSION}",
        )
    ),
]
# GKE takes a minor version or a full GKE version (<minor>.<patch>-gke.<build>).
GkeVersion = Annotated[
    str,
    AfterValidator(
        _format(
            r"^1\.[0-9]{2}(\.[0-9]+-gke\.[0-9]+)?$",
            f"a GKE version; allowed: a minor version such as {versions.GKE_VERSION}, or a GKE "
            f"version such as {versions.GKE_VERSION}.<patch>-gke.<build>",
        )
    ),
]
# EC2: <family with its generation digit and options>.<size> (m6i.2xlarge, c7gn.metal,
# u7i-12tb.224xlarge); GCE: <series>-<type>[-<vCPUs>...] (n2-standard-8, e2-medium,
# n2-custom-4-16384, c3-standard-4-lssd).
InstanceType = Annotated[
    str,
    AfterValidator(
        _format(
            r"^[a-z]+[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal"
            r"(-[0-9]+xl)?)$",
            "an EC2 instance type; allowed: <family>.<size> such as m6i.2xlarge or c7g.4xlarge",
        )
    ),
]
MachineType = Annotated[
    str,
    AfterValidator(
        _format(
            r"^[a-z]+[0-9][a-z0-9]*-[a-z]+(-[0-9]+[a-z]*)*(-lssd)?$",
            "a Compute Engine machine type; allowed: <series>-<type>-<vCPUs> such as "
            "n2-standard-8 or e2-medium",
        )
    ),
]


class NodePool(Strict):
    nodes_per_zone: PerZone = 2
    max_nodes_per_zone: PerZone = 6
    disk_gib: StorageGib = 100


class EksCluster(NodePool):
    version: EksVersion = versions.EKS_VERSION
    instance_type: InstanceType = "m6i.2xlarge"
    public_access_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="Empty keeps the API endpoint private to the VPC.",
    )


class GkeCluster(NodePool):
    version: GkeVersion = versions.GKE_VERSION
    machine_type: MachineType = "n2-standard-8"
    master_cidr: Cidr = IPv4Network("172.16.0.0/28")
    authorized_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="Networks allowed to reach the private API endpoint.",
    )


class ExistingCluster(Strict):
    kubeconfig: str = Field(min_length=1, description="Path to a kubeconfig file.")
    context: str = Field(min_length=1)
    storage_class: DnsSubdomain = Field(
        description="A zonal block-storage StorageClass for stateful workloads."
    )
    cold_storage_class: DnsSubdomain | None = Field(
        default=None,
        description="A cheaper zonal StorageClass for data read rarely (Pinot's cold servers); "
        "storageClass when unset.",
    )
    internal_load_balancer_annotations: dict[AnnotationKey, str] = Field(
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
    uri: HdfsUri | None = Field(default=None, description="hdfs only")
    endpoint: S3Endpoint | None = Field(default=None, description="s3 only")
    bucket: BucketName | None = Field(default=None, description="s3 only")
    access_key_id: str | None = Field(default=None, description="s3 only")


# Helm's --timeout as the Release resource takes it: whole seconds in Pulumi's schema integer,
# which the .NET and Java SDKs carry as a 32-bit integer.
HelmTimeout = Annotated[
    int,
    BeforeValidator(_whole(1, 2**31 - 1, "seconds; Pulumi carries it as a 32-bit integer")),
]
# Where a mirror keeps images: <host>[:<port>][/<path>]. The host must hold a dot or a port, or be
# localhost: otherwise Docker and containerd read the first component as a Docker Hub namespace
# and pull from docker.io, the opposite of what a mirror is for.
ImageRegistry = Annotated[
    str,
    matching(
        r"^(?=localhost(:|/|$)|[^/]*[.:])[a-z0-9]([a-z0-9-]*[a-z0-9])?"
        r"(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
        "an image registry; allowed: <host>[:<port>][/<path>] without a scheme or trailing "
        "slash, the host with a dot or a port (or localhost), e.g. "
        "registry.dc1.acme.internal/mirror",
    ),
]


class ChartSource(Strict):
    """Where Helm fetches one chart: the public repository, a mirror, or a folder on disk."""

    source: Literal["public", "oci", "http", "local"] = "public"
    path: str | None = Field(
        default=None, description="local only: the chart folder, relative to the project root."
    )
    repository: str | None = Field(
        default=None,
        description="oci: oci://<registry>/<path> (the chart name is appended, as helm does); "
        "http: a Helm repository URL.",
    )


class HelmSettings(Strict):
    """How `pulumi up` installs a Helm release; defaults wait for readiness and roll back."""

    wait: Flag = True
    atomic: Flag | None = Field(
        default=None, description="Default: the same as wait (atomic implies waiting)."
    )
    timeout_seconds: HelmTimeout = 600


# RFC 3339 with an offset; or Go's time text, which is how Pulumi hands the program a YAML
# timestamp written without quotes (`stackyaml`): the same instant, so both are read.
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)([Zz]|[+-]\d{2}:\d{2})\Z"
)
_GO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?) ([+-]\d{4}) \S+\Z")


def parse_time(value: Any) -> datetime:
    """An instant with its offset, as RFC 3339 writes it; a time without one is refused, since a
    backfill's bounds must not depend on the zone of the machine that plans them."""
    allowed = "allowed: an RFC 3339 time with an offset, such as 2026-11-01T00:00:00Z"
    if not isinstance(value, str):
        raise ValueError(f"not a time; {allowed}")
    m = _RFC3339.match(value) or _GO_TIME.match(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 time; {allowed}")
    day, clock, zone = m.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    if len(zone) == 5:  # Go's -0500
        zone = f"{zone[:3]}:{zone[3:]}"
    if "." in clock:  # Python reads at most microseconds
        whole, frac = clock.split(".")
        clock = f"{whole}.{frac[:6].ljust(6, '0')}"
    try:
        return datetime.fromisoformat(f"{day}T{clock}{zone}")
    except ValueError:
        raise ValueError(f"not a calendar time; {allowed}") from None


Instant = Annotated[datetime, BeforeValidator(parse_time)]
BACKFILL_ID_PATTERN = r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z"
BackfillId = Annotated[
    str,
    matching(
        BACKFILL_ID_PATTERN,
        "a backfill id; allowed: 1 to 22 lower-case letters, digits and dashes, starting and "
        "ending with a letter or digit",
    ),
]


class Backfill(Strict):
    """A bounded re-run of a Flink job over ``[from, to)`` of its sources' retained range, into
    the job's backfill sinks (paper 7, Kappa+); `infra/components/flink/backfill.py` declares it.
    Checked against the published jobs by `infra.topology.jobs.check_backfills`."""

    job: str
    start: Instant = Field(alias="from")
    end: Instant = Field(alias="to")
    id: BackfillId | None = Field(
        default=None, description="Names the run; its start time (UTC) when left out."
    )
    # `kafka`: the aggregate's retained records (bounded Kafka sources). `archive` (paper 4.4):
    # the region's Parquet archive, for a range Kafka no longer holds (`rtdi backfill` picks it
    # then, and pins it here so a later `pulumi up` never switches a running backfill's source).
    source: Literal["kafka", "archive"] = Field(
        default="kafka", description="What the run reads: kafka or archive."
    )

    @property
    def run_id(self) -> str:
        # A letter inside: `pulumi config set --path` would store an all-digit id as a number.
        return self.id or self.start.astimezone(UTC).strftime("%Y%m%dt%H%M")

    @property
    def span(self) -> timedelta:
        return self.end - self.start


SavepointUri = Annotated[
    str,
    matching(
        r"(s3p|s3|gs|hdfs)://[^/\s]+/\S+\Z",
        "a savepoint directory; allowed: s3p://, s3://, gs:// or hdfs:// URI of a savepoint in "
        "this region's flink-state bucket",
    ),
]
# Flink's savepointRedeployNonce is a Java Long; 0 is the operator's "no nonce yet".
HandoverNonce = Annotated[
    int, BeforeValidator(_whole(1, 2**63 - 1, "a positive Java long, new for every handover"))
]


class FlinkHandover(Strict):
    """A savepoint the region that becomes primary starts an active-passive job from (see
    infra/components/flink/handover.py); without one the job starts with empty state from the
    consumer offsets MirrorMaker 2 (or the DR drill) translated."""

    savepoint: SavepointUri
    nonce: HandoverNonce


class RegionalBase(Strict):
    region: str = Field(description="The topology region this stack deploys, <cloud>-<region>.")
    global_stack: str | None = Field(default=None, description="Fully qualified global stack name.")
    charts: dict[str, ChartSource] = Field(
        default_factory=dict,
        description="Per chart name: where Helm fetches it; absent charts come from the public "
        "repository.",
    )
    helm: HelmSettings = HelmSettings()
    image_registry: ImageRegistry | None = Field(
        default=None,
        description="A registry mirror every image rtdi declares is rewritten to, path, tag and "
        "digest kept.",
    )
    backfills: list[Backfill] = Field(
        default_factory=list,
        description="Bounded re-runs of Flink jobs in this region (`rtdi backfill` plans one).",
    )
    flink_handover: dict[str, FlinkHandover] = Field(
        default_factory=dict,
        description="Per active-passive jar job: the savepoint this region, the primary, starts "
        "it from after a flip, and a nonce new for every handover.",
    )


class AwsStack(RegionalBase):
    cloud: Literal["aws"]
    aws_account_id: AwsAccountId | None = None
    network: AwsNetwork = AwsNetwork()
    kubernetes: EksCluster = EksCluster()
    object_store: S3Store = S3Store()


class GcpStack(RegionalBase):
    cloud: Literal["gcp"]
    gcp_project: GcpProjectId
    network: GcpNetwork = GcpNetwork()
    kubernetes: GkeCluster = GkeCluster()
    object_store: GcsStore = GcsStore()


class OnpremStack(RegionalBase):
    cloud: Literal["onprem"]
    kubernetes: ExistingCluster
    object_store: OnpremStore
    object_store_secret_access_key: str | None = _secret("s3 only")


REGIONAL_MODELS: dict[str, type[RegionalBase]] = {
    "aws": AwsStack,
    "gcp": GcpStack,
    "onprem": OnpremStack,
}
