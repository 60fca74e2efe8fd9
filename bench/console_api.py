"""The console with 1,000 MCPServers: list latency, status-to-browser latency, and its RSS.

    PYTHONPATH=operator:. .venv/bin/python -m bench.console_api [--objects 1000]

A local control plane holds N MCPServers with a Ready status and three tools each. The
console runs as `devserver-operator console` (its own process, so its RSS is its own); a
person is a ServiceAccount holding devserver-viewer in the namespace (token from the
TokenRequest API), so every request pays for the review and permission checks as in a real
cluster. Measured:

- GET /api/v1/mcpservers (every namespace; the shared watch's cache, filtered by a cached
  SelfSubjectAccessReview) and GET /api/v1/namespaces/NS/mcpservers (passed through to the
  API server, as the person);
- from a status patch on the API server to the change arriving on an open SSE stream;
- the console's RSS with 20 open streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    control_plane,
    http_client,
    install_crds,
    load,
    machine,
    memory_mib,
    stop_process,
    summary,
)
from devserver_operator.api import API_VERSION
from devserver_operator.localcluster.processes import free_loopback_port
from devserver_operator.manifests.team_roles import team_cluster_roles

NAMESPACE = "bench"
STREAMS = 20


def status_of(index: int) -> dict[str, Any]:
    now = "2026-01-01T00:00:00Z"
    return {
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Verified", "message": f"server {index}",
             "lastTransitionTime": now, "observedGeneration": 1},
        ],
        "url": f"http://127.0.0.1:9/mcp/{index}",
        "transport": "streamable-http",
        "toolCount": 3,
        "tools": [{"name": n, "description": f"{n} tool"} for n in ("echo", "add", "get_time")],
        "serverInfo": {"name": "bench", "version": "1", "protocolVersion": "2025-06-18"},
    }  # fmt: skip


async def populate(admin: httpx.AsyncClient, objects: int) -> None:
    await admin.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
    base = f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/mcpservers"
    gate = asyncio.Semaphore(16)

    async def one(index: int) -> None:
        name = f"srv-{index:04d}"
        async with gate:
            body = {
                "apiVersion": API_VERSION,
                "kind": "MCPServer",
                "metadata": {"name": name},
                "spec": {"url": f"http://127.0.0.1:9/mcp/{index}"},
            }
            (await admin.post(base, json=body)).raise_for_status()
            (
                await admin.patch(
                    f"{base}/{name}/status",
                    json={"status": status_of(index)},
                    headers={"Content-Type": "application/merge-patch+json"},
                )
            ).raise_for_status()

    await asyncio.gather(*(one(i) for i in range(objects)))


async def viewer_token(admin: httpx.AsyncClient, name: str = "viewer") -> str:
    """The token of a ServiceAccount ``name`` holding devserver-viewer in the namespace."""
    for role in team_cluster_roles():
        path = f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role['metadata']['name']}"
        await admin.patch(
            path,
            params={"fieldManager": "bench", "force": "true"},
            content=json.dumps(role),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
    await admin.post(
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts", json={"metadata": {"name": name}}
    )
    await admin.post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}/rolebindings",
        json={
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "devserver-viewer"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
        },
    )  # fmt: skip
    answer = await admin.post(
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{name}/token",
        json={"spec": {"expirationSeconds": 3600}},
    )
    token: str = answer.json()["status"]["token"]
    return token


async def timed_gets(client: httpx.AsyncClient, path: str, samples: int) -> list[float]:
    found: list[float] = []
    for _ in range(samples):
        started = time.perf_counter()
        response = await client.get(path)
        response.raise_for_status()
        response.json()
        found.append(time.perf_counter() - started)
    return found


async def stream_latencies(
    console: httpx.AsyncClient, admin: httpx.AsyncClient, samples: int
) -> list[float]:
    """Status patch on the API server -> the change on an open SSE stream."""
    arrived: dict[str, float] = {}
    waiting: dict[str, asyncio.Event] = {}

    async def read() -> None:
        async with console.stream("GET", "/api/v1/stream", timeout=None) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    message = ((data.get("object") or {}).get("status") or {}).get("conditions")
                    if message:
                        marker = message[0]["message"]
                        arrived.setdefault(marker, time.perf_counter())
                        if marker in waiting:
                            waiting[marker].set()

    reader = asyncio.create_task(read())
    await asyncio.sleep(1.0)
    found: list[float] = []
    base = f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/mcpservers"
    for index in range(samples):
        marker = f"bench change {index}"
        status = status_of(index)
        status["conditions"][0]["message"] = marker
        waiting[marker] = asyncio.Event()
        started = time.perf_counter()
        await admin.patch(
            f"{base}/srv-{index:04d}/status",
            json={"status": status},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiting[marker].wait(), 5)
        if marker in arrived:
            found.append(arrived[marker] - started)
    reader.cancel()
    return found


async def open_streams(url: str, token: str, count: int) -> list[asyncio.Task[None]]:
    async def hold() -> None:
        async with (
            httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c,
            c.stream("GET", "/api/v1/stream", timeout=None) as response,
        ):
            async for _ in response.aiter_lines():
                pass

    return [asyncio.create_task(hold()) for _ in range(count)]


async def measure(kubeconfig: Path, url: str, process_pid: int, objects: int) -> None:
    async with http_client(kubeconfig) as admin:
        token = await viewer_token(admin)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as console:
            print(f"console lists {await wait_until_listed(console, objects)} MCPServers")
            every = await timed_gets(console, "/api/v1/mcpservers", 50)
            print(summary("GET /api/v1/mcpservers (watch cache, all namespaces)", every))
            views = await timed_gets(console, "/api/v1/views/mcpservers", 20)
            print(summary("GET /api/v1/views/mcpservers", views))
            namespaced = await timed_gets(console, f"/api/v1/namespaces/{NAMESPACE}/mcpservers", 20)
            print(
                summary(f"GET /api/v1/namespaces/{NAMESPACE}/mcpservers (API server)", namespaced)
            )
            latencies = await stream_latencies(console, admin, 100)
            print(summary("status patch -> SSE change", latencies))
            streams = await open_streams(url, token, STREAMS)
            await asyncio.sleep(3)
            rss, peak = memory_mib(process_pid)
            print(f"console RSS with {objects} objects and {STREAMS} open streams: "
                  f"{rss:.1f} MiB (peak {peak:.1f} MiB)")  # fmt: skip
            for stream in streams:
                stream.cancel()


@contextmanager
def console_with_objects(objects: int) -> Iterator[tuple[Path, str, int]]:
    """A local control plane holding ``objects`` MCPServers and `devserver-operator console`
    serving it as a process: (admin kubeconfig, console URL, console pid)."""
    with control_plane(audit=False) as cluster, tempfile.TemporaryDirectory() as work:
        install_crds(cluster.kubeconfig_path)

        async def setup() -> None:
            async with http_client(cluster.kubeconfig_path) as admin:
                await populate(admin, objects)

        started = time.monotonic()
        asyncio.run(setup())
        print(f"created {objects} MCPServers with status in {time.monotonic() - started:.1f}s")
        port = free_loopback_port()
        log = Path(work) / "console.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).parent / "devserver-operator"), "console",
                 "--kubeconfig", str(cluster.kubeconfig_path), "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            yield cluster.kubeconfig_path, f"http://127.0.0.1:{port}", process.pid
        finally:
            stop_process(process)


async def wait_until_listed(console: httpx.AsyncClient, objects: int) -> int:
    """Until the console's watch cache holds ``objects`` MCPServers (at most 120 s)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            items = (await console.get("/api/v1/mcpservers")).json().get("items", [])
        except httpx.HTTPError:
            items = []
        if len(items) >= objects or time.monotonic() > deadline:
            return len(items)
        await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1000)
    args = parser.parse_args()
    print(machine())
    print(load())
    with console_with_objects(args.objects) as (kubeconfig, url, pid):
        asyncio.run(measure(kubeconfig, url, pid, args.objects))


if __name__ == "__main__":
    main()
