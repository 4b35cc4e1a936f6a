"""A backfill's sources over the region's Parquet archive (paper 4.4: the archive is the source
of backfill; paper 7, Kappa+: the streaming job's own logic over the archived records).

`rtdi backfill --source archive` re-runs a job over a range Kafka no longer holds. The job's SQL
stays exactly the live job's: only its source tables change. Each source table T becomes a
temporary view of the same name over the archive's copies of T's topic (archive.py's layout:
`<archive>/<physical topic>/dt=YYYY-MM-DD/hr=HH/`), so the job's SQL cannot tell the two apart:

- one FileSystem table per physical copy the region's aggregate holds (the copies the live
  job's Kafka source subscribes to), over the very path the archive job writes, with the
  archive's columns and T's columns decoded from the archived ``value`` as computed columns;
- T's watermark on its decoded event-time column, held at the epoch (below);
- only the range's hour directories are read: `source.path.regex-pattern` names them, and Flink
  never opens a file it does not match. A `dt`/`hr` WHERE clause would not do: with a watermark
  on the table Flink 2.2 plans the filter above the watermark assigner, so no partition is
  pruned and every hour of every copy is read (tests/integration/test_flink_backfill_archive.py
  found it with an unreadable file outside the range);
- the view: each copy filtered to the range on the archived Kafka timestamp, exactly the
  records a Kafka backfill's `timestamp` bounds select; the copies joined by UNION ALL.

What the archive cannot give back: the order of a partition. Parquet files of an hour are read
in no particular order, so a record may come after a later one of its partition; with the live
job's watermark delay the run dropped 69 of 186 records as late (the same test). So the
watermark stays at the epoch until the bounded sources end, when Flink's final watermark fires
every window once: no record of the range is late (Uber's Kappa+ answer: a larger buffer).
Unlike a Kafka backfill, this also counts events the live job dropped as late, and a run holds
all its windows in state (RocksDB) until the end, so split a long range into several runs.

Decoding: the archive holds the record as Kafka did (bytes). JSON values decode through
JSON_VALUE and a CAST to each column's type, which covers scalar columns; a ``raw`` table's one
textual or binary column is the value itself. Other formats (Avro, CSV) and nested JSON types
are refused by `decode_issues` before anything is declared, in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
# The archive's watermark: it never advances while the files are read (see the module's doc);
# when the bounded sources end Flink emits the final watermark and every window fires once.
EPOCH = "TIMESTAMP '1970-01-01 00:00:00.000'"
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


def hour_pattern(start: datetime, end: datetime) -> str:
    """`source.path.regex-pattern` for the part files of the hours holding ``[start, end)``
    (UTC): Flink matches it against each file's whole path and never opens a file it does not
    match. Whole months and years collapse to one alternative, so a year is a few hundred
    characters; a day is ``<dt>/hr=[0-9]{2}``, a partial day lists its hours."""
    first = start.replace(minute=0, second=0, microsecond=0)
    last = (end - timedelta(milliseconds=1)).replace(minute=0, second=0, microsecond=0)
    hours: dict[date, list[int]] = {}
    at = first
    while at <= last:
        hours.setdefault(at.date(), []).append(at.hour)
        at += timedelta(hours=1)
    full = {d for d, h in hours.items() if len(h) == 24}
    parts: list[str] = []
    done: set[date] = set()
    for day in sorted(hours):
        if day in done:
            continue
        year = [date(day.year, 1, 1) + timedelta(days=i) for i in range(366)]
        year = [d for d in year if d.year == day.year]
        month = [d for d in year if d.month == day.month]
        if all(d in full for d in year):
            parts.append(f"{day.year}-[0-9]{{2}}-[0-9]{{2}}/hr=[0-9]{{2}}")
            done.update(year)
        elif all(d in full for d in month):
            parts.append(f"{day:%Y-%m}-[0-9]{{2}}/hr=[0-9]{{2}}")
            done.update(month)
        elif day in full:
            parts.append(f"{day:%Y-%m-%d}/hr=[0-9]{{2}}")
        else:
            listed = "|".join(f"{h:02d}" for h in hours[day])
            parts.append(f"{day:%Y-%m-%d}/hr=(?:{listed})")
    return f".*/dt=(?:{'|'.join(parts)})/[^/]+"


def copy_ddl(table: Any, copy: ArchiveCopy, start: datetime, end: datetime) -> str:
    """The FileSystem table of one copy: the archive's columns, ``table``'s decoded ones, and
    its watermark (see the module's doc)."""
    columns = [f"  `{n}` {t}" for n, t in COLUMNS]
    columns += [f"  `{p}` STRING" for p in PARTITION_COLUMNS]
    columns += [f"  `{c.name}` AS {column_expression(table, c)}" for c in table.columns]
    if table.watermark:
        columns.append(f"  WATERMARK FOR `{table.watermark.column}` AS {EPOCH}")
    options = {"connector": "filesystem", "path": copy.path, "format": "parquet"}
    options.update(PARQUET_OPTIONS)
    options["source.path.regex-pattern"] = hour_pattern(start, end)
    parts = ", ".join(f"`{p}`" for p in PARTITION_COLUMNS)
    return _create(copy.table, columns, options, f"PARTITIONED BY ({parts}) ")


def _timestamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M:%S.") + f"{instant.microsecond // 1000:03d}"


def view_sql(table: Any, copies: Sequence[ArchiveCopy], start: datetime, end: datetime) -> str:
    """The job's source table as a view: every copy's records whose Kafka timestamp (UTC) is
    in ``[start, end)`` (the copies' tables read only the hours that can hold them)."""
    names = ", ".join(f"`{c.name}`" for c in table.columns)
    selects = [
        f"SELECT {names} FROM `{c.table}`\n"
        f"WHERE `kafka_timestamp` >= TIMESTAMP '{_timestamp(start)}'\n"
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
