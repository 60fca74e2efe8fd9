"""Verify that a URL serves MCP: negotiate a protocol revision, then ``tools/list``.

:func:`probe_mcp_server` is what the MCPServer handler calls for the ``Verified`` condition.
It negotiates the way the official SDK's client does in its default ``mode="auto"``
(``mcp.client._probe.negotiate_auto``):

1. ``server/discover`` at the newest stateless revision (2026-07-28), with the per-request
   ``_meta`` envelope and the ``MCP-Protocol-Version``/``Mcp-Method`` headers. A server that
   answers with a revision both sides speak is used statelessly: no ``initialize``, no
   session, every later request carries the envelope.
2. An ``UnsupportedProtocolVersion`` error (-32022) naming another stateless revision both
   sides speak is retried once at that revision; one naming only revisions the operator does
   not speak fails with ``UnsupportedProtocolVersion``.
3. Anything else that is not positive evidence of a stateless server (a JSON-RPC error, an
   HTTP 4xx/5xx, an answer that is not MCP, no answer within 10 s) falls back to the
   ``initialize`` handshake (revisions 2024-11-05 .. 2025-11-25) and
   ``notifications/initialized``; an ``initialize`` rejected with -32022 naming a stateless
   revision re-probes ``server/discover`` once.

It then follows ``tools/list`` pagination within bounds and ends the session (handshake
revisions only). The whole probe is bounded by ``timeout`` (a total deadline, ending the
session included).

The protocol itself comes from the official SDK's wire package ``mcp-types``: the revision
lists (:mod:`mcp_types.version`), the request messages, the ``_meta`` keys, the error codes
and the models that validate the ``initialize``/``server/discover`` answers. The HTTP layer
(:mod:`.mcp_transports`) is the operator's own, because it bounds every read and the total
time, which the SDK's client does not (see docs/mcpserver.md for the measurements).

Every failure is an :class:`McpProbeError` with a stable ``reason`` (see
:data:`MCP_PROBE_REASONS`) and a one-sentence message that never contains header values.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final, Literal, TypeVar

import httpx
import mcp_types
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    KNOWN_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)
from pydantic import ValidationError

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
    "HANDSHAKE_PROTOCOL_VERSIONS",
    "LATEST_PROTOCOL_VERSION",
    "MCP_PROBE_REASONS",
    "MODERN_PROTOCOL_VERSIONS",
    "SUPPORTED_PROTOCOL_VERSIONS",
    "Agreement",
    "McpProbeError",
    "McpProbeReason",
    "McpProbeResult",
    "McpTool",
    "McpTransport",
    "Negotiation",
    "probe_mcp_server",
    "run_mcp_session",
    "stateless_headers",
    "wire",
]

McpTransport = Literal["streamable-http", "sse"]
Negotiation = Literal["discover", "initialize"]
"""How the revision was agreed: stateless ``server/discover`` or the ``initialize`` handshake."""

SUPPORTED_PROTOCOL_VERSIONS: Final[tuple[str, ...]] = KNOWN_PROTOCOL_VERSIONS
"""Every revision the probe negotiates (the SDK's list, oldest first): the ``initialize``
revisions (:data:`HANDSHAKE_PROTOCOL_VERSIONS`) and the stateless ones
(:data:`MODERN_PROTOCOL_VERSIONS`)."""
LATEST_PROTOCOL_VERSION: Final = SUPPORTED_PROTOCOL_VERSIONS[-1]

DISCOVER_TIMEOUT_SECONDS: Final = 10.0
"""How long ``server/discover`` may take before falling back (the SDK's client waits 10 s);
never more than half of what is left of the probe's deadline."""

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
    negotiation: Negotiation = "initialize"
    """``discover`` for a stateless (2026-07-28) server, ``initialize`` for the handshake."""
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


def _client_info() -> dict[str, Any]:
    info = mcp_types.Implementation(
        name="devserver-operator",
        title="devserver-operator MCP verification",
        version=_client_version(),
    )
    return info.model_dump(by_alias=True, mode="json", exclude_none=True)


def wire(request: mcp_types.ClientRequest | Any) -> tuple[str, dict[str, Any] | None]:
    """The method and params of an SDK request model, as they go on the wire."""
    data: dict[str, Any] = request.model_dump(by_alias=True, mode="json", exclude_none=True)
    return data["method"], data.get("params")


def _validation_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "the result"
    return f"{where}: {first.get('msg', 'invalid')}"


def _protocol_error(conn: McpConnection, what: str, problem: str) -> McpProbeError:
    return McpProbeError(
        "ProtocolError",
        f"The MCP server at {conn.shown_url} answered {what} with a result that does not "
        f"follow the MCP specification ({snippet(problem, 160)}).",
    )


def _bounded_capabilities(raw: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    names = sorted(truncate(name, 64) for name in raw)[:MAX_CAPABILITIES]
    if len(raw) <= MAX_CAPABILITIES:
        try:
            if len(json.dumps(raw)) <= MAX_RAW_CAPABILITIES_CHARS:
                return tuple(names), dict(raw)
        except (TypeError, ValueError):  # pragma: no cover - it came from JSON
            pass
    return tuple(names), {name: {} for name in names}


@dataclass(frozen=True, slots=True)
class Agreement:
    """The outcome of the negotiation: the revision and what the server said about itself."""

    negotiation: Negotiation
    protocol_version: str
    capabilities: Mapping[str, Any]
    server_info: mcp_types.Implementation | None
    instructions: str | None

    def envelope(self) -> dict[str, Any] | None:
        """The ``_meta`` every stateless request carries (``None`` for the handshake)."""
        if self.negotiation != "discover":
            return None
        return _envelope(self.protocol_version)


def _envelope(version: str) -> dict[str, Any]:
    return {
        mcp_types.PROTOCOL_VERSION_META_KEY: version,
        mcp_types.CLIENT_INFO_META_KEY: _client_info(),
        mcp_types.CLIENT_CAPABILITIES_META_KEY: {},
    }


def stateless_headers(version: str, method: str) -> dict[str, str]:
    return {"MCP-Protocol-Version": version, "Mcp-Method": method}


def _supported_in(data: Any) -> list[str] | None:
    """``data.supported`` of an UnsupportedProtocolVersion (-32022) error, if well formed."""
    try:
        return mcp_types.UnsupportedProtocolVersionErrorData.model_validate(data).supported
    except ValidationError:
        return None


async def _initialize(conn: McpConnection) -> Agreement:
    method, params = wire(
        mcp_types.InitializeRequest(
            params=mcp_types.InitializeRequestParams(
                protocol_version=LATEST_HANDSHAKE_VERSION,
                capabilities=mcp_types.ClientCapabilities(),
                client_info=mcp_types.Implementation.model_validate(_client_info()),
            )
        )
    )
    result = await conn.request(method, params, what="initialize")
    version = result.get("protocolVersion")
    if isinstance(version, str) and version not in HANDSHAKE_PROTOCOL_VERSIONS:
        raise McpProbeError(
            "UnsupportedProtocolVersion",
            f"The MCP server at {conn.shown_url} speaks protocol version "
            f"{snippet(version, 40)!r}, which the operator does not support (it speaks "
            f"{', '.join(SUPPORTED_PROTOCOL_VERSIONS)}); use a server or SDK release that "
            "supports one of them.",
        )
    try:
        init = mcp_types.InitializeResult.model_validate(result, by_name=False)
    except ValidationError as exc:
        raise _protocol_error(conn, "initialize", _validation_problem(exc)) from None
    conn.protocol_version = init.protocol_version
    method, params = wire(mcp_types.InitializedNotification())
    await conn.notify(method, params)
    return Agreement(
        negotiation="initialize",
        protocol_version=init.protocol_version,
        capabilities=result["capabilities"],
        server_info=init.server_info,
        instructions=init.instructions,
    )


async def _discover(conn: McpConnection, version: str, deadline: float) -> dict[str, Any]:
    """Send one ``server/discover`` at ``version``, bounded by the discover timeout."""
    method, params = wire(
        mcp_types.DiscoverRequest(params=mcp_types.RequestParams(_meta=_envelope(version)))
    )
    loop = asyncio.get_running_loop()
    limit = min(loop.time() + DISCOVER_TIMEOUT_SECONDS, loop.time() + (deadline - loop.time()) / 2)
    async with asyncio.timeout_at(limit):
        return await conn.request(
            method, params, what="server/discover", headers=stateless_headers(version, method)
        )


def _adopt(raw: Mapping[str, Any]) -> Agreement | None:
    """The agreement a ``server/discover`` result offers; ``None`` when it is no evidence."""
    try:
        result = mcp_types.DiscoverResult.model_validate(raw, by_name=False)
    except ValidationError:
        return None  # unparseable: not evidence of a stateless server (as the SDK decides)
    mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in result.supported_versions]
    if not mutual:
        return None  # a server that advertises only handshake revisions
    server_info: mcp_types.Implementation | None = None
    stamp = (result.meta or {}).get(mcp_types.SERVER_INFO_META_KEY)
    if stamp is not None:
        try:
            server_info = mcp_types.Implementation.model_validate(stamp)
        except ValidationError:
            server_info = None  # display-only, per the specification
    return Agreement(
        negotiation="discover",
        protocol_version=mutual[-1],
        capabilities=raw["capabilities"],
        server_info=server_info,
        instructions=result.instructions,
    )


Connect = Callable[[], Awaitable[McpConnection]]
W = TypeVar("W")


async def _negotiate(
    conn: McpConnection, connect: Connect, deadline: float
) -> tuple[McpConnection, Agreement]:
    """Agree on a revision as the SDK's client does (see the module docstring).

    ``connect`` opens a fresh connection: after a ``server/discover`` that timed out (its
    request may still be in flight) or failed on the legacy SSE transport (whose stream the
    server may have ended or bound to the stateless era), the handshake runs on a new one.
    """
    version = LATEST_MODERN_VERSION
    for attempt in range(2):
        fresh = False
        try:
            raw = await _discover(conn, version, deadline)
        except TimeoutError:
            fresh = True
        except McpProbeError as exc:
            if exc.reason == "ResponseTooLarge" or (
                exc.reason == "ConnectionFailed" and conn.transport != "sse"
            ):
                raise  # a bound, or an outage: never an era verdict
            if exc.rpc_code == mcp_types.UNSUPPORTED_PROTOCOL_VERSION:
                supported = _supported_in(exc.rpc_data)
                mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in (supported or ())]
                if mutual and attempt == 0:
                    version = mutual[-1]
                    continue
                if supported is not None and not any(
                    v in HANDSHAKE_PROTOCOL_VERSIONS for v in supported
                ):
                    raise McpProbeError(
                        "UnsupportedProtocolVersion",
                        f"The MCP server at {conn.shown_url} speaks only protocol versions "
                        f"{snippet(', '.join(map(str, supported)), 120)}, which the operator "
                        f"does not support (it speaks {', '.join(SUPPORTED_PROTOCOL_VERSIONS)}); "
                        "use a server or SDK release that supports one of them.",
                    ) from None
            fresh = conn.transport == "sse" or exc.reason == "Timeout"
        else:
            agreed = _adopt(raw)
            if agreed is not None:
                conn.protocol_version = agreed.protocol_version
                return conn, agreed
            fresh = conn.transport == "sse"
        if fresh:
            await conn.aclose(deadline)
            conn = await connect()
        try:
            return conn, await _initialize(conn)
        except McpProbeError as exc:
            if exc.rpc_code != mcp_types.UNSUPPORTED_PROTOCOL_VERSION or attempt != 0:
                raise
            supported = _supported_in(exc.rpc_data)
            mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in (supported or ())]
            if not mutual:
                raise
            version = mutual[-1]
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def _list_tools(
    conn: McpConnection,
    agreed: Agreement,
    *,
    max_tools: int,
    max_pages: int,
    max_total_tools: int,
) -> tuple[list[McpTool], int]:
    tools: list[McpTool] = []
    count = 0
    cursor: str | None = None
    seen_cursors: set[bytes] = set()
    for page in range(1, max_pages + 1):
        what = "tools/list" if page == 1 else f"tools/list (page {page})"
        envelope = agreed.envelope()
        request_params = (
            None
            if cursor is None and envelope is None
            else mcp_types.PaginatedRequestParams(cursor=cursor, _meta=envelope)
        )
        method, params = wire(mcp_types.ListToolsRequest(params=request_params))
        headers = None if envelope is None else stateless_headers(agreed.protocol_version, method)
        result = await conn.request(method, params, what=what, headers=headers)
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
    if max_tools < 0 or max_pages < 1 or max_total_tools < 0:
        raise ValueError("the bounds of the probe must be positive")
    started = time.monotonic()

    async def list_tools(conn: McpConnection, agreed: Agreement) -> tuple[list[McpTool], int]:
        if "tools" not in agreed.capabilities:
            return [], 0  # tools/list is only defined for servers with the capability
        return await _list_tools(
            conn, agreed, max_tools=max_tools, max_pages=max_pages, max_total_tools=max_total_tools
        )

    agreed, (tools, count) = await run_mcp_session(
        url,
        transport,
        list_tools,
        timeout=timeout,
        headers=headers,
        client=client,
        max_response_bytes=max_response_bytes,
        activity="the verification",
    )
    info = agreed.server_info
    names, raw = _bounded_capabilities(agreed.capabilities)
    return McpProbeResult(
        server_name=truncate(info.name, MAX_SERVER_FIELD_CHARS) if info is not None else "",
        server_version=truncate(info.version, MAX_SERVER_FIELD_CHARS) if info is not None else "",
        server_title=truncate(info.title, MAX_SERVER_FIELD_CHARS)
        if info is not None and info.title
        else None,
        protocol_version=agreed.protocol_version,
        capabilities=names,
        raw_capabilities=raw,
        instructions=truncate(agreed.instructions, MAX_INSTRUCTIONS_CHARS)
        if agreed.instructions
        else None,
        tools=tuple(tools),
        tool_count=count,
        duration_seconds=time.monotonic() - started,
        transport=transport,
        negotiation=agreed.negotiation,
    )


async def run_mcp_session(
    url: str,
    transport: McpTransport,
    work: Callable[[McpConnection, Agreement], Awaitable[W]],
    *,
    timeout: float,  # noqa: ASYNC109 - a total deadline, enforced with asyncio.timeout_at
    headers: Mapping[str, str] | None = None,
    client: httpx.AsyncClient | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    activity: str = "the session",
) -> tuple[Agreement, W]:
    """Open a session with the MCP server at ``url``, agree on a revision, run ``work`` on it,
    and end the session: the one client of the operator (the probe lists tools with it, the
    console calls a tool with it).

    ``timeout`` bounds everything, ending the session included; ``activity`` names the work
    in the timeout message ("did not finish {activity} within ..."). Header values never
    appear in an error message (they are redacted). Raises :class:`McpProbeError`.
    """
    if transport not in ("streamable-http", "sse"):
        raise ValueError(f"unknown MCP transport {transport!r}")
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    if max_response_bytes < 1:
        raise ValueError("the bounds of the probe must be positive")
    deadline = asyncio.get_running_loop().time() + timeout
    parsed = _validate_url(url)
    secrets = secret_values(list((headers or {}).items()), parsed)
    try:
        request_headers = _validate_headers(headers)
        return await _session(
            parsed,
            transport,
            work,
            deadline=deadline,
            budget=timeout,
            headers=request_headers,
            secrets=secrets,
            client=client,
            max_response_bytes=max_response_bytes,
            activity=activity,
        )
    except McpProbeError as exc:
        safe = redact(exc.message, secrets)
        if safe == exc.message:
            raise
        raise McpProbeError(exc.reason, safe) from None


async def _session(
    url: httpx.URL,
    transport: McpTransport,
    work: Callable[[McpConnection, Agreement], Awaitable[W]],
    *,
    deadline: float,
    budget: float,
    headers: httpx.Headers,
    secrets: list[str],
    client: httpx.AsyncClient | None,
    max_response_bytes: int,
    activity: str,
) -> tuple[Agreement, W]:
    own_client = client is None
    http = client if client is not None else httpx.AsyncClient(timeout=budget)
    connection_type: type[McpConnection] = (
        StreamableHttpConnection if transport == "streamable-http" else LegacySseConnection
    )
    opened: list[McpConnection] = []

    def new_connection() -> McpConnection:
        conn = connection_type(
            http,
            url,
            headers=headers,
            shown_url=display_url(url),
            secrets=secrets,
            max_response_bytes=max_response_bytes,
        )
        opened.append(conn)
        return conn

    async def connect() -> McpConnection:
        conn = new_connection()
        await conn.start()
        return conn

    conn = new_connection()
    try:
        try:
            async with asyncio.timeout_at(deadline):
                await conn.start()
                conn, agreed = await _negotiate(conn, connect, deadline)
                done = await work(conn, agreed)
        except TimeoutError as exc:
            stuck = opened[-1].phase
            raise McpProbeError(
                "Timeout",
                f"The MCP server at {conn.shown_url} did not finish {activity} within "
                f"{budget:g} s (stuck {stuck}); check that it is up and speaks MCP over "
                f"{transport}, or raise the verification timeout if it starts slowly.",
            ) from exc
    finally:
        # Ending the session is best effort, within what is left of the deadline.
        for each in opened:
            await each.aclose(deadline)
        if own_client:
            await http.aclose()
    return agreed, done
