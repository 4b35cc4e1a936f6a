"""Read Pulumi YAML files with the meaning the Pulumi engine gives them.

Pulumi reads ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` with Go's yaml.v3 (YAML 1.2 core
schema, plus a few compatibility rules of its own) and then hands the program strings: a scalar
as Pulumi prints it, a mapping or a list as JSON. PyYAML reads YAML 1.1 (``no`` is ``false``, a
duplicate key silently wins), so the plan and ``pulumi up`` could disagree on one file. Here
ruamel.yaml parses and composes the node tree, and every plain scalar is resolved by yaml.v3's
rules, then printed as Pulumi prints it (Go's JSON number format, Go's ``time.Time`` text):

- ``yes``/``no``/``on``/``off`` stay strings; only ``true``/``false`` (three spellings) are bools;
- ``0777`` and ``0o777`` are 511, ``0x1F`` is 31, ``0b101`` is 5, ``1_000`` is 1000, ``08`` is 8;
- ``1e3`` is 1000 (a float Pulumi prints as ``1000``); ``.inf`` and ``.nan`` make Pulumi refuse
  the file (JSON has no infinity), so they are refused here too;
- ``~``, ``null`` and an empty value are null (a top-level null becomes ``""``, as Pulumi does);
- a timestamp becomes Go's ``2001-12-14 00:00:00 +0000 UTC`` (offsets kept as ``-0500``, which
  is what Pulumi prints on a machine whose local zone is UTC);
- ``<<`` merge keys merge; explicit keys win; ``!!str`` keeps the text; ``!!binary`` decodes;
  other tags keep the text; ``!!bool yes`` is an error, as in yaml.v3;
- inside mappings and lists every number is a float64 (Pulumi's JSON round trip), so an integer
  above 2**53 loses its low digits exactly as it does for the real program;
- a key written twice in one mapping (same text, also nested) is an error naming both lines.

`tests/test_stack_yaml.py` checks all of this against the real CLI's ``pulumi config --json``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

from infra.topology.errors import ConfigError, Issue, key_path

_IMPLICIT = "!rtdi-implicit"  # a plain scalar without a tag: resolved below, by yaml.v3's rules
_CORE = "tag:yaml.org,2002:"


class _Resolver(VersionedResolver):
    """Leave plain scalars unresolved: ruamel's YAML 1.2 rules are not yaml.v3's."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return Tag(suffix=_IMPLICIT)
        return super().resolve(kind, value, implicit)


class YamlError(Exception):
    """A problem at a place in the file; `located` turns it into an `Issue`."""

    def __init__(self, line: int, loc: tuple[Any, ...], message: str, value: Any = None):
        super().__init__(message)
        self.line, self.loc, self.message, self.value = line, loc, message, value


def compose(text: str, shown: str) -> Node | None:
    """The node tree of the first document; a syntax error is one `Issue` with line and column."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Resolver = _Resolver
    try:
        node: Node | None = yaml.compose(text)
        return node
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        problem = exc.problem or exc.context or str(exc)
        raise ConfigError([Issue(where, "", f"invalid YAML: {problem}")]) from None
    except YAMLError as exc:
        raise ConfigError([Issue(shown, "", f"invalid YAML: {exc}")]) from None


def load(text: str, shown: str) -> Any:
    """The document as Pulumi's JSON round trip leaves it (for Pulumi.yaml and whole files)."""
    node = compose(text, shown)
    if node is None:
        return None
    return located(shown, "", lambda: value(node, ()))


def located(shown: str, top: str, build: Any) -> Any:
    """Run ``build``; a `YamlError` becomes one line ``file:line: key = value: message``."""
    try:
        return build()
    except YamlError as exc:
        key = key_path(top, exc.loc) if top else _dotted(exc.loc)
        issue = (
            Issue(f"{shown}:{exc.line}", key, exc.message, exc.value)
            if exc.value is not None
            else Issue(f"{shown}:{exc.line}", key, exc.message)
        )
        raise ConfigError([issue]) from None


def _dotted(loc: tuple[Any, ...]) -> str:
    if not loc:
        return ""
    return key_path(str(loc[0]), loc[1:])


# --------------------------------------------------------------------------- mappings


def pairs(node: MappingNode, loc: tuple[Any, ...]) -> Iterator[tuple[str, Node]]:
    """Key text and value node of a mapping, merges applied, a key written twice refused.

    yaml.v3 calls two keys the same when their text is the same (``"x"`` and ``x`` are; ``1`` and
    ``01`` are not, and then the later one wins, as here). Explicit keys win over merged ones,
    and an earlier merge source over a later one.
    """
    seen: dict[str, int] = {}
    out: dict[str, Node] = {}
    merges: list[Node] = []
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, ScalarNode):
            raise YamlError(line, loc, "a key must be a plain value, not a mapping or a list")
        if _is_merge(key_node):
            merges.append(value_node)
            continue
        if key_node.value in seen:
            raise YamlError(
                line,
                (*loc, key_node.value),
                f"key written twice in one mapping (first at line {seen[key_node.value]}); "
                "Pulumi refuses the file; allowed: each key once",
            )
        seen[key_node.value] = line
        out[_key_text(key_node, loc)] = value_node
    for merge in merges:
        sources = merge.value if isinstance(merge, SequenceNode) else [merge]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise YamlError(
                    merge.start_mark.line + 1,
                    loc,
                    "a `<<` merge needs a mapping or a list of mappings",
                )
            for key, sub in pairs(source, loc):
                out.setdefault(key, sub)
    yield from out.items()


def _is_merge(node: ScalarNode) -> bool:
    return node.value == "<<" and (
        (str(node.tag) == _IMPLICIT and not node.style) or str(node.tag) == _CORE + "merge"
    )


def _key_text(node: ScalarNode, loc: tuple[Any, ...]) -> str:
    kind, resolved = resolve(node, loc)
    return "<nil>" if kind == "null" else top_text(kind, resolved)  # Go's fmt of a nil key


# --------------------------------------------------------------------------- values


def value(node: Node, loc: tuple[Any, ...]) -> Any:
    """A value inside a structured config value, as the program decodes Pulumi's JSON."""
    if isinstance(node, MappingNode):
        return {k: value(v, (*loc, k)) for k, v in pairs(node, loc)}
    if isinstance(node, SequenceNode):
        return [value(v, (*loc, i)) for i, v in enumerate(node.value)]
    assert isinstance(node, ScalarNode)  # the composer makes only these three kinds
    kind, resolved = resolve(node, loc)
    if kind in ("int", "float"):
        return json.loads(go_float(float(resolved)))
    return resolved


def config_value(node: Node, loc: tuple[Any, ...]) -> str:
    """A top-level config value as the engine hands it to the program: a string."""
    if isinstance(node, ScalarNode):
        return top_text(*resolve(node, loc))
    return json.dumps(value(node, loc), separators=(",", ":"), sort_keys=True)


def top_text(kind: str, resolved: Any) -> str:
    if kind == "null":
        return ""
    if kind == "bool":
        return "true" if resolved else "false"
    if kind == "int":
        return str(resolved)
    if kind == "float":
        return go_float(resolved)
    return str(resolved)


def go_float(f: float) -> str:
    """A float64 as Go's encoding/json writes it: shortest digits, exponent outside [1e-6, 1e21)."""
    if f == 0:
        return "0"
    d = Decimal(repr(f))
    if 1e-6 <= abs(f) < 1e21:
        text = format(d, "f")
        return text[:-2] if text.endswith(".0") else text
    sign, digits, exp = d.as_tuple()
    shown = "".join(map(str, digits)).rstrip("0") or "0"
    exponent = len(digits) - 1 + int(exp)
    mantissa = shown[0] + (f".{shown[1:]}" if len(shown) > 1 else "")
    power = f"+{exponent:02d}" if exponent >= 0 else f"-{-exponent}"
    return f"{'-' if sign else ''}{mantissa}e{power}"


# --------------------------------------------------------------------------- scalars (yaml.v3)

_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"", "~", "null", "Null", "NULL"}
_INF_NAN = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"}
_INF_NAN |= {".nan", ".NaN", ".NAN"}
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_DOT_FLOAT = re.compile(r"^\.[0-9]+([eE][-+]?[0-9]+)?$")
_GO_INT = re.compile(r"^[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?P<t>[Tt])|(?P<sp> ))?"
    r"(?:(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?$"
)
_RESOLVABLE = {"str", "bool", "int", "float", "timestamp"}
_INT64 = 2**63
_UINT64 = 2**64


def resolve(node: ScalarNode, loc: tuple[Any, ...]) -> tuple[str, Any]:
    """(kind, value) of a scalar as yaml.v3 decodes it into an interface{}."""
    text, tag = node.value, str(node.tag)
    line = node.start_mark.line + 1
    if tag == _IMPLICIT:
        wanted = ""
    elif tag.startswith(_CORE):
        wanted = tag[len(_CORE) :]
    else:
        return "str", text  # a tag yaml.v3 does not know keeps the text
    if wanted == "binary":
        try:
            return "str", base64.b64decode(text, validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            raise YamlError(line, loc, "not base64 after !!binary", text) from None
    if wanted == "str" or (wanted == "" and node.style):  # quoted or block: always a string
        return "str", text
    if wanted not in _RESOLVABLE and wanted != "":
        return "str", text
    kind, resolved = _resolve_plain(text, wanted)
    if wanted and kind != wanted:
        if wanted == "float" and kind == "int":
            return "float", float(resolved)
        raise YamlError(
            line, loc, f"cannot decode !!{kind} `{text}` as a !!{wanted} (yaml.v3, as Pulumi)"
        )
    if kind == "float" and not math.isfinite(resolved):
        raise YamlError(
            line,
            loc,
            "Pulumi refuses the file: JSON has no infinity or NaN; allowed: a finite number, "
            "or quote it to keep the text",
            text,
        )
    return kind, resolved


def _resolve_plain(text: str, wanted: str) -> tuple[str, Any]:
    if text in _BOOL:
        return "bool", _BOOL[text]
    if text in _NULL:
        return "null", None
    if text in _INF_NAN:
        if "nan" in text.lower():
            return "float", math.nan
        return "float", -math.inf if text.startswith("-") else math.inf
    if text == "<<":
        return "str", text
    first = text[0]
    if first == ".":
        if _DOT_FLOAT.match(text):
            return _float(text)
        return "str", text
    if not (first.isdigit() and first.isascii()) and first not in "+-":
        return "str", text
    if wanted in ("", "timestamp"):
        stamp = _timestamp(text)
        if stamp is not None:
            return "timestamp", stamp
    plain = text.replace("_", "")
    if _GO_INT.match(plain):
        number = _go_int(plain)  # ParseInt (int64), then ParseUint (uint64, no sign)
        if -_INT64 <= number < _INT64 or (plain[0] not in "+-" and 0 <= number < _UINT64):
            return "int", number
    if _YAML_FLOAT.match(plain):
        return _float(plain)
    return "str", text


def _float(text: str) -> tuple[str, Any]:
    number = float(text)
    if math.isinf(number):  # Go's ParseFloat reports a range error: yaml.v3 keeps the text
        return "str", text
    return "float", number


def _go_int(plain: str) -> int:
    sign = -1 if plain[0] == "-" else 1
    digits = plain.lstrip("+-")
    lower = digits.lower()
    if lower.startswith(("0x", "0o", "0b")):
        return sign * int(digits[2:], {"x": 16, "o": 8, "b": 2}[lower[1]])
    if digits.startswith("0") and len(digits) > 1:
        return sign * int(digits[1:], 8)
    return sign * int(digits)


def _timestamp(text: str) -> str | None:
    """Go's ``time.Time.String()`` of a YAML timestamp, or None when yaml.v3 sees none."""
    m = _TIMESTAMP.match(text)
    if not m:
        return None
    year, month, day, _, _, hour, minute, second, frac, zone = m.groups()
    has_time = hour is not None
    if m.group("t"):
        if not has_time or zone is None:  # "2006-1-2T15:4:5Z07:00": the zone is required
            return None
    elif m.group("sp"):
        if not has_time or zone is not None:  # "2006-1-2 15:4:5": no zone at all
            return None
    elif has_time or zone is not None:
        return None
    try:
        offset = 0
        if zone and zone != "Z":
            offset = (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 60 + int(zone[4:6]))
        stamp = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
        )
    except ValueError:
        return None
    fraction = (frac or "").rstrip("0")
    clock = stamp.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if fraction else "")
    if offset == 0:
        return f"{clock} +0000 UTC"
    sign = "+" if offset > 0 else "-"
    hhmm = f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    return f"{clock} {hhmm} {hhmm}"
