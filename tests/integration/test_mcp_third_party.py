"""The operator's MCP probe against real third-party servers, on loopback: supergateway (the
default stdio bridge) in front of the MCP reference server "everything", and n8n's MCP Server
Trigger node.

Neither speaks the stateless 2026-07-28 revision: the probe asks ``server/discover`` first,
as the SDK's client does, and must fall back to the ``initialize`` handshake.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from devserver_operator.integrations.mcp_probe import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    McpTransport,
    probe_mcp_server,
)
from devserver_operator.integrations.n8n import N8nClient, N8nNotFoundError
from tests.support.n8n_server import N8nServer
from tests.support.third_party_mcp import EVERYTHING_NAME, SupergatewayProcess

TIMEOUT = 30.0  # node servers start their stdio child per session; the machine is slow
# The newest handshake revision server-everything 2026.8.31 (the lock file's) answers with.
EVERYTHING_REVISION = "2025-11-25"
EVERYTHING_TOOLS = {
    "echo",
    "get-sum",
    "get-env",
    "get-tiny-image",
    "trigger-long-running-operation",
}


@pytest.mark.parametrize(
    ("transport", "stateful"),
    [("streamable-http", False), ("streamable-http", True), ("sse", False)],
    ids=["streamable-http-stateless", "streamable-http-stateful", "sse"],
)
async def test_supergateway_bridging_the_everything_server(
    supergateway_factory: Callable[..., SupergatewayProcess],
    transport: McpTransport,
    stateful: bool,
) -> None:
    server = supergateway_factory(transport, stateful=stateful)
    result = await probe_mcp_server(server.url, transport, timeout=TIMEOUT)
    assert result.server_name == EVERYTHING_NAME
    assert result.protocol_version == EVERYTHING_REVISION
    assert result.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
    assert result.negotiation == "initialize"
    assert result.transport == transport
    assert {"tools", "prompts", "resources"} <= set(result.capabilities)
    names = [tool.name for tool in result.tools]
    assert set(names) >= EVERYTHING_TOOLS, names
    assert result.tool_count == len(names) == len(set(names))
    assert not result.tools_truncated
    assert all(tool.description for tool in result.tools)
    assert 0 < result.duration_seconds < TIMEOUT
    print(f"supergateway {transport} stateful={stateful}: {result.protocol_version}")


# -- n8n's MCP Server Trigger ----------------------------------------------------------------

MCP_TRIGGER = "@n8n/n8n-nodes-langchain.mcpTrigger"
CALCULATOR = "@n8n/n8n-nodes-langchain.toolCalculator"


def mcp_trigger_workflow(name: str, path: str) -> dict[str, Any]:
    """An MCP Server Trigger (version 2: streamable HTTP and SSE on one path) with the
    Calculator tool attached, as a person would build it in n8n's editor."""
    return {
        "name": name,
        "nodes": [
            {
                "name": "MCP Server Trigger",
                "type": MCP_TRIGGER,
                "typeVersion": 2,
                "position": [0, 0],
                "webhookId": str(uuid.uuid4()),
                "parameters": {"path": path},
            },
            {
                "name": "Calculator",
                "type": CALCULATOR,
                "typeVersion": 1,
                "position": [0, 220],
                "parameters": {},
            },
        ],
        "connections": {
            "Calculator": {
                "ai_tool": [[{"node": "MCP Server Trigger", "type": "ai_tool", "index": 0}]]
            }
        },
        "settings": {"executionOrder": "v1"},
    }


@pytest.fixture
async def n8n_mcp_url(n8n_server: N8nServer) -> AsyncIterator[str]:
    """The production URL of an active workflow with an MCP Server Trigger."""
    path = f"devserver-{uuid.uuid4().hex[:10]}"
    async with N8nClient(n8n_server.base_url, n8n_server.api_key) as client:
        workflow = await client.create_workflow(mcp_trigger_workflow(f"mcp-{path}", path))
        try:
            assert (await client.activate_workflow(workflow.id)).active
            yield f"{n8n_server.base_url}/mcp/{path}"
        finally:
            with contextlib.suppress(N8nNotFoundError):
                await client.deactivate_workflow(workflow.id)
                await client.delete_workflow(workflow.id)


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_n8n_mcp_server_trigger(n8n_mcp_url: str, transport: McpTransport) -> None:
    assert n8n_mcp_url.startswith("http://127.0.0.1:")
    result = await probe_mcp_server(n8n_mcp_url, transport, timeout=TIMEOUT)
    assert result.server_name == "MCP_Server_Trigger"  # n8n names it after the node
    assert result.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
    assert result.negotiation == "initialize"
    assert "tools" in result.capabilities
    assert [tool.name for tool in result.tools] == ["Calculator"]
    assert result.tool_count == 1
    assert result.tools[0].description
    print(f"n8n MCP Server Trigger, {transport}: {result.protocol_version}")
