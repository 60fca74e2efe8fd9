"""Templates offered besides the examples/ files: a remote server at any URL."""

from __future__ import annotations

from typing import Any

from devserver_operator.api import API_VERSION

BUILTIN_TEMPLATES: list[dict[str, Any]] = [
    {
        "name": "remote",
        "description": "An MCP server that already runs elsewhere: nothing is deployed; the "
        "operator verifies it and lists its tools. Set spec.url.",
        "manifest": {
            "apiVersion": API_VERSION,
            "kind": "MCPServer",
            "metadata": {"name": "remote"},
            "spec": {"url": "https://mcp.example.com/mcp"},
        },
    },
]
