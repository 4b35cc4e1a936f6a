"""Helpers several rules share: Strimzi objects, MirrorMaker 2 shapes, buckets, data classes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policies.engine import Param
from policies.view import (
    LABEL_JURISDICTION,
    LABEL_REGION,
    ZONE_KEY,
    Resource,
    StackView,
    dig,
    identifiers,
    items,
    location,
    references,
    text,
)

STRIMZI = "kafka.strimzi.io"
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
GCS_BUCKET = "gcp:storage/bucket:Bucket"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
MSK_CLUSTER = "aws:msk/cluster:Cluster"
MSK_CONFIGURATION = "aws:msk/configuration:Configuration"
MSK_TOPIC = "aws:msk/topic:Topic"
MSK_REPLICATOR = "aws:msk/replicator:Replicator"
GMK_CLUSTER = "gcp:managedkafka/cluster:Cluster"
GMK_TOPIC = "gcp:managedkafka/topic:Topic"
S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


# --------------------------------------------------------------------------- Strimzi


def kafkas(view: StackView) -> list[Resource]:
    return view.of_kind(STRIMZI, "Kafka")


def mirror_makers(view: StackView) -> list[Resource]:
    return view.of_kind(STRIMZI, "KafkaMirrorMaker2")


def node_pools(view: StackView, kafka: Resource) -> list[Resource]:
    """A Kafka cluster's KafkaNodePools: label strimzi.io/cluster = its name, same namespace."""
    return [
        p
        for p in view.of_kind(STRIMZI, "KafkaNodePool")
        if p.labels.get("strimzi.io/cluster") == kafka.k8s_name
        and p.k8s_namespace == kafka.k8s_namespace
    ]


def cluster_of(view: StackView, obj: Resource) -> Resource | None:
    """The Kafka a KafkaTopic/KafkaUser/KafkaNodePool belongs to (its strimzi.io/cluster label)."""
    name = obj.labels.get("strimzi.io/cluster")
    return next(
        (k for k in kafkas(view) if k.k8s_name == name and k.k8s_namespace == obj.k8s_namespace),
        None,
    )


def pool_roles(pool: Resource) -> list[str]:
    return [r for r in items(dig(pool.props, "spec", "roles")) if isinstance(r, str)]


def pool_zones(pool: Resource) -> set[str]:
    """Zones a node pool's pods are pinned to: its required node affinity on the zone key (what
    the scheduler obeys; the rtdi-zone label is a claim, checked against this)."""
    zones: set[str] = set()
    terms = dig(
        pool.props,
        "spec",
        "template",
        "pod",
        "affinity",
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
        "nodeSelectorTerms",
    )
    for term in items(terms):
        for expr in items(dig(term, "matchExpressions")):
            if dig(expr, "key") == ZONE_KEY and dig(expr, "operator") == "In":
                zones.update(v for v in items(dig(expr, "values")) if isinstance(v, str))
    return zones


def kafka_role(r: Resource) -> str | None:
    return r.labels.get("rtdi-kafka-role")


def mm2_sources(mm2: Resource) -> list[tuple[str | None, Any]]:
    """(alias, connection) per mirror. Strimzi v1: ``mirrors[].source``; v1beta2:
    ``mirrors[].sourceCluster`` naming an entry of ``spec.clusters``."""
    clusters = {dig(c, "alias"): c for c in items(dig(mm2.props, "spec", "clusters"))}
    out: list[tuple[str | None, Any]] = []
    for mirror in items(dig(mm2.props, "spec", "mirrors")):
        source = dig(mirror, "source")
        if isinstance(source, Mapping):
            out.append((text(dig(source, "alias")), source))
        else:
            alias = text(dig(mirror, "sourceCluster"))
            out.append((alias, clusters.get(alias)))
    return out


def mm2_target(mm2: Resource) -> tuple[str | None, Any]:
    """(alias, connection) of the cluster MirrorMaker 2 writes to and keeps Connect topics in."""
    target = dig(mm2.props, "spec", "target")
    if isinstance(target, Mapping):
        return text(dig(target, "alias")), target
    alias = text(dig(mm2.props, "spec", "connectCluster"))
    for c in items(dig(mm2.props, "spec", "clusters")):
        if dig(c, "alias") == alias:
            return alias, c
    return alias, None


def csv(value: str | None) -> list[str]:
    """The data classes in an rtdi-data-classes annotation or tag: separated by commas, or by dots
    or spaces in AWS tags (which allow no commas); "none" (or nothing) means no class."""
    parts = [part for part in re.split(r"[,.\s]+", value or "") if part]
    return [] if parts == ["none"] else parts


# --------------------------------------------------------------------------- buckets


def guards_of(view: StackView, bucket: Resource, *types: str) -> list[Resource]:
    """Resources of ``types`` whose ``bucket`` input is ``bucket`` (S3's settings resources)."""
    return [g for g in view.of_type(*types) if references(g, "bucket", bucket)]


# --------------------------------------------------------------------------- data classes

DATA_CLASSES = Param(
    "dataClasses",
    {},
    'Data class -> the jurisdictions whose regions may hold it, e.g. {"personal-eu": ["eu"], '
    '"operational": ["us", "eu"]}. A class listed here overrides what the global stack publishes '
    "(rtdi:kafka.dataClasses).",
    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
)
FALLBACK_TO_PUBLISHED = Param(
    "fallbackToPublished",
    True,
    "For a data class not in dataClasses, use the jurisdictions the global stack publishes for "
    "it. Set false to require every class to be listed in this policy configuration.",
    {"type": "boolean"},
)


def class_jurisdictions(
    view: StackView, params: Mapping[str, Any], data_class: str
) -> list[str] | None:
    """Jurisdictions that may hold ``data_class``; None if neither policy nor topology says."""
    configured = params.get("dataClasses") or {}
    if data_class in configured:
        return list(configured[data_class])
    if params.get("fallbackToPublished", True):
        published = (view.kafka_settings.get("dataClasses") or {}).get(data_class)
        if isinstance(published, dict) and isinstance(published.get("jurisdictions"), list):
            return list(published["jurisdictions"])
    return None


def unknown_class(view: StackView, rule_id: str, data_class: str) -> str:
    """Why a data class has no allowed jurisdictions, and what to do about it."""
    if view.published is None:
        return (
            f"data class {data_class!r} is not in {rule_id}.dataClasses and the global stack's "
            "published classes are not available here; list it in the policy config, or check "
            "this stack with its global stack's plan"
        )
    return (
        f"data class {data_class!r} has no allowed jurisdictions; declare it in "
        f"{rule_id}.dataClasses or in the global stack's rtdi:kafka.dataClasses"
    )


def region_jurisdiction(
    view: StackView, region_id: str | None, fallback: Resource | None = None
) -> str | None:
    """The topology's jurisdiction of a region id, else the resource's rtdi-jurisdiction label."""
    found = view.jurisdiction_of_region(region_id)
    if (
        found is None
        and fallback is not None
        and (fallback.labels.get(LABEL_REGION) in (None, region_id))
    ):
        found = fallback.labels.get(LABEL_JURISDICTION)
    return found


# --------------------------------------------------------------------------- topics, as facts
#
# What a topic carries is decided by the global stack's rtdi:kafka.topics (its dataClass), not by
# the labels rtdi writes on the objects it declares: those are claims, checked against these facts.


def topology_topics(view: StackView) -> list[Mapping[str, Any]] | None:
    """The global stack's topics (published ``kafka.topics``); None when it is not readable."""
    if view.published is None:
        return None
    topics = view.kafka_settings.get("topics")
    return [t for t in topics if isinstance(t, Mapping)] if isinstance(topics, list) else []


def physical_names(topic: Mapping[str, Any]) -> list[str]:
    """A topic's name and its per-group retry and dead-letter topics, as the Kafka layer names
    them (infra/components/kafka/flows.py ``physical_topics``; the policy pack cannot import it)."""
    name = str(topic.get("name"))
    out = [name]
    for group in items(topic.get("consumerGroups")):
        group_name = dig(group, "name")
        if dig(group, "retry", default=True) is not False:
            out.append(f"{name}.{group_name}.retry")
        if dig(group, "deadLetter", default=True) is not False:
            out.append(f"{name}.{group_name}.dlq")
    return out


def topic_classes(view: StackView) -> dict[str, str] | None:
    """Physical topic name -> its data class, from the topology; None without the topology."""
    topics = topology_topics(view)
    if topics is None:
        return None
    return {
        physical: str(t.get("dataClass"))
        for t in topics
        for physical in physical_names(t)
        if t.get("dataClass") is not None
    }


def region_ids(view: StackView) -> list[str]:
    return [
        f"{r.get('cloud')}-{r.get('name')}"
        for r in (view.topology or {}).get("regions") or []
        if isinstance(r, Mapping)
    ]


def class_of_topic(view: StackView, name: str) -> str | None:
    """The data class of a topic as named on a cluster: a physical name, or a mirrored copy
    ``<source region id>.<physical name>`` (MirrorMaker 2's DefaultReplicationPolicy)."""
    classes = topic_classes(view) or {}
    if name in classes:
        return classes[name]
    for region_id in region_ids(view):
        if name.startswith(region_id + "."):
            found = classes.get(name[len(region_id) + 1 :])
            if found is not None:
                return found
    return None


def names_in_region(
    view: StackView, region_id: str | None, mirrored: bool = True
) -> dict[str, str]:
    """Topic names a cluster of ``region_id`` may hold (its own physical topics, and, with
    ``mirrored``, the ``<source>.<topic>`` copies an aggregate keeps), each with its data class.
    ``region_id`` None (a source that cannot be placed): every name of every region, so nothing
    is missed."""
    classes = topic_classes(view) or {}
    out: dict[str, str] = {}
    sources = region_ids(view)
    for physical, data_class in classes.items():
        if region_id is None or _allowed_in(view, data_class, region_id):
            out[physical] = data_class
        for source in sources if mirrored else ():
            if region_id is None or _allowed_in(view, data_class, region_id):
                out[f"{source}.{physical}"] = data_class
    return out


def _allowed_in(view: StackView, data_class: str, region_id: str) -> bool:
    """Would the Kafka layer create a topic of ``data_class`` in ``region_id``? (The topology's
    own placement, flows.py ``topic_allowed``.)"""
    published = (view.kafka_settings.get("dataClasses") or {}).get(data_class)
    jurisdictions = published.get("jurisdictions") if isinstance(published, Mapping) else None
    if not isinstance(jurisdictions, list):
        return True  # an undeclared class: assume it can be anywhere, so nothing is missed
    return view.jurisdiction_of_region(region_id) in jurisdictions


def region_of_bootstrap(view: StackView, bootstrap: str | None) -> str | None:
    """The topology region a bootstrap address names: ``<cluster>.<region id>.<dnsDomain>``."""
    host = (bootstrap or "").split(",")[0].rsplit(":", 1)[0]
    for region_id in region_ids(view):
        if f".{region_id}." in f".{host}.":
            return region_id
    return None


def cluster_region(view: StackView, bootstrap: str | None) -> str | None:
    """The region of the cluster a bootstrap address reaches: an in-cluster Service name is this
    stack's own cluster; otherwise the region id in the host name (rtdi's cross-region names, MSK
    cluster names) or a GCP Managed Kafka region."""
    host = (bootstrap or "").split(",")[0].rsplit(":", 1)[0]
    if not host:
        return None
    if host.endswith(".svc") or ".svc." in host:
        return view.region_id
    found = region_of_bootstrap(view, host)
    if found:
        return found
    for region_id in region_ids(view):
        cloud, name = region_id.split("-", 1)
        if f"-{region_id}-" in host or (cloud == "gcp" and f".{name}.managedkafka." in host):
            return region_id
    return None


def arn_region(view: StackView, arn: str | None) -> str | None:
    """An MSK cluster ARN's region (``arn:aws:kafka:<region>:...``), else the region id in its
    cluster name; None when neither names a topology region."""
    parts = (arn or "").split(":")
    if len(parts) > 3 and f"aws-{parts[3]}" in region_ids(view):
        return f"aws-{parts[3]}"
    names = (arn or "").split("/")
    name = names[1] if len(names) > 1 else ""
    return next((r for r in region_ids(view) if f"-{r}-" in f"-{name}-"), None)


# --------------------------------------------------------------------------- zones, as facts

EC2_SUBNET = "aws:ec2/subnet:Subnet"


def subnet_zones(view: StackView, subnet_ids: Any) -> tuple[set[str], list[str]]:
    """(zones, undeclared subnet ids) of subnets named by id: each id is matched to a Subnet
    declared in the stack (or a stack checked with it) and read for its availabilityZone."""
    subnets = [r for r in view.everywhere() if r.type == EC2_SUBNET]
    zones: set[str] = set()
    unknown: list[str] = []
    for sid in items(subnet_ids):
        match = next((s for s in subnets if isinstance(sid, str) and sid in identifiers(s)), None)
        zone = text(dig(match.props, "availabilityZone")) if match else None
        if zone:
            zones.add(zone)
        else:
            unknown.append(str(sid))
    return zones, unknown


def region_of(view: StackView, r: Resource) -> str | None:
    """The topology region id where ``r`` lives: a cloud resource's own or provider region; a
    Kubernetes object's stack region (its provider is that stack's cluster), never its label."""
    if r.package == "kubernetes":
        return view.region_id
    where = location(r)
    return f"{where[0]}-{where[1]}" if where else view.region_id


def label_disagrees(r: Resource, key: str, fact: str | None) -> str | None:
    """A message when ``r`` carries label/tag/annotation ``key`` whose value is not ``fact``."""
    claimed = r.labels.get(key, r.annotations.get(key) if r.package == "kubernetes" else None)
    if claimed is None or fact is None or claimed == fact:
        return None
    return f"is labelled {key}: {claimed!r}, but the facts say {fact!r}; fix or drop the label"
