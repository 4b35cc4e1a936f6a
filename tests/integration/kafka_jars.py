"""Apache Kafka's jars for the integration tests: fetched once with Maven, cached under
.cache/kafka.

``python tests/integration/kafka_jars.py`` (a step of ``make test``) resolves
tests/integration/pom.xml with ``-Dkafka.version=<infra.versions.KAFKA_VERSION>``, so the Kafka
version rtdi deploys is the one the tests run, and it is spelled only in infra/versions.py. A stamp
file (the version and a hash of the pom) makes later runs a no-op until either changes.

Without Maven, Java or a registry, the step warns and exits 0 so that the rest of ``make test`` runs
and the integration test skips with a reason; with ``CI`` set it exits 1 instead.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

from maven_fetch import FetchError, maven, require_tools, step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
POM = HERE / "pom.xml"
CACHE = ROOT / ".cache" / "kafka"


def kafka_version() -> str:
    from infra.versions import KAFKA_VERSION

    return KAFKA_VERSION


def cache_dir(version: str | None = None) -> Path:
    return CACHE / (version or kafka_version())


def jars_dir(version: str | None = None) -> Path:
    return cache_dir(version) / "jars"


def _stamp_path(version: str) -> Path:
    return cache_dir(version) / "fetched"


def _stamp_text(version: str) -> str:
    return f"kafka {version} pom {hashlib.sha256(POM.read_bytes()).hexdigest()[:16]}\n"


def fetched(version: str | None = None) -> Path | None:
    """The jar directory if a complete fetch for this version and this pom is cached, else None."""
    version = version or kafka_version()
    stamp = _stamp_path(version)
    if (
        stamp.is_file()
        and stamp.read_text() == _stamp_text(version)
        and any(jars_dir(version).glob("*.jar"))
    ):
        return jars_dir(version)
    return None


def fetch(version: str | None = None) -> Path:
    """Resolve the pom with Maven into the cache (idempotent); FetchError carries Maven's output."""
    version = version or kafka_version()
    if fetched(version):
        return jars_dir(version)
    require_tools()
    out = cache_dir(version)
    out.mkdir(parents=True, exist_ok=True)
    partial, log = out / "jars.partial", out / "maven.log"
    shutil.rmtree(partial, ignore_errors=True)
    maven(
        [
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={partial}",
            "-DincludeScope=runtime",
        ],
        log,
        mode="w",
    )
    if not any(partial.glob("*.jar")):
        raise FetchError(f"Maven copied no jar into {partial} (full log {log})")
    shutil.rmtree(jars_dir(version), ignore_errors=True)
    partial.rename(jars_dir(version))
    _stamp_path(version).write_text(_stamp_text(version))
    return jars_dir(version)


def main() -> int:
    version = kafka_version()
    if fetched(version):
        print(
            f"kafka-jars: Apache Kafka {version} jars cached in "
            f"{jars_dir(version).relative_to(ROOT)}"
        )
        return 0
    return step(
        "kafka-jars",
        f"Apache Kafka {version} jars",
        ".cache/kafka",
        "the Kafka integration tests will be skipped",
        lambda: fetch(version),
    )


if __name__ == "__main__":
    sys.exit(main())
