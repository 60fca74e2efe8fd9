"""The MCP probe against real MCP SDK servers and hostile HTTP servers, all on loopback.

No Kubernetes is needed: the servers are subprocesses and threads started by the fixtures of
``tests.support.mcp_servers`` and ``tests.support.hostile_http``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from devserver_operator.integrations.mcp_errors import secret_values, snippet
from devserver_operator.integrations.mcp_probe import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_PROTOCOL_VERSION,
    MCP_PROBE_REASONS,
    SUPPORTED_PROTOCOL_VERSIONS,
    McpProbeError,
    McpProbeResult,
    McpTool,
    McpTransport,
    probe_mcp_server,
)
from tests.support.hostile_http import HUGE_TOOL_COUNT, HangingServer, HostileHttpServer
from tests.support.mcp_servers import (
    INSTRUCTIONS,
    REAL_TOOLS,
    SERVER_NAME,
    SERVER_VERSION,
    McpServerProcess,
)

TIMEOUT = 20.0  # generous: the machine is slow; the timeout tests use their own
CANARY = "CANARY-7f3a9c1e-token-value"
CANARY_KEY = "CANARY-api-key-55aa"
CANARY_HEADERS = {"Authorization": f"Bearer {CANARY}", "X-Api-Key": CANARY_KEY}
SDK_CAPABILITIES = ("prompts", "resources", "tools")


async def probe_error(
    url: str, transport: McpTransport = "streamable-http", **kwargs: object
) -> McpProbeError:
    with pytest.raises(McpProbeError) as info:
        await probe_mcp_server(url, transport, **{"timeout": TIMEOUT, **kwargs})  # type: ignore[arg-type]
    error = info.value
    assert error.reason in MCP_PROBE_REASONS
    assert error.message and "\n" not in error.message
    return error


def assert_sdk_server(
    result: McpProbeResult, transport: McpTransport, version: str = "2026-07-28"
) -> None:
    assert result.server_name == SERVER_NAME
    assert result.server_version == SERVER_VERSION
    assert result.protocol_version == version
    assert result.negotiation == ("discover" if version == "2026-07-28" else "initialize")
    assert result.capabilities == SDK_CAPABILITIES
    # listChanged is True on 2026-07-28 (subscriptions/listen), False on the handshake wire
    assert set(result.raw_capabilities["tools"]) == {"listChanged"}
    assert result.instructions == INSTRUCTIONS
    assert result.transport == transport
    assert result.tools == (
        McpTool("echo", "Return the text unchanged."),
        McpTool("add", "Add two integers."),
        McpTool("get_time", "Return the current UTC time in ISO 8601 format."),
    )
    assert result.tool_count == 3
    assert not result.tools_truncated
    assert 0 < result.duration_seconds < TIMEOUT


# -- real MCP SDK servers --------------------------------------------------------------------


async def test_streamable_http_sdk_server(mcp_streamable_server: McpServerProcess) -> None:
    result = await probe_mcp_server(
        mcp_streamable_server.url, "streamable-http", timeout=TIMEOUT, headers=CANARY_HEADERS
    )
    assert_sdk_server(result, "streamable-http")


async def test_sse_sdk_server(mcp_sse_server: McpServerProcess) -> None:
    # The SDK's SSE server serves both eras on one stream, and its client (mode="auto")
    # negotiates 2026-07-28 there too: so does the probe.
    result = await probe_mcp_server(mcp_sse_server.url, "sse", timeout=TIMEOUT)
    assert_sdk_server(result, "sse")


# -- protocol negotiation (MCP 2026-07-28 and the handshake revisions) ---------------------


def test_the_revisions_are_the_sdks() -> None:
    import mcp_types.version

    assert SUPPORTED_PROTOCOL_VERSIONS == mcp_types.version.KNOWN_PROTOCOL_VERSIONS
    assert LATEST_PROTOCOL_VERSION == "2026-07-28"
    assert "2026-07-28" in SUPPORTED_PROTOCOL_VERSIONS
    assert "2026-07-28" not in HANDSHAKE_PROTOCOL_VERSIONS


async def test_sdk_server_default_mode_negotiates_2026_07_28(
    mcp_streamable_server: McpServerProcess,
) -> None:
    result = await probe_mcp_server(mcp_streamable_server.url, "streamable-http", timeout=TIMEOUT)
    assert result.protocol_version == "2026-07-28"
    assert result.negotiation == "discover"
    assert_sdk_server(result, "streamable-http")


@pytest.mark.parametrize("json_response", [False, True], ids=["event-stream", "json"])
async def test_sdk_server_forced_to_2026_07_28_only(
    mcp_server_factory: Callable[..., McpServerProcess], json_response: bool
) -> None:
    """A server that speaks nothing but 2026-07-28 (it rejects initialize) is verified."""
    server = mcp_server_factory("streamable-http", modern_only=True, json_response=json_response)
    result = await probe_mcp_server(server.url, "streamable-http", timeout=TIMEOUT)
    assert_sdk_server(result, "streamable-http")


async def test_sdk_server_forced_to_2026_07_28_paginates(
    mcp_server_factory: Callable[..., McpServerProcess],
) -> None:
    server = mcp_server_factory("streamable-http", modern_only=True, tools=22, page_size=5)
    result = await probe_mcp_server(server.url, "streamable-http", timeout=TIMEOUT, max_tools=7)
    assert result.negotiation == "discover"
    assert [tool.name for tool in result.tools] == server.tool_names[:7]
    assert result.tool_count == 25


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_a_handshake_only_server_falls_back_to_initialize(
    hostile_http: HostileHttpServer, transport: McpTransport
) -> None:
    hostile_http.clear()
    route = "mcp" if transport == "streamable-http" else "sse"
    result = await probe_mcp_server(hostile_http.url(route), transport, timeout=TIMEOUT)
    assert result.negotiation == "initialize"
    assert result.protocol_version == "2025-06-18"
    bodies = [json.loads(r.body) for r in hostile_http.requests if r.method == "POST"]
    methods = [body.get("method") for body in bodies]
    assert methods[:3] == ["server/discover", "initialize", "notifications/initialized"]
    discover = bodies[0]
    assert discover["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    first = next(r for r in hostile_http.requests if r.method == "POST")
    assert first.headers["MCP-Protocol-Version"] == "2026-07-28"
    assert first.headers["Mcp-Method"] == "server/discover"


@pytest.mark.parametrize(
    ("route", "reason", "fragment"),
    [
        ("modern-future", "UnsupportedProtocolVersion", "2099-01-01"),
        ("modern-legacy-list", None, "2025-06-18"),
        ("modern-bad-result", None, "2025-06-18"),
    ],
)
async def test_discover_outcomes(
    hostile_http: HostileHttpServer, route: str, reason: str | None, fragment: str
) -> None:
    """-32022 naming only unknown revisions fails (Stalled); a discover result without a
    stateless revision, or one that does not parse, falls back to initialize."""
    if reason is not None:
        error = await probe_error(hostile_http.url(route))
        assert error.reason == reason
        assert fragment in error.message
        return
    result = await probe_mcp_server(hostile_http.url(route), "streamable-http", timeout=TIMEOUT)
    assert result.protocol_version == fragment


async def test_sdk_server_pagination(mcp_paginated_server: McpServerProcess) -> None:
    result = await probe_mcp_server(mcp_paginated_server.url, "streamable-http", timeout=TIMEOUT)
    assert [tool.name for tool in result.tools] == mcp_paginated_server.tool_names
    assert result.tool_count == 25 == len(mcp_paginated_server.tool_names)


async def test_sdk_server_pagination_capped(mcp_paginated_server: McpServerProcess) -> None:
    result = await probe_mcp_server(
        mcp_paginated_server.url, "streamable-http", timeout=TIMEOUT, max_tools=7
    )
    assert [tool.name for tool in result.tools] == mcp_paginated_server.tool_names[:7]
    assert result.tool_count == 25
    assert result.tools_truncated


async def test_sdk_server_with_10000_tools(mcp_huge_server: McpServerProcess) -> None:
    result = await probe_mcp_server(mcp_huge_server.url, "streamable-http", timeout=TIMEOUT)
    assert result.tool_count == 10_000
    assert [tool.name for tool in result.tools] == mcp_huge_server.tool_names[:100]
    assert [tool.name for tool in result.tools[:3]] == list(REAL_TOOLS)
    assert result.tools[3] == McpTool("tool_00000", "Generated tool number 0.")


async def test_server_taken_away_and_brought_back(mcp_streamable_server: McpServerProcess) -> None:
    with mcp_streamable_server.stopped():
        started = time.monotonic()
        error = await probe_error(mcp_streamable_server.url)
        assert error.reason == "ConnectionFailed"
        assert time.monotonic() - started < 5
    result = await probe_mcp_server(mcp_streamable_server.url, "streamable-http", timeout=TIMEOUT)
    assert result.tool_count == 3


async def test_streamable_probe_of_an_sse_server_says_to_switch(
    mcp_sse_server: McpServerProcess,
) -> None:
    error = await probe_error(mcp_sse_server.url, "streamable-http")
    assert error.reason == "HTTPError"
    assert "405" in error.message
    assert "set the transport to sse" in error.message


async def test_sse_probe_of_a_streamable_server_fails_clearly(
    mcp_streamable_server: McpServerProcess,
) -> None:
    error = await probe_error(mcp_streamable_server.url, "sse")
    assert error.reason == "HTTPError"
    assert "HTTP 4" in error.message


async def test_a_wrong_path_on_an_sdk_server(mcp_streamable_server: McpServerProcess) -> None:
    url = mcp_streamable_server.url.replace("/mcp", "/nope")
    error = await probe_error(url)
    assert error.reason == "HTTPError"
    assert "HTTP 404" in error.message
    assert "/mcp" in error.message


async def test_a_shared_client_is_used_and_left_open(
    mcp_streamable_server: McpServerProcess, mcp_sse_server: McpServerProcess
) -> None:
    async with httpx.AsyncClient() as client:
        for url, transport in (
            (mcp_streamable_server.url, "streamable-http"),
            (mcp_sse_server.url, "sse"),
        ):
            result = await probe_mcp_server(url, transport, timeout=TIMEOUT, client=client)  # type: ignore[arg-type]
            assert result.tool_count == 3
        assert not client.is_closed


# -- pagination and bounds (hostile servers) -----------------------------------------------


async def test_many_pages(hostile_http: HostileHttpServer) -> None:
    result = await probe_mcp_server(
        hostile_http.url("paged?pages=200&per_page=3"),
        "streamable-http",
        timeout=TIMEOUT,
        max_tools=10,
    )
    assert result.tool_count == 600
    assert [tool.name for tool in result.tools][:4] == [
        "page0000_tool0",
        "page0000_tool1",
        "page0000_tool2",
        "page0001_tool0",
    ]
    assert len(result.tools) == 10


async def test_page_bound(hostile_http: HostileHttpServer) -> None:
    ok = await probe_mcp_server(
        hostile_http.url("paged?pages=20&per_page=1"),
        "streamable-http",
        timeout=TIMEOUT,
        max_pages=20,
    )
    assert ok.tool_count == 20
    error = await probe_error(hostile_http.url("paged?pages=21&per_page=1"), max_pages=20)
    assert error.reason == "TooManyTools"
    assert "20 pages" in error.message


async def test_endless_pagination_is_bounded(hostile_http: HostileHttpServer) -> None:
    error = await probe_error(hostile_http.url("endless"), max_pages=30)
    assert error.reason == "TooManyTools"


async def test_a_repeated_cursor_is_a_protocol_error(hostile_http: HostileHttpServer) -> None:
    error = await probe_error(hostile_http.url("cursor-loop"))
    assert error.reason == "ProtocolError"
    assert "cursor" in error.message


async def test_10000_tools_are_counted_and_capped(hostile_http: HostileHttpServer) -> None:
    result = await probe_mcp_server(hostile_http.url("huge"), "streamable-http", timeout=TIMEOUT)
    assert result.tool_count == HUGE_TOOL_COUNT
    assert len(result.tools) == 100
    assert result.tools[-1].name == "tool_00099"


async def test_tool_total_bound(hostile_http: HostileHttpServer) -> None:
    error = await probe_error(hostile_http.url("huge"), max_total_tools=5000)
    assert error.reason == "TooManyTools"
    assert "5000 tools" in error.message


async def test_response_size_bound(hostile_http: HostileHttpServer) -> None:
    error = await probe_error(hostile_http.url("too-large"), max_response_bytes=16_000)
    assert error.reason == "ResponseTooLarge"


async def test_long_texts_are_truncated(hostile_http: HostileHttpServer) -> None:
    result = await probe_mcp_server(
        hostile_http.url("too-large?long=1"), "streamable-http", timeout=TIMEOUT
    )
    assert result.instructions is not None
    assert len(result.instructions) == 2048
    assert result.instructions.endswith("\u2026")
    tool = result.tools[0]
    assert len(tool.name) == 256
    assert tool.description is not None
    assert len(tool.description) == 1024


async def test_server_without_tools_capability(hostile_http: HostileHttpServer) -> None:
    hostile_http.clear()
    result = await probe_mcp_server(
        hostile_http.url("mcp?no_tools=1"), "streamable-http", timeout=TIMEOUT
    )
    assert result.capabilities == ("prompts",)
    assert result.tools == ()
    assert result.tool_count == 0
    assert not any(b"tools/list" in request.body for request in hostile_http.requests)


async def test_huge_tool_list_over_legacy_sse(hostile_http: HostileHttpServer) -> None:
    result = await probe_mcp_server(
        hostile_http.url("sse?tools=huge"), "sse", timeout=TIMEOUT, max_tools=5
    )
    assert result.tool_count == HUGE_TOOL_COUNT
    assert [tool.name for tool in result.tools] == [f"tool_{i:05d}" for i in range(5)]


# -- transport details ---------------------------------------------------------------------


async def test_session_headers_and_delete(hostile_http: HostileHttpServer) -> None:
    hostile_http.clear()
    url = hostile_http.url("paged?pages=2&per_page=2")
    result = await probe_mcp_server(
        url, "streamable-http", timeout=TIMEOUT, headers={"X-Team": "blue"}
    )
    assert result.protocol_version == "2025-06-18"
    assert result.capabilities == ("logging", "tools")
    requests = hostile_http.requests
    methods = [request.method for request in requests]
    # discover (answered "method not found"), init, initialized, 2 pages, end of session
    assert methods == ["POST", "POST", "POST", "POST", "POST", "DELETE"]
    _discover, init, *later = requests
    assert "Mcp-Session-Id" not in init.headers
    assert b'"protocolVersion": "2025-11-25"' in init.body
    assert "application/json" in init.headers["Accept"]
    assert "text/event-stream" in init.headers["Accept"]
    session = later[0].headers["Mcp-Session-Id"]
    assert session.startswith("hostile-")
    for request in later:
        assert request.headers["Mcp-Session-Id"] == session
        assert request.headers["MCP-Protocol-Version"] == "2025-06-18"
    assert all(request.headers["X-Team"] == "blue" for request in requests)


async def test_resumes_a_stream_closed_after_a_priming_event(
    hostile_http: HostileHttpServer,
) -> None:
    hostile_http.clear()
    result = await probe_mcp_server(
        hostile_http.url("resumable"), "streamable-http", timeout=TIMEOUT
    )
    assert [tool.name for tool in result.tools] == ["alpha", "beta"]
    resumed = [request for request in hostile_http.requests if request.method == "GET"]
    assert len(resumed) == 3  # server/discover (method not found), initialize and tools/list
    assert all(request.headers["Last-Event-ID"].startswith("evt-") for request in resumed)


async def test_same_origin_redirect_is_followed(hostile_http: HostileHttpServer) -> None:
    result = await probe_mcp_server(
        hostile_http.url("redirect"), "streamable-http", timeout=TIMEOUT
    )
    assert result.tool_count == 2


async def test_redirect_to_another_origin_is_refused(hostile_http: HostileHttpServer) -> None:
    error = await probe_error(hostile_http.url("redirect-away"), headers=CANARY_HEADERS)
    assert error.reason == "HTTPError"
    assert "307" in error.message
    assert "127.0.0.2" in error.message


async def test_legacy_sse_endpoint_on_another_origin_is_rebased(
    hostile_http: HostileHttpServer,
) -> None:
    hostile_http.clear()
    result = await probe_mcp_server(
        hostile_http.url("sse"), "sse", timeout=TIMEOUT, headers=CANARY_HEADERS
    )
    assert result.server_name == "hostile-sse"
    assert [tool.name for tool in result.tools] == ["alpha", "beta"]
    posts = [request for request in hostile_http.requests if request.method == "POST"]
    assert len(posts) == 4  # discover (on its own stream), initialize, initialized, tools/list
    assert all(request.path.startswith("/messages?session_id=") for request in posts)
    assert all(request.headers["Authorization"] == f"Bearer {CANARY}" for request in posts)


@pytest.mark.parametrize("version", HANDSHAKE_PROTOCOL_VERSIONS)
async def test_every_known_protocol_version_is_accepted(
    hostile_http: HostileHttpServer, version: str
) -> None:
    for route, transport in (
        (f"mcp?version={version}", "streamable-http"),
        (f"sse?version={version}", "sse"),
    ):
        result = await probe_mcp_server(hostile_http.url(route), transport, timeout=TIMEOUT)  # type: ignore[arg-type]
        assert result.protocol_version == version


async def test_server_requests_are_answered(hostile_http: HostileHttpServer) -> None:
    hostile_http.clear()
    result = await probe_mcp_server(hostile_http.url("sse?ping=1"), "sse", timeout=TIMEOUT)
    assert result.tool_count == 2
    replies = [json.loads(r.body) for r in hostile_http.requests if b'"srv-1"' in r.body]
    assert replies == [{"jsonrpc": "2.0", "id": "srv-1", "result": {}}]


async def test_legacy_sse_without_endpoint_event(hostile_http: HostileHttpServer) -> None:
    error = await probe_error(hostile_http.url("sse-no-endpoint"), "sse")
    assert error.reason == "ProtocolError"
    assert "endpoint" in error.message


# -- hostile answers map to clear reasons --------------------------------------------------


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_html_page_is_not_mcp(
    hostile_http: HostileHttpServer, transport: McpTransport
) -> None:
    error = await probe_error(hostile_http.url("html"), transport)
    assert error.reason == "NotMCP"
    assert "text/html" in error.message
    assert "Welcome to nginx!" in error.message
    assert "web page" in error.message


@pytest.mark.parametrize(
    ("route", "reason", "fragment"),
    [
        ("plain", "NotMCP", "text/plain starting with 'OK'"),
        ("garbage", "InvalidJSONRPC", "('this is {not json')"),
        ("not-jsonrpc", "InvalidJSONRPC", "not a JSON-RPC 2.0 message"),
        ("rpc-error", "ProtocolError", "-32603: 'Internal error: database unavailable'"),
        ("wrong-version", "UnsupportedProtocolVersion", "'1999-01-01'"),
        ("no-server-info", "ProtocolError", "serverInfo"),
        ("accepted", "ProtocolError", "sent no answer"),
        ("does-not-exist", "HTTPError", "HTTP 404 Not Found"),
    ],
)
async def test_hostile_answers(
    hostile_http: HostileHttpServer, route: str, reason: str, fragment: str
) -> None:
    error = await probe_error(hostile_http.url(route))
    assert error.reason == reason
    assert fragment in error.message
    assert hostile_http.base_url in error.message


async def test_unreachable_port_fails_fast(unreachable_url: str) -> None:
    for transport in ("streamable-http", "sse"):
        started = time.monotonic()
        error = await probe_error(unreachable_url, transport)
        assert error.reason == "ConnectionFailed"
        assert "127.0.0.1" in error.message
        assert time.monotonic() - started < 3


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_hanging_server_times_out_on_time(
    hanging_server: HangingServer, transport: McpTransport
) -> None:
    started = time.monotonic()
    error = await probe_error(hanging_server.url(), transport, timeout=1.0)
    elapsed = time.monotonic() - started
    assert error.reason == "Timeout"
    assert "1 s" in error.message
    assert 0.9 < elapsed < 1.0 + 0.75


async def test_invalid_url_and_headers() -> None:
    assert (await probe_error("ftp://example.com/mcp")).reason == "InvalidURL"
    assert (await probe_error("/mcp")).reason == "InvalidURL"
    error = await probe_error(
        "http://127.0.0.1:9/mcp", headers={"Authorization": f"Bearer {CANARY}\nX: y"}
    )
    assert error.reason == "InvalidHeaders"
    assert "Authorization" in error.message
    assert CANARY not in error.message


# -- secrets never appear in messages ------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "transport", "reason"),
    [
        ("echo-headers", "streamable-http", "NotMCP"),
        ("echo-headers", "sse", "NotMCP"),
        ("echo-headers-401", "streamable-http", "HTTPError"),
        ("echo-headers-401", "sse", "HTTPError"),
        ("html", "streamable-http", "NotMCP"),
        ("garbage", "streamable-http", "InvalidJSONRPC"),
        ("rpc-error", "streamable-http", "ProtocolError"),
        ("redirect-away", "streamable-http", "HTTPError"),
        ("sse-no-endpoint", "sse", "ProtocolError"),
    ],
)
async def test_canary_header_values_never_appear(
    hostile_http: HostileHttpServer, route: str, transport: McpTransport, reason: str
) -> None:
    url = (
        hostile_http.url(route).replace("http://", f"http://user:{CANARY_KEY}x@")
        + f"?token={CANARY}q"
    )
    error = await probe_error(url, transport, headers=CANARY_HEADERS)
    assert error.reason == reason
    for text in (error.message, str(error), repr(error)):
        assert "CANARY" not in text
    if route.startswith("echo-headers"):
        # The server did echo them: the message shows it, redacted.
        assert "[redacted]" in error.message


async def test_canary_in_timeout_and_connection_errors(
    hanging_server: HangingServer, unreachable_url: str
) -> None:
    for url, timeout in ((hanging_server.url(), 0.5), (unreachable_url, TIMEOUT)):
        error = await probe_error(url + f"?token={CANARY}", headers=CANARY_HEADERS, timeout=timeout)
        assert "CANARY" not in repr(error)


def test_secrets_are_scrubbed_before_text_is_cut() -> None:
    # A secret straddling the cut must not leave its prefix behind.
    body = "x" * 95 + CANARY + " trailing text"
    shown = snippet(
        body, 100, secret_values([("Authorization", f"Bearer {CANARY}")], httpx.URL("http://h/"))
    )
    assert CANARY[:5] not in shown
    assert shown.startswith("x" * 95)
