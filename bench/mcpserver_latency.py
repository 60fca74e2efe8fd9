"""Create-to-children and create-to-Verified latency of MCPServers on the local control plane.

    .venv/bin/python bench/mcpserver_latency.py [--samples 30]

create-to-children: from the create request returning to the operator's Deployment appearing
in a watch. create-to-Verified: a remote MCPServer pointing at a real MCP server (the official
Python SDK, streamable HTTP, on loopback), from create to Ready=True with the tools in status.
Also reports the operator's API requests per create, from the audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    OPERATOR_USER,
    control_plane,
    http_client,
    install_crds,
    machine,
    request_kind,
    running_operator,
    summary,
)
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.localcluster.audit import WRITE_VERBS, answered_requests

API = "/apis/devserver.ecosphere.network/v1alpha1"


async def measure(kubeconfig: Path, samples: int, mcp_url: str, audit_log: Path) -> None:
    async with (
        KubeClient(Credentials.from_kubeconfig(str(kubeconfig)), field_manager="bench") as kube,
        http_client(kubeconfig) as http,
    ):
        await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
        children, verified = [], []
        # One warm-up object: the first reconcile also opens the operator's connections and
        # fills its caches, which is start-up cost, not per-object latency.
        await kube.create(
            _server(
                "warmup",
                {"image": "ghcr.io/example/server:1.0.0", "verification": {"enabled": False}},
            )
        )
        await asyncio.sleep(2)
        audit_start = audit_log.stat().st_size  # noqa: ASYNC240 - a local file, once
        for index in range(samples):
            name = f"w{index}"
            listing = (await http.get("/apis/apps/v1/namespaces/bench/deployments")).json()
            events = _events(
                http,
                "/apis/apps/v1/namespaces/bench/deployments",
                listing["metadata"]["resourceVersion"],
            )
            started = time.monotonic()
            await kube.create(
                _server(
                    name,
                    {"image": "ghcr.io/example/server:1.0.0", "verification": {"enabled": False}},
                )
            )
            async for arrived, event in events:
                if event["object"]["metadata"]["name"] == name:
                    children.append(arrived - started)
                    break
            await events.aclose()
        writes = _operator_writes(audit_log, audit_start)
        for index in range(samples):
            name = f"r{index}"
            listing = (await http.get(f"{API}/namespaces/bench/mcpservers")).json()
            events = _events(
                http, f"{API}/namespaces/bench/mcpservers", listing["metadata"]["resourceVersion"]
            )
            started = time.monotonic()
            await kube.create(_server(name, {"url": mcp_url}))
            async for arrived, event in events:
                body = event["object"]
                ready = [
                    c
                    for c in (body.get("status") or {}).get("conditions", [])
                    if c["type"] == "Ready"
                ]
                if body["metadata"]["name"] == name and ready and ready[0]["status"] == "True":
                    verified.append(arrived - started)
                    break
            await events.aclose()
    print(f"machine: {machine()}")
    print(summary("create-to-children (workload MCPServer -> Deployment)", children))
    print(summary("create-to-Verified (remote MCPServer, real MCP server)", verified))
    print(
        f"operator writes for {samples} workload creates (3 children each): {writes} "
        f"= {sum(writes.values()) / samples:.2f} per create"
    )


def _events(http: Any, path: str, rv: str) -> Any:
    from bench.common import watch_events

    return watch_events(http, path, resource_version=rv)


def _server(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "devserver.ecosphere.network/v1alpha1",
        "kind": "MCPServer",
        "metadata": {"name": name, "namespace": "bench"},
        "spec": spec,
    }


def _operator_writes(audit_log: Path, start: int) -> dict[str, int]:
    kinds = (
        request_kind(event)
        for event in answered_requests(audit_log, start, OPERATOR_USER)
        if event["verb"] in WRITE_VERBS and "/namespaces/bench/" in event["requestURI"]
    )
    return dict(Counter(kinds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.mcp_server_app",
            "--transport",
            "streamable-http",
            "--port",
            str(port),
        ],
        cwd=root,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with control_plane(audit=True) as cluster:
            assert cluster.audit_log_path is not None
            install_crds(cluster.kubeconfig_path)
            operator_kubeconfig = cluster.write_user_kubeconfig(OPERATOR_USER, ["system:masters"])
            with running_operator(operator_kubeconfig, resync_interval=60.0):
                asyncio.run(
                    measure(
                        cluster.kubeconfig_path,
                        args.samples,
                        f"http://127.0.0.1:{port}/mcp",
                        cluster.audit_log_path,
                    )
                )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
