"""Hadoop for the Flink HDFS test, fetched once with Maven into .cache/hadoop.

``python tests/integration/hadoop_jars.py`` (a step of ``make test``, target ``hdfs-jars``)
fetches, for infra/versions.py's HADOOP_VERSION:

- ``server/``: hadoop-client-minicluster and its dependencies (tests/integration/hadoop_pom.xml),
  the real HDFS hdfs_local.py starts in a JVM of its own;
- ``client/``: infra/versions.py's HADOOP_CLIENT_JARS alone (no dependencies), exactly what the
  HDFS runner image adds to /opt/flink/lib, so the test's Flink reaches HDFS with the image's
  Hadoop and nothing more. The Flink file system plugins never go beside them.
- ``cli/``: commons-cli (hadoop-common's), which `hadoop fs` needs beside Flink's s3-fs-hadoop
  plugin when the archive expiry test runs FsShell with that plugin's S3A
  (tests/integration/test_archive_expiry_real.py says why).

A stamp (the version, the jar list and a hash of the pom) makes later runs a no-op. Without Maven,
Java or a registry the step warns and exits 0, so the rest of ``make test`` runs and the HDFS test
skips with the reason; with ``CI`` set it exits 1.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from maven_fetch import cached, fetch_once, maven, step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
POM = HERE / "hadoop_pom.xml"
CACHE = ROOT / ".cache" / "hadoop"


def hadoop_version() -> str:
    from infra.versions import HADOOP_VERSION

    return HADOOP_VERSION


def client_jars() -> tuple[str, ...]:
    from infra.versions import HADOOP_CLIENT_JARS

    return HADOOP_CLIENT_JARS


# What Hadoop's command-line parser needs and Flink's s3-fs-hadoop plugin leaves out.
COMMONS_CLI = "commons-cli:commons-cli:1.5.0"


def cache_dir(version: str | None = None) -> Path:
    return CACHE / (version or hadoop_version())


def _stamp_text(version: str) -> str:
    pom = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    return f"hadoop {version} pom {pom} client {list(client_jars())} cli {COMMONS_CLI}\n"


def fetched(version: str | None = None) -> Path | None:
    """The cache directory if a complete fetch for this version and pom is there, else None."""
    version = version or hadoop_version()
    return cached(cache_dir(version), _stamp_text(version))


def fetch(version: str | None = None) -> Path:
    """Fetch everything into the cache, once (see `maven_fetch.fetch_once`)."""
    version = version or hadoop_version()

    def fill(partial: Path, log: Path) -> None:
        common = ["-f", str(POM), f"-Dhadoop.version={version}"]
        maven(
            [
                *common,
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial / 'server'}",
                "-DincludeScope=runtime",
            ],
            log,
        )
        for artifact in client_jars():
            maven(
                [
                    *common,
                    "dependency:copy",
                    f"-Dartifact=org.apache.hadoop:{artifact}:{version}",
                    f"-DoutputDirectory={partial / 'client'}",
                ],
                log,
            )
        maven(
            [
                *common,
                "dependency:copy",
                f"-Dartifact={COMMONS_CLI}",
                f"-DoutputDirectory={partial / 'cli'}",
            ],
            log,
        )

    return fetch_once(cache_dir(version), _stamp_text(version), fill)


def main() -> int:
    version = hadoop_version()
    if fetched(version):
        print(f"hdfs-jars: Hadoop {version} jars cached in {cache_dir(version).relative_to(ROOT)}")
        return 0
    return step(
        "hdfs-jars",
        f"Hadoop {version} jars",
        ".cache/hadoop",
        "the Flink HDFS test will be skipped",
        lambda: fetch(version),
    )


if __name__ == "__main__":
    sys.exit(main())
