"""The on-prem archive's expiry job as rtdi plans it, run against a real HDFS and a real
S3-compatible server.

HDFS: the CronJob of onprem-dc1's plan (its script from the ConfigMap, its arguments, its env and
its core-site.xml; only the namenode's address rewritten to the session's loopback HDFS) runs
jobs/archive-expiry/expire.sh with `hadoop fs` of HADOOP_VERSION's client (FsShell, through a
`hadoop` wrapper: hdfs_local.hadoop_command). The archive is laid out as the archive job writes
it, by the HDFS user the Flink images run as: hour partitions older and newer than the planned
retention (both hours at its edge), a part file in each, days wholly and partly expired, a
topic the job is given no retention for, and names that are not partitions (a directory beside
the days, one inside a day, a file named like an hour, impossible dates).

- as another HDFS user the job fails and deletes nothing (HDFS refuses: the identity matters);
- with --dry-run it names exactly what expires and deletes nothing;
- with the planned identity exactly the expired partitions disappear, a day with them when
  nothing else is in it, and every other path stays; a second run deletes nothing.

S3: the CronJob an on-prem region on an S3-compatible store gets (its -D options with the
endpoint rewritten to moto's, its root and prefixes, keys in the env as its Secret gives them)
runs over the same layout as objects in moto, through S3A; the dry run and the run delete
exactly the same paths.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import flink_jars
import hdfs_local
import trino_local
from test_flink_planned import loopback_core_site

pytestmark = pytest.mark.integration

STACK = "onprem-dc1"
APP = "archive-expiry"
CRONJOB = "kubernetes:batch/v1:CronJob"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
NAMENODE = "hdfs://namenode.dc1.acme.internal:8020"
WRITER = "flink"  # the Flink images' user: what the archive job writes as
OTHER = "hadoop"  # the Hadoop image's own user


def planned(plan) -> tuple[str, list[str], dict[str, dict], str | None]:
    """(script, args, env by name, core-site.xml or None) of the planned expiry CronJob."""
    (job,) = [r.inputs for r in plan.of_type(CRONJOB) if r.inputs["metadata"]["name"] == APP]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    maps = {
        r.inputs["metadata"]["name"]: r.inputs["data"]
        for r in plan.of_type(CONFIGMAP)
        if r.inputs["metadata"]["namespace"] == APP
    }
    mounted = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    by_path = {m["mountPath"]: maps[mounted[m["name"]]] for m in c["volumeMounts"]
               if m["name"] in mounted}  # fmt: skip
    assert c["command"][0] == "bash"
    directory, _, name = c["command"][1].rpartition("/")
    env = {e["name"]: e for e in c["env"]}
    conf = env.get("HADOOP_CONF_DIR")
    site = by_path[conf["value"]]["core-site.xml"] if conf else None
    return by_path[directory][name], c["args"], env, site


def hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def partition(t: datetime) -> str:
    return f"dt={t:%Y-%m-%d}/hr={t:%H}"


class Shell:
    """`hadoop fs` as the test's own OS user (the HDFS superuser: it started the NameNode) or
    as ``user``."""

    def __init__(self, command: Path, conf: Path):
        self.command, self.conf = command, conf

    def env(self, user: str | None = None, extra: dict[str, str] | None = None) -> dict:
        env = {"PATH": f"{self.command.parent}:/usr/bin:/bin", "HADOOP_CONF_DIR": str(self.conf)}
        if user:
            env["HADOOP_USER_NAME"] = user
        return {**env, **(extra or {})}

    def fs(self, *args: str, user: str | None = None) -> None:
        done = subprocess.run(
            [str(self.command), "fs", *args],
            env=self.env(user),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr


def walk(cluster: hdfs_local.Hdfs, path: str) -> set[str]:
    """Every path under ``path`` (WebHDFS), relative to it; directories end in `/`."""
    found: set[str] = set()
    pending = [""]
    while pending:
        rel = pending.pop()
        status = cluster._webhdfs(f"{path}/{rel}".rstrip("/"), "LISTSTATUS")
        for s in status["FileStatuses"]["FileStatus"]:
            child = f"{rel}{s['pathSuffix']}"
            if s["type"] == "DIRECTORY":
                found.add(f"{child}/")
                pending.append(f"{child}/")
            else:
                found.add(child)
    return found


def children(paths: set[str], directory: str) -> set[str]:
    """The entries directly in ``directory`` (which ends in `/`)."""
    return {
        p
        for p in paths
        if p.startswith(directory) and p != directory and "/" not in p[len(directory) :].rstrip("/")
    }


@dataclass
class Layout:
    """An archive as the archive job writes it (paths relative to the root; directories end in
    `/`), and what the expiry must delete."""

    files: set[str]
    paths: set[str]  # the files and every directory above them
    named: set[str]  # what the script deletes: lone expired hours and wholly expired days
    hours: set[str]  # every expired hour

    def gone(self, paths: set[str]) -> set[str]:
        return {p for p in paths if any(p.startswith(n) for n in self.named)}


def archive_layout(retention: dict[str, int]) -> Layout:
    """Two topics kept for their class's days (the plan's), one given no retention, with hours
    on both sides of the retention's edge, a day wholly and one partly expired, and names that
    are not partitions (never touched; a day holding one stays). Expected from the rule alone:
    an hour goes once it ended `days` ago; a day goes with its hours when nothing else is in it."""
    a, b = f"{STACK}.trips/", "aws-us-east-1.orders/"
    kept_topic = f"{STACK}.unretained/"
    assert a in retention and b in retention and kept_topic not in retention
    if datetime.now(UTC).minute >= 58:  # the script's hour must be the layout's
        time.sleep(180)
    now = datetime.now(UTC)
    edge = {t: hour(now - timedelta(days=retention[t])) for t in (a, b)}
    expired = {
        a: [
            edge[a] - timedelta(hours=1),  # ended exactly `days` ago or a little more
            *(edge[a] - timedelta(days=3, hours=h) for h in range(3)),  # a whole day, 3 hours
            edge[a] - timedelta(days=5, hours=1),
            edge[a] - timedelta(days=5, hours=2),  # a day that also holds `notes/`
        ],
        b: [edge[b] - timedelta(days=1, hours=6)],
        kept_topic: [],
    }
    alive = {
        a: [edge[a], edge[a] + timedelta(hours=2), now - timedelta(days=1), hour(now)],
        b: [edge[b], edge[b] + timedelta(days=2)],
        kept_topic: [edge[a] - timedelta(days=30)],  # old, but no retention was given
    }
    files = {
        f"{topic}{partition(t)}/part-{t:%H}-0-0"
        for topic in expired
        for t in {*expired[topic], *alive[topic]}
    }
    notes_day = f"dt={edge[a] - timedelta(days=5, hours=1):%Y-%m-%d}"
    files |= {
        f"{a}{notes_day}/notes/readme",
        f"{a}misc/readme",
        f"{a}dt=2001-13-01/hr=00/part-0",  # no such month
        f"{a}dt=latest/readme",
        f"{a}dt={edge[a] - timedelta(days=9):%Y-%m-%d}/hr=07",  # a file, not an hour directory
    }
    paths = files | {p[: i + 1] for p in files for i, ch in enumerate(p) if ch == "/"}
    hours = {f"{t}{partition(x)}/" for t in expired for x in expired[t]}
    days = {h.rsplit("/", 2)[0] + "/" for h in hours}
    whole = {d for d in days if children(paths, d) <= hours}
    assert f"{a}{notes_day}/" not in whole and len(whole) >= 2
    named = {h for h in hours if not any(h.startswith(d) for d in whole)} | whole
    return Layout(files, paths, named, hours)


def run_script(script: Path, env: dict[str, str], args: list[str], *extra: str):
    return subprocess.run(
        ["bash", str(script), *extra, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def named_by(dry: subprocess.CompletedProcess, root: str) -> set[str]:
    prefix = f"expire: {root.rstrip('/')}/"
    return {line[len(prefix) :] for line in dry.stdout.splitlines() if line.startswith("expire: ")}


def test_planned_expiry_deletes_exactly_the_expired_hours_on_hdfs(hdfs, plans, tmp_path):
    started = time.monotonic()
    script_text, args, env, site = planned(plans[STACK])
    (root, *pairs) = args  # HDFS: no -D options, the core-site.xml names the namenode
    retention = {p.rsplit("=", 1)[0]: int(p.rsplit("=", 1)[1]) for p in pairs}
    assert root.startswith(f"{NAMENODE}/") and env["HADOOP_USER_NAME"]["value"] == WRITER
    assert site is not None
    root = hdfs.uri + root[len(NAMENODE) :]
    root_path = root[len(hdfs.uri) :]
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "core-site.xml").write_text(loopback_core_site(site, hdfs.uri))
    script = tmp_path / "expire.sh"
    script.write_text(script_text)
    shell = Shell(hdfs_local.hadoop_command(hdfs_local.require_hadoop(), tmp_path / "bin"), conf)
    layout = archive_layout(retention)

    try:
        # The storage team's directory, owned by the archive's writer, who writes the archive.
        shell.fs("-mkdir", "-p", root)
        shell.fs("-chown", WRITER, root)
        parents = {f.rsplit("/", 1)[0] for f in layout.files}
        shell.fs("-mkdir", "-p", *(f"{root}/{d}" for d in sorted(parents)), user=WRITER)
        shell.fs("-touchz", *(f"{root}/{f}" for f in sorted(layout.files)), user=WRITER)
        assert walk(hdfs, root_path) == layout.paths
        setup = time.monotonic() - started

        # Another HDFS user may not delete what the archive's writer wrote: nothing goes.
        t0 = time.monotonic()
        other = run_script(script, shell.env(OTHER), [root, *pairs])
        assert other.returncode == 1, other
        assert "Permission denied" in other.stderr
        assert walk(hdfs, root_path) == layout.paths
        # A dry run names exactly what goes, and deletes nothing.
        dry = run_script(script, shell.env(WRITER), [root, *pairs], "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert named_by(dry, root) == {p.rstrip("/") for p in layout.named}
        assert walk(hdfs, root_path) == layout.paths
        # The planned identity: exactly the expired partitions go.
        t1 = time.monotonic()
        done = run_script(script, shell.env(WRITER), [root, *pairs])
        seconds = time.monotonic() - t1
        assert done.returncode == 0, done.stderr
        left = walk(hdfs, root_path)
        assert left == layout.paths - layout.gone(layout.paths)
        assert any("/notes/" in p for p in left) and not layout.hours & left
        again = run_script(script, shell.env(WRITER), [root, *pairs])
        assert again.returncode == 0 and "nothing has expired" in again.stdout, again
        assert walk(hdfs, root_path) == left
        print(
            f"\nexpiry on HDFS: layout {setup:.1f} s, {len(layout.named)} paths "
            f"({len(layout.hours)} hours) of {len(layout.paths)} deleted in {seconds:.1f} s, "
            f"all runs {time.monotonic() - t0:.1f} s",
            flush=True,
        )
    finally:
        # The HDFS is the session's: the archive job's test writes this very root next.
        shell.fs("-rm", "-r", "-f", "-skipTrash", root)


# --------------------------------------------------------------------------- an S3-compatible store


def _archive_only(stack, topology) -> None:
    """The on-prem target and its archive bucket with the sample's expirations (what
    `regional_stack` asks for), on the S3-compatible store of tests/test_target_onprem.py."""
    from infra.components.flink.archive import expirations
    from infra.components.kafka.flows import federation_registry
    from infra.targets import make_target
    from infra.topology.config import parse_global
    from plantools import sample_config

    model = parse_global(sample_config("global"))
    target = make_target(stack, topology)
    registry = federation_registry(model.topology, model.kafka)
    target.bucket("archive", expirations(target.region.id, model.topology, model.kafka, registry))
    target.finish({})


def s3a_command(bindir: Path) -> Path:
    """`hadoop fs` with S3A: Hadoop 3.3.4's FsShell and S3A (AWS SDK v1) as Flink's own
    s3-fs-hadoop plugin carries them, unshaded, with the logging and commons-cli jars it leaves
    out. Not the image's 3.4 S3A: that one needs the AWS SDK v2, which the registry here does
    not serve (software.amazon.awssdk:s3, s3-transfer-manager); the script's calls (-ls, -rm -r
    -skipTrash, -D options) are the same on both."""
    flink = flink_jars.fetched()
    if flink is None:
        problem = "the Flink jars are not fetched: run `make flink-jars`"
        if os.environ.get("CI"):
            pytest.fail(f"{problem}, but CI is set", pytrace=False)
        pytest.skip(problem)
    (plugin,) = (flink / "plugins" / "s3-fs-hadoop").glob("flink-s3-fs-hadoop-*.jar")
    hadoop = hdfs_local.require_hadoop()
    server = hadoop / "server"
    (cli,) = (hadoop / "cli").glob("commons-cli-*.jar")
    jars = [
        str(plugin),
        *(str(j) for j in sorted(server.glob("slf4j-*.jar"))),
        *(str(j) for j in sorted(server.glob("commons-logging-*.jar"))),
        str(cli),
    ]
    bindir.mkdir(parents=True, exist_ok=True)
    command = bindir / "hadoop"
    command.write_text(
        "#!/bin/sh\n"
        '[ "$1" = fs ] || { echo "hadoop: only fs here, not $1" >&2; exit 2; }\n'
        "shift\n"
        "exec java -Xmx256m -Dorg.slf4j.simpleLogger.defaultLogLevel=warn "
        f'-cp "${{HADOOP_CONF_DIR:?}}:{":".join(jars)}" org.apache.hadoop.fs.FsShell "$@"\n'
    )
    command.chmod(0o755)
    return command


def test_planned_expiry_deletes_exactly_the_expired_hours_on_s3(moto, topology, tmp_path):
    """The same archive on an S3-compatible store (moto), as the CronJob of an on-prem region on
    S3 is planned: its -D options (endpoint rewritten to moto's), root and prefixes, the store's
    keys in the env as its Secret puts them. Objects only, no directory markers, as Flink's S3A
    sink writes them."""
    from test_target_onprem import S3_STORE, s3_config

    from plantools import run_program

    script_text, planned_args, planned_env, site = planned(
        run_program(s3_config(), _archive_only, topology)
    )
    assert site is None  # S3: the endpoint is in the options
    args = list(planned_args)
    endpoint = f"fs.s3a.endpoint={S3_STORE['endpoint']}"
    assert args[:2] == ["-D", endpoint]
    args[1] = f"fs.s3a.endpoint={moto.endpoint}"
    root = args[6]
    pairs = args[7:]
    assert root == f"s3a://{S3_STORE['bucket']}/{STACK}/archive/"
    retention = {p.rsplit("=", 1)[0]: int(p.rsplit("=", 1)[1]) for p in pairs}
    keys = {n for n, e in planned_env.items() if "valueFrom" in e}
    assert keys == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    (conf := tmp_path / "conf").mkdir()
    (conf / "core-site.xml").write_text('<?xml version="1.0"?>\n<configuration/>\n')
    script = tmp_path / "expire.sh"
    script.write_text(script_text)
    command = s3a_command(tmp_path / "bin")
    env = {
        "PATH": f"{command.parent}:/usr/bin:/bin",
        "HADOOP_CONF_DIR": str(conf),
        **{n: e["value"] for n, e in planned_env.items() if "value" in e},
        "AWS_ACCESS_KEY_ID": trino_local.MOTO_KEY[0],
        "AWS_SECRET_ACCESS_KEY": trino_local.MOTO_KEY[1],
    }
    env["AWS_ENDPOINT_URL"] = moto.endpoint
    s3 = moto.client()
    bucket = str(S3_STORE["bucket"])
    s3.create_bucket(Bucket=bucket)
    below = f"{STACK}/archive/"
    layout = archive_layout(retention)
    for f in sorted(layout.files):
        s3.put_object(Bucket=bucket, Key=f"{below}{f}", Body=b"PAR1")

    def objects() -> set[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=below)
        return {o["Key"][len(below) :] for page in pages for o in page.get("Contents", [])}

    assert objects() == layout.files
    dry = run_script(script, env, args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert named_by(dry, root) == {p.rstrip("/") for p in layout.named}
    assert objects() == layout.files
    t0 = time.monotonic()
    done = run_script(script, env, args)
    seconds = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    # Only objects: a deleted day or hour leaves no marker behind, and nothing else goes.
    assert objects() == layout.files - layout.gone(layout.files)
    print(
        f"\nexpiry on S3 (moto): {len(layout.named)} paths deleted in {seconds:.1f} s", flush=True
    )
