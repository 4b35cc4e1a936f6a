"""Checks that relate one configuration value to another.

Each check returns ``(loc, value, message)`` triples; `config.py` turns them into `Issue`s that
name the stack file and key. Kept apart from the pydantic models so every message can point at
the exact element (``regions[1].zones[0]``) rather than at the enclosing object.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import Any

from infra.topology.model import (
    KAFKA_ENGINES_BY_CLOUD,
    AwsStack,
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
                f"region listed twice (first at regions[{seen[region.id]}]); each cloud region may appear once",
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
    """Kafka rules that relate the `kafka` key to the topology. Locations start at the config key."""
    k = g.kafka
    if k.min_insync_replicas >= k.replication_factor:
        yield (
            ("kafka", "minInsyncReplicas"),
            k.min_insync_replicas,
            (
                f"must be below replicationFactor {k.replication_factor} so one replica may be down; "
                f"allowed: 1 to {k.replication_factor - 1}"
            ),
        )
    for i, region in enumerate(g.topology.regions):
        if len(region.zones) < k.replication_factor:
            yield (
                ("topology", "regions", i, "zones"),
                region.zones,
                (
                    f"{len(region.zones)} zone(s) cannot hold {k.replication_factor} replicas in distinct zones "
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
                        f"only for engine strimzi; {engine} tiers storage on its own; allowed: remove it"
                    ),
                )
            elif engine not in IMPLEMENTED_KAFKA_ENGINES:
                yield (
                    ("topology", "regions", i, "kafka", role, "engine"),
                    engine,
                    (
                        f"not implemented yet in this rtdi release; allowed: {', '.join(IMPLEMENTED_KAFKA_ENGINES)}"
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
                    "not a data class name; allowed: lower-case letters, digits and dashes, starting with a letter (not 'none')"
                ),
            )
        for j, jurisdiction in enumerate(data_class.jurisdictions):
            if jurisdiction not in jurisdictions:
                yield (
                    ("kafka", "dataClasses", name, "jurisdictions", j),
                    jurisdiction,
                    (
                        f"no region of the topology has this jurisdiction; allowed: {', '.join(sorted(jurisdictions))}"
                    ),
                )
    seen: dict[str, int] = {}
    for i, topic in enumerate(k.topics):
        if topic.data_class not in k.data_classes:
            yield (
                ("kafka", "topics", i, "dataClass"),
                topic.data_class,
                (
                    f"unknown data class; allowed: {', '.join(k.data_classes) or 'none (declare rtdi:kafka.dataClasses first)'}"
                ),
            )
        if topic.name in seen:
            yield (
                ("kafka", "topics", i, "name"),
                topic.name,
                f"topic declared twice (first at topics[{seen[topic.name]}])",
            )
        seen.setdefault(topic.name, i)
        groups = [c.name for c in topic.consumer_groups]
        for j, group in enumerate(groups):
            if group in groups[:j]:
                yield (
                    ("kafka", "topics", i, "consumerGroups", j, "name"),
                    group,
                    "consumer group listed twice for this topic",
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
    if stack.cloud != region.cloud:  # type: ignore[attr-defined]
        yield (
            ("cloud",),
            stack.cloud,
            f"region {region.id} is on {region.cloud} in the global topology; allowed: {region.cloud}",
        )  # type: ignore[attr-defined]
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
    if isinstance(stack, AwsStack):
        yield from _check_aws(stack, region)
    elif isinstance(stack, GcpStack):
        yield from _check_gcp(stack)
    elif isinstance(stack, OnpremStack):
        yield from _check_onprem(stack, region)


def _check_aws(stack: AwsStack, region: Region) -> Iterator[Found]:
    net = stack.network
    if net.mode == "create":
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
                "allowed: s3 (an S3-compatible store), or remove tieredStorageImage from the topology"
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
                "required for kind: s3; set it with `pulumi config set --secret objectStoreSecretAccessKey`",
            )
        if store.uri is not None:
            yield ("objectStore", "uri"), store.uri, "only for kind: hdfs; allowed: remove it"


def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
