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
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
POM = HERE / "flink_pom.xml"
CACHE = ROOT / ".cache" / "flink"
MAVEN_TIMEOUT_SECONDS = 900
# A test tool, not something rtdi deploys: the newest s3proxy on Maven Central.
S3PROXY = "org.gaul:s3proxy:4.1.0:jar:jar-with-dependencies"
PLUGINS = {"s3-fs-presto": "flink-s3-fs-presto"}


class FetchError(RuntimeError):
    pass


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
    root = cache_dir(version)
    stamp = root / "fetched"
    if stamp.is_file() and stamp.read_text() == _stamp_text(version):
        return root
    return None


def _maven(args: list[str], log: Path) -> None:
    cmd = ["mvn", "-B", "-q", *args]
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(cmd)}\n")
        sink.flush()
        try:
            done = subprocess.run(
                cmd, stdout=sink, stderr=subprocess.STDOUT, timeout=MAVEN_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise FetchError(
                f"Maven did not finish within {MAVEN_TIMEOUT_SECONDS} s (see {log})"
            ) from None
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise FetchError(f"`{' '.join(cmd)}` failed ({done.returncode}; log {log}):\n{tail}")


def fetch(version: str | None = None) -> Path:
    """Fetch everything into a partial directory and rename it into place (idempotent)."""
    version = version or flink_version()
    if found := fetched(version):
        return found
    for tool in ("mvn", "java"):
        if not shutil.which(tool):
            raise FetchError(f"`{tool}` is not on PATH")
    root = cache_dir(version)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    log = partial / "maven.log"
    _maven(
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
        _maven(
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
    _maven(
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
    (partial / "fetched").write_text(_stamp_text(version))
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


def main() -> int:
    version = flink_version()
    if fetched(version):
        print(f"flink-jars: Flink {version} jars cached in {cache_dir(version).relative_to(ROOT)}")
        return 0
    started = time.monotonic()
    print(f"flink-jars: fetching Flink {version} jars with Maven (once; cached in .cache/flink)...")
    try:
        root = fetch(version)
    except FetchError as e:
        if os.environ.get("CI"):
            print(f"flink-jars: ERROR: {e}", file=sys.stderr)
            return 1
        print(
            f"flink-jars: WARNING: {e}\nflink-jars: the Flink integration test will be skipped",
            file=sys.stderr,
        )
        return 0
    count = len(list(root.rglob("*.jar")))
    took = time.monotonic() - started
    print(f"flink-jars: {count} jars in {root.relative_to(ROOT)} ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
