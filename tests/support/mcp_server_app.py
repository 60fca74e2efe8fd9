"""A real MCP server built with the official MCP Python SDK, for the verification tests.

Run as a subprocess by ``tests.support.mcp_servers``::

    python -m tests.support.mcp_server_app --transport streamable-http --port 8123
    python -m tests.support.mcp_server_app --transport sse --port 8124 --tools 10000
    python -m tests.support.mcp_server_app --transport streamable-http --port 8125 --modern-only

In its default mode the SDK's streamable HTTP server speaks every revision the SDK knows: the
``initialize`` handshake (2024-11-05 .. 2025-11-25) and, for requests whose
``MCP-Protocol-Version`` header names it, the stateless 2026-07-28 revision. ``--modern-only``
forces it to 2026-07-28 alone: every request goes to the SDK's stateless entry, so an
``initialize`` is rejected there as a 2026-07-28 server rejects it.

It serves three real tools (``echo``, ``add``, ``get_time``), one prompt and one resource,
plus ``--tools N`` generated tools (``tool_00000`` ...). The SDK's ``MCPServer`` answers
``tools/list`` in one page; ``--page-size N`` makes it paginate with an opaque ``nextCursor``
so the client's pagination runs against the SDK's own wire handling.

The SDK is imported only when a server is built, so the pytest plugin can import the
constants below without paying for it.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

SERVER_NAME = "devserver-test-mcp"
SERVER_VERSION = "1.2.3"
INSTRUCTIONS = "A test MCP server for devserver-operator: echo, add and get_time."
REAL_TOOLS = ("echo", "add", "get_time")


def generated_tool_name(index: int) -> str:
    return f"tool_{index:05d}"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    prefix, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    if prefix != "offset":
        raise ValueError("invalid cursor")
    return int(number)


def build_server(*, extra_tools: int = 0, page_size: int = 0) -> MCPServer[Any]:
    """The SDK server with the three real tools, a prompt, a resource and generated tools."""
    # Imported here so the pytest plugin can import this module's constants cheaply.
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import MCPServer
    from mcp_types import ListToolsResult, PaginatedRequestParams, Tool

    # Registering thousands of Python functions with the SDK takes ~2 ms each (a pydantic
    # model per tool), so generated tools are only listed: built once as wire models.
    generated_tools = [
        Tool(
            name=generated_tool_name(index),
            description=f"Generated tool number {index}.",
            input_schema={"type": "object", "properties": {"value": {"type": "string"}}},
        )
        for index in range(extra_tools)
    ]

    class PagingMCPServer(MCPServer[Any]):
        """``MCPServer`` whose ``tools/list`` is split into pages of ``page_size`` tools."""

        async def _handle_list_tools(
            self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
        ) -> ListToolsResult:
            tools = [*await self.list_tools(), *generated_tools]
            if page_size <= 0:
                return ListToolsResult(tools=tools)
            offset = decode_cursor(params.cursor if params is not None else None)
            end = offset + page_size
            next_cursor = encode_cursor(end) if end < len(tools) else None
            return ListToolsResult(tools=tools[offset:end], next_cursor=next_cursor)

    server = PagingMCPServer(
        SERVER_NAME, version=SERVER_VERSION, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def get_time() -> str:
        """Return the current UTC time in ISO 8601 format."""
        return datetime.datetime.now(datetime.UTC).isoformat()

    @server.prompt()
    def greet(name: str) -> str:
        """A greeting prompt."""
        return f"Say hello to {name}."

    @server.resource("test://readme")
    def readme() -> str:
        """A static resource."""
        return "devserver-operator test server"

    return server


def exit_with_parent(parent_pid: int) -> None:
    """Exit as soon as the test run that started us is gone (it may be killed hard)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def modern_only(app: Any) -> Any:
    """ASGI wrapper: route every request to the SDK's 2026-07-28 entry.

    The SDK's session manager sends a request to its stateless 2026-07-28 handler when the
    ``MCP-Protocol-Version`` header names a revision outside the handshake list; here a
    missing or handshake-era header is replaced by 2026-07-28, so the SDK itself answers
    every request as a server that speaks nothing else.
    """
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_MODERN_VERSION

    name = b"mcp-protocol-version"

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != name]
            given = next((v for k, v in scope["headers"] if k.lower() == name), None)
            if given is None or given.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS:
                given = LATEST_MODERN_VERSION.encode()
            scope = {**scope, "headers": [*headers, (name, given)]}
        await app(scope, receive, send)

    return wrapped


def require_header(app: Any, name: str, expected_file: str) -> Any:
    """ASGI wrapper: answer 401 unless header ``name`` equals the content of ``expected_file``
    (read on every request, so a test rotates the credential by rewriting the file)."""
    wanted = name.lower().encode()

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            # A few bytes from a local file: blocking the loop that briefly is harmless.
            expected = Path(expected_file).read_text().strip().encode()  # noqa: ASYNC240
            given = next((v for k, v in scope["headers"] if k.lower() == wanted), None)
            if given != expected:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return wrapped


def run_guarded(server: MCPServer[Any], args: argparse.Namespace) -> None:
    import uvicorn

    if args.transport == "sse":
        app = server.sse_app(host=args.host)
    else:
        app = server.streamable_http_app(json_response=args.json_response, host=args.host)
    guarded = require_header(app, args.require_header, args.expected_file)
    uvicorn.run(guarded, host=args.host, port=args.port, log_level="warning")


def run_modern_only(server: MCPServer[Any], host: str, port: int, json_response: bool) -> None:
    import uvicorn

    app = server.streamable_http_app(json_response=json_response, host=host)
    uvicorn.run(modern_only(app), host=host, port=port, log_level="warning")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A test MCP server (MCP Python SDK).")
    parser.add_argument("--transport", choices=["streamable-http", "sse"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tools", type=int, default=0, help="number of generated tools")
    parser.add_argument("--page-size", type=int, default=0, help="tools per tools/list page")
    parser.add_argument(
        "--json-response", action="store_true", help="streamable HTTP: answer JSON, not SSE"
    )
    parser.add_argument(
        "--modern-only", action="store_true", help="streamable HTTP: speak 2026-07-28 only"
    )
    parser.add_argument("--require-header", help="answer 401 without this header ...")
    parser.add_argument("--expected-file", help="... equal to this file's content")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)
    if args.parent_pid:
        exit_with_parent(args.parent_pid)
    server = build_server(extra_tools=args.tools, page_size=args.page_size)
    if args.require_header:
        run_guarded(server, args)
    elif args.transport == "sse":
        server.run("sse", host=args.host, port=args.port)
    elif args.modern_only:
        run_modern_only(server, args.host, args.port, args.json_response)
    else:
        server.run(
            "streamable-http", host=args.host, port=args.port, json_response=args.json_response
        )


if __name__ == "__main__":
    main()
