"""Every rule, one per module; `ALL_RULES` is the order they run and are listed in.

Importing this package constructs no PolicyPack (only ``policies/__main__.py`` does).
"""

from __future__ import annotations

from policies.engine import Rule
from policies.rules import (
    aggregate_receives_all_regions,
    audit_logs,
    bucket_colocated_with_cluster,
    bucket_encrypted,
    bucket_not_public,
    bucket_policy_no_public_principal,
    bucket_versioned,
    data_class_residency,
    flink_active_passive_ha,
    flink_checkpoints_retained,
    flink_files_in_region,
    flink_state_in_region,
    flink_taskmanagers_spread,
    flink_topics_data_class,
    images_pinned_by_digest,
    kafka_brokers_across_zones,
    kafka_cluster_durability,
    kafka_encryption_at_rest,
    kafka_no_public_access,
    kafka_tls_only,
    kafka_topic_durability,
    kms_key_policy,
    kubernetes_api_private,
    kubernetes_network_policy_enforced,
    kubernetes_nodes_across_zones,
    mirrormaker_durability,
    msk_authentication,
    network_not_open_to_world,
    pinot_deep_store_in_region,
    pinot_peer_download_replicated,
    pinot_servers_across_zones,
    pinot_topics_data_class,
    pinot_upsert_strict,
    plan_not_empty,
    query_catalogs_resident,
    region_allowed_for_jurisdiction,
    replication_destination_allowed,
    single_primary_region,
    stateful_workloads_have_pdb,
)

MODULES = (
    # soundness
    plan_not_empty,
    # data placement
    region_allowed_for_jurisdiction,
    data_class_residency,
    replication_destination_allowed,
    bucket_colocated_with_cluster,
    aggregate_receives_all_regions,
    flink_state_in_region,
    flink_files_in_region,
    flink_topics_data_class,
    pinot_deep_store_in_region,
    pinot_topics_data_class,
    query_catalogs_resident,
    # durability
    kafka_brokers_across_zones,
    kubernetes_nodes_across_zones,
    kafka_cluster_durability,
    kafka_topic_durability,
    mirrormaker_durability,
    flink_checkpoints_retained,
    pinot_peer_download_replicated,
    # security
    bucket_not_public,
    bucket_encrypted,
    bucket_versioned,
    kafka_tls_only,
    kafka_encryption_at_rest,
    kafka_no_public_access,
    kubernetes_api_private,
    network_not_open_to_world,
    msk_authentication,
    bucket_policy_no_public_principal,
    kubernetes_network_policy_enforced,
    kms_key_policy,
    audit_logs,
    images_pinned_by_digest,
    # availability and topology
    stateful_workloads_have_pdb,
    single_primary_region,
    flink_active_passive_ha,
    flink_taskmanagers_spread,
    pinot_servers_across_zones,
    pinot_upsert_strict,
    # plan integrity
)

ALL_RULES: tuple[Rule, ...] = tuple(m.RULE for m in MODULES)
BY_ID: dict[str, Rule] = {r.id: r for r in ALL_RULES}

__all__ = ["ALL_RULES", "BY_ID", "MODULES"]
