"""The operator's MCP probe against real third-party servers, on loopback: supergateway (the
default stdio bridge) in front of the MCP reference server "everything", and n8n's MCP Server
Trigger node.

Neither speaks the stateless 2026-07-28 revision: the probe asks ``server/discover`` first,
as the SDK's client does, and must fall back to the ``initialize`` handshake.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devserver_operator.integrations.mcp_probe import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    McpTransport,
    probe_mcp_server,
)
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
