"""Calling one tool with the probe's session, against the real MCP SDK servers on loopback
(streamable HTTP, legacy SSE, and the stateless 2026-07-28 revision), and the bounds."""

from __future__ import annotations

import pytest

from devserver_operator.integrations.mcp_call import call_mcp_tool, header_value
from devserver_operator.integrations.mcp_errors import McpProbeError
from tests.support.hostile_http import HangingServer
from tests.support.mcp_servers import McpServerProcess

TIMEOUT = 20.0


@pytest.mark.parametrize(
    "fixture", ["mcp_streamable_server", "mcp_sse_server", "mcp_modern_server"]
)
async def test_a_tool_answers_with_its_content(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    server: McpServerProcess = request.getfixturevalue(fixture)
    result = await call_mcp_tool(
        server.url, server.transport, "add", {"a": 2, "b": 40}, timeout=TIMEOUT
    )
    assert result.is_error is False
    assert result.content[0]["type"] == "text" and result.content[0]["text"] == "42"
    assert result.tool == "add" and result.protocol_version


async def test_a_tool_that_fails_reports_is_error(mcp_streamable_server: McpServerProcess) -> None:
    # The SDK turns invalid arguments into a tool error (isError), not a JSON-RPC error.
    result = await call_mcp_tool(
        mcp_streamable_server.url,
        "streamable-http",
        "add",
        {"a": "not a number"},
        timeout=TIMEOUT,
    )
    assert result.is_error is True
    assert result.content and result.content[0]["type"] == "text"


async def test_an_unknown_tool_is_an_error_with_its_name(
    mcp_streamable_server: McpServerProcess,
) -> None:
    try:
        result = await call_mcp_tool(
            mcp_streamable_server.url, "streamable-http", "no_such_tool", {}, timeout=TIMEOUT
        )
    except McpProbeError as error:
        assert "no_such_tool" in error.message
    else:  # some SDK releases answer an unknown tool with isError instead
        assert result.is_error is True


async def test_an_answer_larger_than_the_bound_is_refused(
    mcp_streamable_server: McpServerProcess,
) -> None:
    with pytest.raises(McpProbeError) as raised:
        await call_mcp_tool(
            mcp_streamable_server.url,
            "streamable-http",
            "echo",
            {"text": "x" * 20_000},
            timeout=TIMEOUT,
            max_response_bytes=10_000,
        )
    assert raised.value.reason == "ResponseTooLarge"


async def test_a_server_that_never_answers_times_out_naming_the_tool() -> None:
    hanging = HangingServer()
    try:
        with pytest.raises(McpProbeError) as raised:
            await call_mcp_tool(
                hanging.url(), "streamable-http", "echo", {"text": "x"}, timeout=1.0
            )
    finally:
        hanging.close()
    assert raised.value.reason == "Timeout"
    assert "the call of tool 'echo'" in raised.value.message


def test_a_tool_name_goes_into_a_header_verbatim_or_base64_wrapped() -> None:
    assert header_value("get_time") == "get_time"
    assert header_value("überprüfen") == "=?base64?w7xiZXJwcsO8ZmVu?="
    assert header_value(" edge") == "=?base64?IGVkZ2U=?="
