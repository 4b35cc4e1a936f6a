"""Amazon MSK clusters and the MSK Replicator that joins two of them.

MSK clusters take SASL/SCRAM (for MirrorMaker 2 and clients outside AWS) and IAM (which the MSK
Replicator requires). SCRAM passwords live in Secrets Manager under the `AmazonMSK_` prefix,
encrypted with the region's KMS key, as MSK demands. MSK sets no ACLs through its API, so any
authenticated principal may use the cluster; rtdi does not manage Kafka ACLs on MSK. Broker logs
go to a CloudWatch log group per cluster, encrypted with the region's key and kept for a while.
"""

from __future__ import annotations

import functools
import json

import pulumi
import pulumi_aws as aws

from infra import versions
from infra.components.kafka.durability import as_strings, broker_config, topic_config
from infra.components.kafka.flows import Flow, each_physical
from infra.targets.base import LABEL_PURPOSE
from infra.topology.model import Kafka, KafkaCluster, Topic

SCRAM_PORT = 9096
IAM_PORT = 9098
MAX_MSK_SUBNETS = 3


class MskCluster(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        role: str,
        spec: KafkaCluster,
        kafka: Kafka,
        target,
        users: dict[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rtdi:kafka:MskCluster", name, None, opts)
        self.role = role
        self.name_prefix = name
        self.provider = target.provider
        aws_opts = pulumi.ResourceOptions(parent=self, provider=target.provider)
        physical = target.physical_name(role)
        subnets = list(target.private_subnet_ids.values())[:MAX_MSK_SUBNETS]
        self.security_group = aws.ec2.SecurityGroup(
            name,
            aws.ec2.SecurityGroupArgs(
                name=physical,
                description=f"rtdi {role} Kafka: SCRAM and IAM from the regions' networks",
                vpc_id=target.vpc_id,
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        protocol="tcp",
                        from_port=port,
                        to_port=port,
                        cidr_blocks=[str(c) for c in kafka.peer_cidrs],
                    )
                    for port in (SCRAM_PORT, IAM_PORT)
                ],
                egress=[
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"]
                    )
                ],
                tags={"rtdi-kafka-role": role},
            ),
            opts=aws_opts,
        )
        broker_logs = target.log_group(f"{name}-broker-logs", f"/rtdi/msk/{physical}", self)
        configuration = aws.msk.Configuration(
            name,
            aws.msk.ConfigurationArgs(
                name=physical,
                kafka_versions=[versions.MSK_KAFKA_VERSION],
                server_properties="".join(
                    f"{k}={v}\n" for k, v in as_strings(broker_config(kafka)).items()
                ),
            ),
            opts=aws_opts,
        )
        self.cluster = aws.msk.Cluster(
            name,
            aws.msk.ClusterArgs(
                cluster_name=physical,
                kafka_version=versions.MSK_KAFKA_VERSION,
                number_of_broker_nodes=spec.brokers_per_zone * len(subnets),
                storage_mode="TIERED",
                broker_node_group_info=aws.msk.ClusterBrokerNodeGroupInfoArgs(
                    instance_type=spec.msk_instance_type,
                    client_subnets=subnets,
                    security_groups=[self.security_group.id],
                    storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoArgs(
                        ebs_storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfoArgs(
                            volume_size=spec.storage_gib
                        ),
                    ),
                    connectivity_info=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoArgs(
                        public_access=aws.msk.ClusterBrokerNodeGroupInfoConnectivityInfoPublicAccessArgs(
                            type="DISABLED"
                        ),
                    ),
                ),
                client_authentication=aws.msk.ClusterClientAuthenticationArgs(
                    sasl=aws.msk.ClusterClientAuthenticationSaslArgs(scram=True, iam=True),
                    unauthenticated=False,
                ),
                encryption_info=aws.msk.ClusterEncryptionInfoArgs(
                    encryption_at_rest_kms_key_arn=target.kms_key.arn,
                    encryption_in_transit=aws.msk.ClusterEncryptionInfoEncryptionInTransitArgs(
                        client_broker="TLS", in_cluster=True
                    ),
                ),
                configuration_info=aws.msk.ClusterConfigurationInfoArgs(
                    arn=configuration.arn, revision=configuration.latest_revision
                ),
                logging_info=aws.msk.ClusterLoggingInfoArgs(
                    broker_logs=aws.msk.ClusterLoggingInfoBrokerLogsArgs(
                        cloudwatch_logs=aws.msk.ClusterLoggingInfoBrokerLogsCloudwatchLogsArgs(
                            enabled=True, log_group=broker_logs.name
                        )
                    )
                ),
                tags={"rtdi-kafka-role": role},
            ),
            opts=aws_opts,
        )
        secrets = []
        for user, password in users.items():
            secret = aws.secretsmanager.Secret(
                f"{name}-{user}",
                aws.secretsmanager.SecretArgs(
                    name=f"AmazonMSK_{physical}-{user}",
                    kms_key_id=target.kms_key.arn,
                    recovery_window_in_days=7,
                    tags={LABEL_PURPOSE: "kafka-scram"},
                ),
                opts=aws_opts,
            )
            scram: pulumi.Output[str] = pulumi.Output.secret(
                pulumi.Output.from_input(password).apply(functools.partial(_scram, user))
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{user}",
                aws.secretsmanager.SecretVersionArgs(secret_id=secret.id, secret_string=scram),
                opts=aws_opts,
            )
            secrets.append(secret.arn)
        if secrets:
            aws.msk.ScramSecretAssociation(
                name,
                aws.msk.ScramSecretAssociationArgs(
                    cluster_arn=self.cluster.arn, secret_arn_lists=secrets
                ),
                opts=aws_opts,
            )
        if role == "regional":
            # MSK Replicators in other regions read this cluster through the Kafka service.
            aws.msk.ClusterPolicy(
                name,
                aws.msk.ClusterPolicyArgs(
                    cluster_arn=self.cluster.arn,
                    policy=self.cluster.arn.apply(
                        lambda arn: json.dumps(
                            {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Principal": {"Service": "kafka.amazonaws.com"},
                                        "Action": [
                                            "kafka:CreateVpcConnection",
                                            "kafka:GetBootstrapBrokers",
                                            "kafka:DescribeClusterV2",
                                        ],
                                        "Resource": arn,
                                    }
                                ],
                            }
                        )
                    ),
                ),
                opts=aws_opts,
            )
        self.bootstrap = self.cluster.bootstrap_brokers_sasl_scram
        self.subnet_ids = subnets
        self.register_outputs({"arn": self.cluster.arn, "bootstrap": self.bootstrap})

    def create_topics(self, kafka: Kafka, topics: list[Topic]) -> None:
        for topic, physical in each_physical(topics):
            aws.msk.Topic(
                f"{self.name_prefix}-topic-{physical}",
                aws.msk.TopicArgs(
                    cluster_arn=self.cluster.arn,
                    name=physical,
                    partition_count=topic.partitions,
                    replication_factor=kafka.replication_factor,
                    configs=json.dumps(
                        as_strings(topic_config(kafka, topic, physical, tiered=True))
                    ),
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )


class MskReplicator(pulumi.ComponentResource):
    """Copies a source region's regional MSK cluster into this region's aggregate MSK cluster."""

    def __init__(
        self,
        name: str,
        target,
        flow: Flow,
        source: pulumi.Output,  # the source region's `kafkaRegional` (arn, subnets, groups)
        aggregate: MskCluster,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("rtdi:kafka:MskReplicator", name, None, opts)
        aws_opts = pulumi.ResourceOptions(parent=self, provider=target.provider)
        role = aws.iam.Role(
            name,
            aws.iam.RoleArgs(
                name=target.physical_name("replicator", flow.source)[:64],
                assume_role_policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "kafka.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
            ),
            opts=aws_opts,
        )
        aws.iam.RolePolicy(
            name,
            aws.iam.RolePolicyArgs(
                role=role.id,
                policy=pulumi.Output.all(source["arn"], aggregate.cluster.arn).apply(
                    lambda arns: json.dumps(
                        {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": [
                                        "kafka-cluster:Connect",
                                        "kafka-cluster:DescribeCluster",
                                        "kafka-cluster:AlterCluster",
                                        "kafka-cluster:DescribeTopic",
                                        "kafka-cluster:CreateTopic",
                                        "kafka-cluster:AlterTopic",
                                        "kafka-cluster:WriteData",
                                        "kafka-cluster:ReadData",
                                        "kafka-cluster:AlterGroup",
                                        "kafka-cluster:DescribeGroup",
                                        "kafka-cluster:DescribeTopicDynamicConfiguration",
                                        "kafka-cluster:AlterTopicDynamicConfiguration",
                                        "kafka-cluster:WriteDataIdempotently",
                                    ],
                                    "Resource": [
                                        arn
                                        for a in arns
                                        for arn in (a, _sub_arn(a, "topic"), _sub_arn(a, "group"))
                                    ],
                                }
                            ],
                        }
                    )
                ),
            ),
            opts=aws_opts,
        )
        self.replicator = aws.msk.Replicator(
            name,
            aws.msk.ReplicatorArgs(
                replicator_name=target.physical_name("from", flow.source)[:64],
                description=f"rtdi: {flow.source} regional -> {flow.target} aggregate",
                service_execution_role_arn=role.arn,
                kafka_clusters=[
                    aws.msk.ReplicatorKafkaClusterArgs(
                        amazon_msk_cluster=aws.msk.ReplicatorKafkaClusterAmazonMskClusterArgs(
                            msk_cluster_arn=source["arn"]
                        ),
                        vpc_config=aws.msk.ReplicatorKafkaClusterVpcConfigArgs(
                            subnet_ids=source["subnetIds"],
                            security_groups_ids=source["securityGroupIds"],
                        ),
                    ),
                    aws.msk.ReplicatorKafkaClusterArgs(
                        amazon_msk_cluster=aws.msk.ReplicatorKafkaClusterAmazonMskClusterArgs(
                            msk_cluster_arn=aggregate.cluster.arn
                        ),
                        vpc_config=aws.msk.ReplicatorKafkaClusterVpcConfigArgs(
                            subnet_ids=aggregate.subnet_ids,
                            security_groups_ids=[aggregate.security_group.id],
                        ),
                    ),
                ],
                replication_info_list=aws.msk.ReplicatorReplicationInfoListArgs(
                    source_kafka_cluster_arn=source["arn"],
                    target_kafka_cluster_arn=aggregate.cluster.arn,
                    target_compression_type="NONE",
                    topic_replications=[
                        aws.msk.ReplicatorReplicationInfoListTopicReplicationArgs(
                            topics_to_replicates=list(flow.topics) or ["(?!)"],
                            copy_topic_configurations=True,
                            copy_access_control_lists_for_topics=False,
                            detect_and_copy_new_topics=True,
                            starting_position=aws.msk.ReplicatorReplicationInfoListTopicReplicationStartingPositionArgs(
                                type="EARLIEST"
                            ),
                            topic_name_configuration=aws.msk.ReplicatorReplicationInfoListTopicReplicationTopicNameConfigurationArgs(
                                type="PREFIXED_WITH_SOURCE_CLUSTER_ALIAS"
                            ),
                        )
                    ],
                    consumer_group_replications=[
                        aws.msk.ReplicatorReplicationInfoListConsumerGroupReplicationArgs(
                            consumer_groups_to_replicates=[".*"],
                            synchronise_consumer_group_offsets=True,
                            detect_and_copy_new_consumer_groups=True,
                        )
                    ],
                ),
                tags={
                    "rtdi-kafka-role": "mirror",
                    "rtdi-source-region": flow.source,
                    "rtdi-data-classes": ".".join(flow.data_classes) or "none",
                },
            ),
            opts=aws_opts,
        )
        self.register_outputs({"source": flow.source})


def _sub_arn(cluster_arn: str, kind: str) -> str:
    """arn:aws:kafka:r:a:cluster/name/uuid -> arn:aws:kafka:r:a:<kind>/name/uuid/*"""
    head, _, rest = cluster_arn.partition(":cluster/")
    return f"{head}:{kind}/{rest}/*"


def _scram(user: str, password: str) -> str:
    """What MSK reads from a SCRAM secret in Secrets Manager."""
    return json.dumps({"username": user, "password": password})
