"""Kafka's topic filters, matched as Kafka matches them: ``java.util.regex``, full match.

MirrorMaker 2's ``topics`` (Strimzi's ``topicsPattern``) and ``topics.exclude`` are Kafka LIST
settings: the value is split at commas, each item trimmed, and the items joined with ``|`` into
one ``java.util.regex.Pattern`` that must match the *whole* topic name (``Matcher.matches``;
``MirrorUtils.compilePatternList``). MSK Replicator's ``topicsToReplicate`` and
``topicsToExclude`` are lists of the same Java regexes. Policies decide which data a flow carries
from this, so a pattern must mean here exactly what it means to Kafka.

Python's ``re`` reads most Java regexes the same way over topic names (ASCII letters, digits,
``.``, ``_`` and ``-``: no line terminators, no case or Unicode subtleties). Where the two
dialects differ, the pattern is translated (``\\Q...\\E`` quoting, ``(?<name>...)`` groups,
``\\k<name>``, ``\\z``) or refused with `Untranslatable`: Java-only syntax (``\\p{...}``, class
union and intersection ``[a[b]]``/``[a&&b]``, ``\\h``, ``\\R``, ``\\G``, octal ``\\0``,
``(?x)``/``(?d)``/``(?U)`` and flags that are not at the start) and syntax Java rejects but
Python accepts (``(?P<...>)``, ``{,n}``, a dangling ``{``), whose meaning Kafka would not share. A
refused pattern is a violation: nobody can say which topics it carries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# MirrorMaker 2's default topics.exclude (DefaultTopicFilter): internal, replica and "__" topics.
DEFAULT_EXCLUDE = ".*[\\-\\.]internal, .*\\.replica, __.*"

_SIMPLE_ESCAPES = set("dDsSwWbBAtnrfa.\\[]{}()*+?^$|/-")


class Untranslatable(ValueError):
    """A Java regex whose meaning Python's ``re`` cannot reproduce safely."""


def split_list(value: str) -> list[str]:
    """A Kafka LIST setting's items: split at commas, trimmed, empty items dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


def compile_filter(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """The Java alternation of ``patterns`` as a Python pattern (None: the empty list, which
    Kafka compiles to ``(?!)``, matching nothing). Raises `Untranslatable`."""
    parts = [translate(p) for p in patterns]
    if not parts:
        return None
    try:
        return re.compile("|".join(parts))
    except re.error as exc:
        raise Untranslatable(f"not a valid regex: {exc}") from None


def full_match(pattern: re.Pattern[str] | None, name: str) -> bool:
    return pattern is not None and pattern.fullmatch(name) is not None


def translate(java: str) -> str:
    """One Java regex as an equivalent Python one, or `Untranslatable` saying why not."""
    out: list[str] = []
    i, n = 0, len(java)
    in_class = False
    class_start = 0
    while i < n:
        c = java[i]
        if c == "\\":
            if i + 1 >= n:
                raise Untranslatable("ends with a lone backslash")
            e = java[i + 1]
            if e == "Q":
                end = java.find("\\E", i + 2)
                quoted = java[i + 2 :] if end < 0 else java[i + 2 : end]
                out.append("".join(re.escape(ch) for ch in quoted))
                i = n if end < 0 else end + 2
                continue
            if e == "z":
                out.append(r"\Z")
            elif e == "Z":
                out.append(r"(?=\n?\Z)")
            elif e == "k":
                m = re.match(r"\\k<([A-Za-z][A-Za-z0-9]*)>", java[i:])
                if not m:
                    raise Untranslatable(r"has a \k back reference without <name>")
                out.append(f"(?P={m.group(1)})")
                i += m.end()
                continue
            elif e == "x":
                m = re.match(r"\\x([0-9A-Fa-f]{2})", java[i:])
                if not m:
                    raise Untranslatable(r"has \x not followed by two hex digits")
                out.append(m.group(0))
                i += m.end()
                continue
            elif e == "u":
                m = re.match(r"\\u([0-9A-Fa-f]{4})", java[i:])
                if not m:
                    raise Untranslatable(r"has \u not followed by four hex digits")
                out.append(m.group(0))
                i += m.end()
                continue
            elif e.isdigit() and e != "0":
                m = re.match(r"\\([1-9][0-9]*)", java[i:])
                assert m is not None
                out.append(f"(?:\\{m.group(1)})")
                i += m.end()
                continue
            elif e in _SIMPLE_ESCAPES or not e.isalnum():
                out.append("\\" + e)
            else:
                raise Untranslatable(
                    f"uses \\{e}, which Java and Python read differently or Python lacks"
                )
            i += 2
            continue
        if in_class:
            if c == "[":
                raise Untranslatable("nests a character class ([a[b]] is a union in Java)")
            if c == "&" and java.startswith("&&", i):
                raise Untranslatable("intersects character classes (&&), which Python lacks")
            if c == "]" and i > class_start:
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and java[i] == "^":
                out.append("^")
                i += 1
            class_start = i  # a "]" right here is a literal in both dialects
            continue
        if c == "(" and java.startswith("(?", i):
            i = _group(java, i, out)
            continue
        if c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", java[i:])
            if not m or not out:
                raise Untranslatable("has a '{' that is not a {n}, {n,} or {n,m} quantifier")
            out.append(m.group(0))
            i += m.end()
            continue
        out.append(c)
        i += 1
    if in_class:
        raise Untranslatable("has an unclosed character class")
    return "".join(out)


def _group(java: str, i: int, out: list[str]) -> int:
    """A ``(?`` construct at ``i``: copied, translated or refused. Returns the index after it."""
    rest = java[i + 2 :]
    for keep in (":", "=", "!", "<=", "<!", ">"):
        if rest.startswith(keep):
            out.append("(?" + keep)
            return i + 2 + len(keep)
    m = re.match(r"<([A-Za-z][A-Za-z0-9]*)>", rest)
    if m:
        out.append(f"(?P<{m.group(1)}>")
        return i + 2 + m.end()
    m = re.match(r"([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])", rest)
    if not m:
        raise Untranslatable("has a (? construct Java does not define")
    on, off = m.group(1), m.group(2) or ""
    bad = set(on + off) - set("ims")
    if bad:
        raise Untranslatable(
            f"sets inline flag(s) {''.join(sorted(bad))}, which Python reads differently or lacks"
        )
    if m.group(3) == ")":
        if off or "".join(out) != "":
            raise Untranslatable(
                "sets or clears inline flags after the start, which Python does not allow"
            )
        out.append(f"(?{on})")
    else:
        out.append(f"(?{on}-{off}:" if off else f"(?{on}:")
    return i + 2 + m.end()
