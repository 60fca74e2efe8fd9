"""Print the MCP tools OpenHands finds for an mcp.json, through OpenHands' own code: the SDK's
loader (coerce_mcp_config) and MCP client (create_mcp_tools), as an agent would at start.

Arguments: mcp.json paths, the first that exists is used (so a Job can mount the operator's
Secret, present only when a server needs headers, before its ConfigMap). Prints one tool name
per line, then one JSON line {"config": path, "servers": [...], "tools": [...]}.
"""

import json
import sys
from pathlib import Path

from openhands.sdk.mcp.config import coerce_mcp_config
from openhands.sdk.mcp.utils import create_mcp_tools

TIMEOUT_SECONDS = 60


def main(paths: list[str]) -> int:
    found = next((Path(p) for p in paths if Path(p).is_file()), None)
    if found is None:
        print(f"none of {paths} exists", file=sys.stderr)
        return 2
    config = coerce_mcp_config(json.loads(found.read_text()))  # {name: server}
    tools: list[str] = []
    if config:  # the SDK's client refuses an empty list (no server is Ready yet)
        with create_mcp_tools(config, timeout=TIMEOUT_SECONDS) as client:
            tools = sorted(tool.name for tool in client.tools)
    for tool in tools:
        print(tool)
    servers = sorted(config)
    print(json.dumps({"config": str(found), "servers": servers, "tools": tools}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
