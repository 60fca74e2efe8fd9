"""A stdio-only MCP server built with the official MCP Python SDK: the image's ENTRYPOINT.

Used twice: as the Python image of the e2e suite (hack/kind/images.sh), and by the unit tests
of the stdio proxy, which start it as a local process. Its tools are deterministic (a test
checks a call's result); ``sleep`` holds a request open and ``exit`` ends the process
without an answer, so tests can watch deadlines and restarts. The process's arguments
(the image's CMD or an MCPServer's ``args``) prefix what ``echo`` returns.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("devserver-python-stdio", version="1.0.0", log_level="WARNING")
PREFIX = " ".join(sys.argv[1:])


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text, after the process arguments."""
    return f"{PREFIX} {text}".strip()


@server.tool()
def environment(name: str) -> str:
    """Return an environment variable of the server process (empty when unset)."""
    return os.environ.get(name, "")


@server.tool()
async def sleep(seconds: float) -> str:
    """Answer after the given number of seconds."""
    await asyncio.sleep(seconds)
    return "slept"


@server.tool()
def exit(code: int = 1) -> str:
    """End the server process without answering."""
    os._exit(code)


if __name__ == "__main__":
    server.run("stdio")
