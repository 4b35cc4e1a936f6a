"""Trino's server for the query test, fetched once with Maven into .cache/trino.

``python tests/integration/trino_jars.py`` (a step of ``make test``, target ``trino-server``)
copies ``io.trino:trino-server:<TRINO_VERSION>:tar.gz`` (infra/versions.py) from Maven Central and
unpacks it: the very server the chart's image runs, with its plugins (Hive, Pinot, Iceberg). It
needs Java >= 24 to run (the Temurin 25 under /usr/lib/jvm, `java_home`).

A stamp (the version) makes later runs a no-op. Without Maven or a registry the step warns and
exits 0, so the rest of ``make test`` runs and the query test skips with the reason; with ``CI``
set it exits 1.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

from maven_fetch import cached, fetch_once, maven, step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = ROOT / ".cache" / "trino"
JVM_DIR = Path("/usr/lib/jvm")
MIN_JAVA = 24  # Trino 476's launcher refuses older


def trino_version() -> str:
    from infra.versions import TRINO_VERSION

    return TRINO_VERSION


def cache_dir(version: str | None = None) -> Path:
    return CACHE / (version or trino_version())


def _stamp(version: str) -> str:
    return f"trino-server {version}\n"


def fetched(version: str | None = None) -> Path | None:
    version = version or trino_version()
    return cached(cache_dir(version), _stamp(version))


def server_dir(version: str | None = None) -> Path | None:
    """The unpacked ``trino-server-<version>`` folder, if fetched."""
    root = fetched(version)
    return None if root is None else root / f"trino-server-{version or trino_version()}"


def java_home() -> Path | None:
    """A JDK new enough for Trino: the newest ``/usr/lib/jvm/*`` whose release is >= 24."""
    found: list[tuple[int, Path]] = []
    for home in JVM_DIR.glob("*"):
        release = home / "release"
        if not release.is_file() or not (home / "bin" / "java").is_file():
            continue
        for line in release.read_text().splitlines():
            if line.startswith("JAVA_VERSION="):
                major = line.split("=", 1)[1].strip('"').split(".")[0]
                if major.isdigit() and int(major) >= MIN_JAVA:
                    found.append((int(major), home))
    return max(found)[1] if found else None


def fetch(version: str | None = None) -> Path:
    version = version or trino_version()

    def fill(partial: Path, log: Path) -> None:
        maven(
            [
                "dependency:copy",
                f"-Dartifact=io.trino:trino-server:{version}:tar.gz",
                f"-DoutputDirectory={partial}",
            ],
            log,
        )
        archive = partial / f"trino-server-{version}.tar.gz"
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="tar")
        archive.unlink()

    return fetch_once(cache_dir(version), _stamp(version), fill)


def main() -> int:
    version = trino_version()
    if fetched(version):
        print(f"trino-server: Trino {version} cached in {cache_dir(version).relative_to(ROOT)}")
        return 0
    return step(
        "trino-server",
        f"Trino {version} server",
        ".cache/trino",
        "the query test will be skipped",
        lambda: fetch(version),
    )


if __name__ == "__main__":
    sys.exit(main())
