"""The Flink SQL runner's build agrees with infra/versions.py and with the FlinkDeployment contract.

The runner's pom.xml cannot import Python, so it spells the Flink, connector and runner versions
itself; these tests make versions.py the one place to bump them (a bump there fails here until the
pom follows). The Dockerfile's base image and the jar's path are what the FlinkDeployment's image
and ``jarURI`` assume.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from infra import versions
from plantools import ROOT

RUNNER = ROOT / "jobs" / "runner"
NS = {"m": "http://maven.apache.org/POM/4.0.0"}
FLINK_PROVIDED = "org.apache.flink"


def pom() -> ET.Element:
    return ET.parse(RUNNER / "pom.xml").getroot()


def prop(root: ET.Element, name: str) -> str | None:
    return root.findtext(f"m:properties/m:{name}", namespaces=NS)


def dependencies(root: ET.Element) -> dict[str, tuple[str, str | None]]:
    """artifactId -> (version with properties resolved, scope)."""
    out = {}
    for d in root.iterfind("m:dependencies/m:dependency", NS):
        version = d.findtext("m:version", namespaces=NS) or ""
        version = re.sub(r"\$\{([\w.]+)\}", lambda m: prop(root, m.group(1)) or m.group(0), version)
        out[d.findtext("m:artifactId", namespaces=NS)] = (
            version,
            d.findtext("m:scope", namespaces=NS),
        )
    return out


def test_pom_coordinates_are_the_contract():
    root = pom()
    assert root.findtext("m:groupId", namespaces=NS) == "io.rtdi"
    assert root.findtext("m:artifactId", namespaces=NS) == "rtdi-sql-runner"
    assert root.findtext("m:version", namespaces=NS) == versions.FLINK_SQL_RUNNER_VERSION
    assert root.findtext("m:build/m:finalName", namespaces=NS) == "rtdi-sql-runner"
    assert prop(root, "maven.compiler.release") == "17"
    main = root.findtext(".//m:manifest/m:mainClass", namespaces=NS)
    assert main == "io.rtdi.flink.SqlRunner"
    assert (RUNNER / "src/main/java/io/rtdi/flink/SqlRunner.java").is_file()


def test_pom_versions_are_infra_versions():
    deps = dependencies(pom())
    flink = {a: v for a, v in deps.items() if a.startswith("flink-") and "kafka" not in a}
    assert flink, "the runner compiles against Flink's table API"
    assert {v for v, _ in flink.values()} == {versions.FLINK_VERSION}
    (kafka,) = [v for a, v in deps.items() if "connector-kafka" in a]
    assert kafka[0] == versions.FLINK_KAFKA_CONNECTOR_VERSION
    assert deps["kafka-clients"][0] == versions.FLINK_KAFKA_CLIENTS_VERSION
    assert deps["aws-msk-iam-auth"][0] == versions.MSK_IAM_AUTH_VERSION
    assert deps["managed-kafka-auth-login-handler"][0] == versions.GCP_KAFKA_AUTH_VERSION
    assert deps["junit-jupiter"] == (versions.JUNIT_VERSION, "test")
    # The archive's Hadoop client is the one the `hdfs` image puts in lib (it wins there).
    for artifact in versions.HADOOP_CLIENT_JARS:
        assert deps[artifact] == (versions.HADOOP_VERSION, None), artifact
    # The connector's name carries the Flink minor it is built for.
    flink_minor = ".".join(versions.FLINK_VERSION.split(".")[:2])
    assert versions.FLINK_KAFKA_CONNECTOR_VERSION.endswith(f"-{flink_minor}")


# What the job jar carries besides the runner: the Kafka connector with its clients unrelocated,
# the login modules the engines' client properties name (MSK IAM, Google OAUTHBEARER), and the
# archive's Parquet format with the Hadoop client its writer needs (the image has neither).
SHADED_IN = {
    "flink-connector-kafka",
    "kafka-clients",
    "aws-msk-iam-auth",
    "managed-kafka-auth-login-handler",
    "flink-parquet",
    "hadoop-client-api",
    "hadoop-client-runtime",
}


def test_flink_is_provided_and_the_kafka_connector_is_shaded_in():
    """The image ships Flink in /opt/flink/lib; a second copy in the job jar would clash. The
    connector is the plain one: flink-sql-connector-kafka relocates Kafka, and a login module
    compiled against org.apache.kafka cannot implement the relocated interfaces."""
    root = pom()
    deps = dependencies(root)
    assert "flink-sql-connector-kafka" not in deps
    for artifact, (_, scope) in deps.items():
        if artifact in SHADED_IN:
            assert scope in (None, "compile"), artifact
        elif artifact.startswith("junit"):
            assert scope == "test", artifact
        else:
            assert scope == "provided", f"{artifact} must be provided by the image"
    plugins = {p.findtext("m:artifactId", namespaces=NS) for p in root.iterfind(".//m:plugin", NS)}
    assert "maven-shade-plugin" in plugins


def stages(text: str) -> dict[str, tuple[str, str]]:
    """stage name -> (its FROM, its instructions joined: continuation lines folded)."""
    folded = re.sub(r"\\\n\s*", " ", text)
    found = {}
    for m in re.finditer(r"(?ms)^FROM\s+(\S+)\s+AS\s+(\S+)\n(.*?)(?=^FROM|\Z)", folded):
        found[m.group(2)] = (m.group(1), m.group(3))
    return found


def test_image_recipe_builds_on_the_pinned_flink_image():
    text = (RUNNER / "Dockerfile").read_text()
    assert len(re.findall(r"(?m)^FROM\s", text)) == 2
    found = stages(text)
    assert sorted(found) == ["hdfs", "runner"]
    base, body = found["runner"]
    assert base == versions.FLINK_IMAGE
    assert versions.FLINK_IMAGE.startswith(f"flink:{versions.FLINK_VERSION}-java17")
    copy = re.findall(r"(?m)^COPY\s+(?:--\S+\s+)*(\S+)\s+(\S+)$", body)
    assert copy == [("target/rtdi-sql-runner.jar", "/opt/flink/usrlib/rtdi-sql-runner.jar")]
    repo, tag = versions.FLINK_SQL_RUNNER_IMAGE.rsplit(":", 1)
    assert (repo, tag) == ("rtdi/flink-sql-runner", versions.FLINK_SQL_RUNNER_VERSION)


def jars_added(body: str) -> dict[str, tuple[str, str, str]]:
    """A stage that only ADDs checksummed files: file name -> (URL, sha256, destination)."""
    assert not re.search(r"(?m)^(?!ADD\s)\S", body), "the stage only adds jars"
    added = re.findall(r"(?m)^ADD\s+.*--checksum=sha256:([0-9a-f]{64})\s+(\S+)\s+(\S+)$", body)
    assert len(added) == len(re.findall(r"(?m)^ADD\s", body))
    return {url.rsplit("/", 1)[1]: (url, sha, dest) for sha, url, dest in added}


def hadoop_jars_added() -> dict[str, tuple[str, str, str]]:
    """The HDFS stage's ADDs: jar file name -> (URL, sha256, destination)."""
    base, body = stages((RUNNER / "Dockerfile").read_text())["hdfs"]
    assert base == "runner", "the HDFS image is the runner image plus Hadoop"
    return jars_added(body)


def test_the_hdfs_image_adds_exactly_the_pinned_hadoop_client():
    """Flink ships no Hadoop: an HDFS region's image has Hadoop's shaded client (and nothing
    else) in /opt/flink/lib, of infra/versions.py's HADOOP_VERSION, from Maven Central."""
    v = versions.HADOOP_VERSION
    added = hadoop_jars_added()
    assert sorted(added) == sorted(f"{a}-{v}.jar" for a in versions.HADOOP_CLIENT_JARS)
    central = "https://repo1.maven.org/maven2/org/apache/hadoop"
    for artifact in versions.HADOOP_CLIENT_JARS:
        url, _, dest = added[f"{artifact}-{v}.jar"]
        assert url == f"{central}/{artifact}/{v}/{artifact}-{v}.jar"
        assert dest == "/opt/flink/lib/"
    assert f"{versions.FLINK_SQL_RUNNER_IMAGE}-hadoop{v}" == versions.FLINK_SQL_RUNNER_HDFS_IMAGE
