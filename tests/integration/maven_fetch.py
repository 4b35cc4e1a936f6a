"""What the Maven-fetching steps of ``make test`` share (kafka_jars, flink_jars, hadoop_jars).

Each step resolves a pom into a folder under .cache/, once; without Maven, Java or a registry it
warns and exits 0 so the rest of ``make test`` runs and its tests skip with the reason, and with
``CI`` set it exits 1 instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
MAVEN_TIMEOUT_SECONDS = 900


class FetchError(RuntimeError):
    pass


def require_tools() -> None:
    for tool in ("mvn", "java"):
        if not shutil.which(tool):
            raise FetchError(f"`{tool}` is not on PATH")


def maven(args: list[str], log: Path, mode: str = "a") -> None:
    """``mvn -B -q ARGS`` with its output in ``log``; FetchError with the log's tail on failure."""
    cmd = ["mvn", "-B", "-q", *args]
    with log.open(mode) as sink:
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


def cached(root: Path, stamp: str) -> Path | None:
    """``root`` if a complete fetch stamped ``stamp`` (the version and pom it came from) is there,
    else None."""
    marker = root / "fetched"
    return root if marker.is_file() and marker.read_text() == stamp else None


def fetch_once(root: Path, stamp: str, fill: Callable[[Path, Path], None]) -> Path:
    """``root``, fetched once: ``fill(partial, log)`` fills a partial folder beside it, which is
    stamped and renamed into place only when complete, so an interrupted fetch never looks done."""
    if found := cached(root, stamp):
        return found
    require_tools()
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    fill(partial, partial / "maven.log")
    (partial / "fetched").write_text(stamp)
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


def step(prog: str, what: str, cache: str, skipped: str, fetch: Callable[[], Path]) -> int:
    """Run ``fetch`` as a step of ``make test``: say what it fetched or why not (module doc)."""
    started = time.monotonic()
    print(f"{prog}: fetching {what} with Maven (once; cached in {cache})...", flush=True)
    try:
        path = fetch()
    except FetchError as e:
        if os.environ.get("CI"):
            print(f"{prog}: ERROR: {e}", file=sys.stderr)
            return 1
        print(f"{prog}: WARNING: {e}\n{prog}: {skipped}", file=sys.stderr)
        return 0
    count = len(list(path.rglob("*.jar")))
    took = time.monotonic() - started
    print(f"{prog}: {count} jars in {path.relative_to(ROOT)} ({took:.0f} s)")
    return 0
