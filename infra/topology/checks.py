"""Checks that relate one configuration value to another.

Each check returns ``(loc, value, message)`` triples; `config.py` turns them into `Issue`s that
name the stack file and key. Kept apart from the pydantic models so every message can point at
the exact element (``regions[1].zones[0]``) rather than at the enclosing object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, collapse_addresses
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from infra import versions
from infra.topology.errors import NO_VALUE
from infra.topology.model import (
    INT64_MAX,
    KAFKA_ENGINES_BY_CLOUD,
    MAX_NODES,
    MS_PER_HOUR,
    AwsStack,
    ChartSource,
    GcpStack,
    GlobalStack,
    OnpremStack,
    Region,
    RegionalBase,
    Topology,
)

Found = tuple[tuple[Any, ...], Any, str]

_REGION_NAME = {
    "aws": (re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d+$"), "an AWS region name such as us-east-1"),
    "gcp": (re.compile(r"^[a-z]+-[a-z]+\d+$"), "a GCP region name such as europe-west4"),
    "onprem": (
        re.compile(r"^[a-z][a-z0-9-]{0,30}$"),
        "a site name of lower-case letters, digits and dashes",
    ),
}


def zone_rule(region: Region) -> tuple[re.Pattern[str], str]:
    """How a zone of this region must be spelled, and the same in words."""
    if region.cloud == "aws":
        return re.compile(
            rf"^{re.escape(region.name)}[a-z]$"
        ), f"{region.name} followed by one letter, e.g. {region.name}a"
    if region.cloud == "gcp":
        return re.compile(
            rf"^{re.escape(region.name)}-[a-z]$"
        ), f"{region.name}-<letter>, e.g. {region.name}-a"
    return (
        re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
        "a node label value of topology.kubernetes.io/zone (lower-case letters, digits, dashes)",
    )


def check_topology(t: Topology) -> Iterator[Found]:
    seen: dict[str, int] = {}
    for i, region in enumerate(t.regions):
        pattern, words = _REGION_NAME[region.cloud]
        if not pattern.match(region.name):
            yield (
                ("regions", i, "name"),
                region.name,
                f"not a valid {region.cloud} region; allowed: {words}",
            )
        if region.id in seen:
            yield (
                ("regions", i),
                region.id,
                f"region listed twice (first at regions[{seen[region.id]}]); "
                "each cloud region may appear once",
            )
        seen.setdefault(region.id, i)
        zone_pattern, zone_words = zone_rule(region)
        zones_seen: set[str] = set()
        for j, zone in enumerate(region.zones):
            if not zone_pattern.match(zone):
                yield (
                    ("regions", i, "zones", j),
                    zone,
                    f"zone does not belong to region {region.name}; allowed: {zone_words}",
                )
            if zone in zones_seen:
                yield ("regions", i, "zones", j), zone, "zone listed twice in this region"
            zones_seen.add(zone)
    if t.primary not in seen:
        yield (
            ("primary",),
            t.primary,
            f"not a region of this topology; allowed: {', '.join(seen) or 'none defined'}",
        )


# Engines whose clusters rtdi can declare today; the others are accepted by the model so that the
# message for them says "not yet" rather than "unknown".
IMPLEMENTED_KAFKA_ENGINES = ("strimzi", "msk", "gcp-managed")
DATA_CLASS_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


def check_kafka(g: GlobalStack) -> Iterator[Found]:
    """Kafka rules that relate the `kafka` key to the topology. Locations start at the key."""
    k = g.kafka
    if k.replication_factor == 1:
        yield (
            ("kafka", "replicationFactor"),
            k.replication_factor,
            "one replica leaves no copy when a broker is down, and no minInsyncReplicas below it; "
            "allowed: 2 or more (3 across 3 zones is rtdi's default)",
        )
    elif k.min_insync_replicas >= k.replication_factor:
        yield (
            ("kafka", "minInsyncReplicas"),
            k.min_insync_replicas,
            (
                f"must be below replicationFactor {k.replication_factor} so one replica may be "
                "down; "
                f"allowed: 1 to {k.replication_factor - 1}"
            ),
        )
    for i, region in enumerate(g.topology.regions):
        if len(region.zones) < k.replication_factor:
            yield (
                ("topology", "regions", i, "zones"),
                region.zones,
                (
                    f"{len(region.zones)} zone(s) cannot hold {k.replication_factor} replicas in "
                    "distinct zones "
                    f"(rtdi:kafka.replicationFactor); allowed: {k.replication_factor} or more zones"
                ),
            )
        for role in ("regional", "aggregate"):
            engine = getattr(region.kafka, role).engine
            offered = KAFKA_ENGINES_BY_CLOUD[region.cloud]
            if engine not in offered:
                yield (
                    ("topology", "regions", i, "kafka", role, "engine"),
                    engine,
                    (f"not offered on {region.cloud}; allowed: {', '.join(offered)}"),
                )
            elif getattr(region.kafka, role).tiered_storage_image and engine != "strimzi":
                yield (
                    ("topology", "regions", i, "kafka", role, "tieredStorageImage"),
                    getattr(region.kafka, role).tiered_storage_image,
                    (
                        f"only for engine strimzi; {engine} tiers storage on its own; "
                        "allowed: remove it"
                    ),
                )
            elif engine not in IMPLEMENTED_KAFKA_ENGINES:
                yield (
                    ("topology", "regions", i, "kafka", role, "engine"),
                    engine,
                    (
                        "not implemented yet in this rtdi release; allowed: "
                        f"{', '.join(IMPLEMENTED_KAFKA_ENGINES)}"
                    ),
                )
    jurisdictions = {r.jurisdiction for r in g.topology.regions}
    for name, data_class in k.data_classes.items():
        # Names travel in labels, annotations and AWS tags, joined by "," or "."; keep them plain.
        if not DATA_CLASS_NAME.match(name) or name == "none":
            yield (
                ("kafka", "dataClasses", name),
                name,
                (
                    "not a data class name; allowed: lower-case letters, digits and dashes, "
                    "starting with a letter (not 'none')"
                ),
            )
        for j, jurisdiction in enumerate(data_class.jurisdictions):
            if jurisdiction not in jurisdictions:
                yield (
                    ("kafka", "dataClasses", name, "jurisdictions", j),
                    jurisdiction,
                    (
                        "no region of the topology has this jurisdiction; allowed: "
                        f"{', '.join(sorted(jurisdictions))}"
                    ),
                )
    seen: dict[str, int] = {}
    modes: dict[str, tuple[int, int, str]] = {}
    for i, topic in enumerate(k.topics):
        if topic.data_class not in k.data_classes:
            yield (
                ("kafka", "topics", i, "dataClass"),
                topic.data_class,
                (
                    "unknown data class; allowed: "
                    f"{', '.join(k.data_classes) or 'none (declare rtdi:kafka.dataClasses first)'}"
                ),
            )
        if topic.name in seen:
            yield (
                ("kafka", "topics", i, "name"),
                topic.name,
                f"topic declared twice (first at topics[{seen[topic.name]}])",
            )
        seen.setdefault(topic.name, i)
        for j, c in enumerate(topic.consumer_groups):
            first = modes.setdefault(c.name, (i, j, c.mode))
            if first[2] != c.mode:
                yield (
                    ("kafka", "topics", i, "consumerGroups", j, "mode"),
                    c.mode,
                    f"consumer group {c.name} is {first[2]} at topics[{first[0]}]."
                    f"consumerGroups[{first[1]}]; a group fails over as one, so allowed: "
                    f"{first[2]} here too",
                )
        groups = [c.name for c in topic.consumer_groups]
        for j, group in enumerate(groups):
            if group in groups[:j]:
                yield (
                    ("kafka", "topics", i, "consumerGroups", j, "name"),
                    group,
                    "consumer group listed twice for this topic",
                )
    yield from check_topic_names(g)
    yield from check_strimzi_names(g)
    yield from check_kafka_sizes(g)
    yield from check_retention(g)
    wide = too_wide(k.peer_cidrs)
    if wide:
        yield (
            ("kafka", "peerCidrs"),
            [str(c) for c in k.peer_cidrs],
            f"{wide}; these networks may reach every managed Kafka cluster's cross-region "
            "ports; allowed: the private networks of the regions only, such as 10.0.0.0/8",
        )


# The largest private range (RFC 1918) is a /8; a list of trusted networks wider than that, or
# one that together covers every address, opens a port to the internet.
_WIDEST_PRIVATE = 2**24


def too_wide(cidrs: list[IPv4Network]) -> str | None:
    """Why ``cidrs`` together reach beyond any private network, in words; None when they do not."""
    merged = list(collapse_addresses(cidrs))
    if merged == [IPv4Network("0.0.0.0/0")]:
        return "together these networks cover every IPv4 address, the whole internet"
    total = sum(n.num_addresses for n in merged)
    if total > _WIDEST_PRIVATE:
        return (
            f"together these networks cover {total:,} addresses, more than the largest private "
            "range (a /8)"
        )
    return None


# GCP Managed Kafka (docs.cloud.google.com/managed-service-for-apache-kafka, CapacityConfig and
# BrokerCapacityConfig): 1 to 8 GiB of memory per vCPU, at least 100 GiB of disk per broker.
GCP_KAFKA_GIB_PER_VCPU = (1, 8)
GCP_KAFKA_MIN_DISK_GIB = 100


def check_kafka_sizes(g: GlobalStack) -> Iterator[Found]:
    """Sizes each engine's API or Kubernetes would refuse after `pulumi up` had started."""
    for i, region in enumerate(g.topology.regions):
        for role in ("regional", "aggregate"):
            spec = getattr(region.kafka, role)
            at = ("topology", "regions", i, "kafka", role)
            brokers = spec.brokers_per_zone * len(region.zones)
            if brokers > MAX_NODES:
                yield (
                    (*at, "brokersPerZone"),
                    spec.brokers_per_zone,
                    f"{brokers:,} brokers in {len(region.zones)} zones; Kubernetes supports at "
                    f"most {MAX_NODES:,} nodes in a cluster; allowed: at most "
                    f"{MAX_NODES // len(region.zones):,} per zone",
                )
            if spec.engine != "gcp-managed":
                continue
            low, high = GCP_KAFKA_GIB_PER_VCPU
            ratio = spec.broker_memory_gib / spec.broker_cpu
            if not low <= ratio <= high:
                yield (
                    (*at, "brokerMemoryGib"),
                    spec.broker_memory_gib,
                    f"{ratio:g} GiB per vCPU with brokerCpu {spec.broker_cpu}; GCP Managed Kafka "
                    f"provisions {low} to {high} GiB of memory per vCPU; allowed: "
                    f"{low * spec.broker_cpu} to {high * spec.broker_cpu} with brokerCpu "
                    f"{spec.broker_cpu}",
                )
            if spec.storage_gib < GCP_KAFKA_MIN_DISK_GIB:
                yield (
                    (*at, "storageGib"),
                    spec.storage_gib,
                    f"GCP Managed Kafka provisions at least {GCP_KAFKA_MIN_DISK_GIB} GiB of disk "
                    f"per broker; allowed: {GCP_KAFKA_MIN_DISK_GIB} to 16,384",
                )


def check_retention(g: GlobalStack) -> Iterator[Found]:
    """Kafka keeps retention.ms in an int64; dead-letter topics keep a multiple of the hours."""
    from infra.components.kafka.durability import DEAD_LETTER_RETENTION_FACTOR

    for i, topic in enumerate(g.kafka.topics):
        dead_letters = any(c.dead_letter for c in topic.consumer_groups)
        factor = DEAD_LETTER_RETENTION_FACTOR if dead_letters else 1
        limit = INT64_MAX // MS_PER_HOUR // factor
        if topic.retention_hours > limit and factor > 1:
            yield (
                ("kafka", "topics", i, "retentionHours"),
                topic.retention_hours,
                f"its dead-letter topics keep {factor} times as long, and Kafka keeps "
                "retention.ms in a 64-bit integer of milliseconds; allowed: a whole number from "
                f"1 to {limit:,}",
            )


# Kafka's own rules for a topic name (org.apache.kafka.common.internals.Topic.validate).
KAFKA_TOPIC_MAX = 249
# MirrorMaker 2 (Kafka 4.3) skips what ReplicationPolicy.isInternalTopic calls internal ('__' or
# '.' first, mm2...internal, ...checkpoints.internal) and what DefaultTopicFilter's default
# topics.exclude names (mm2.*\.internal, .*\.replica, __.*); rtdi sets no other exclude.
MM2_NEVER_MIRRORS = re.compile(r"^__|^mm2.*\.internal$|\.checkpoints\.internal$|\.replica$")


@dataclass(frozen=True)
class _Named:
    """A Kafka topic name rtdi creates, and the config key it comes from."""

    name: str
    loc: tuple[Any, ...]
    value: str
    what: str  # in words: "topic", "retry topic of topics[0] 'trips'"...
    copies: str | None = None  # for an aggregate cluster's copy: the topic it copies


def _physical(g: GlobalStack) -> Iterator[_Named]:
    """Declared topics and their retry and dead-letter topics (named as `flows.physical_topics`)."""
    for i, topic in enumerate(g.kafka.topics):
        yield _Named(topic.name, ("kafka", "topics", i, "name"), topic.name, "topic")
        for j, group in enumerate(topic.consumer_groups):
            loc = ("kafka", "topics", i, "consumerGroups", j, "name")
            of = f"of topics[{i}] {_short(topic.name)}"
            if group.retry:
                name = f"{topic.name}.{group.name}.retry"
                yield _Named(name, loc, group.name, f"retry topic {of}")
            if group.dead_letter:
                name = f"{topic.name}.{group.name}.dlq"
                yield _Named(name, loc, group.name, f"dead-letter topic {of}")


def _topic_names(g: GlobalStack) -> Iterator[_Named]:
    """Every topic name rtdi creates: declared, retry, dead-letter, and aggregate copies."""
    from infra.components.kafka.flows import replication_graph

    physical = list(_physical(g))
    yield from physical
    origin = {n.name: n for n in physical}
    mirrored: dict[str, str] = {}  # physical topic -> the longest source region id it flows from
    for flows in replication_graph(g.topology, g.kafka).values():
        for flow in flows:
            for name in flow.topics:
                if len(flow.source) > len(mirrored.get(name, "")):
                    mirrored[name] = flow.source
    for name, source in mirrored.items():
        yield _Named(
            f"{source}.{name}",
            origin[name].loc,
            origin[name].value,
            f"copy of {_short(name)} that MirrorMaker 2 makes from {source} in aggregate clusters",
            copies=name,
        )


def check_topic_names(g: GlobalStack) -> Iterator[Found]:
    """Refuse, before anything is declared, every topic name Kafka would refuse.

    Kafka refuses a name over 249 characters and a second topic whose name equals the first once
    `.` becomes `_` (their metric names collide); the characters it allows (and not `.` or `..`)
    are the model's `TopicName`, and derived names only join such names and region ids with `.`.
    rtdi also refuses one name for two of its topics (one KafkaTopic per name, one Pulumi URN
    per resource), and names MirrorMaker 2 would silently not mirror: internal-looking names,
    and names in which a region id is followed by `.` (MirrorMaker 2 takes `<region id>.` for
    "mirrored from that region" and, to avoid cycles, never copies it into that region).
    """
    seen: dict[str, _Named] = {}
    too_long: set[str] = set()
    cycles: set[tuple[Any, ...]] = set()
    region_ids = g.topology.region_ids
    for named in _topic_names(g):
        name, n = named.name, len(named.name)
        if named.copies in too_long:
            continue  # the topic it copies is too long already: one line for one cause
        if n > KAFKA_TOPIC_MAX:
            too_long.add(name)
            yield (
                named.loc,
                named.value,
                f"the {named.what} is named {_short(name)} ({n} characters); Kafka allows at "
                f"most {KAFKA_TOPIC_MAX} characters in a topic name; allowed: names "
                f"{n - KAFKA_TOPIC_MAX} or more characters shorter",
            )
        if named.copies is not None:
            continue  # a copy is mirrored, collides and cycles only as its source does
        if named.what == "topic" and MM2_NEVER_MIRRORS.search(name):
            yield (
                named.loc,
                named.value,
                "MirrorMaker 2 never mirrors a topic named like an internal one (starting with "
                "'__', ending with '.replica' or '.checkpoints.internal', or mm2...internal), "
                "so no aggregate cluster would receive it; allowed: a name without that prefix "
                "or suffix",
            )
        region = next((r for r in region_ids if r in name.split(".")[:-1]), None)
        if region is not None and named.loc not in cycles:
            cycles.add(named.loc)
            yield (
                named.loc,
                named.value,
                f"the {named.what} is named {_short(name)}; MirrorMaker 2 reads '{region}.' in "
                f"a name as 'mirrored from {region}' and never copies it into {region}'s "
                "aggregate cluster; allowed: a name in which no region id is followed by '.'",
            )
        key = name.replace(".", "_")
        first = seen.get(key)
        if first is None:
            seen[key] = named
            continue
        if first.name == name and first.what == named.what == "topic":
            continue  # the same topic declared twice: reported by check_kafka
        if first.name == name:
            clash = f"is also the name of the {first.what} (at {_at(first)})"
        else:
            clash = (
                f"collides with the {first.what} {first.name!r} (at {_at(first)}) once '.' is "
                "replaced by '_'; Kafka refuses the second of two such topics"
            )
        yield (
            named.loc,
            named.value,
            f"the {named.what} is named {_short(name)}, which {clash}; allowed: a name no other "
            "topic of rtdi has, also after replacing '.' by '_'",
        )


def _at(named: _Named) -> str:
    from infra.topology.errors import key_path

    return key_path(f"rtdi:{named.loc[0]}", named.loc[1:])


def _short(name: str) -> str:
    return repr(name) if len(name) <= 60 else repr(name[:57] + "...")


# Kubernetes: a pod's hostname and every label value are DNS-1123 labels, at most 63 characters.
K8S_LABEL_MAX = 63


def check_strimzi_names(g: GlobalStack) -> Iterator[Found]:
    """Strimzi names a pod `<cluster>-<node pool>-<node id>` and uses that as the pod's hostname
    and in labels; rtdi names node pools `<role>[-controllers]-<zone>`. A long zone name makes
    Kubernetes refuse the pod after `pulumi up` succeeded: refuse the zone here instead."""
    for i, region in enumerate(g.topology.regions):
        roles = [
            r for r in ("regional", "aggregate") if getattr(region.kafka, r).engine == "strimzi"
        ]
        # as StrimziCluster: a controller pool in an odd number of zones
        controllers = region.zones if len(region.zones) % 2 else region.zones[:-1]
        for j, zone in enumerate(region.zones):
            pool = f"controllers-{zone}" if zone in controllers else zone
            pods = [
                f"{role}-{role}-{pool}-"
                f"{len(region.zones) * (getattr(region.kafka, role).brokers_per_zone + 1) - 1}"
                for role in roles
            ]
            pod = max(pods, key=len, default="")
            if len(pod) > K8S_LABEL_MAX:
                yield (
                    ("topology", "regions", i, "zones", j),
                    zone,
                    f"Strimzi would name a Kafka pod in this zone {_short(pod)} ({len(pod)} "
                    f"characters); Kubernetes allows at most {K8S_LABEL_MAX} in a pod hostname "
                    "and a label value; allowed: a zone name of at most "
                    f"{K8S_LABEL_MAX - len(pod) + len(zone)} characters",
                )


def subnet_plan(
    cidr: IPv4Network, zones: list[str]
) -> tuple[dict[str, IPv4Network], dict[str, IPv4Network]]:
    """Split a VPC range into one private and one small public subnet per zone.

    The range is cut into the next power of two above the zone count; each zone takes one part
    for its private subnet (nodes and pods live there, so it gets nearly all addresses) and the
    last part is cut again for the public subnets that hold only NAT gateways and load balancers.
    """
    private_bits = math.ceil(math.log2(len(zones) + 1))
    public_bits = math.ceil(math.log2(max(len(zones), 2)))
    if cidr.prefixlen + private_bits + public_bits > _SMALLEST_PUBLIC_SUBNET:
        largest = _SMALLEST_PUBLIC_SUBNET - private_bits - public_bits
        raise ValueError(f"range too small for {len(zones)} zones; allowed: a /{largest} or larger")
    parts = list(cidr.subnets(prefixlen_diff=private_bits))
    public = list(parts[-1].subnets(prefixlen_diff=public_bits))
    return dict(zip(zones, parts, strict=False)), dict(zip(zones, public, strict=False))


_SMALLEST_PUBLIC_SUBNET = 26


def check_regional(stack: RegionalBase, t: Topology) -> Iterator[Found]:
    ids = t.region_ids
    if stack.region not in ids:
        yield (
            ("region",),
            stack.region,
            f"not a region of the global topology; allowed: {', '.join(ids)}",
        )
        return
    region = t.region(stack.region)
    cloud = getattr(stack, "cloud", None)  # every concrete regional model has one
    if cloud != region.cloud:
        yield (
            ("cloud",),
            cloud,
            f"region {region.id} is on {region.cloud} in the global topology; "
            f"allowed: {region.cloud}",
        )
        return
    k = getattr(stack, "kubernetes", None)
    if (
        k is not None
        and hasattr(k, "max_nodes_per_zone")
        and k.max_nodes_per_zone < k.nodes_per_zone
    ):
        yield (
            ("kubernetes", "maxNodesPerZone"),
            k.max_nodes_per_zone,
            f"below nodesPerZone; allowed: {k.nodes_per_zone} or more",
        )
    for key in ("publicAccessCidrs", "authorizedCidrs"):
        cidrs: list[IPv4Network] = getattr(k, _snake(key), None) or []
        wide = too_wide(cidrs)
        if wide:
            yield (
                ("kubernetes", key),
                [str(c) for c in cidrs],
                f"{wide}; these networks may reach the Kubernetes API; allowed: the networks "
                "of the people and systems that administer the cluster",
            )
    if isinstance(stack, AwsStack):
        yield from _check_aws(stack, region)
    elif isinstance(stack, GcpStack):
        yield from _check_gcp(stack)
    elif isinstance(stack, OnpremStack):
        yield from _check_onprem(stack, region)


# EKS managed node groups boot the EKS-optimised Amazon Linux 2023 AMI, whose root snapshot is
# 20 GiB (EC2 refuses a smaller volume); GKE refuses a node boot disk below 10 GB.
EKS_MIN_DISK_GIB = 20
GKE_MIN_DISK_GIB = 10
# An AWS VPC's range is a /16 to a /28 (VPC user guide, "VPC CIDR blocks").
AWS_VPC_WIDEST = 16
# A GKE private cluster's control plane range is exactly a /28 of private addresses.
GKE_MASTER_PREFIX = 28


def _check_aws(stack: AwsStack, region: Region) -> Iterator[Found]:
    net = stack.network
    if stack.kubernetes.disk_gib < EKS_MIN_DISK_GIB:
        yield (
            ("kubernetes", "diskGib"),
            stack.kubernetes.disk_gib,
            f"EKS nodes boot Amazon Linux 2023, whose root snapshot is {EKS_MIN_DISK_GIB} GiB; "
            f"allowed: {EKS_MIN_DISK_GIB} to 16,384",
        )
    if net.mode == "create":
        if net.cidr.prefixlen < AWS_VPC_WIDEST:
            yield (
                ("network", "cidr"),
                str(net.cidr),
                "AWS allows a VPC range of a /16 to a /28; allowed: a /16 or a smaller range",
            )
        else:
            try:
                subnet_plan(net.cidr, region.zones)
            except ValueError as exc:
                yield ("network", "cidr"), str(net.cidr), str(exc)
        for key in ("vpcId", "privateSubnetIds"):
            if getattr(net, _snake(key)) is not None:
                yield (
                    ("network", key),
                    getattr(net, _snake(key)),
                    "only with mode: existing; allowed: remove it, or set mode: existing",
                )
        return
    if net.vpc_id is None:
        yield (
            ("network", "vpcId"),
            None,
            "required with mode: existing; allowed: the id of an existing VPC, vpc-...",
        )
    subnets = net.private_subnet_ids or {}
    if set(subnets) != set(region.zones):
        yield (
            ("network", "privateSubnetIds"),
            sorted(subnets),
            f"needs exactly one private subnet per zone; allowed keys: {', '.join(region.zones)}",
        )


def _check_gcp(stack: GcpStack) -> Iterator[Found]:
    net = stack.network
    k = stack.kubernetes
    if k.disk_gib < GKE_MIN_DISK_GIB:
        yield (
            ("kubernetes", "diskGib"),
            k.disk_gib,
            f"GKE refuses a node boot disk below {GKE_MIN_DISK_GIB} GB; allowed: "
            f"{GKE_MIN_DISK_GIB} to 16,384",
        )
    if k.master_cidr.prefixlen != GKE_MASTER_PREFIX or not k.master_cidr.is_private:
        yield (
            ("kubernetes", "masterCidr"),
            str(k.master_cidr),
            "GKE puts a private cluster's control plane in a /28 of private addresses; "
            "allowed: a private /28 such as 172.16.0.0/28",
        )
    required = ("network", "subnetwork", "podsRangeName", "servicesRangeName")
    if net.mode == "existing":
        for key in required:
            if getattr(net, _snake(key)) is None:
                yield (
                    ("network", key),
                    None,
                    "required with mode: existing; allowed: the name of the existing resource",
                )
    else:
        for key in required:
            if getattr(net, _snake(key)) is not None:
                yield (
                    ("network", key),
                    getattr(net, _snake(key)),
                    "only with mode: existing; allowed: remove it, or set mode: existing",
                )
        ranges = {"cidr": net.cidr, "podsCidr": net.pods_cidr, "servicesCidr": net.services_cidr}
        names = list(ranges)
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                if ranges[names[a]].overlaps(ranges[names[b]]):
                    yield (
                        ("network", names[b]),
                        str(ranges[names[b]]),
                        f"overlaps {names[a]} {ranges[names[a]]}; allowed: a disjoint range",
                    )


def _check_onprem(stack: OnpremStack, region: Region) -> Iterator[Found]:
    store = stack.object_store
    tiered = [
        role
        for role in ("regional", "aggregate")
        if getattr(region.kafka, role).tiered_storage_image
    ]
    if store.kind == "hdfs" and tiered:
        yield (
            ("objectStore", "kind"),
            store.kind,
            (
                f"Kafka tiered storage ({tiered[0]} cluster of {region.id}) needs an object store; "
                "allowed: s3 (an S3-compatible store), or remove tieredStorageImage from the "
                "topology"
            ),
        )
    if store.kind == "hdfs":
        if store.uri is None:
            yield (
                ("objectStore", "uri"),
                None,
                "required for kind: hdfs; allowed: hdfs://namenode:8020/path",
            )
        for key in ("endpoint", "bucket", "accessKeyId"):
            if getattr(store, _snake(key)) is not None:
                yield (
                    ("objectStore", key),
                    getattr(store, _snake(key)),
                    "only for kind: s3; allowed: remove it",
                )
    else:
        for key in ("endpoint", "bucket", "accessKeyId"):
            if getattr(store, _snake(key)) is None:
                yield (
                    ("objectStore", key),
                    None,
                    "required for kind: s3 (an S3-compatible store such as MinIO or Ceph RGW)",
                )
        if stack.object_store_secret_access_key is None:
            yield (
                ("objectStoreSecretAccessKey",),
                None,
                "required for kind: s3; set it with "
                "`pulumi config set --secret objectStoreSecretAccessKey`",
            )
        if store.uri is not None:
            yield ("objectStore", "uri"), store.uri, "only for kind: hdfs; allowed: remove it"


def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


# --------------------------------------------------------------------------- chart sources

_OCI_REPOSITORY = re.compile(r"^oci://[a-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._-]+)*$")
_HTTP_REPOSITORY = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?$")
_SOURCE_WORDS = {
    "oci": "oci://<registry>[:<port>]/<path> (helm appends the chart name), e.g. "
    "oci://registry.dc1.acme.internal/charts",
    "http": "a Helm repository URL, http(s)://<host>[:<port>]/<path>, e.g. "
    "https://charts.dc1.acme.internal/strimzi",
}


_USED_WORDS = {
    "path": "a chart folder, relative to the project root or absolute,",
    "repository": "the repository URL",
}


def project_root() -> Path:
    """The folder holding Pulumi.yaml: `pulumi up` runs the program (and the Kubernetes provider
    resolves a local chart) there, and `rtdi plan` runs inside the project too."""
    here = Path.cwd().resolve()
    return next((f for f in (here, *here.parents) if (f / "Pulumi.yaml").is_file()), here)


def check_sources(stack: RegionalBase, root: Path | None = None) -> Iterator[Found]:
    """Chart sources and Helm settings, checked before anything is declared: a local chart must
    be the pinned chart, a repository must have the scheme its source kind fetches with."""
    allowed_charts = ", ".join(versions.HELM_CHARTS)
    for name, chart in stack.charts.items():
        if name not in versions.HELM_CHARTS:
            yield (
                ("charts", name),
                name,
                f"not a chart rtdi installs; allowed: {allowed_charts}",
            )
            continue
        yield from _check_chart(name, chart, root or project_root())
    helm = stack.helm
    if helm.atomic and not helm.wait:
        yield (
            ("helm", "atomic"),
            True,
            "an atomic release waits for readiness to know whether to roll back, and wait is "
            "false; allowed: false (or leave it out) with wait: false, or wait: true",
        )


def _check_chart(name: str, chart: ChartSource, root: Path) -> Iterator[Found]:
    loc = ("charts", name)
    used = {"local": "path", "oci": "repository", "http": "repository"}.get(chart.source)
    for key in ("path", "repository"):
        value = getattr(chart, key)
        if value is not None and key != used:
            wants = "source local" if key == "path" else "source oci or http"
            yield (
                (*loc, key),
                value,
                f"not used with source {chart.source}; allowed: this key only with {wants}",
            )
    if used is None:
        return
    value = getattr(chart, used)
    if value is None:
        yield (
            (*loc, used),
            NO_VALUE,
            f"required key is missing; allowed: {_USED_WORDS[used]} with source {chart.source}",
        )
        return
    if chart.source == "local":
        problem = _local_chart_problem(name, value, root)
        if problem:
            yield ((*loc, "path"), value, problem)
        return
    pattern = _OCI_REPOSITORY if chart.source == "oci" else _HTTP_REPOSITORY
    if not pattern.match(value):
        yield (
            (*loc, "repository"),
            value,
            f"not a repository for source {chart.source}; allowed: {_SOURCE_WORDS[chart.source]}",
        )


def _local_chart_problem(name: str, path: str, root: Path) -> str | None:
    """Why ``path`` is not the pinned chart ``name`` (None when it is)."""
    _, pinned = versions.HELM_CHARTS[name]
    folder = root / path
    wanted = (
        f"allowed: a folder holding chart {name} {pinned} (relative to the project root {root})"
    )
    if not folder.is_dir():
        return f"no such folder; {wanted}"
    meta = folder / "Chart.yaml"
    if not meta.is_file():
        return f"not a chart folder (no Chart.yaml); {wanted}"
    try:
        doc = YAML(typ="safe", pure=True).load(meta.read_text())
    except (OSError, YAMLError) as exc:
        return f"its Chart.yaml cannot be read ({type(exc).__name__}); {wanted}"
    if not isinstance(doc, dict):
        return f"its Chart.yaml is not a mapping; {wanted}"
    if doc.get("name") != name:
        return f"holds chart {doc.get('name')}, not {name}; {wanted}"
    if str(doc.get("version")) != pinned:
        return (
            f"holds {name} {doc.get('version')}, and rtdi pins {pinned} (infra/versions.py); "
            f"{wanted}"
        )
    return None
