"""The on-prem archive's expiry job as rtdi plans it, run against a real HDFS.

The CronJob of onprem-dc1's plan (its script from the ConfigMap, its arguments, its env and its
core-site.xml; only the namenode's address rewritten to the session's loopback HDFS) runs
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
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hdfs_local
from test_flink_planned import loopback_core_site

pytestmark = pytest.mark.integration

STACK = "onprem-dc1"
APP = "archive-expiry"
CRONJOB = "kubernetes:batch/v1:CronJob"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
NAMENODE = "hdfs://namenode.dc1.acme.internal:8020"
WRITER = "flink"  # the Flink images' user: what the archive job writes as
OTHER = "hadoop"  # the Hadoop image's own user


def planned(plans) -> tuple[str, list[str], dict[str, str], str]:
    """(script, args, env, core-site.xml) of the planned expiry CronJob."""
    plan = plans[STACK]
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
    env = {e["name"]: e["value"] for e in c["env"]}
    site = by_path[env["HADOOP_CONF_DIR"]]["core-site.xml"]
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


def test_planned_expiry_deletes_exactly_the_expired_hours_on_hdfs(hdfs, plans, tmp_path):
    started = time.monotonic()
    script_text, args, env, site = planned(plans)
    (root, *pairs) = args  # HDFS: no -D options, the core-site.xml names the namenode
    retention = {p.rsplit("=", 1)[0]: int(p.rsplit("=", 1)[1]) for p in pairs}
    assert root.startswith(f"{NAMENODE}/") and env["HADOOP_USER_NAME"] == WRITER
    root = hdfs.uri + root[len(NAMENODE) :]
    root_path = root[len(hdfs.uri) :]
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "core-site.xml").write_text(loopback_core_site(site, hdfs.uri))
    script = tmp_path / "expire.sh"
    script.write_text(script_text)
    shell = Shell(hdfs_local.hadoop_command(hdfs_local.require_hadoop(), tmp_path / "bin"), conf)

    # Two topics the job keeps for their class's days, one it was given no retention for.
    a, b = f"{STACK}.trips/", "aws-us-east-1.orders/"
    kept_topic = f"{STACK}.unretained/"
    assert a in retention and b in retention and kept_topic not in retention
    if datetime.now(UTC).minute >= 58:  # the script's hour must be the layout's
        time.sleep(180)
    now = datetime.now(UTC)
    edge = {t: hour(now - timedelta(days=retention[t])) for t in (a, b)}
    # What the archive job would have written: partitions (each with a part file) by topic.
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
    dirs, files = [], []
    for topic in expired:
        for t in {*expired[topic], *alive[topic]}:
            dirs.append(f"{topic}{partition(t)}/")
            files.append(f"{topic}{partition(t)}/part-{t:%H}-0-0")
    notes_day = f"dt={edge[a] - timedelta(days=5, hours=1):%Y-%m-%d}"
    # Not partitions: never touched, and a day holding one stays.
    others = [f"{a}{notes_day}/notes/", f"{a}misc/", f"{a}dt=2001-13-01/hr=00/", f"{a}dt=latest/"]
    file_like_hour = f"{a}dt={edge[a] - timedelta(days=9):%Y-%m-%d}/hr=07"
    dirs += [*others, file_like_hour.rsplit("/", 1)[0] + "/"]
    # Every path rtdi's layout has, and its parents.
    layout = {*dirs, *files, file_like_hour}
    layout |= {p[: i + 1] for p in layout for i, ch in enumerate(p) if ch == "/"}

    # The storage team's directory, owned by the archive's writer, who writes the archive.
    shell.fs("-mkdir", "-p", root)
    shell.fs("-chown", WRITER, root)
    shell.fs("-mkdir", "-p", *(f"{root}/{d}" for d in dirs), user=WRITER)
    shell.fs("-touchz", *(f"{root}/{f}" for f in [*files, file_like_hour]), user=WRITER)
    assert walk(hdfs, root_path) == layout
    setup = time.monotonic() - started

    def run(*extra: str, user: str = WRITER) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(script), *extra, root, *pairs],
            env=shell.env(user),
            capture_output=True,
            text=True,
            timeout=600,
        )

    # Expired: the hour directories, and a day directory holding nothing else.
    gone_hours = {f"{t}{partition(x)}/" for t in expired for x in expired[t]}
    days = {h.rsplit("/", 2)[0] + "/" for h in gone_hours}
    whole_days = {d for d in days if children(layout, d) <= gone_hours}
    named = {h for h in gone_hours if not any(h.startswith(d) for d in whole_days)} | whole_days
    gone = {p for p in layout if any(p.startswith(g) for g in named)}
    assert f"{a}{notes_day}/" not in whole_days and len(whole_days) >= 2

    # Another HDFS user may not delete what the archive's writer wrote: nothing goes.
    t0 = time.monotonic()
    other = run(user=OTHER)
    assert other.returncode == 1, other
    assert "Permission denied" in other.stderr
    assert walk(hdfs, root_path) == layout
    # A dry run names exactly what goes, and deletes nothing.
    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    listed = {line.split(f"expire: {root}/", 1)[1] for line in dry.stdout.splitlines()
              if line.startswith("expire: ")}  # fmt: skip
    assert {p.rstrip("/") for p in named} == listed
    assert walk(hdfs, root_path) == layout
    # The planned identity: exactly the expired partitions go.
    t1 = time.monotonic()
    done = run()
    seconds = time.monotonic() - t1
    assert done.returncode == 0, done.stderr
    assert walk(hdfs, root_path) == layout - gone
    assert f"{a}{notes_day}/notes/" in layout - gone
    again = run()
    assert again.returncode == 0 and "nothing has expired" in again.stdout, again
    assert walk(hdfs, root_path) == layout - gone
    print(
        f"\nexpiry on HDFS: layout {setup:.1f} s, {len(named)} paths ({len(gone_hours)} hours) "
        f"of {len(layout)} deleted in {seconds:.1f} s, all runs {time.monotonic() - t0:.1f} s",
        flush=True,
    )
