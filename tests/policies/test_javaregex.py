"""Kafka's topic filters read as Kafka reads them (policies/rules/_javaregex.py).

The expectations are java.util.regex's (``Pattern.compile(String.join("|", items))
.matcher(topic).matches()`` over a LIST setting split at commas), written out by hand; a pattern
whose Java meaning Python cannot reproduce must be refused, never guessed.
"""

from __future__ import annotations

import pytest

from policies.rules._javaregex import (
    DEFAULT_EXCLUDE,
    Untranslatable,
    compile_filter,
    full_match,
    split_list,
)

NAMES = [
    "trips",
    "trips.eta-service.retry",
    "trips.eta-service.dlq",
    "rider-profiles",
    "rider-profiles.crm.retry",
    "aws-eu-west-1.rider-profiles",
    "tripsX",
]


def carried(setting: str) -> list[str]:
    pattern = compile_filter(split_list(setting))
    return [n for n in NAMES if full_match(pattern, n)]


@pytest.mark.parametrize(
    "setting, expected",
    [
        # a full match: "trips" is not a prefix filter
        ("trips", ["trips"]),
        ("trips.*", ["trips", "trips.eta-service.retry", "trips.eta-service.dlq", "tripsX"]),
        ("trips\\..*", ["trips.eta-service.retry", "trips.eta-service.dlq"]),
        (".*", NAMES),
        # a comma list is split, trimmed and joined with |
        ("trips, rider-profiles", ["trips", "rider-profiles"]),
        ("rider.*|trips", ["trips", "rider-profiles", "rider-profiles.crm.retry"]),
        # Java quoting, named groups and back references, translated
        ("\\Qtrips.eta-service.dlq\\E", ["trips.eta-service.dlq"]),
        ("\\Qtrips", ["trips"]),
        ("(?<p>rider)-profiles", ["rider-profiles"]),
        ("(?i)TRIPS", ["trips"]),
        ("[a-z-]+\\.rider-profiles", []),
        ("aws-[a-z]+-[a-z]+-\\d\\.rider-profiles", ["aws-eu-west-1.rider-profiles"]),
        ("trips\\z", ["trips"]),
        # an empty setting matches nothing (Kafka compiles it to (?!))
        ("", []),
        (" , ", []),
    ],
)
def test_patterns_match_as_kafka_matches(setting, expected):
    assert carried(setting) == expected


@pytest.mark.parametrize(
    "setting, says",
    [
        ("\\p{Alpha}+", "\\p"),
        ("[a-z[x]]+", "nests a character class"),
        ("[a-z&&x]+", "intersects character classes"),
        ("(?P<x>trips)", "(? construct Java does not define"),
        ("trips{,3}", "'{'"),
        ("a{1,3}", "'{'"),  # the comma splits the list: Java sees "a{1" and "3}"
        ("trips(?i)x", "inline flags after the start"),
        ("(?x)t r i p s", "inline flag(s) x"),
        ("\\R", "\\R"),
        ("\\0101", "\\0"),
        ("[abc", "unclosed character class"),
        ("trips\\", "lone backslash"),
    ],
)
def test_java_only_or_python_only_syntax_is_refused(setting, says):
    with pytest.raises(Untranslatable) as exc:
        compile_filter(split_list(setting))
    assert says in str(exc.value)


def test_mirrormaker_default_excludes():
    exclude = compile_filter(split_list(DEFAULT_EXCLUDE))
    assert full_match(exclude, "__consumer_offsets")
    assert full_match(exclude, "mm2-offsets.internal") and full_match(exclude, "x.replica")
    assert not any(full_match(exclude, n) for n in NAMES)
