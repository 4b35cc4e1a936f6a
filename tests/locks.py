"""Read the dependency locks (requirements.txt, requirements-dev.txt) as pip reads them.

Tests compare what an install put into a virtualenv with what the lock pins, so they need each pin's
exact version, its environment marker (a pin may apply only on some platform or Python) and hashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from plantools import ROOT

RUNTIME_LOCK = ROOT / "requirements.txt"
DEV_LOCK = ROOT / "requirements-dev.txt"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self, environment: dict[str, Any]) -> bool:
        return self.marker is None or self.marker.evaluate(environment)


def read_lock(path: Path) -> dict[str, tuple[Pin, ...]]:
    """Every pin of ``path`` by canonical name; fails on anything but ``name==version``.

    A universal lock may pin one name twice under exclusive markers (one version per Python).
    """
    logical = re.sub(r"\\\n", " ", path.read_text())
    pins: dict[str, tuple[Pin, ...]] = {}
    for raw in logical.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        hashes = tuple(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        req = Requirement(re.sub(r"\s*--hash=\S+", "", line))
        (spec,) = req.specifier
        assert spec.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        pins[name] = (*pins.get(name, ()), Pin(name, spec.version, req.marker, hashes))
    return pins


def expected_versions(
    lock: dict[str, tuple[Pin, ...]], environment: dict[str, Any]
) -> dict[str, str]:
    """What an install of ``lock`` puts into an environment: one version per applicable name."""
    versions: dict[str, str] = {}
    for name, pins in lock.items():
        applicable = [p.version for p in pins if p.applies(environment)]
        assert len(applicable) <= 1, f"{name}: {len(applicable)} pins apply to one environment"
        if applicable:
            versions[name] = applicable[0]
    return versions
