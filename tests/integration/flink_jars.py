"""What the Flink runner's integration test runs on, fetched once with Maven into .cache/flink.

``python tests/integration/flink_jars.py`` (a step of ``make test``) fetches, for
infra/versions.py's FLINK_VERSION:

- ``lib/``: the Flink jars a MiniCluster needs to run the SQL runner in one JVM (resolved from
  tests/integration/flink_pom.xml with ``-Dflink.version``, so the version has one home);
- ``plugins/s3-fs-presto/``: the ``flink-s3-fs-presto`` plugin, laid out as in the flink image's
  /opt/flink/plugins and kept off ``lib/`` (its shaded Hadoop/AWS classes must load in the
  plugin's own class loader, as in production);
- ``tools/``: s3proxy, the S3-compatible server the checkpoints go to on loopback.

A stamp (the versions and a hash of the pom) makes later runs a no-op. Without Maven, Java or a
registry the step warns and exits 0, so the rest of ``make test`` runs and the test skips with the
reason; with ``CI`` set it exits 1.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from maven_fetch import cached, fetch_once, maven, step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
POM = HERE / "flink_pom.xml"
CACHE = ROOT / ".cache" / "flink"
# A test tool, not something rtdi deploys: the newest s3proxy on Maven Central.
S3PROXY = "org.gaul:s3proxy:4.1.0:jar:jar-with-dependencies"
PLUGINS = {"s3-fs-presto": "flink-s3-fs-presto", "s3-fs-hadoop": "flink-s3-fs-hadoop"}


def flink_version() -> str:
    from infra.versions import FLINK_VERSION

    return FLINK_VERSION


def cache_dir(version: str | None = None) -> Path:
    return CACHE / (version or flink_version())


def _stamp_text(version: str) -> str:
    pom = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    return f"flink {version} pom {pom} s3proxy {S3PROXY} plugins {sorted(PLUGINS.items())}\n"


def fetched(version: str | None = None) -> Path | None:
    """The cache directory if a complete fetch for this version and pom is there, else None."""
    version = version or flink_version()
    return cached(cache_dir(version), _stamp_text(version))


def fetch(version: str | None = None) -> Path:
    """Fetch everything into the cache, once (see `maven_fetch.fetch_once`)."""
    version = version or flink_version()

    def fill(partial: Path, log: Path) -> None:
        maven(
            [
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-Dflink.version={version}",
                f"-DoutputDirectory={partial / 'lib'}",
                "-DincludeScope=runtime",
            ],
            log,
        )
        for folder, artifact in PLUGINS.items():
            maven(
                [
                    "-f",
                    str(POM),
                    "dependency:copy",
                    f"-Dflink.version={version}",
                    f"-Dartifact=org.apache.flink:{artifact}:{version}",
                    f"-DoutputDirectory={partial / 'plugins' / folder}",
                ],
                log,
            )
        maven(
            [
                "-f",
                str(POM),
                "dependency:copy",
                f"-Dflink.version={version}",
                f"-Dartifact={S3PROXY}",
                f"-DoutputDirectory={partial / 'tools'}",
            ],
            log,
        )

    return fetch_once(cache_dir(version), _stamp_text(version), fill)


def main() -> int:
    version = flink_version()
    if fetched(version):
        print(f"flink-jars: Flink {version} jars cached in {cache_dir(version).relative_to(ROOT)}")
        return 0
    return step(
        "flink-jars",
        f"Flink {version} jars",
        ".cache/flink",
        "the Flink integration test will be skipped",
        lambda: fetch(version),
    )


if __name__ == "__main__":
    sys.exit(main())
