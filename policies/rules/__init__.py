"""Every rule, one per module; `ALL_RULES` is the order they run and are listed in.

Importing this package constructs no PolicyPack (only ``policies/__main__.py`` does).
"""

from __future__ import annotations

from policies.engine import Rule
from policies.rules import (
    aggregate_receives_all_regions,
    bucket_colocated_with_cluster,
    bucket_encrypted,
    bucket_not_public,
    bucket_versioned,
    data_class_residency,
    kafka_brokers_across_zones,
    kafka_cluster_durability,
    kafka_encryption_at_rest,
    kafka_no_public_access,
    kafka_tls_only,
    kafka_topic_durability,
    kubernetes_api_private,
    kubernetes_nodes_across_zones,
    mirrormaker_durability,
    region_allowed_for_jurisdiction,
    replication_destination_allowed,
    single_primary_region,
    stack_declares_resources,
    stateful_workloads_have_pdb,
)

MODULES = (
    # data placement
    region_allowed_for_jurisdiction,
    data_class_residency,
    replication_destination_allowed,
    bucket_colocated_with_cluster,
    aggregate_receives_all_regions,
    # durability
    kafka_brokers_across_zones,
    kubernetes_nodes_across_zones,
    kafka_cluster_durability,
    kafka_topic_durability,
    mirrormaker_durability,
    # security
    bucket_not_public,
    bucket_encrypted,
    bucket_versioned,
    kafka_tls_only,
    kafka_encryption_at_rest,
    kafka_no_public_access,
    kubernetes_api_private,
    # availability and topology
    stateful_workloads_have_pdb,
    single_primary_region,
    # plan integrity
    stack_declares_resources,
)

ALL_RULES: tuple[Rule, ...] = tuple(m.RULE for m in MODULES)
BY_ID: dict[str, Rule] = {r.id: r for r in ALL_RULES}

__all__ = ["ALL_RULES", "BY_ID", "MODULES"]
