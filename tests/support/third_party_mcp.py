"""Third-party MCP servers on loopback: supergateway (the default stdio bridge) serving the MCP
reference server "everything", as the kind image runs it, from the same lock file.

``hack/mcp-servers/install.sh`` installs the lock file's packages into a cache outside the
clone (``hack/setup.sh --all`` runs it for CI); the fixture runs it too, a no-op once cached.
supergateway has no option for its listening address: a preloaded shim
(``loopback_only.cjs``) makes it listen on 127.0.0.1 instead of every interface.

Fixture: ``supergateway_factory(transport, stateful=False)`` -> a started
:class:`SupergatewayProcess` (``.url``, ``.stop()``...), stopped at the end of the session.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.mcp_servers import McpServerProcess, Transport

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "mcp-servers" / "install.sh"
LOOPBACK_SHIM = Path(__file__).with_name("loopback_only.cjs")
INSTALL_TIMEOUT = 900.0
# What server-everything says about itself (the version in the lock file is 2026.8.31).
EVERYTHING_NAME = "mcp-servers/everything"


def install() -> Path:
    """The install directory (``node_modules/.bin`` holds supergateway and the servers)."""
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        stdout=subprocess.PIPE,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{INSTALL_SCRIPT} failed with exit code {result.returncode}")
    return Path(lines[-1])


class SupergatewayProcess(McpServerProcess):
    """supergateway bridging the stdio server "everything" to streamable HTTP or SSE."""

    def __init__(self, install_dir: Path, transport: Transport, *, stateful: bool = False):
        super().__init__(transport)
        self.install_dir = install_dir
        self.stateful = stateful

    def command(self) -> list[str]:
        node = shutil.which("node") or "node"
        modules = self.install_dir / "node_modules"
        everything = modules / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
        argv = [
            node,
            "--require",
            str(LOOPBACK_SHIM),
            str(modules / "supergateway" / "dist" / "index.js"),
            "--stdio",
            f"{node} {everything}",
            "--outputTransport",
            "streamableHttp" if self.transport == "streamable-http" else "sse",
            "--port",
            str(self.port),
            "--logLevel",
            "info",
        ]
        return [*argv, "--stateful"] if self.stateful else argv


@pytest.fixture(scope="session")
def supergateway_factory() -> Iterator[Callable[..., SupergatewayProcess]]:
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH: supergateway cannot run (hack/setup.sh --all)")
    install_dir = install()
    servers: list[SupergatewayProcess] = []

    def start(transport: Transport, *, stateful: bool = False) -> SupergatewayProcess:
        server = SupergatewayProcess(install_dir, transport, stateful=stateful)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()
