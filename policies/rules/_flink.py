"""What the Flink rules read from a FlinkDeployment, as the operator and Flink read it.

* The Flink configuration: ``spec.flinkConfiguration`` with Flink 2.2's own fallback keys (a
  deprecated key still configures Flink when the current one is absent), overlaid with the
  ``SET 'key' = 'value'`` statements of the job's SQL script, which the rtdi SQL runner applies to
  the job's configuration before it submits the job.
* The pod templates: the operator merges ``spec.podTemplate`` with ``spec.jobManager.podTemplate``
  or ``spec.taskManager.podTemplate``; without ``merge-arrays-by-name`` (off by default) a list
  the component's template sets replaces the common one, so a list is read from the component's
  template when it has it, else from the common one.
* Where a URI's store is (`outside_region`): the placement every data-placement rule uses for
  the files a region's jobs and servers write (state, archive, deep store).
* The SQL script: followed from the job's ``--sql-file`` argument through the JobManager's
  ``flink-main-container`` volume mounts to the ConfigMap (and key) mounted there, i.e. the file
  the runner will read, not a label naming a ConfigMap. The script is tokenized as Flink SQL
  (string literals with ``''``, quoted identifiers, ``--`` and ``/* */`` comments), so a ``;`` or a
  ``${env:...}`` placeholder inside a property value changes nothing. A table's options are what
  Flink's catalog holds when the job's INSERTs are planned: its ``WITH`` options, those it
  inherits through ``LIKE`` (unless excluded), and ``ALTER TABLE ... SET/RESET/RENAME``; a
  ``/*+ OPTIONS(...) */`` hint on a table reference (Flink's dynamic table options, on by
  default) overrides them for that query, so hints are kept too (`Script.hints`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.engine import Context, Rule
from policies.rules._common import GCS_BUCKET, S3_BUCKETS
from policies.view import Resource, StackView, as_int, dig, items, location, output, str_map, text

GROUP = "flink.apache.org"
MAIN_CONTAINER = "flink-main-container"

# Flink 2.2 option keys with their fallback keys, in the order Flink reads them
# (CheckpointingOptions, HighAvailabilityOptions, StateRecoveryOptions of flink-core 2.2.0).
CHECKPOINT_DIR = (
    "execution.checkpointing.dir",
    "state.checkpoints.dir",
    "state.backend.fs.checkpointdir",
)
SAVEPOINT_DIR = (
    "execution.checkpointing.savepoint-dir",
    "state.savepoints.dir",
    "savepoints.state.backend.fs.dir",
)
HA_STORAGE_DIR = (
    "high-availability.storageDir",
    "high-availability.zookeeper.storageDir",
    "recovery.zookeeper.storageDir",
)
HA_TYPE = ("high-availability.type", "recovery.mode", "high-availability")
RECOVERY_PATH = ("execution.state-recovery.path", "execution.savepoint.path")
INTERVAL = ("execution.checkpointing.interval",)
CHECKPOINT_MODE = ("execution.checkpointing.mode",)
RETENTION = ("execution.checkpointing.externalized-checkpoint-retention",)
K8S_HA_FACTORY = "org.apache.flink.kubernetes.highavailability.KubernetesHaServicesFactory"

# Labels Flink's native Kubernetes integration puts on every TaskManager pod (over the pod
# template's own): app = the cluster id (the FlinkDeployment's name), component, type.
TASKMANAGER_LABELS = {"component": "taskmanager", "type": "flink-native-kubernetes"}


def deployments(view: StackView) -> list[Resource]:
    return view.of_kind(GROUP, "FlinkDeployment")


def name_of(dep: Resource) -> str:
    return dep.k8s_name or dep.name


def job(dep: Resource) -> Mapping[str, Any]:
    found = dig(dep.props, "spec", "job")
    return found if isinstance(found, Mapping) else {}


def upgrade_mode(dep: Resource) -> str:
    """The job's upgrade mode; the CRD's default is stateless."""
    return text(job(dep).get("upgradeMode")) or "stateless"


def is_stateful(dep: Resource) -> bool:
    return upgrade_mode(dep) in ("savepoint", "last-state")


def job_state(dep: Resource) -> str:
    """``running`` (the CRD's default) or ``suspended``."""
    return text(job(dep).get("state")) or "running"


# --------------------------------------------------------------------------- configuration


def configuration(view: StackView, dep: Resource) -> dict[str, str]:
    """The job's effective Flink configuration: flinkConfiguration, then its script's SETs."""
    conf = flatten(dig(dep.props, "spec", "flinkConfiguration"))
    script = sql_script(view, dep).script
    if script is not None:
        for key, value in script.settings:
            if value is None and key:
                conf.pop(key, None)
            elif value is None:
                conf.clear()
            else:
                conf[key] = value
    return conf


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """flinkConfiguration as Flink keys: the CRD (1.15) preserves any shape, and the operator
    reads a nested map ``{execution: {checkpointing: {dir: ...}}}`` as dotted keys. Scalars as
    Flink reads them (``true``, ``3``); an unknown value raises, so the resource is skipped
    rather than read as unset."""
    out: dict[str, str] = {}
    if not isinstance(value, Mapping):
        return out
    for key in value:
        item = value.get(key)
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out.update(flatten(item, name + "."))
        elif isinstance(item, bool):
            out[name] = str(item).lower()
        elif isinstance(item, float) and item.is_integer():
            out[name] = str(int(item))
        elif isinstance(item, (str, int, float)):
            out[name] = str(item)
    return out


def setting(conf: Mapping[str, str], keys: tuple[str, ...]) -> tuple[str, str] | None:
    """(key, value) of the first of ``keys`` set, as Flink resolves a key and its fallbacks."""
    for key in keys:
        value = conf.get(key)
        if value is not None and value.strip():
            return key, value.strip()
    return None


def kubernetes_ha(conf: Mapping[str, str]) -> bool:
    """Kubernetes HA: ``kubernetes`` in any case (Flink upper-cases the mode) or its factory."""
    found = setting(conf, HA_TYPE)
    return found is not None and (found[1].upper() == "KUBERNETES" or found[1] == K8S_HA_FACTORY)


_UNITS = {
    "ns": 1e-9,
    "nano": 1e-9,
    "nanos": 1e-9,
    "nanosecond": 1e-9,
    "nanoseconds": 1e-9,
    "µs": 1e-6,
    "micro": 1e-6,
    "micros": 1e-6,
    "microsecond": 1e-6,
    "microseconds": 1e-6,
    "ms": 1e-3,
    "milli": 1e-3,
    "millis": 1e-3,
    "millisecond": 1e-3,
    "milliseconds": 1e-3,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}


def seconds(value: str) -> float | None:
    """A Flink duration (TimeUtils.parseDuration: ``<number> [unit]`` with exactly its unit
    labels, milliseconds without a unit, or ISO-8601 ``PT...``) in seconds; None when Flink
    would not parse it (or, for a negative ISO duration, would not take it as an interval)."""
    raw = value.strip()
    iso = re.fullmatch(
        r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", raw, re.IGNORECASE
    )
    if iso and raw.upper() not in ("P", "PT"):
        d, h, m, s = (float(g) if g else 0.0 for g in iso.groups())
        return d * 86400 + h * 3600 + m * 60 + s
    match = re.fullmatch(r"(\d+)\s*([a-zµ]*)", raw.lower())
    if not match:
        return None
    unit = match.group(2) or "ms"
    return int(match.group(1)) * _UNITS[unit] if unit in _UNITS else None


# --------------------------------------------------------------------------- pod templates


def template_value(dep: Resource, component: str, *path: str) -> Any:
    """``path`` in the component's (``jobManager``/``taskManager``) pod template, else in the
    common ``spec.podTemplate`` (a component's list replaces the common one)."""
    own = dig(dep.props, "spec", component, "podTemplate", *path)
    return own if own is not None else dig(dep.props, "spec", "podTemplate", *path)


def taskmanager_labels(dep: Resource) -> dict[str, str]:
    """The labels a TaskManager pod gets: the templates' (common, then the TaskManager's), then
    Flink's own, which win."""
    labels = str_map(dig(dep.props, "spec", "podTemplate", "metadata", "labels"))
    own = dig(dep.props, "spec", "taskManager", "podTemplate", "metadata", "labels")
    labels.update(str_map(own))
    return {**labels, "app": name_of(dep), **TASKMANAGER_LABELS}


def selects(selector: Any, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector: a missing one selects nothing, an empty one everything."""
    if not isinstance(selector, Mapping):
        return False
    if any(labels.get(k) != v for k, v in str_map(dig(selector, "matchLabels")).items()):
        return False
    for expr in items(dig(selector, "matchExpressions")):
        key, op = text(dig(expr, "key")), text(dig(expr, "operator"))
        values = [v for v in items(dig(expr, "values")) if isinstance(v, str)]
        value = labels.get(key) if key is not None else None
        present = key is not None and key in labels
        if (
            (op == "In" and value not in values)
            or (op == "NotIn" and present and value in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
            or op not in ("In", "NotIn", "Exists", "DoesNotExist")
        ):
            return False
    return True


# --------------------------------------------------------------------------- the SQL script


@dataclass
class Table:
    name: str
    options: dict[str, str]


@dataclass
class Script:
    tables: dict[str, Table] = field(default_factory=dict)
    inserts: list[str] = field(default_factory=list)  # INSERT INTO targets, in order
    # SET key value / RESET key (value None) / RESET (key "" and value None), in order
    settings: list[tuple[str, str | None]] = field(default_factory=list)
    # /*+ OPTIONS(...) */ hints on table references: the table referenced and the options the
    # hint overrides for that query, in order
    hints: list[Table] = field(default_factory=list)


@dataclass
class SqlSource:
    """Where a job's SQL comes from: the ConfigMap and its script, or why it cannot be read
    (``jar``: the job runs no rtdi SQL script; its topics are decided by code)."""

    configmap: Resource | None = None
    script: Script | None = None
    problem: str | None = None
    jar: bool = False


def sql_file(dep: Resource) -> str | None:
    """The runner's ``--sql-file`` argument, if the job has one."""
    args = [a for a in items(job(dep).get("args")) if isinstance(a, str)]
    for i, arg in enumerate(args):
        if arg == "--sql-file" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--sql-file="):
            return arg.split("=", 1)[1]
    return None


def sql_script(view: StackView, dep: Resource) -> SqlSource:
    path = sql_file(dep)
    if path is None:
        return SqlSource(jar=True, problem="runs no SQL script (no --sql-file argument)")
    containers = items(template_value(dep, "jobManager", "spec", "containers"))
    main = next((c for c in containers if dig(c, "name") == MAIN_CONTAINER), None)
    mounts = [m for m in items(dig(main, "volumeMounts")) if text(dig(m, "mountPath"))]
    best = None
    for m in mounts:
        root = str(dig(m, "mountPath")).rstrip("/")
        inside = path == root or path.startswith(root + "/")
        if inside and (best is None or len(root) > len(str(dig(best, "mountPath")).rstrip("/"))):
            best = m
    if best is None:
        return SqlSource(problem=f"no volume of {MAIN_CONTAINER} is mounted at {path}")
    rest = path[len(str(dig(best, "mountPath")).rstrip("/")) :].lstrip("/")
    sub = text(dig(best, "subPath"))
    rest = f"{sub.rstrip('/')}/{rest}".strip("/") if sub else rest
    volumes = items(template_value(dep, "jobManager", "spec", "volumes"))
    volume = next((v for v in volumes if dig(v, "name") == dig(best, "name")), None)
    cm_name = text(dig(volume, "configMap", "name"))
    if cm_name is None:
        return SqlSource(problem=f"{path} is not on a ConfigMap volume")
    key = rest
    mapped = items(dig(volume, "configMap", "items"))
    if mapped:
        key = next((str(dig(i, "key")) for i in mapped if dig(i, "path") == rest), "")
    cm = next(
        (
            c
            for c in view.of_kind("core", "ConfigMap")
            if c.k8s_name == cm_name and c.k8s_namespace == dep.k8s_namespace
        ),
        None,
    )
    if cm is None:
        return SqlSource(problem=f"ConfigMap {cm_name} (mounted for {path}) is not in this stack")
    body = text(dig(cm.props, "data", key)) if key else None
    if body is None:
        return SqlSource(cm, problem=f"ConfigMap {cm_name} has no key {key or rest!r} ({path})")
    try:
        return SqlSource(cm, parse_script(body))
    except SqlError as exc:
        return SqlSource(cm, problem=f"{path} in ConfigMap {cm_name}: {exc}")


class SqlError(ValueError):
    """A script the rule cannot read as Flink SQL (nor could Flink)."""


_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<hint>/\*\+.*?\*/)|(?P<comment>--[^\n]*|/\*.*?\*/)|(?P<str>'(?:[^']|'')*')
    |(?P<bq>`(?:[^`]|``)*`)|(?P<dq>"(?:[^"]|"")*")|(?P<word>[A-Za-z_][A-Za-z_0-9$]*)
    |(?P<num>\d+(?:\.\d+)?)|(?P<open>/\*|'|`|")|(?P<punct>.)""",
    re.S | re.X,
)

Token = tuple[str, str]


def tokens(sql: str) -> Iterator[Token]:
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "punct"
        value = match.group()
        if kind in ("ws", "comment"):
            continue
        if kind == "open":
            raise SqlError(f"unclosed {value} at offset {match.start()}")
        if kind == "hint":
            value = value[3:-2]
        elif kind == "str":
            value = value[1:-1].replace("''", "'")
        elif kind in ("bq", "dq"):
            value = value[1:-1].replace(value[0] * 2, value[0])
        yield kind, value


def statements(sql: str) -> list[list[Token]]:
    out: list[list[Token]] = [[]]
    for tok in tokens(sql):
        if tok == ("punct", ";"):
            out.append([])
        else:
            out[-1].append(tok)
    return [s for s in out if s]


def _is(tok: Token | None, *words: str) -> bool:
    return tok is not None and tok[0] == "word" and tok[1].upper() in words


def _name(stmt: list[Token], i: int) -> tuple[str | None, int]:
    """A possibly qualified identifier at ``i``: its last part and the index after it."""
    last = None
    while i < len(stmt) and stmt[i][0] in ("word", "bq", "dq"):
        last = stmt[i][1]
        i += 1
        if i < len(stmt) and stmt[i] == ("punct", "."):
            i += 1
        else:
            break
    return last, i


def _closing(stmt: list[Token], i: int) -> int:
    """The index of the ``)`` matching the ``(`` at ``i``."""
    depth = 0
    for j in range(i, len(stmt)):
        if stmt[j] == ("punct", "("):
            depth += 1
        elif stmt[j] == ("punct", ")"):
            depth -= 1
            if depth == 0:
                return j
    raise SqlError("unbalanced parentheses")


def _options(stmt: list[Token], i: int) -> dict[str, str]:
    """``( 'k' = 'v', ... )`` starting at the ``(`` at ``i``."""
    end = _closing(stmt, i)
    body = stmt[i + 1 : end]
    out: dict[str, str] = {}
    j = 0
    while j < len(body):
        if (
            j + 2 < len(body)
            and body[j][0] == "str"
            and body[j + 1] == ("punct", "=")
            and body[j + 2][0] == "str"
        ):
            out[body[j][1]] = body[j + 2][1]
            j += 3
            if j < len(body) and body[j] != ("punct", ","):
                raise SqlError(f"expected ',' between table options, found {body[j][1]!r}")
            j += 1
        else:
            raise SqlError(f"a table option must be 'key' = 'value', found {body[j][1]!r}")
    return out


def parse_script(sql: str) -> Script:
    """The tables (with the options Flink's catalog ends up holding for them), INSERT targets,
    SET/RESET and OPTIONS hints of a script."""
    script = Script()
    for raw in statements(sql):
        script.hints.extend(_hints(raw))
        stmt = [t for t in raw if t[0] != "hint"]
        if not stmt:
            continue
        first = stmt[0]
        if _is(first, "SET") and len(stmt) >= 4 and stmt[1][0] == "str" and stmt[3][0] == "str":
            script.settings.append((stmt[1][1], stmt[3][1]))
        elif _is(first, "RESET"):
            script.settings.append((stmt[1][1] if len(stmt) > 1 else "", None))
        elif _is(first, "CREATE"):
            table = _create_table(stmt, script)
            if table is not None:
                script.tables[table.name] = table
        elif _is(first, "ALTER") and _is(_at(stmt, 1), "TABLE"):
            _alter_table(stmt, script)
        elif _is(first, "INSERT") and len(stmt) > 2 and _is(stmt[1], "INTO", "OVERWRITE"):
            target, _ = _name(stmt, 2)
            if target:
                script.inserts.append(target)
    return script


def _at(stmt: list[Token], i: int) -> Token | None:
    return stmt[i] if i < len(stmt) else None


def _create_table(stmt: list[Token], script: Script) -> Table | None:
    """A ``CREATE [TEMPORARY] TABLE`` as the catalog holds it; None for other CREATEs (views,
    functions, catalogs), which name no table options."""
    i = 1
    while i < len(stmt) and _is(stmt[i], "TEMPORARY", "OR", "REPLACE"):
        i += 1
    if not _is(_at(stmt, i), "TABLE"):
        return None
    i += 1
    if _is(_at(stmt, i), "IF"):
        i += 3  # IF NOT EXISTS
    name, i = _name(stmt, i)
    if name is None:
        raise SqlError("CREATE TABLE without a table name")
    options: dict[str, str] = {}
    like: tuple[str, bool] | None = None
    depth = 0
    j = i
    while j < len(stmt):
        tok = stmt[j]
        if tok == ("punct", "("):
            depth += 1
        elif tok == ("punct", ")"):
            depth -= 1
        elif depth == 0 and _is(tok, "WITH") and _at(stmt, j + 1) == ("punct", "("):
            options = _options(stmt, j + 1)
            j = _closing(stmt, j + 1)
        elif depth == 0 and _is(tok, "LIKE"):
            like, j = _like(stmt, j + 1)
            continue
        elif depth == 0 and _is(tok, "AS"):
            break  # CREATE TABLE ... AS SELECT: the query follows, its LIKEs are not the table's
        j += 1
    if like is not None:
        source = script.tables.get(like[0])
        if source is None:
            raise SqlError(
                f"CREATE TABLE {name} ... LIKE {like[0]}: the script creates no table {like[0]} "
                "before it, so the options it inherits are unknown"
            )
        if like[1]:
            options = {**source.options, **options}
    return Table(name, options)


def _like(stmt: list[Token], i: int) -> tuple[tuple[str, bool], int]:
    """``LIKE source [(like options)]`` at ``i`` (after LIKE): (source, whether its options are
    inherited), and the index after it. Flink's default is ``INCLUDING ALL OVERWRITING OPTIONS``;
    an ``OPTIONS`` strategy wins over ``ALL``; only ``EXCLUDING`` drops them."""
    source, i = _name(stmt, i)
    if source is None:
        raise SqlError("LIKE without a source table")
    strategy: dict[str, str] = {}
    if _at(stmt, i) == ("punct", "("):
        end = _closing(stmt, i)
        words = [t[1].upper() for t in stmt[i + 1 : end] if t[0] == "word"]
        for verb, what in zip(words[::2], words[1::2], strict=False):
            strategy[what] = verb
        i = end + 1
    verb = strategy.get("OPTIONS", strategy.get("ALL", "INCLUDING"))
    return (source, verb != "EXCLUDING"), i


def _alter_table(stmt: list[Token], script: Script) -> None:
    """``ALTER TABLE t SET (...)``, ``RESET ('k', ...)`` and ``RENAME TO n`` change what the
    catalog holds for a table the script created; other ALTERs change no option."""
    i = 2
    if _is(_at(stmt, i), "IF"):
        i += 2  # IF EXISTS
    name, i = _name(stmt, i)
    table = script.tables.get(name) if name else None
    if table is None:
        return
    if _is(_at(stmt, i), "SET") and _at(stmt, i + 1) == ("punct", "("):
        table.options.update(_options(stmt, i + 1))
    elif _is(_at(stmt, i), "RESET") and _at(stmt, i + 1) == ("punct", "("):
        for tok in stmt[i + 2 : _closing(stmt, i + 1)]:
            if tok[0] == "str":
                table.options.pop(tok[1], None)
    elif _is(_at(stmt, i), "RENAME") and _is(_at(stmt, i + 1), "TO"):
        new, _ = _name(stmt, i + 2)
        if new:
            del script.tables[table.name]
            script.tables[new] = Table(new, table.options)


def _hints(stmt: list[Token]) -> list[Table]:
    """The OPTIONS hints of a statement: a hint right after a table name (``FROM t /*+ ... */``,
    ``INSERT INTO t /*+ ... */``), not a query hint after SELECT."""
    found = []
    for j, tok in enumerate(stmt):
        before = stmt[j - 1] if j else None
        if tok[0] != "hint" or before is None or before[0] not in ("word", "bq", "dq"):
            continue
        if _is(before, "SELECT"):
            continue
        body = list(tokens(tok[1]))
        k = 0
        while k < len(body):
            if _is(body[k], "OPTIONS") and _at(body, k + 1) == ("punct", "("):
                found.append(Table(before[1], _options(body, k + 1)))
                k = _closing(body, k + 1) + 1
            elif body[k] == ("punct", "("):
                k = _closing(body, k) + 1
            else:
                k += 1
    return found


def kafka_topics(table: Table) -> tuple[list[str], str | None]:
    """A Kafka table's topic list (``topic``, ``;``-separated) and its ``topic-pattern``."""
    topics = [t.strip() for t in table.options.get("topic", "").split(";") if t.strip()]
    pattern = table.options.get("topic-pattern")
    return topics, pattern


def is_kafka(table: Table) -> bool:
    return table.options.get("connector", "").lower() in ("kafka", "upsert-kafka")


def transactional(table: Table) -> bool:
    """A Kafka sink that writes in transactions committed on checkpoints."""
    guarantee = table.options.get("sink.delivery-guarantee") or table.options.get(
        "sink.semantic", ""
    )
    return is_kafka(table) and guarantee.lower().replace("_", "-") == "exactly-once"


# --------------------------------------------------------------------------- storage URIs

S3_SCHEMES = ("s3", "s3a", "s3p", "s3n")


@dataclass(frozen=True)
class Location:
    """A state URI as a store: ``family`` s3/gs/hdfs, ``authority`` the bucket or namenode."""

    family: str
    authority: str
    path: str  # "/"-prefixed, "/" at least

    def under(self, root: Location) -> bool:
        if (self.family, self.authority) != (root.family, root.authority):
            return False
        prefix = root.path.rstrip("/")
        return not prefix or self.path == prefix or self.path.startswith(prefix + "/")

    def __str__(self) -> str:
        return f"{self.family}://{self.authority}{self.path}"


def location_of(uri: str) -> Location | None:
    """``s3p://b/k`` -> (s3, b, /k); gs and hdfs likewise; None for other schemes or no scheme."""
    match = re.fullmatch(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(/.*)?", uri.strip())
    if not match:
        return None
    scheme = match.group(1).lower()
    family = "s3" if scheme in S3_SCHEMES else scheme
    if family not in ("s3", "gs", "hdfs") or not match.group(2):
        return None
    authority = match.group(2).lower() if family == "hdfs" else match.group(2)
    return Location(family, authority, match.group(3) or "/")


def outside_region(view: StackView, region: str | None, uri: str) -> str | None:
    """Why ``uri`` is not in a store of ``region``; None when it is.

    Which stores are the region's is read from what decides it:

    * a cloud bucket (S3 ``bucket``, GCS ``name``) declared by a stack is that region's only if
      its location (its own region or its provider's, as `bucket-colocated-with-cluster` reads
      it) is ``region``; a bucket another checked stack declares is that stack's region's;
    * a store no stack declares as a resource (on-prem HDFS, or a site's S3-compatible bucket
      shared by regions under per-region prefixes) is the region's when the URI lies under one
      of the object-store roots the stack is built with (`store_roots`); a prefix of another
      region of the same bucket is not.

    One implementation for every rule that places files (Flink state and files, Pinot's deep
    store, the query engine's archive tables), so they cannot disagree on what is in region.
    """
    loc = location_of(uri)
    if loc is None:
        return "is not an s3/s3a/s3p, gs or hdfs URI with a bucket or namenode"
    if region is None:
        return "cannot be placed: the stack's region is unknown (no region output)"
    for stack in [view, *(p for p in view.peers if p is not view)]:
        for bucket in stack.of_type(*S3_BUCKETS, GCS_BUCKET):
            family = "gs" if bucket.type == GCS_BUCKET else "s3"
            name = text(bucket.props.get("name" if family == "gs" else "bucket"))
            if (family, name) != (loc.family, loc.authority):
                continue
            where = location(bucket)
            if stack is not view:
                return f"is in bucket {name} of stack {stack.stack}, not of region {region}"
            if where is None:
                return f"is in bucket {name}, whose region is unknown"
            if f"{where[0]}-{where[1]}" != region:
                return f"is in bucket {name} in {where[0]} {where[1]}, not in region {region}"
            return None
    declared = {
        "gs" if b.type == GCS_BUCKET else "s3" for b in view.of_type(*S3_BUCKETS, GCS_BUCKET)
    }
    if loc.family not in declared and any(loc.under(root) for root in store_roots(view)):
        return None
    for peer in view.peers:
        if peer is not view and any(loc.under(root) for root in store_roots(peer)):
            return f"is in the object store of stack {peer.stack}, not of region {region}"
    return f"is in no bucket or object store of region {region}"


def store_roots(view: StackView) -> list[Location]:
    """The stack's object-store roots (its ``buckets`` output: the ``rtdi:objectStore`` the whole
    region's storage is derived from). They vouch for a store only where the stack declares no
    bucket of that kind (on-prem): a cloud stack's buckets are resources."""
    buckets = output(view, "buckets")
    if not isinstance(buckets, Mapping):
        return []
    roots = [location_of(v) for v in buckets.values() if isinstance(v, str)]
    return [r for r in roots if r is not None]


def store_of(view: StackView, purpose: str) -> str:
    """The stack's store for ``purpose`` (``flink-state``, ``archive``) as its ``buckets`` output
    names it, else all its roots: what a violation tells the reader to use instead."""
    buckets = output(view, "buckets")
    if isinstance(buckets, Mapping) and isinstance(buckets.get(purpose), str):
        return str(buckets[purpose])
    return ", ".join(str(r) for r in store_roots(view)) or "none found"


def replicas(dep: Resource) -> int:
    value = dig(dep.props, "spec", "jobManager", "replicas")
    return 1 if value is None else as_int(value) or 0


class DeploymentRule(Rule):
    """A rule judged one FlinkDeployment at a time: `deployment` looks at one, and a deployment
    whose fields cannot be read is reported against it, not the whole stack (`ctx.guard`)."""

    def check(self, ctx: Context) -> None:
        view = ctx.view
        for dep in deployments(view):
            with ctx.guard(dep):
                self.deployment(ctx, view, dep)

    def deployment(self, ctx: Context, view: StackView, dep: Resource) -> None:
        raise NotImplementedError
