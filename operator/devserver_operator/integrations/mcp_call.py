"""Call one tool of an MCP server: the probe's session (same negotiation, same bounded
transports, same redaction of header values), with ``tools/call`` as its work.

The console's "Try a tool" uses it. The answer is the server's ``CallToolResult`` as sent
(``content``, ``structuredContent``, ``isError``), bounded by ``max_response_bytes`` (a
larger answer fails with ``ResponseTooLarge``) and by ``timeout`` for the whole session.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import mcp_types
from pydantic import ValidationError

from devserver_operator.integrations.mcp_errors import McpProbeError, snippet
from devserver_operator.integrations.mcp_probe import (
    Agreement,
    McpTransport,
    run_mcp_session,
    stateless_headers,
    wire,
)
from devserver_operator.integrations.mcp_transports import McpConnection

__all__ = ["DEFAULT_MAX_RESULT_BYTES", "McpToolResult", "call_mcp_tool", "header_value"]

DEFAULT_MAX_RESULT_BYTES: Final = 1024 * 1024
"""A tool's answer is shown to a person: 1 MiB is plenty, and bounds the console's memory."""
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class McpToolResult:
    tool: str
    is_error: bool
    """The tool itself reported a failure (``isError``), as opposed to a protocol error."""
    content: list[dict[str, Any]]
    structured_content: Any
    protocol_version: str


def header_value(value: str) -> str:
    """A value as an HTTP header carries it on 2026-07-28: printable ASCII without edge
    spaces as is, anything else base64 in the ``=?base64?...?=`` sentinel."""
    if _HEADER_SAFE.fullmatch(value) and value == value.strip() and not value.startswith("=?"):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="


async def call_mcp_tool(
    url: str,
    transport: McpTransport,
    tool: str,
    arguments: Mapping[str, Any] | None,
    *,
    timeout: float,  # noqa: ASYNC109 - a total deadline, enforced by the session
    headers: Mapping[str, str] | None = None,
    client: httpx.AsyncClient | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> McpToolResult:
    """Open a session with the server at ``url``, call ``tool`` once, end the session.

    Raises :class:`McpProbeError` (``ProtocolError`` when the server answers the call with a
    JSON-RPC error, e.g. an unknown tool or invalid arguments).
    """

    async def call(conn: McpConnection, agreed: Agreement) -> dict[str, Any]:
        envelope = agreed.envelope()
        request = mcp_types.CallToolRequest(
            params=mcp_types.CallToolRequestParams(
                name=tool, arguments=dict(arguments or {}), _meta=envelope
            )
        )
        method, params = wire(request)
        extra = None
        if envelope is not None:
            # 2026-07-28 mirrors the tool's name into Mcp-Name; servers check they agree.
            extra = {
                **stateless_headers(agreed.protocol_version, method),
                "Mcp-Name": header_value(tool),
            }
        return await conn.request(method, params, what=f"tools/call {tool!r}", headers=extra)

    agreed, raw = await run_mcp_session(
        url,
        transport,
        call,
        timeout=timeout,
        headers=headers,
        client=client,
        max_response_bytes=max_response_bytes,
        activity=f"the call of tool {snippet(tool, 80)!r}",
    )
    try:
        result = mcp_types.CallToolResult.model_validate(raw, by_name=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "the result"
        raise McpProbeError(
            "ProtocolError",
            f"The MCP server answered tools/call {snippet(tool, 80)!r} with a result that does "
            f"not follow the MCP specification ({snippet(where, 80)}: "
            f"{snippet(str(first.get('msg', 'invalid')), 80)}).",
        ) from None
    content = raw.get("content")
    return McpToolResult(
        tool=tool,
        is_error=bool(result.is_error),
        content=[item for item in content if isinstance(item, dict)]
        if isinstance(content, list)
        else [],
        structured_content=raw.get("structuredContent"),
        protocol_version=agreed.protocol_version,
    )
