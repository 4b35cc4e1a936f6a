"""rtdi's Hive metastore image agrees with infra/versions.py and with the query layer.

The image (jobs/metastore/Dockerfile) is Apache's plus the PostgreSQL JDBC driver and the GCS
connector, by version and sha256; the query layer runs it with no init container.
tests/integration/test_metastore_jars.py checks the checksums against Maven Central's bytes.
"""

from __future__ import annotations

import re

from test_flink_runner_build import jars_added, stages

from infra import versions
from plantools import ROOT

DOCKERFILE = ROOT / "jobs" / "metastore" / "Dockerfile"
CENTRAL = "https://repo1.maven.org/maven2"


def metastore_jars() -> dict[str, tuple[str, str, str]]:
    """The image's added jars: file name -> (URL, sha256, destination)."""
    (stage,) = stages(DOCKERFILE.read_text()).values()
    return jars_added(stage[1])


def pinned_urls() -> dict[str, str]:
    """File name -> the Maven Central URL of each jar infra/versions.py pins for the image."""
    pg, gcs = versions.POSTGRES_JDBC_VERSION, versions.METASTORE_GCS_CONNECTOR_VERSION
    return {
        f"postgresql-{pg}.jar": f"{CENTRAL}/org/postgresql/postgresql/{pg}/postgresql-{pg}.jar",
        f"gcs-connector-{gcs}-shaded.jar": (
            f"{CENTRAL}/com/google/cloud/bigdataoss/gcs-connector/{gcs}/"
            f"gcs-connector-{gcs}-shaded.jar"
        ),
    }


def test_the_image_is_apaches_pinned_metastore():
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"(?m)^FROM\s", text)) == 1
    ((base, _),) = stages(text).values()
    assert base == versions.HIVE_METASTORE_IMAGE
    repo, tag = versions.METASTORE_IMAGE.rsplit(":", 1)
    assert (repo, tag) == ("rtdi/hive-metastore", versions.METASTORE_IMAGE_VERSION)
    assert tag.startswith(f"{versions.HIVE_METASTORE_VERSION}-rtdi.")


def test_the_image_adds_exactly_the_pinned_jars_to_hives_lib():
    added = metastore_jars()
    assert {name: url for name, (url, _, _) in added.items()} == pinned_urls()
    assert {dest for _, _, dest in added.values()} == {"/opt/hive/lib/"}


def test_the_build_command_in_the_dockerfile_names_the_pinned_tag():
    command = re.search(r"docker build .*-t (\S+)", DOCKERFILE.read_text())
    assert command is not None
    assert command.group(1) == "rtdi/hive-metastore:<METASTORE_IMAGE_VERSION>"
