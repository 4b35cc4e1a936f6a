"""Every external version rtdi deploys, in one place.

Bumping a version is a one-line change here; tests assert that nothing else in the tree
spells a chart, image or engine version (tests/test_versions.py).
"""

# Managed Kubernetes control planes.
EKS_VERSION = "1.33"
GKE_VERSION = "1.33"
GKE_RELEASE_CHANNEL = "REGULAR"

# EKS managed add-ons, pinned to builds published for EKS_VERSION.
EKS_ADDONS = {
    "vpc-cni": "v1.20.4-eksbuild.1",
    "coredns": "v1.12.3-eksbuild.1",
    "kube-proxy": "v1.33.5-eksbuild.2",
    "aws-ebs-csi-driver": "v1.51.0-eksbuild.1",
}

# Kafka on Kubernetes: the Strimzi operator and the Kafka it runs (Strimzi 1.2 supports 4.2.x and
# 4.3.x).
STRIMZI_CHART = "oci://quay.io/strimzi-helm/strimzi-kafka-operator"
STRIMZI_CHART_NAME = "strimzi-kafka-operator"
STRIMZI_VERSION = "1.2.0"
KAFKA_VERSION = "4.3.1"
# Every Helm chart rtdi installs, by its name (the key of `rtdi:charts`): the public chart and
# the pinned version a mirror or a local copy must hold too.
HELM_CHARTS: dict[str, tuple[str, str]] = {STRIMZI_CHART_NAME: (STRIMZI_CHART, STRIMZI_VERSION)}
KAFKA_METADATA_VERSION = "4.3-IV0"

# Managed Kafka engines.
MSK_KAFKA_VERSION = "3.9.x.kraft"
GCP_MANAGED_KAFKA_VERSION = "3.7.x"

# Flink (issue 10): the Kubernetes operator from its Helm chart, and the Flink its jobs run. The
# operator 1.15 CRD allows flinkVersion up to v2_2, the newest Flink with a Kafka connector
# (flink-connector-kafka 5.0.0-2.2).
FLINK_OPERATOR_CHART_NAME = "flink-kubernetes-operator"
FLINK_OPERATOR_VERSION = "1.15.0"
# Apache publishes the chart in a Helm repository per release (archive.apache.org keeps every
# release; downloads.apache.org only the newest): an https public source is a repository URL.
FLINK_OPERATOR_CHART = "https://archive.apache.org/dist/flink/flink-kubernetes-operator-1.15.0/"
FLINK_OPERATOR_IMAGE = "ghcr.io/apache/flink-kubernetes-operator"
HELM_CHARTS[FLINK_OPERATOR_CHART_NAME] = (FLINK_OPERATOR_CHART, FLINK_OPERATOR_VERSION)
FLINK_CRD_VERSION = "v2_2"  # the FlinkDeployment's `flinkVersion` for FLINK_VERSION
# Flink SQL runner (jobs/runner/): the Flink it is built against and runs on, the Kafka connector
# shaded into its jar, and its image (FROM FLINK_IMAGE, the jar in /opt/flink/usrlib). The runner's
# pom.xml spells the same three versions; tests/test_flink_runner_build.py asserts they agree.
FLINK_VERSION = "2.2.0"
FLINK_KAFKA_CONNECTOR_VERSION = "5.0.0-2.2"
FLINK_SQL_RUNNER_VERSION = "0.3.0"
FLINK_IMAGE = f"flink:{FLINK_VERSION}-java17"
FLINK_SQL_RUNNER_IMAGE = f"rtdi/flink-sql-runner:{FLINK_SQL_RUNNER_VERSION}"

# Kafka sign-in inside the Flink SQL runner's jar (issue 10, per-job credentials): the unshaded
# Kafka connector with the kafka-clients it is built against (flink-connector-kafka-parent's
# kafka.version), so login modules compiled against org.apache.kafka load; the MSK IAM login module
# and Google's Managed Kafka login handler (both on Maven Central); JUnit for the runner's own
# tests. jobs/runner/pom.xml spells the same versions (tests/test_flink_runner_build.py).
FLINK_KAFKA_CLIENTS_VERSION = "4.2.0"
MSK_IAM_AUTH_VERSION = "2.4.0"
GCP_KAFKA_AUTH_VERSION = "1.0.6"
JUNIT_VERSION = "5.13.4"

# Hadoop for regions whose flink-state is on HDFS (issue 10): Flink ships no Hadoop, so their runner
# image is FLINK_SQL_RUNNER_IMAGE plus Hadoop's shaded client jars in /opt/flink/lib
# (jobs/runner/Dockerfile, stage `hdfs`); tests/integration runs the same jars against
# hadoop-client-minicluster of this version. tests/test_flink_runner_build.py keeps them in step.
HADOOP_VERSION = "3.4.1"
HADOOP_CLIENT_JARS = ("hadoop-client-api", "hadoop-client-runtime")
FLINK_SQL_RUNNER_HDFS_IMAGE = f"{FLINK_SQL_RUNNER_IMAGE}-hadoop{HADOOP_VERSION}"
# On-prem archive retention (infra/targets/expiry.py): jobs/archive-expiry/expire.sh runs
# `hadoop fs` from Apache's Hadoop image of the same HADOOP_VERSION (hdfs://, and s3a:// with
# hadoop-aws); tests/integration/test_archive_expiry_real.py runs the script with that
# version's client.
ARCHIVE_EXPIRY_IMAGE = f"apache/hadoop:{HADOOP_VERSION}"

# The Pinot layer (issue 12): apache/pinot's Helm chart from the Helm repository the project
# publishes in its git tree (helm/index.yaml, digest sha256:2d262e0d298c...). 1.0.0 is the newest
# published chart; its values.yaml has exactly the keys of the in-tree 1.0.1-SNAPSHOT, whose
# defaults rtdi checks values against (../shared/schemas/helm-values, PINOT_CHART_VALUES).
PINOT_CHART_NAME = "pinot"
PINOT_CHART_VERSION = "1.0.0"
PINOT_CHART = "https://raw.githubusercontent.com/apache/pinot/master/helm"
PINOT_CHART_VALUES = "1.0.1-SNAPSHOT"
HELM_CHARTS[PINOT_CHART_NAME] = (PINOT_CHART, PINOT_CHART_VERSION)
# Every component runs PINOT_VERSION (below: the release whose validator the tests run), from
# the project's image.
PINOT_IMAGE = "apachepinot/pinot"
# ZooKeeper: the chart's own StatefulSet of the official Apache image (Docker Official Image,
# maintained by the Docker library team; Bitnami's chart and images, which older charts
# depended on, are no longer published for free). 3.9 is ZooKeeper's current stable line and
# what the chart is tested with.
ZOOKEEPER_IMAGE = "zookeeper"
ZOOKEEPER_VERSION = "3.9.3"
# The Job that applies schemas and tables to the controller: a stdlib-only Python script.
PINOT_APPLY_IMAGE = "python:3.13.9-slim"

# The offset sync job (jobs/offset-sync/, issue 11): its jar is built against KAFKA_VERSION's
# kafka-clients and MirrorMaker 2 client (its offset-syncs format is that Kafka's), logs through
# SLF4J's simple binding, and runs on a Temurin JRE. jobs/offset-sync/pom.xml and its Dockerfile
# spell the same versions (tests/test_offset_sync_plan.py asserts they agree).
OFFSET_SYNC_VERSION = "0.1.0"
OFFSET_SYNC_SLF4J_VERSION = "1.7.36"
OFFSET_SYNC_JRE_IMAGE = "eclipse-temurin:21.0.8_9-jre-noble"
OFFSET_SYNC_IMAGE = f"rtdi/offset-sync:{OFFSET_SYNC_VERSION}"

# Apache Pinot (issue 12): the release whose table rules the model reproduces. The tests run its
# own validator (TableConfigUtils.validate of pinot-segment-local at this version, fetched by
# tests/integration/pinot_jars.py) over every table and schema rtdi renders.
PINOT_VERSION = "1.5.1"

# Query engine (issue 13): Trino by default, from its Helm chart (trino/charts, repository
# https://trinodb.github.io/charts), or Presto from its chart (prestodb/presto-helm-charts). The
# engine versions are ones the tests can run (tests/integration/test_query_trino.py starts the
# very TRINO_VERSION server from Maven Central; 480 and newer are not served there), and their
# catalog property names follow the version (infra/components/query/engines.py).
TRINO_CHART_NAME = "trino"
TRINO_CHART_VERSION = "1.42.2"
TRINO_CHART = "https://trinodb.github.io/charts"
HELM_CHARTS[TRINO_CHART_NAME] = (TRINO_CHART, TRINO_CHART_VERSION)
TRINO_VERSION = "476"
TRINO_IMAGE = "trinodb/trino"
PRESTO_CHART_NAME = "presto"
PRESTO_CHART_VERSION = "0.4.0"
PRESTO_CHART = "https://prestodb.github.io/presto-helm-charts"
HELM_CHARTS[PRESTO_CHART_NAME] = (PRESTO_CHART, PRESTO_CHART_VERSION)
PRESTO_VERSION = "0.287"
PRESTO_IMAGE = "prestodb/presto"
# The archive catalog's metastore: a standalone Hive metastore (Apache's image runs it with
# SERVICE_NAME=metastore) over a PostgreSQL database of its own, in the region's cluster. Its
# version is the engine's to choose: Presto 0.287's Thrift client calls `get_table`, which Hive 4
# removed ("Invalid method name: 'get_table'", run in tests/integration/test_query_presto.py), so
# a Presto region runs the last Hive 3 metastore.
HIVE_METASTORE_VERSION = "4.0.1"
HIVE_METASTORE_PRESTO_VERSION = "3.1.3"
HIVE_METASTORE_REPOSITORY = "apache/hive"
HIVE_METASTORE_IMAGE = f"{HIVE_METASTORE_REPOSITORY}:{HIVE_METASTORE_VERSION}"
METASTORE_POSTGRES_IMAGE = "postgres:17.6"
# What Apache's image lacks, baked into rtdi's own (jobs/metastore/Dockerfile): PostgreSQL's
# JDBC driver, and the GCS connector for a GCP region's gs:// archive (Java 8, like the image).
POSTGRES_JDBC_VERSION = "42.7.7"
METASTORE_GCS_CONNECTOR_VERSION = "hadoop3-2.2.33"
# rtdi's image is tagged `<Hive version>-<revision>`, one per metastore version an engine runs:
# rtdi/hive-metastore:4.0.1-rtdi.1 (Trino) and rtdi/hive-metastore:3.1.3-rtdi.1 (Presto).
METASTORE_IMAGE_REPOSITORY = "rtdi/hive-metastore"
METASTORE_IMAGE_REVISION = "rtdi.1"
METASTORE_IMAGE = (
    f"{METASTORE_IMAGE_REPOSITORY}:{HIVE_METASTORE_VERSION}-{METASTORE_IMAGE_REVISION}"
)
