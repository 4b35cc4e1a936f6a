"""Hive's standalone metastore for the query tests, fetched once with Maven into .cache/hive.

``python tests/integration/hive_jars.py`` (a step of ``make test``, target ``hive-metastore``)
resolves tests/integration/hive_pom.xml for each metastore version a region runs (`versions`):
a Trino region's (infra/versions.py's HIVE_METASTORE_VERSION) and a Presto region's
(HIVE_METASTORE_PRESTO_VERSION; Presto 0.287 cannot talk to Hive 4). Each Hive release comes with
the Hadoop it is built against and that Hadoop's S3A and AWS SDK (`METASTORES`): 106 MB for
4.0.1, 65 MB for 3.1.3.

A stamp (the version and a hash of the pom) makes later runs a no-op. Without Maven, Java or a
registry the step warns and exits 0, so the rest of ``make test`` runs and the tests that need a
metastore skip with the reason; with ``CI`` set it exits 1.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from maven_fetch import cached, fetch_once, maven, step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
POM = HERE / "hive_pom.xml"
CACHE = ROOT / ".cache" / "hive"


@dataclass(frozen=True)
class Release:
    """A Hive release's metastore artifact and the Hadoop and AWS SDK it is built against (its
    parent pom's hadoop.version; hadoop-aws's aws-java-sdk-bundle)."""

    artifact: str
    hadoop: str
    aws_sdk: str


METASTORES = {
    "3.1.3": Release("hive-standalone-metastore", "3.1.0", "1.11.271"),
    "4.0.1": Release("hive-standalone-metastore-server", "3.3.6", "1.12.367"),
}


def versions() -> list[str]:
    """The metastore versions the query engines' regions run."""
    from infra.versions import HIVE_METASTORE_PRESTO_VERSION, HIVE_METASTORE_VERSION

    return sorted({HIVE_METASTORE_VERSION, HIVE_METASTORE_PRESTO_VERSION})


def cache_dir(version: str) -> Path:
    return CACHE / version


def _stamp_text(version: str) -> str:
    pom = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    return f"hive-metastore {version} pom {pom}\n"


def fetched(version: str) -> Path | None:
    """The cache directory if a complete fetch for this version and pom is there, else None."""
    return cached(cache_dir(version), _stamp_text(version))


def jars_dir(version: str) -> Path:
    return cache_dir(version) / "jars"


def fetch(version: str) -> Path:
    """Fetch the metastore's jars into the cache, once (see `maven_fetch.fetch_once`)."""
    release = METASTORES[version]

    def fill(partial: Path, log: Path) -> None:
        maven(
            [
                "-f",
                str(POM),
                f"-Dhive.artifact={release.artifact}",
                f"-Dhive.version={version}",
                f"-Dhadoop.version={release.hadoop}",
                f"-Daws-sdk.version={release.aws_sdk}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial / 'jars'}",
                "-DincludeScope=runtime",
            ],
            log,
        )

    return fetch_once(cache_dir(version), _stamp_text(version), fill)


def main() -> int:
    code = 0
    for version in versions():
        if fetched(version):
            where = cache_dir(version).relative_to(ROOT)
            print(f"hive-metastore: Hive metastore {version} cached in {where}")
            continue
        code |= step(
            "hive-metastore",
            f"Hive's standalone metastore {version}",
            ".cache/hive",
            "the query tests will be skipped",
            lambda v=version: fetch(v),
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
