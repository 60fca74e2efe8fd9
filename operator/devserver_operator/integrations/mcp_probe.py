"""Verify that a URL serves MCP: ``initialize``, ``notifications/initialized``, ``tools/list``.

:func:`probe_mcp_server` is what the MCPServer handler calls for the ``Verified`` condition.
It speaks both HTTP transports of MCP (see :mod:`.mcp_transports`), offers the newest
protocol version it knows and accepts any of :data:`SUPPORTED_PROTOCOL_VERSIONS` in the
answer, follows ``tools/list`` pagination within bounds, and ends the session. The whole probe
is bounded by ``timeout`` (a total deadline, ending the session included).

Every failure is an :class:`McpProbeError` with a stable ``reason`` (see
:data:`MCP_PROBE_REASONS`) and a one-sentence message that never contains header values.
The probe has no dependency on the MCP SDK: it is plain JSON-RPC over httpx.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final, Literal

import httpx

from devserver_operator.integrations.mcp_errors import (
    MCP_PROBE_REASONS,
    McpProbeError,
    McpProbeReason,
    display_url,
    redact,
    secret_values,
    snippet,
    truncate,
)
from devserver_operator.integrations.mcp_transports import (
    LegacySseConnection,
    McpConnection,
    StreamableHttpConnection,
)

__all__ = [
    "LATEST_PROTOCOL_VERSION",
    "MCP_PROBE_REASONS",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "McpProbeError",
    "McpProbeReason",
    "McpProbeResult",
    "McpTool",
    "McpTransport",
    "probe_mcp_server",
]

McpTransport = Literal["streamable-http", "sse"]

SUPPORTED_PROTOCOL_VERSIONS: Final[tuple[str, ...]] = (
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
)
"""The protocol versions reachable with the ``initialize`` handshake, oldest first."""
LATEST_PROTOCOL_VERSION: Final = SUPPORTED_PROTOCOL_VERSIONS[-1]

DEFAULT_MAX_PAGES: Final = 1000
DEFAULT_MAX_TOTAL_TOOLS: Final = 100_000
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024

MAX_DESCRIPTION_CHARS: Final = 1024
MAX_TOOL_NAME_CHARS: Final = 256
MAX_INSTRUCTIONS_CHARS: Final = 2048
MAX_SERVER_FIELD_CHARS: Final = 256
MAX_CAPABILITIES: Final = 64
MAX_RAW_CAPABILITIES_CHARS: Final = 16 * 1024
"""Capabilities larger than this (as JSON) keep only their names, with empty objects."""

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")


@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool as ``tools/list`` named it (description cut to 1024 characters)."""

    name: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class McpProbeResult:
    """What a successful probe learned about the server."""

    server_name: str
    server_version: str
    protocol_version: str
    capabilities: tuple[str, ...]
    """The names of the server's top-level capabilities, sorted (e.g. ``("prompts", "tools")``)."""
    raw_capabilities: Mapping[str, Any]
    """The ``capabilities`` object as the server sent it (bounded in size)."""
    tools: tuple[McpTool, ...]
    """The first ``max_tools`` tools, in the server's order."""
    tool_count: int
    """The true number of tools over all pages (may exceed ``len(tools)``)."""
    duration_seconds: float
    transport: McpTransport = "streamable-http"
    server_title: str | None = None
    instructions: str | None = None
    """The server's instructions, cut to 2048 characters."""

    @property
    def tools_truncated(self) -> bool:
        """True when the server has more tools than ``tools`` lists."""
        return self.tool_count > len(self.tools)


def _client_version() -> str:
    try:
        return metadata.version("devserver-workflow-operator")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def _validate_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise McpProbeError(
            "InvalidURL",
            "The MCP server URL cannot be parsed; give an absolute http:// or https:// URL.",
        ) from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise McpProbeError(
            "InvalidURL",
            f"The MCP server URL {snippet(display_url(parsed), 200)!r} is not an absolute "
            "http:// or https:// URL; give the full URL including the path (e.g. /mcp).",
        )
    return parsed


def _validate_headers(headers: Mapping[str, str] | None) -> httpx.Headers:
    result = httpx.Headers()
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise McpProbeError(
                "InvalidHeaders",
                f"The header name {snippet(str(name), 60)!r} is not a valid HTTP header name; "
                "fix the headers of the verification.",
            )
        if not isinstance(value, str) or not _HEADER_VALUE.match(value):
            raise McpProbeError(
                "InvalidHeaders",
                f"The value of header {name!r} has characters HTTP headers cannot carry "
                "(e.g. a line break or non-ASCII text); fix the Secret or value it comes from.",
            )
        result[name] = value
    if "user-agent" not in result:
        result["User-Agent"] = f"devserver-operator/{_client_version()} (mcp-probe)"
    return result


def _required_string(value: Any, what: str, conn: McpConnection) -> str:
    if not isinstance(value, str) or not value:
        raise McpProbeError(
            "ProtocolError",
            f"The MCP server at {conn.shown_url} answered initialize without {what}; it does "
            "not follow the MCP specification.",
        )
    return value


def _bounded_capabilities(raw: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    names = sorted(truncate(name, 64) for name in raw)[:MAX_CAPABILITIES]
    if len(raw) <= MAX_CAPABILITIES:
        try:
            if len(json.dumps(raw)) <= MAX_RAW_CAPABILITIES_CHARS:
                return tuple(names), dict(raw)
        except (TypeError, ValueError):  # pragma: no cover - it came from JSON
            pass
    return tuple(names), {name: {} for name in names}


async def _initialize(conn: McpConnection) -> dict[str, Any]:
    result = await conn.request(
        "initialize",
        {
            "protocolVersion": LATEST_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {
                "name": "devserver-operator",
                "title": "devserver-operator MCP verification",
                "version": _client_version(),
            },
        },
        what="initialize",
    )
    version = _required_string(result.get("protocolVersion"), "a protocolVersion", conn)
    if version not in SUPPORTED_PROTOCOL_VERSIONS:
        raise McpProbeError(
            "UnsupportedProtocolVersion",
            f"The MCP server at {conn.shown_url} speaks protocol version "
            f"{snippet(version, 40)!r}, which the operator does not support (it speaks "
            f"{', '.join(SUPPORTED_PROTOCOL_VERSIONS)}); use a server or SDK release that "
            "supports one of them.",
        )
    if not isinstance(result.get("capabilities"), dict):
        raise McpProbeError(
            "ProtocolError",
            f"The MCP server at {conn.shown_url} answered initialize without a capabilities "
            "object; it does not follow the MCP specification.",
        )
    server_info = result.get("serverInfo")
    if not isinstance(server_info, dict):
        raise McpProbeError(
            "ProtocolError",
            f"The MCP server at {conn.shown_url} answered initialize without serverInfo; it "
            "does not follow the MCP specification.",
        )
    _required_string(server_info.get("name"), "serverInfo.name", conn)
    conn.protocol_version = version
    return result


async def _list_tools(
    conn: McpConnection, *, max_tools: int, max_pages: int, max_total_tools: int
) -> tuple[list[McpTool], int]:
    tools: list[McpTool] = []
    count = 0
    cursor: str | None = None
    seen_cursors: set[bytes] = set()
    for page in range(1, max_pages + 1):
        what = "tools/list" if page == 1 else f"tools/list (page {page})"
        params = None if cursor is None else {"cursor": cursor}
        result = await conn.request("tools/list", params, what=what)
        page_tools = result.get("tools")
        if not isinstance(page_tools, list):
            raise McpProbeError(
                "ProtocolError",
                f"The MCP server at {conn.shown_url} answered {what} without a tools list; it "
                "does not follow the MCP specification.",
            )
        for tool in page_tools:
            count += 1
            name = tool.get("name") if isinstance(tool, dict) else None
            if not isinstance(name, str) or not name:
                raise McpProbeError(
                    "ProtocolError",
                    f"The MCP server at {conn.shown_url} listed tool number {count} without a "
                    "name; it does not follow the MCP specification.",
                )
            if len(tools) < max_tools:
                description = tool.get("description")
                tools.append(
                    McpTool(
                        name=truncate(name, MAX_TOOL_NAME_CHARS),
                        description=truncate(description, MAX_DESCRIPTION_CHARS)
                        if isinstance(description, str)
                        else None,
                    )
                )
        if count > max_total_tools:
            raise McpProbeError(
                "TooManyTools",
                f"The MCP server at {conn.shown_url} lists more than {max_total_tools} tools; "
                "the operator does not verify servers with that many tools.",
            )
        next_cursor = result.get("nextCursor")
        if next_cursor is None or next_cursor == "":
            return tools, count
        if not isinstance(next_cursor, str):
            raise McpProbeError(
                "ProtocolError",
                f"The MCP server at {conn.shown_url} answered {what} with a nextCursor that is "
                "not a string; it does not follow the MCP specification.",
            )
        digest = hashlib.sha256(next_cursor.encode()).digest()
        if digest in seen_cursors:
            raise McpProbeError(
                "ProtocolError",
                f"The MCP server at {conn.shown_url} repeated a tools/list cursor on page "
                f"{page}, so its pagination never ends; check the server's implementation.",
            )
        seen_cursors.add(digest)
        cursor = next_cursor
    raise McpProbeError(
        "TooManyTools",
        f"The MCP server at {conn.shown_url} paginates tools/list over more than {max_pages} "
        "pages; the operator does not verify servers with that many pages.",
    )


async def _run(
    conn: McpConnection, *, max_tools: int, max_pages: int, max_total_tools: int
) -> tuple[dict[str, Any], list[McpTool], int]:
    await conn.start()
    init = await _initialize(conn)
    await conn.notify("notifications/initialized", None)
    capabilities = init["capabilities"]
    if "tools" not in capabilities:
        return init, [], 0  # tools/list is only defined for servers with the capability
    tools, count = await _list_tools(
        conn, max_tools=max_tools, max_pages=max_pages, max_total_tools=max_total_tools
    )
    return init, tools, count


async def probe_mcp_server(
    url: str,
    transport: McpTransport,
    *,
    timeout: float,  # noqa: ASYNC109 - a total deadline, enforced with asyncio.timeout_at
    headers: Mapping[str, str] | None = None,
    max_tools: int = 100,
    client: httpx.AsyncClient | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
    max_total_tools: int = DEFAULT_MAX_TOTAL_TOOLS,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> McpProbeResult:
    """Connect to the MCP server at ``url``, initialize a session, list its tools, close it.

    ``url`` is the full MCP endpoint (``.../mcp`` for streamable HTTP, ``.../sse`` for the
    legacy SSE transport). ``timeout`` bounds the whole probe in seconds. ``headers`` go with
    every request (e.g. ``Authorization``); their values never appear in error messages.
    ``tools`` in the result holds at most ``max_tools`` entries while ``tool_count`` counts
    all of them; more than ``max_total_tools`` tools or ``max_pages`` pages fail with
    ``TooManyTools``, and a single answer larger than ``max_response_bytes`` with
    ``ResponseTooLarge``. Pass ``client`` to reuse a connection pool (it is not closed; its
    redirect setting is ignored).

    Raises :class:`McpProbeError` on every failure of the server; ``ValueError`` for
    arguments that are wrong in the code (a bad transport name or a non-positive bound).
    """
    if transport not in ("streamable-http", "sse"):
        raise ValueError(f"unknown MCP transport {transport!r}")
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    if max_tools < 0 or max_pages < 1 or max_total_tools < 0 or max_response_bytes < 1:
        raise ValueError("the bounds of the probe must be positive")
    started = time.monotonic()
    deadline = asyncio.get_running_loop().time() + timeout
    parsed = _validate_url(url)
    secrets = secret_values(list((headers or {}).items()), parsed)
    try:
        request_headers = _validate_headers(headers)
        return await _probe(
            parsed,
            transport,
            deadline=deadline,
            budget=timeout,
            started=started,
            headers=request_headers,
            secrets=secrets,
            client=client,
            max_tools=max_tools,
            max_pages=max_pages,
            max_total_tools=max_total_tools,
            max_response_bytes=max_response_bytes,
        )
    except McpProbeError as exc:
        safe = redact(exc.message, secrets)
        if safe == exc.message:
            raise
        raise McpProbeError(exc.reason, safe) from None


async def _probe(
    url: httpx.URL,
    transport: McpTransport,
    *,
    deadline: float,
    budget: float,
    started: float,
    headers: httpx.Headers,
    secrets: list[str],
    client: httpx.AsyncClient | None,
    max_tools: int,
    max_pages: int,
    max_total_tools: int,
    max_response_bytes: int,
) -> McpProbeResult:
    own_client = client is None
    http = client if client is not None else httpx.AsyncClient(timeout=budget)
    connection_type: type[McpConnection] = (
        StreamableHttpConnection if transport == "streamable-http" else LegacySseConnection
    )
    conn = connection_type(
        http,
        url,
        headers=headers,
        shown_url=display_url(url),
        secrets=secrets,
        max_response_bytes=max_response_bytes,
    )
    try:
        try:
            async with asyncio.timeout_at(deadline):
                init, tools, count = await _run(
                    conn, max_tools=max_tools, max_pages=max_pages, max_total_tools=max_total_tools
                )
        except TimeoutError as exc:
            raise McpProbeError(
                "Timeout",
                f"The MCP server at {conn.shown_url} did not finish the verification within "
                f"{budget:g} s (stuck {conn.phase}); check that it is up and speaks MCP over "
                f"{transport}, or raise the verification timeout if it starts slowly.",
            ) from exc
    finally:
        # Ending the session is best effort, within what is left of the deadline.
        await conn.aclose(deadline)
        if own_client:
            await http.aclose()
    server_info: dict[str, Any] = init["serverInfo"]
    names, raw = _bounded_capabilities(init["capabilities"])
    version = server_info.get("version")
    title = server_info.get("title")
    instructions = init.get("instructions")
    return McpProbeResult(
        server_name=truncate(server_info["name"], MAX_SERVER_FIELD_CHARS),
        server_version=truncate(version, MAX_SERVER_FIELD_CHARS)
        if isinstance(version, str)
        else "",
        server_title=truncate(title, MAX_SERVER_FIELD_CHARS) if isinstance(title, str) else None,
        protocol_version=init["protocolVersion"],
        capabilities=names,
        raw_capabilities=raw,
        instructions=truncate(instructions, MAX_INSTRUCTIONS_CHARS)
        if isinstance(instructions, str) and instructions
        else None,
        tools=tuple(tools),
        tool_count=count,
        duration_seconds=time.monotonic() - started,
        transport=transport,
    )
