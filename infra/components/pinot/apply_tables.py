"""Apply rtdi's Pinot layout to a region's controller: run by the Pinot layer's Job, stdlib only.

The Job mounts the layer's ConfigMap at ``CONFIG_DIR``: ``servers.json`` (which server pool and
replica group each server StatefulSet is), ``schema.<name>.json`` and ``table.<name>.json``
(what `infra.topology.pinot.render_schema` / `render_table` rendered). Every step converges,
so the Job may run any number of times (each change of the ConfigMap runs it again):

1. wait for the controller;
2. tag every server with its pool's tenant tags and put it in its zone's instance pool (Pinot
   servers cannot name their own tags or pool: the controller's instance config holds them);
   servers not up yet are waited for, up to ``SERVER_WAIT_SECONDS``;
3. add or update every schema (``POST /schemas?override=true``: Pinot refuses an incompatible
   change, which fails the Job rather than breaking a table);
4. add every table, or update it when it exists (``POST /tables``, then ``PUT`` on 409).

Not imported by rtdi: the ConfigMap holds this file's text.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

CONFIG_DIR = Path(os.environ.get("RTDI_PINOT_CONFIG", "/etc/rtdi/pinot"))
CONTROLLER = os.environ.get("RTDI_PINOT_CONTROLLER", "http://pinot-controller:9000")
CONTROLLER_WAIT_SECONDS = 900
SERVER_WAIT_SECONDS = 900


def call(method: str, path: str, body: object | None = None) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{CONTROLLER}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def ok(status: int, text: str, what: str) -> None:
    if not 200 <= status < 300:
        sys.exit(f"{what}: HTTP {status}: {text[:2000]}")
    print(f"{what}: done")


def wait_for_controller() -> None:
    deadline = time.monotonic() + CONTROLLER_WAIT_SECONDS
    while True:
        try:
            if call("GET", "/health")[0] == 200:
                return
        except OSError as exc:
            print(f"controller not reachable yet: {exc}")
        if time.monotonic() > deadline:
            sys.exit(f"controller {CONTROLLER} not healthy after {CONTROLLER_WAIT_SECONDS} s")
        time.sleep(10)


def pool_of(instance: str, pools: dict[str, dict]) -> dict | None:
    """The pool entry of a server instance (``Server_<pod>.<service>..._<port>``), by the
    StatefulSet prefix of its pod's host name."""
    host = instance.removeprefix("Server_")
    return next((p for prefix, p in pools.items() if host.startswith(prefix)), None)


def place_servers(servers: dict) -> None:
    """Tags and pools of every server; waits until as many as expected have joined."""
    deadline = time.monotonic() + SERVER_WAIT_SECONDS
    while True:
        status, text = call("GET", "/instances")
        if status != 200:
            ok(status, text, "list instances")
        names = [n for n in json.loads(text).get("instances", []) if n.startswith("Server_")]
        placed = [(n, pool_of(n, servers["pools"])) for n in names]
        known = [(n, p) for n, p in placed if p is not None]
        if len(known) >= servers["expected"] or time.monotonic() > deadline:
            break
        print(f"{len(known)} of {servers['expected']} servers joined; waiting")
        time.sleep(15)
    if len(known) < servers["expected"]:
        print(f"only {len(known)} of {servers['expected']} servers joined; placing those")
    for name, pool in known:
        status, text = call("GET", f"/instances/{urllib.parse.quote(name)}")
        if status != 200:
            ok(status, text, f"read {name}")
        current = json.loads(text)
        tags = sorted(pool["tags"])
        pools = {tag: pool["pool"] for tag in tags}
        if sorted(current.get("tags") or []) == tags and (current.get("pools") or {}) == {
            t: str(p) for t, p in pools.items()
        }:
            print(f"{name}: already {tags} in pool {pool['pool']}")
            continue
        body = {
            "host": current["hostName"],
            "port": int(current["port"]),
            "type": "SERVER",
            "tags": tags,
            "pools": pools,
            "grpcPort": current.get("grpcPort", -1),
            "adminPort": current.get("adminPort", -1),
            "queryServicePort": current.get("queryServicePort", -1),
            "queryMailboxPort": current.get("queryMailboxPort", -1),
            "queriesDisabled": False,
        }
        status, text = call("PUT", f"/instances/{urllib.parse.quote(name)}", body)
        ok(status, text, f"{name}: {tags} in pool {pool['pool']}")


def apply_schemas() -> None:
    for path in sorted(CONFIG_DIR.glob("schema.*.json")):
        schema = json.loads(path.read_text())
        status, text = call("POST", "/schemas?override=true", schema)
        ok(status, text, f"schema {schema['schemaName']}")


def apply_tables() -> None:
    for path in sorted(CONFIG_DIR.glob("table.*.json")):
        table = json.loads(path.read_text())
        what = f"table {table['tableName']} ({table['tableType']})"
        status, text = call("POST", "/tables", table)
        if status == 409:
            name = urllib.parse.quote(table["tableName"])
            status, text = call("PUT", f"/tables/{name}", table)
        ok(status, text, what)


def main() -> None:
    wait_for_controller()
    place_servers(json.loads((CONFIG_DIR / "servers.json").read_text()))
    apply_schemas()
    apply_tables()


if __name__ == "__main__":
    main()
