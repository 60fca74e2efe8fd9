"""n8n sync throughput: one WorkflowIntegration with 100 workflows, against a real n8n.

    .venv/bin/python bench/n8n_sync.py [--workflows 100] [--rounds 3] [--operator-venv DIR]

A real n8n (the pinned npm package, SQLite, loopback; see tests/support/n8n_server.py) and the
local control plane; `devserver-operator run` as a process. A counting proxy on loopback sits
between the operator and n8n, so n8n's requests are counted too. Per round:

- create: a WorkflowIntegration with N inline workflows, from create to Ready=True with every
  workflow's n8n id in status (first round: nothing in n8n yet);
- update: every workflow changed (a parameter), from the spec change to Ready=True for the
  new generation;
- idle: requests to n8n while nothing changes, over one full sync (syncInterval), and the
  time the drift check took (its first request to its last, as they reached the proxy);
- delete: from the delete to the last workflow gone from n8n (deletionPolicy Delete).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fault_proxy import FaultProxy, Record
from tests.support.n8n_server import N8nServer

from bench.common import (
    OPERATOR_USER,
    control_plane,
    install_crds,
    load,
    machine,
    spread,
    start_operator_process,
    stop_process,
)
from devserver_operator.kube.client import Credentials, KubeClient

API_VERSION = "devserver.ecosphere.network/v1alpha1"
NAMESPACE = "bench"
SYNC_INTERVAL = "20s"
# The drift check runs on the operator's resync loop once syncInterval has passed: a short
# resync interval makes it run every syncInterval, not at the next 60 s tick.
RESYNC_SECONDS = 5
DEADLINE_SECONDS = 600.0
BURST_GAP_SECONDS = 2.0


def workflow(index: int, revision: int) -> dict[str, Any]:
    return {
        "name": f"w{index:03d}",
        "active": False,
        "parameters": {"revision": str(revision)},
        "inline": {
            "name": f"bench {index:03d}",
            "nodes": [
                {
                    "id": f"start-{index}",
                    "name": "Start",
                    "type": "n8n-nodes-base.manualTrigger",
                    "typeVersion": 1,
                    "position": [0, 0],
                    "parameters": {},
                },
                {
                    "id": f"mark-{index}",
                    "name": "Mark",
                    "type": "n8n-nodes-base.noOp",
                    "typeVersion": 1,
                    "position": [200, 0],
                    "parameters": {},
                    "notes": "revision {{ param.revision }}",
                },
            ],
            "connections": {"Start": {"main": [[{"node": "Mark", "type": "main", "index": 0}]]}},
            "settings": {},
        },
    }


def integration(name: str, n8n_url: str, count: int, revision: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowIntegration",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "n8n": {"url": n8n_url, "apiKeySecretRef": {"name": "n8n", "key": "apiKey"}},
            "workflows": [workflow(i, revision) for i in range(count)],
            "syncInterval": SYNC_INTERVAL,
        },
    }


def synced(body: dict[str, Any] | None, count: int) -> bool:
    if not body:
        return False
    status = body.get("status") or {}
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    )
    ids = [w.get("id") for w in status.get("workflows") or []]
    return (
        ready
        and status.get("observedGeneration") == body["metadata"]["generation"]
        and len(ids) == count
        and all(ids)
    )


async def wait_until(probe: Any, what: str) -> float:
    started = time.monotonic()
    while not await probe():
        if time.monotonic() - started > DEADLINE_SECONDS:
            raise TimeoutError(f"{what}: not done after {DEADLINE_SECONDS:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def n8n_calls(proxy: FaultProxy, since: int) -> Counter[str]:
    """Requests to n8n since record ``since``, by method and path shape."""
    counts: Counter[str] = Counter()
    for record in proxy.requests[since:]:
        shape = "/".join("{id}" if len(p) >= 16 else p for p in record.path.split("/"))
        counts[f"{record.method} {shape}"] += 1
    return counts


def bursts(records: list[Record]) -> list[list[Record]]:
    """Requests grouped into bursts: one drift check sends its GETs back to back."""
    groups: list[list[Record]] = []
    for record in records:
        if groups and record.at - groups[-1][-1].at <= BURST_GAP_SECONDS:
            groups[-1].append(record)
        else:
            groups.append([record])
    return groups


async def run_rounds(
    kube: KubeClient, proxy: FaultProxy, count: int, rounds: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"create": [], "update": [], "idle check": [], "delete": []}
    for round_index in range(rounds):
        name = f"bench-{round_index}"
        print(f"  round {round_index}: {load()}")
        since = len(proxy.requests)
        started = time.monotonic()
        await kube.create(integration(name, proxy.url, count, 0))

        async def created(name: str = name) -> bool:
            return synced(
                await kube.get(API_VERSION, "WorkflowIntegration", name, NAMESPACE), count
            )

        await wait_until(created, f"{name} created")
        results["create"].append(time.monotonic() - started)
        print(
            f"  round {round_index}: create {results['create'][-1]:.1f} s, n8n requests "
            f"{sum(n8n_calls(proxy, since).values())}: {dict(n8n_calls(proxy, since))}"
        )

        since = len(proxy.requests)
        started = time.monotonic()
        await kube.apply(integration(name, proxy.url, count, 1))
        await wait_until(created, f"{name} updated")
        results["update"].append(time.monotonic() - started)
        print(
            f"  round {round_index}: update {results['update'][-1]:.1f} s, n8n requests "
            f"{sum(n8n_calls(proxy, since).values())}: {dict(n8n_calls(proxy, since))}"
        )

        since = len(proxy.requests)
        await asyncio.sleep(float(SYNC_INTERVAL.rstrip("s")) + RESYNC_SECONDS + 5)
        checks = [b for b in bursts(proxy.requests[since:]) if len(b) >= count]
        if checks:
            results["idle check"].append(checks[0][-1].at - checks[0][0].at)
        print(
            f"  round {round_index}: idle over one sync interval ({SYNC_INTERVAL}): "
            f"{dict(n8n_calls(proxy, since))}, drift checks (s): "
            f"{[round(b[-1].at - b[0].at, 2) for b in checks]}"
        )

        started = time.monotonic()
        await kube.delete(API_VERSION, "WorkflowIntegration", name, NAMESPACE)

        async def deleted(name: str = name) -> bool:
            return await kube.get(API_VERSION, "WorkflowIntegration", name, NAMESPACE) is None

        await wait_until(deleted, f"{name} deleted")
        results["delete"].append(time.monotonic() - started)
    return results


def report(name: str, samples: list[float], count: int) -> None:
    if not samples:
        print(f"{name}: no sample")
        return
    rates = [count / sample for sample in samples]
    print(f"{name}: {spread(samples)}; {spread(rates, 'workflows/s', 1)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--operator-venv",
        type=Path,
        help="run the operator from this venv (runtime dependencies only, as in the image)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"operator: {args.operator_venv or Path(sys.executable).parent.parent} ({load()})")
    n8n = N8nServer()
    n8n.start()
    print(f"n8n {n8n.version} started in {n8n.start_seconds:.0f} s")
    try:
        with (
            FaultProxy(n8n.base_url) as proxy,
            control_plane(audit=False) as cluster,
            tempfile.TemporaryDirectory(prefix="bench-n8n-") as scratch,
        ):
            install_crds(cluster.kubeconfig_path)
            operator_kubeconfig = cluster.write_user_kubeconfig(OPERATOR_USER, ["system:masters"])

            async def bench() -> dict[str, list[float]]:
                async with KubeClient(
                    Credentials.from_kubeconfig(str(cluster.kubeconfig_path)), field_manager="bench"
                ) as kube:
                    await kube.create(
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
                    )
                    await kube.create(
                        {
                            "apiVersion": "v1",
                            "kind": "Secret",
                            "metadata": {"name": "n8n", "namespace": NAMESPACE},
                            "stringData": {"apiKey": n8n.api_key},
                        }
                    )
                    return await run_rounds(kube, proxy, args.workflows, args.rounds)

            process = start_operator_process(
                operator_kubeconfig,
                Path(scratch) / "operator.log",
                log_level="WARNING",
                resync_interval=str(RESYNC_SECONDS),
                venv=args.operator_venv,
            )
            try:
                results = asyncio.run(bench())
            finally:
                stop_process(process)
    finally:
        n8n.close()
    for name, samples in results.items():
        report(f"{name} {args.workflows} workflows", samples, args.workflows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
