"""Apache Pinot's table validator for the Pinot tests, fetched once with Maven into .cache/pinot.

``python tests/integration/pinot_jars.py`` (a step of ``make test``, target ``pinot-jars``)
resolves tests/integration/pinot_pom.xml with ``-Dpinot.version=<infra.versions.PINOT_VERSION>``:
pinot-segment-local and its runtime dependencies (pinot-json excluded, see the pom), the jars
tests/integration/PinotValidate.java runs ``TableConfigUtils.validate`` from. A Pinot cluster of
1.x cannot run here (its server and plugins are not served), so Pinot's own validator is how the
tests hold the model to Pinot's rules.

A stamp (the version and a hash of the pom) makes later runs a no-op. Without Maven, Java or a
registry the step warns and exits 0, so the rest of ``make test`` runs and the validator test
skips with the reason; with ``CI`` set it exits 1.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from maven_fetch import cached, fetch_once, maven, step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
POM = HERE / "pinot_pom.xml"
CACHE = ROOT / ".cache" / "pinot"


def pinot_version() -> str:
    from infra.versions import PINOT_VERSION

    return PINOT_VERSION


def cache_dir(version: str | None = None) -> Path:
    return CACHE / (version or pinot_version())


def _stamp_text(version: str) -> str:
    pom = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    return f"pinot {version} pom {pom}\n"


def fetched(version: str | None = None) -> Path | None:
    """The cache directory if a complete fetch for this version and pom is there, else None."""
    version = version or pinot_version()
    return cached(cache_dir(version), _stamp_text(version))


def jars_dir(version: str | None = None) -> Path:
    return cache_dir(version) / "jars"


def fetch(version: str | None = None) -> Path:
    """Fetch the validator's jars into the cache, once (see `maven_fetch.fetch_once`)."""
    version = version or pinot_version()

    def fill(partial: Path, log: Path) -> None:
        maven(
            [
                "-f",
                str(POM),
                f"-Dpinot.version={version}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial / 'jars'}",
                "-DincludeScope=runtime",
            ],
            log,
        )

    return fetch_once(cache_dir(version), _stamp_text(version), fill)


def main() -> int:
    version = pinot_version()
    if fetched(version):
        where = cache_dir(version).relative_to(ROOT)
        print(f"pinot-jars: Pinot {version}'s table validator cached in {where}")
        return 0
    return step(
        "pinot-jars",
        f"Pinot {version}'s table validator",
        ".cache/pinot",
        "the Pinot validator test will be skipped",
        lambda: fetch(version),
    )


if __name__ == "__main__":
    sys.exit(main())
