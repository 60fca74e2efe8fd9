"""The operator under faults of what it talks to: an API server that answers 409, 429 with
Retry-After and 500, drops watch connections or restarts; MCP servers and n8n that go away
and come back. Everything converges, with backoff: requests are counted, so a hot retry
loop fails the tests.

The operator runs as `devserver-operator run`; for injected faults it talks to the API
server through a fault proxy on loopback (tests/support/fault_proxy.py).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from devserver_operator.kube.client import KubeClient, RetryPolicy
from devserver_operator.localcluster import LocalControlPlane
from tests.reliability.harness import (
    identity,
    mcpserver,
    operator_process,
    proxied_api,
    restart_apiserver,
    wait_all_converged,
)
from tests.support.audit import AuditCursor
from tests.support.fault_proxy import FaultProxy
from tests.support.operator_harness import custom_resource, wait_for, wait_for_condition

pytestmark = pytest.mark.integration

DRIFT_REPAIR_SECONDS = 5.0


async def _deployment_uid(kube: KubeClient, name: str, namespace: str) -> str | None:
    live = await kube.get("apps/v1", "Deployment", name, namespace)
    return live["metadata"]["uid"] if live else None


async def _assert_drift_repaired_within(
    kube: KubeClient, name: str, namespace: str, seconds: float
) -> None:
    before = await _deployment_uid(kube, name, namespace)
    assert before is not None
    await kube.delete("apps/v1", "Deployment", name, namespace)
    started = time.monotonic()

    async def recreated() -> bool:
        uid = await _deployment_uid(kube, name, namespace)
        return uid is not None and uid != before

    await wait_for(recreated, seconds=seconds, what=f"Deployment {name} restored", interval=0.05)
    took = time.monotonic() - started
    print(f"deleted Deployment {name} restored after {took:.2f} s")
    assert took <= seconds


def _watches(proxy: FaultProxy) -> int:
    return sum(1 for r in proxy.requests if r.outcome.startswith("streamed"))


def _writes(proxy: FaultProxy, namespace: str) -> list[Any]:
    return [
        r
        for r in proxy.requests
        if r.method in ("POST", "PATCH", "PUT", "DELETE") and f"/namespaces/{namespace}/" in r.path
    ]


async def test_injected_conflicts_throttling_and_server_errors_converge(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    names = [f"f{i}" for i in range(6)]
    for name in names:
        await kube.create(mcpserver(name, namespace))
    with proxied_api(local, "op-faults", tmp_path) as (proxy, kubeconfig):
        scope = rf"/namespaces/{namespace}/"
        proxy.fail_next(3, 409, method="PATCH", path=scope + "services/")
        proxy.fail_next(
            4, 429, headers={"Retry-After": "1"}, method="PATCH", path=scope + "deployments/"
        )
        proxy.fail_next(3, 500, method="PATCH", path=scope + "networkpolicies/")
        proxy.fail_next(3, 503, method="PATCH", path=scope + "mcpservers/.*/status")
        with operator_process(kubeconfig, tmp_path / "operator.log", [namespace]) as operator:
            await wait_all_converged(kube, namespace, names, seconds=60)
            outcomes = [r.outcome for r in proxy.requests]
            assert outcomes.count("injected 409") == 3
            assert outcomes.count("injected 429") == 4
            assert outcomes.count("injected 500") == 3
            assert outcomes.count("injected 503") == 3
            # Retry-After is a floor: no retry of a throttled apply came sooner.
            throttled = [
                r for r in proxy.requests if "deployments/" in r.path and r.method == "PATCH"
            ]
            by_path: dict[str, list[float]] = {}
            for record in throttled:
                by_path.setdefault(record.path, []).append(record.at)
            for times in by_path.values():
                gaps = [b - a for a, b in itertools.pairwise(times)]
                assert all(gap >= 0.95 for gap in gaps), gaps
            # Each fault costs at most a few extra requests: 6 servers x (3 children + status
            # + kopf's record) = 30 writes, plus one retry per injected fault (13).
            assert len(_writes(proxy, namespace)) <= 30 + 13 + 6, _writes(proxy, namespace)
            assert operator.alive, operator.tail()


async def test_persistent_server_errors_back_off_instead_of_looping(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    names = [f"e{i}" for i in range(3)]
    with proxied_api(local, "op-errors", tmp_path) as (proxy, kubeconfig):
        # Every write in the namespace fails, for a while.
        proxy.fail_next(100_000, 500, method="PATCH", path=rf"/namespaces/{namespace}/")
        with operator_process(kubeconfig, tmp_path / "operator.log", [namespace]) as operator:
            for name in names:
                await kube.create(mcpserver(name, namespace))

            def injected() -> list[Any]:
                return [r for r in proxy.requests if r.outcome == "injected 500"]

            async def first_write_failed() -> bool:
                return bool(injected())

            # The window starts at the operator's first refused write, not at its launch: on a
            # loaded machine its start alone can take longer than the window.
            await wait_for(first_write_failed, seconds=120, what="the operator's first write")
            window = 20.0
            await asyncio.sleep(window)
            failed = injected()
            # Bounded: a reconcile tries its write and its status note RetryPolicy.attempts
            # times each within ~1.5 s, then the object backs off (15 s, 30 s, ...: one
            # schedule for kopf's retry, child events and the periodic check, which runs
            # every 5 s here and would otherwise retry 4 times in the window); kopf's own
            # bookkeeping patches back off 1, 1, 2, 3, 5, ... s. A retry loop without
            # backoff makes hundreds.
            reconciles = 2  # at 0 s and after the first 15 s delay
            per_object_bound = reconciles * 2 * RetryPolicy().attempts + 10
            print(f"failed writes in {window:.0f} s of persistent 500s: {len(failed)}")
            assert 0 < len(failed) <= len(names) * per_object_bound, len(failed)
            proxy.reset()  # the API server recovers
            await wait_all_converged(kube, namespace, names, seconds=60)
            assert operator.alive, operator.tail()


async def test_dropped_watch_connections_resume_and_drift_is_repaired_within_5_seconds(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    names = ["w0", "w1"]
    for name in names:
        await kube.create(mcpserver(name, namespace))
    with (
        proxied_api(local, "op-watchdrop", tmp_path) as (proxy, kubeconfig),
        operator_process(kubeconfig, tmp_path / "operator.log", [namespace]) as operator,
    ):
        await wait_all_converged(kube, namespace, names, seconds=60)
        await _assert_drift_repaired_within(kube, "w0", namespace, DRIFT_REPAIR_SECONDS)
        for _ in range(3):
            streams = proxy.open_streams
            assert streams >= 6, streams  # the operator watches at least its own kinds
            watches_before = _watches(proxy)
            assert proxy.cut_streams() == streams

            async def rewatched(before: int = watches_before, cut: int = streams) -> bool:
                # Every cut watch is opened again (kopf resumes from its last version).
                return _watches(proxy) >= before + cut and proxy.open_streams >= cut

            await wait_for(rewatched, seconds=10, what="the watches to be opened again")
        await _assert_drift_repaired_within(kube, "w1", namespace, DRIFT_REPAIR_SECONDS)
        await kube.create(mcpserver("w2", namespace))
        await wait_all_converged(kube, namespace, [*names, "w2"], seconds=30)
        assert operator.alive, operator.tail()


async def test_api_server_restart_under_the_operator(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    user = "op-restart"
    names = ["r0", "r1"]
    for name in names:
        await kube.create(mcpserver(name, namespace))
    with operator_process(identity(local, user), tmp_path / "operator.log", [namespace]) as op:
        await wait_all_converged(kube, namespace, names, seconds=60)
        restart_apiserver(local, downtime=3.0)  # blocks this test's loop; the operator runs on
        assert local.audit_log_path is not None
        cursor = AuditCursor.at_end(local.audit_log_path)
        await kube.create(mcpserver("r2", namespace))
        await wait_all_converged(kube, namespace, [*names, "r2"], seconds=60)
        # kopf re-opens its watches; a deleted child comes back as before.
        await _assert_drift_repaired_within(kube, "r0", namespace, DRIFT_REPAIR_SECONDS * 2)
        await asyncio.sleep(6)  # a resync round
        requests = cursor.requests(user)
        print(f"operator requests after the API server restart: {len(requests)}")
        # Re-listing and re-watching ~12 kinds, one new object, one repair, resyncs: tens of
        # requests. A reconnect loop without backoff would make thousands.
        assert len(requests) <= 150, sorted(requests)
        assert op.alive, op.tail()


async def test_mcp_server_going_away_and_coming_back(
    local: LocalControlPlane,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
    mcp_server_factory: Any,
) -> None:
    server = mcp_server_factory("streamable-http")
    spec = {"url": server.url, "verification": {"interval": "10s", "timeout": "5s"}}
    await kube.apply(custom_resource("MCPServer", "remote", namespace, spec))
    with operator_process(identity(local, "op-mcp"), tmp_path / "operator.log", [namespace]) as op:
        await wait_for_condition(kube, "MCPServer", "remote", namespace, "Ready", "True")
        server.stop()
        try:
            body = await wait_for_condition(
                kube, "MCPServer", "remote", namespace, "Ready", "False", seconds=60
            )
            verified = next(c for c in body["status"]["conditions"] if c["type"] == "Verified")
            assert verified["status"] == "False" and verified["message"], verified
        finally:
            server.start()
        back = time.monotonic()
        # Failed handshakes back off 15 s, 30 s, ...: back within a minute.
        await wait_for_condition(
            kube, "MCPServer", "remote", namespace, "Ready", "True", seconds=90
        )
        print(f"MCP server back: Ready again after {time.monotonic() - back:.1f} s")
        assert op.alive, op.tail()


@pytest.mark.n8n
async def test_n8n_going_away_and_coming_back(
    local: LocalControlPlane,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
    n8n_server: Any,
) -> None:
    from devserver_operator.kinds import workflowintegration  # noqa: F401 - must exist

    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "n8n", "namespace": namespace},
            "stringData": {"apiKey": n8n_server.api_key},
        }
    )
    workflow = {
        "name": "outage",
        "active": False,
        "inline": {
            "name": f"outage {namespace}",
            "nodes": [
                {
                    "id": "start",
                    "name": "Start",
                    "type": "n8n-nodes-base.manualTrigger",
                    "typeVersion": 1,
                    "position": [0, 0],
                    "parameters": {},
                }
            ],
            "connections": {},
            "settings": {},
        },
    }
    spec = {
        "n8n": {"url": n8n_server.base_url, "apiKeySecretRef": {"name": "n8n", "key": "apiKey"}},
        "workflows": [workflow],
        "syncInterval": "10s",
    }
    await kube.apply(custom_resource("WorkflowIntegration", "outage", namespace, spec))
    log = tmp_path / "operator.log"
    with operator_process(identity(local, "op-n8n"), log, [namespace]) as op:
        await wait_for_condition(
            kube, "WorkflowIntegration", "outage", namespace, "Ready", "True", seconds=60
        )
        n8n_server.stop()
        try:
            # A spec change needs n8n: with n8n gone it cannot be Ready.
            await kube.apply(
                custom_resource(
                    "WorkflowIntegration",
                    "outage",
                    namespace,
                    {
                        **spec,
                        "workflows": [{**workflow, "active": False, "parameters": {"x": "1"}}],
                    },
                )
            )
            body = await wait_for_condition(
                kube, "WorkflowIntegration", "outage", namespace, "Ready", "False", seconds=60
            )
            ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
            assert ready["reason"] and ready["message"], ready
        finally:
            n8n_server.start()  # main thread: n8n dies with the thread that started it
        back = time.monotonic()
        await wait_for_condition(
            kube, "WorkflowIntegration", "outage", namespace, "Ready", "True", seconds=120
        )
        print(f"n8n back: Ready again after {time.monotonic() - back:.1f} s")
        assert op.alive, op.tail()
