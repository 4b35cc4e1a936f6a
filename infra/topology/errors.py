"""One error type for every bad input, rendered as one line a person can act on.

A platform engineer who mistypes a key must learn which file, which key, what they wrote and
what is allowed, without reading a Python traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_MISSING = object()


def key_path(top: str, loc: Sequence[str | int] = ()) -> str:
    """Render a config key and a location inside its value:
    ``rtdi:topology.regions[1].zones[0]``."""
    out = top
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# What a check reports as the value of a key that is missing: the message shows no value.
NO_VALUE: Any = _MISSING


@dataclass(frozen=True)
class Issue:
    file: str
    key: str
    message: str
    value: Any = _MISSING

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        if self.value is _MISSING:
            return f"{where}: {self.message}"
        return f"{where} = {_show(self.value)}: {self.message}"


def _show(value: Any) -> str:
    # booleans and null as the YAML spells them; everything else as Python quotes it
    if value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class ConfigError(Exception):
    """Raised with every issue found in one stack's configuration."""

    def __init__(self, issues: Sequence[Issue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))
