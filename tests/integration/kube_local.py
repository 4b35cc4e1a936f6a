"""A real Kubernetes API server on loopback (../shared/kubernetes) and ways to compare with it.

`start()` runs ../shared/kubernetes/start-apiserver.sh (etcd from Debian's etcd-server, the
kube-apiserver, a kubeconfig with the contexts `local` and `dc1-prod`) on free ports, so a process
left over from an earlier run cannot answer in its place. No controller-manager, scheduler or
kubelet runs: objects are validated and stored, nothing reconciles them. `NamespaceFinalizer`
stands in for the namespace controller's last step, which a deletion needs.

`subset_differences()` is the comparison the test makes: every field the offline plan declares
must be on the live object with the same value; the server's additions (defaults, status,
managed fields, Pulumi's annotations) are not differences.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from plantools import SHARED

KUBE = SHARED / "kubernetes"
START = KUBE / "start-apiserver.sh"
PKI_MAX_AGE = 7 * 86400  # seconds; start-apiserver.sh's certificates expire after 30 days
SECRET = "[secret]"  # how the offline plan shows a secret value (infra/plan/engine.py)


def require_kube(*needed: Path, env: dict | None = None) -> Path:
    """The start script when it, etcd and ``needed`` are there; otherwise skip (a user's clone)
    or fail (CI)."""
    env = os.environ if env is None else env
    problem = None
    missing = [p for p in needed if not p.exists()]
    if not START.is_file():
        problem = f"{KUBE} is missing (the API server, kubectl and the Kubernetes provider)"
    elif missing:
        problem = f"{missing[0]} is missing"
    elif shutil.which("etcd") is None:
        problem = "`etcd` is not on PATH: `apt-get install -y etcd-server` (make test does it)"
    if problem is None:
        return START
    if env.get("CI"):
        pytest.fail(f"{problem}, but CI is set: CI must run the deployment test", pytrace=False)
    pytest.skip(problem)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_etcd_port() -> int:
    """etcd takes two ports: the client one and the next (peers)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


@dataclass
class ApiServer:
    """A started API server: its folder, ports and the environment to reach it."""

    folder: Path
    ports: dict[str, str]
    kubeconfig: Path
    bin: Path

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` with KUBECONFIG and kubectl + the Pulumi provider first on PATH."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True):
        proc = subprocess.run(
            [str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def get(self, identities: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
        """The live objects of ``identities`` (apiVersion, kind, metadata.name/namespace), by
        identity; one kubectl call, missing objects absent from the result."""
        if not identities:
            return {}
        doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": identities})
        out = self.kubectl("get", "-f", "-", "-o", "json", "--ignore-not-found", stdin=doc)
        if not out.stdout.strip():
            return {}
        found = json.loads(out.stdout)
        items = found["items"] if found.get("kind") == "List" else [found]
        return {identity(o): o for o in items}

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(START), str(self.folder), "stop"],
            env={**os.environ, **self.ports},
            check=False,
            timeout=60,
        )


def start(folder: Path) -> ApiServer:
    """etcd + the API server on free loopback ports, their state in ``folder``.

    The binaries stay unpacked in ``folder/bin`` between runs; etcd's data does not: a process
    an earlier run left (its PID in ``folder``) is stopped and every run starts from no objects.
    """
    script = require_kube()
    folder.mkdir(parents=True, exist_ok=True)
    for pid_file in folder.glob("*.pid"):
        _stop_pid(pid_file)
    shutil.rmtree(folder / "etcd", ignore_errors=True)
    ca = folder / "pki" / "ca.crt"  # the script makes certificates valid 30 days, once
    if ca.is_file() and time.time() - ca.stat().st_mtime > PKI_MAX_AGE:
        shutil.rmtree(folder / "pki")
    ports = {"ETCD_PORT": str(free_etcd_port()), "APISERVER_PORT": str(free_port())}
    proc = subprocess.run(
        ["bash", str(script), str(folder)],
        env={**os.environ, **ports},
        capture_output=True,
        text=True,
        timeout=180,
    )
    server = ApiServer(folder, ports, folder / "kubeconfig", folder / "bin")
    if proc.returncode != 0:
        server.stop()
        raise AssertionError(f"start-apiserver.sh failed:\n{proc.stdout}\n{proc.stderr}")
    return server


def _stop_pid(pid_file: Path) -> None:
    """Stop the process a previous run started (its PID written by start-apiserver.sh)."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):  # etcd must release its data folder before it is removed
            time.sleep(0.1)
            os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError):
        pass
    pid_file.unlink(missing_ok=True)


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata", {})
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"])


def identity_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields that name an object, as `kubectl get -f` reads them."""
    meta = {"name": obj["metadata"]["name"]}
    if obj["metadata"].get("namespace"):
        meta["namespace"] = obj["metadata"]["namespace"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta}


# How `pulumi stack export` writes a secret value: {SIG: SECRET_SIG, "ciphertext": ...}.
STATE_SIG = (rpc._special_sig_key, rpc._special_secret_sig)


def is_state_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(STATE_SIG[0]) == STATE_SIG[1]


def leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    return [value]


def subset_differences(planned: Any, live: Any, where: str = "") -> list[str]:
    """Where ``live`` lacks or differs from what ``planned`` declares, one line each.

    Maps: every planned key must be live (extra live keys are the server's). Lists: the same
    length, item by item (the server may default fields inside items). A planned `[secret]`
    (the plan masks secret values) only needs the key to exist.
    """
    if planned == SECRET:
        return [] if live is not None else [f"{where}: planned (secret), not live"]
    if is_state_secret(live):  # Pulumi's state keeps a secret encrypted: the plan must mask it
        if all(leaf == SECRET for leaf in leaves(planned)):
            return []
        return [f"{where}: a secret in the state, planned {json.dumps(planned)[:200]}"]
    if isinstance(planned, dict):
        if not isinstance(live, dict):
            return [f"{where}: planned a map, live {json.dumps(live)[:200]}"]
        out = []
        for key, value in planned.items():
            if key not in live:
                out.append(f"{where}.{key}: planned {json.dumps(value)[:200]}, not live")
            else:
                out.extend(subset_differences(value, live[key], f"{where}.{key}"))
        return out
    if isinstance(planned, list):
        if not isinstance(live, list) or len(live) != len(planned):
            return [f"{where}: planned {json.dumps(planned)[:200]}, live {json.dumps(live)[:200]}"]
        out = []
        for i, (p, v) in enumerate(zip(planned, live, strict=True)):
            out.extend(subset_differences(p, v, f"{where}[{i}]"))
        return out
    if planned != live or type(planned) is not type(live):
        return [f"{where}: planned {json.dumps(planned)[:200]}, live {json.dumps(live)[:200]}"]
    return []


class Finalizers:
    """Completes deletions as the garbage collector and the namespace controller would.

    Without a controller-manager, nothing removes finalizers: the Pulumi provider deletes every
    object with foreground propagation (the `foregroundDeletion` finalizer, which the garbage
    collector removes once the object has no dependents) and a Namespace keeps its `kubernetes`
    finalizer (which the namespace controller removes once the namespace is empty), so
    `pulumi destroy` would wait for them until its timeout. Nothing here sets owner references
    (no controller runs), so no object has dependents; and unlike the real namespace controller
    this one deletes nothing left inside a namespace, so the test's check that every object is
    gone still catches anything `pulumi destroy` left behind. Runs in a thread while
    `pulumi destroy` does, over ``watched`` (identities) and every namespace; ``completed``
    lists what it finalized as `Kind/name`.
    """

    def __init__(self, server: ApiServer, watched: list[dict[str, Any]], interval: float = 0.5):
        self.server = server
        self.watched = watched
        self.interval = interval
        self.completed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Finalizers:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                live = list(self.server.get(self.watched).values())
                namespaces = self.server.kubectl("get", "namespaces", "-o", "json").stdout
            except AssertionError:  # a kind whose CRD was just deleted: next round
                continue
            for obj in [*live, *json.loads(namespaces)["items"]]:
                if obj["metadata"].get("deletionTimestamp"):
                    self._complete(obj)

    def _complete(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        shown = f"{obj['kind']}/{meta['name']}"
        finalizers = meta.get("finalizers") or []
        if "foregroundDeletion" in finalizers:
            rest = [f for f in finalizers if f != "foregroundDeletion"]
            done = self.server.kubectl(
                "patch",
                "-f",
                "-",
                "--type",
                "merge",
                "-p",
                json.dumps({"metadata": {"finalizers": rest}}),
                stdin=json.dumps(identity_of(obj)),
                check=False,
            )
        elif obj["kind"] == "Namespace" and obj.get("spec", {}).get("finalizers"):
            obj["spec"]["finalizers"] = []
            done = self.server.kubectl(
                "replace",
                "--raw",
                f"/api/v1/namespaces/{meta['name']}/finalize",
                "-f",
                "-",
                stdin=json.dumps(obj),
                check=False,
            )
        else:
            return
        if done.returncode == 0 and shown not in self.completed:
            self.completed.append(shown)
