"""MCPServers that point at things that are not (good) MCP servers end as clear conditions,
with backoff, without crashing, and without leaking the secrets they were given."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.kube.client import KubeClient
from tests.support.audit import AuditCursor
from tests.support.operator_harness import (
    RunningOperator,
    condition,
    custom_resource,
    wait_for,
    wait_for_condition,
)

pytestmark = pytest.mark.integration
CANARY = "canary-7d1f0c9e-secret-value"


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ("html", "NotMCP"),
        ("garbage", "InvalidJSONRPC"),
        ("not-jsonrpc", "InvalidJSONRPC"),
        ("rpc-error", "ProtocolError"),
        ("wrong-version", "UnsupportedProtocolVersion"),
    ],
)
async def test_not_an_mcp_server(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    hostile_http: Any,
    route: str,
    reason: str,
) -> None:
    await kube.apply(
        custom_resource("MCPServer", "hostile", namespace, {"url": hostile_http.url(route)})
    )
    body = await wait_for_condition(
        kube, "MCPServer", "hostile", namespace, "Verified", "False", reason=reason
    )
    ready = condition(body, "Ready")
    assert ready["status"] == "False" and ready["reason"] == reason
    assert condition(body, "Verified")["message"]
    assert "tools" not in body["status"]
    # Retrying will not turn a non-MCP endpoint into one: Stalled, so kstatus readers fail fast.
    assert condition(body, "Stalled")["reason"] == reason


async def test_hanging_server_times_out_within_the_configured_timeout(
    operator: RunningOperator, kube: KubeClient, namespace: str, hanging_server: Any
) -> None:
    spec = {"url": hanging_server.url(), "verification": {"timeout": "2s"}}
    await kube.apply(custom_resource("MCPServer", "hang", namespace, spec))
    await wait_for_condition(
        kube, "MCPServer", "hang", namespace, "Verified", "False", reason="Timeout", seconds=20
    )


async def test_ten_thousand_tools_are_counted_and_capped(
    operator: RunningOperator, kube: KubeClient, namespace: str, hostile_http: Any
) -> None:
    await kube.apply(
        custom_resource("MCPServer", "huge", namespace, {"url": hostile_http.url("huge")})
    )
    body = await wait_for_condition(kube, "MCPServer", "huge", namespace, "Ready", "True")
    assert body["status"]["toolCount"] == 10_000
    assert len(body["status"]["tools"]) == 100


async def test_failed_verification_backs_off_instead_of_looping(
    operator: RunningOperator, kube: KubeClient, namespace: str, hostile_http: Any
) -> None:
    await kube.apply(
        custom_resource("MCPServer", "backoff", namespace, {"url": hostile_http.url("html")})
    )
    await wait_for_condition(
        kube, "MCPServer", "backoff", namespace, "Verified", "False", reason="NotMCP"
    )
    before = sum(1 for r in hostile_http.requests if r.path.startswith("/html"))
    await asyncio.sleep(12)  # two resync periods of the test operator
    after = sum(1 for r in hostile_http.requests if r.path.startswith("/html"))
    # Backoff starts at 15 s: at most one more handshake (a few requests) in 12 s, not dozens.
    assert after - before <= 4, after - before


async def test_missing_header_secret_stalls_naming_secret_not_value(
    operator: RunningOperator, kube: KubeClient, namespace: str, mcp_streamable_server: Any
) -> None:
    spec = {
        "url": mcp_streamable_server.url,
        "headers": [
            {
                "name": "Authorization",
                "valueFrom": {"secretKeyRef": {"name": "token", "key": "missing"}},
            }
        ],
    }
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "token", "namespace": namespace},
            "data": {"present": base64.b64encode(CANARY.encode()).decode()},
        }
    )
    await kube.apply(custom_resource("MCPServer", "nokey", namespace, spec))
    body = await wait_for_condition(
        kube, "MCPServer", "nokey", namespace, "Stalled", "True", reason="MissingReference"
    )
    assert "has no key missing" in condition(body, "Stalled")["message"]
    assert CANARY not in str(body)


async def test_secret_values_never_reach_status_events_or_logs(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    hostile_http: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "auth", "namespace": namespace},
            "data": {"header": base64.b64encode(f"Bearer {CANARY}".encode()).decode()},
        }
    )
    # The leaky server echoes request headers back in its error body.
    spec = {
        "url": hostile_http.url("echo-headers-401"),
        "headers": [
            {
                "name": "Authorization",
                "valueFrom": {"secretKeyRef": {"name": "auth", "key": "header"}},
            }
        ],
    }
    await kube.apply(custom_resource("MCPServer", "leak", namespace, spec))
    body = await wait_for_condition(
        kube, "MCPServer", "leak", namespace, "Verified", "False", reason="HTTPError"
    )
    sent = [r for r in hostile_http.requests if r.path.startswith("/echo-headers-401")]
    assert any(CANARY in str(r.headers) for r in sent), "the header must really be sent"
    events = await kube.list("v1", "Event", namespace)
    assert CANARY not in str(body)
    assert CANARY not in str(events)
    assert CANARY not in caplog.text


async def test_events_tell_the_story(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    mcp_streamable_server: Any,
    hostile_http: Any,
) -> None:
    await kube.apply(
        custom_resource("MCPServer", "story", namespace, {"url": mcp_streamable_server.url})
    )
    await wait_for_condition(kube, "MCPServer", "story", namespace, "Ready", "True")
    await kube.apply(
        custom_resource("MCPServer", "story", namespace, {"url": hostile_http.url("html")})
    )
    await wait_for_condition(
        kube, "MCPServer", "story", namespace, "Verified", "False", reason="NotMCP"
    )

    async def reasons() -> set[str]:
        events = await kube.list("v1", "Event", namespace)
        return {e["reason"] for e in events if e["involvedObject"]["name"] == "story"}

    deadline = asyncio.get_running_loop().time() + 10
    while not {"Verified", "VerificationFailed"} <= await reasons():
        assert asyncio.get_running_loop().time() < deadline, await reasons()
        await asyncio.sleep(0.3)


async def test_create_costs_at_most_children_plus_two_requests(
    operator: RunningOperator, kube: KubeClient, namespace: str, control_plane: Any
) -> None:
    cursor = AuditCursor.at_end(control_plane.local.audit_log_path)
    spec = {
        "image": "ghcr.io/example/server:1.0.0",
        "replicas": 2,
        "verification": {"enabled": False},
    }
    await kube.apply(custom_resource("MCPServer", "count", namespace, spec))
    await wait_for_condition(kube, "MCPServer", "count", namespace, "Reconciling", "True")
    await asyncio.sleep(2)
    mine = [(verb, uri) for verb, uri in cursor.requests() if f"/namespaces/{namespace}/" in uri]
    children = 4  # Service, NetworkPolicy, PodDisruptionBudget, Deployment
    # Events are posted in the background and are not writes to the object or its children.
    writes = [
        w for w in mine if w[0] in ("create", "update", "patch", "delete") and "/events" not in w[1]
    ]
    # The children, one status patch, and kopf's own bookkeeping patch on the object.
    assert len(writes) <= children + 2, "\n".join(f"{v} {u}" for v, u in writes)


async def test_metrics_count_reconciles_and_probes(
    operator: RunningOperator, kube: KubeClient, namespace: str, mcp_streamable_server: Any
) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    probes_before = sample("devserver_mcp_probe_total", {"result": "ok"})
    await kube.apply(
        custom_resource("MCPServer", "metered", namespace, {"url": mcp_streamable_server.url})
    )
    await wait_for_condition(kube, "MCPServer", "metered", namespace, "Ready", "True")
    assert sample("devserver_mcp_probe_total", {"result": "ok"}) > probes_before
    assert sample("devserver_reconcile_total", {"kind": "MCPServer", "result": "ok"}) > 0
    assert sample("devserver_mcp_server_tools", {"namespace": namespace, "name": "metered"}) == 3

    # The gauge is set right after the status write that the wait above saw; on a busy
    # machine the test can read the status before the operator's next line runs.
    async def ready_gauge() -> bool:
        return (
            sample("devserver_mcp_server_ready", {"namespace": namespace, "name": "metered"}) == 1
        )

    await wait_for(ready_gauge, seconds=10, what="devserver_mcp_server_ready to be 1")
    assert sample("devserver_reconcile_duration_seconds_count", {"kind": "MCPServer"}) > 0
    body = await kube.get(API_VERSION, "MCPServer", "metered", namespace)
    assert body is not None
