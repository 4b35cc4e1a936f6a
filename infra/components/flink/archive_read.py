"""A backfill's sources over the region's Parquet archive (paper 4.4: the archive is the source
of backfill; paper 7, Kappa+: the streaming job's own logic over the archived records).

`rtdi backfill --source archive` re-runs a job over a range Kafka no longer holds. The job's SQL
stays exactly the live job's: only its source tables change. Each source table T becomes a
temporary view of the same name over the archive's copies of T's topic (archive.py's layout:
`<archive>/<physical topic>/dt=YYYY-MM-DD/hr=HH/`), so the job's SQL cannot tell the two apart:

- one FileSystem table per physical copy the region's aggregate holds (the copies the live
  job's Kafka source subscribes to), over the very path the archive job writes, with the
  archive's columns and T's columns decoded from the archived ``value`` as computed columns;
- T's watermark on its decoded event-time column, held at the epoch (see below);
- only the range's hour directories read: `source.path.regex-pattern` (`hour_pattern`) makes the
  file enumerator skip every other file unopened. A `dt`/`hr` WHERE cannot do it: Flink 2.2 puts
  the WatermarkAssigner between the scan and the filter (the FileSystem source takes no watermark
  push-down), so no partition is pruned and every file of the copy would be read
  (tests/integration/test_flink_backfill_archive.py fails on an unreadable file outside the
  range without the pattern);
- the view: each copy filtered to the range on the archived Kafka timestamp, exactly the
  records a Kafka backfill's `timestamp` bounds select; the copies joined by UNION ALL.

What the archive cannot give back: the order of a partition. Parquet files of an hour are read
in no particular order, so a record may come after a later one of its partition. The watermark
therefore stays at the epoch until the bounded sources end: no record is ever late, whatever the
range, the read order or an event time far from its Kafka timestamp, and every window fires
once, at the end (Uber's Kappa+ answer, a larger buffer, taken to the whole run). A watermark
trailing the event time by a bound is not enough: a record whose event time runs ahead moves it
past windows still being read, and Flink 2.2 refuses day intervals above DAY(3) anyway. Unlike a
Kafka backfill, this also counts events the live job dropped as late; a long range holds all its
windows in state (RocksDB) until the end, so split years into months.

Decoding: the archive holds the record as Kafka did (bytes). JSON values decode through
JSON_VALUE and a CAST to each column's type, which covers scalar columns; a ``raw`` table's one
textual or binary column is the value itself. Other formats (Avro, CSV) and nested JSON types
are refused by `decode_issues` before anything is declared, in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.components.flink.archive import COLUMNS, PARQUET_OPTIONS, PARTITION_COLUMNS, _create

# Scalar Flink SQL types a CAST from the JSON text gives exactly (JSON_VALUE returns text).
JSON_SCALAR = re.compile(
    r"(STRING|VARCHAR(\(\d+\))?|CHAR(\(\d+\))?|BOOLEAN|TINYINT|SMALLINT|INT|INTEGER|BIGINT|"
    r"FLOAT|DOUBLE( PRECISION)?|DECIMAL(\(\d+(, ?\d+)?\))?|DEC(\(\d+(, ?\d+)?\))?|"
    r"NUMERIC(\(\d+(, ?\d+)?\))?|DATE|TIME(\(\d\))?|TIMESTAMP(\(\d\))?|"
    r"TIMESTAMP_LTZ(\(\d\))?)( NOT NULL)?\Z",
    re.I,
)
# What a `raw` table's single column may be to be the archived value as is.
RAW_TEXT = re.compile(r"(STRING|VARCHAR(\(\d+\))?)( NOT NULL)?\Z", re.I)
RAW_BYTES = re.compile(r"(BYTES|VARBINARY(\(\d+\))?)( NOT NULL)?\Z", re.I)
ALLOWED = (
    "allowed: a json table with scalar columns (STRING, numbers, BOOLEAN, DATE, TIME, TIMESTAMP), "
    "or a raw table with one STRING or BYTES column; or the Kafka source (`source: kafka`)"
)


@dataclass(frozen=True)
class ArchiveCopy:
    """One physical copy of a source table's topic, as the archive holds it."""

    table: str  # the FileSystem table's name in the script
    path: str  # the archive job's own path of the copy (archive.sink_path)


def decode_issues(tables: Sequence[Any]) -> Iterator[tuple[str, Any, str]]:
    """(key below the job spec, value, message) for each source column the archive cannot give
    back as the live job's Kafka format would."""
    taken = {n for n, _ in COLUMNS} | set(PARTITION_COLUMNS)
    for i, t in enumerate(tables):
        for j, c in enumerate(t.columns):
            if c.name in taken:
                yield (
                    f"sources[{i}].columns[{j}].name",
                    c.name,
                    f"a name the archive's own columns take ({', '.join(sorted(taken))}), so "
                    f"the archive backfill cannot decode it; allowed: another name, or the Kafka "
                    f"source (`source: kafka`)",
                )
        if t.format == "json":
            for j, c in enumerate(t.columns):
                if not JSON_SCALAR.match(c.type.strip()):
                    yield (
                        f"sources[{i}].columns[{j}].type",
                        c.type,
                        f"the archive backfill cannot decode this JSON column; {ALLOWED}",
                    )
        elif t.format == "raw":
            (column, *more) = t.columns
            if more or not (RAW_TEXT.match(column.type) or RAW_BYTES.match(column.type)):
                yield (
                    f"sources[{i}].format",
                    t.format,
                    f"the archive backfill reads a raw table of one STRING or BYTES column; "
                    f"{ALLOWED}",
                )
        else:
            yield (
                f"sources[{i}].format",
                t.format,
                f"the archive backfill cannot decode {t.format} values; {ALLOWED}",
            )


def column_expression(table: Any, column: Any) -> str:
    """``column`` of ``table`` from the archived ``value`` bytes."""
    text = "CAST(`value` AS STRING)"
    if table.format == "raw":
        return text if RAW_TEXT.match(column.type) else "`value`"
    path = f"$.{column.name}"
    return f"CAST(JSON_VALUE({text}, '{path}') AS {column.type})"


# The watermark of every archive copy: a constant at the epoch, so it never passes a window
# before the bounded sources end (Flink then emits the final watermark and every window fires).
EPOCH = "TIMESTAMP '1970-01-01 00:00:00.000'"


def hour_pattern(start: datetime, end: datetime) -> str:
    """A regular expression matching exactly the archive files of the UTC hours that can hold a
    record of [start, end): `.../dt=YYYY-MM-DD/hr=HH/<file>`, in date order. Whole days, months
    and years of the range collapse to one alternative each, so a range of years stays short."""
    first = start.replace(minute=0, second=0, microsecond=0)
    last = (end - timedelta(milliseconds=1)).replace(minute=0, second=0, microsecond=0)
    partial: list[str] = []
    whole: list[datetime] = []
    day = first.replace(hour=0)
    while day <= last:
        lo = first.hour if day.date() == first.date() else 0
        hi = last.hour if day.date() == last.date() else 23
        if (lo, hi) == (0, 23):
            whole.append(day)
        else:
            hours = "|".join(f"{h:02d}" for h in range(lo, hi + 1))
            partial.append(f"{day:%Y-%m-%d}/hr=(?:{hours})")
        day += timedelta(days=1)
    alternatives = [f"{d}/hr=[0-9]{{2}}" for d in _collapse({d.date() for d in whole})]
    return f".*/dt=(?:{'|'.join(sorted(alternatives + partial))})/[^/]+"


def _collapse(days: set[Any]) -> list[str]:
    """Dates as `dt` patterns: a whole year as `YYYY-[0-9]{2}-[0-9]{2}`, a whole month as
    `YYYY-MM-[0-9]{2}`, any other day as itself; sorted."""
    out = []
    months: dict[tuple[int, int], list[Any]] = {}
    for d in days:
        months.setdefault((d.year, d.month), []).append(d)
    full = {m for m, ds in months.items() if len(ds) == _month_days(*m)}
    years = {y for y in {m[0] for m in full} if all((y, m) in full for m in range(1, 13))}
    out += [f"{y:04d}-[0-9]{{2}}-[0-9]{{2}}" for y in sorted(years)]
    out += [f"{y:04d}-{m:02d}-[0-9]{{2}}" for (y, m) in sorted(full) if y not in years]
    out += [f"{d:%Y-%m-%d}" for d in sorted(days) if (d.year, d.month) not in full]
    return out


def _month_days(year: int, month: int) -> int:
    nxt = datetime(year + month // 12, month % 12 + 1, 1)
    return (nxt - datetime(year, month, 1)).days


def copy_ddl(table: Any, copy: ArchiveCopy, start: datetime, end: datetime) -> str:
    """The FileSystem table of one copy: the archive's columns, ``table``'s decoded ones, and
    its watermark (see the module's doc)."""
    columns = [f"  `{n}` {t}" for n, t in COLUMNS]
    columns += [f"  `{p}` STRING" for p in PARTITION_COLUMNS]
    columns += [f"  `{c.name}` AS {column_expression(table, c)}" for c in table.columns]
    if table.watermark:
        col = table.watermark.column
        kind = next(c.type for c in table.columns if c.name == col)
        kind = re.sub(r"\s+NOT NULL\s*$", "", kind, flags=re.I)
        columns.append(f"  WATERMARK FOR `{col}` AS CAST({EPOCH} AS {kind})")
    options = {"connector": "filesystem", "path": copy.path, "format": "parquet"}
    options.update(PARQUET_OPTIONS)
    options["source.path.regex-pattern"] = hour_pattern(start, end)
    parts = ", ".join(f"`{p}`" for p in PARTITION_COLUMNS)
    return _create(copy.table, columns, options, f"PARTITIONED BY ({parts}) ")


def _hour(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H")


def _timestamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M:%S.") + f"{instant.microsecond // 1000:03d}"


def view_sql(table: Any, copies: Sequence[ArchiveCopy], start: datetime, end: datetime) -> str:
    """The job's source table as a view: every copy's records whose Kafka timestamp (UTC) is
    in ``[start, end)``. The `dt`/`hr` predicate says which hours for a reader of the script;
    Flink does not prune on it (the copy's `source.path.regex-pattern` does)."""
    names = ", ".join(f"`{c.name}`" for c in table.columns)
    last = end - timedelta(milliseconds=1)
    hour = "CONCAT(`dt`, ' ', `hr`)"
    selects = [
        f"SELECT {names} FROM `{c.table}`\n"
        f"WHERE {hour} >= '{_hour(start)}' AND {hour} <= '{_hour(last)}'\n"
        f"  AND `kafka_timestamp` >= TIMESTAMP '{_timestamp(start)}'\n"
        f"  AND `kafka_timestamp` < TIMESTAMP '{_timestamp(end)}'"
        for c in copies
    ]
    body = "\nUNION ALL\n".join(selects)
    return f"CREATE TEMPORARY VIEW `{table.table}` AS\n{body};\n"


def source_sql(
    table: Any, copies: Sequence[ArchiveCopy], start: datetime, end: datetime
) -> list[str]:
    """What replaces the Kafka source table ``table`` in a backfill over the archive: the
    copies' tables, then the view named as the table."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return [*(copy_ddl(table, c, start, end) for c in copies), view_sql(table, copies, start, end)]
