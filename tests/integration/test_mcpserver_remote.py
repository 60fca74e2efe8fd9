"""Remote MCPServers, verified by a real handshake against real MCP servers on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.kube.client import KubeClient
from tests.support.operator_harness import (
    RunningOperator,
    condition,
    custom_resource,
    wait_for_condition,
)

pytestmark = pytest.mark.integration


async def test_streamable_http_server_is_verified_with_its_tools(
    operator: RunningOperator, kube: KubeClient, namespace: str, mcp_streamable_server: Any
) -> None:
    await kube.apply(
        custom_resource("MCPServer", "remote", namespace, {"url": mcp_streamable_server.url})
    )
    body = await wait_for_condition(kube, "MCPServer", "remote", namespace, "Ready", "True")
    status = body["status"]
    assert status["url"] == mcp_streamable_server.url
    assert status["transport"] == "streamable-http"
    assert status["toolCount"] == 3
    assert sorted(t["name"] for t in status["tools"]) == ["add", "echo", "get_time"]
    assert status["serverInfo"]["protocolVersion"]
    assert "tools" in status["serverInfo"]["capabilities"]
    assert condition(body, "Verified")["reason"] == "HandshakeSucceeded"
    assert condition(body, "Reconciling") is None and condition(body, "Stalled") is None
    assert status["observedGeneration"] == body["metadata"]["generation"]


async def test_sse_server_is_verified(
    operator: RunningOperator, kube: KubeClient, namespace: str, mcp_sse_server: Any
) -> None:
    spec = {"url": mcp_sse_server.url, "transport": "sse"}
    await kube.apply(custom_resource("MCPServer", "remote-sse", namespace, spec))
    body = await wait_for_condition(kube, "MCPServer", "remote-sse", namespace, "Ready", "True")
    assert body["status"]["transport"] == "sse"
    assert body["status"]["toolCount"] == 3


async def test_a_server_speaking_only_2026_07_28_is_ready_and_verified(
    operator: RunningOperator, kube: KubeClient, namespace: str, mcp_modern_server: Any
) -> None:
    """Stateless MCP (server/discover, no initialize) ends Ready/Verified, not Stalled."""
    await kube.apply(
        custom_resource("MCPServer", "modern", namespace, {"url": mcp_modern_server.url})
    )
    body = await wait_for_condition(kube, "MCPServer", "modern", namespace, "Ready", "True")
    status = body["status"]
    assert status["serverInfo"]["protocolVersion"] == "2026-07-28"
    assert status["serverInfo"]["name"] == "devserver-test-mcp"
    assert status["toolCount"] == 3
    verified = condition(body, "Verified")
    assert verified["status"] == "True"
    assert "2026-07-28" in verified["message"]
    assert condition(body, "Stalled") is None and condition(body, "Reconciling") is None


async def test_the_negotiated_revision_is_in_the_status(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    mcp_streamable_server: Any,
    mcp_sse_server: Any,
) -> None:
    """The SDK's servers in their default mode negotiate 2026-07-28, over both transports."""
    await kube.apply(
        custom_resource("MCPServer", "dual", namespace, {"url": mcp_streamable_server.url})
    )
    spec = {"url": mcp_sse_server.url, "transport": "sse"}
    await kube.apply(custom_resource("MCPServer", "dual-sse", namespace, spec))
    for name in ("dual", "dual-sse"):
        body = await wait_for_condition(kube, "MCPServer", name, namespace, "Ready", "True")
        assert body["status"]["serverInfo"]["protocolVersion"] == "2026-07-28"


async def test_unreachable_server_is_not_ready_with_a_reason(
    operator: RunningOperator, kube: KubeClient, namespace: str, unreachable_url: str
) -> None:
    await kube.apply(custom_resource("MCPServer", "gone", namespace, {"url": unreachable_url}))
    body = await wait_for_condition(
        kube, "MCPServer", "gone", namespace, "Verified", "False", reason="ConnectionFailed"
    )
    assert condition(body, "Ready")["status"] == "False"
    assert condition(body, "Stalled") is None  # it may come up: retried, so Reconciling
    assert condition(body, "Reconciling")["reason"] == "ConnectionFailed"
    assert await kube.get(API_VERSION, "MCPServer", "gone", namespace)
