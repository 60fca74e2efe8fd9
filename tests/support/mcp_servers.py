"""Real MCP servers (the official MCP Python SDK) as subprocesses on loopback, for pytest.

Fixtures (session scope, started on first use):

- ``mcp_streamable_server``: streamable HTTP, URL ``http://127.0.0.1:PORT/mcp``
- ``mcp_sse_server``: the legacy HTTP+SSE transport, URL ``http://127.0.0.1:PORT/sse``
- ``mcp_paginated_server``: streamable HTTP, 3 + 22 tools listed 5 per page
- ``mcp_huge_server``: streamable HTTP, 10,000 tools (3 real + 9,997 generated) in one page
- ``mcp_modern_server``: streamable HTTP forced to protocol 2026-07-28 only (stateless,
  ``server/discover``, no ``initialize``)
- ``mcp_server_factory``: start more servers, e.g. ``mcp_server_factory("sse", tools=10)``

Each yields a :class:`McpServerProcess` with ``.url``, ``.stop()``, ``.start()`` and the
context manager ``.stopped()`` (a test that takes a server away must bring it back: the
servers are shared by the session). The servers serve the tools ``echo``, ``add`` and
``get_time`` (see ``tests.support.mcp_server_app``).

Processes run in their own session (process group); teardown and an ``atexit`` hook kill
the whole group, so no server outlives the test run. The hostile HTTP servers of
``tests.support.hostile_http`` are registered as fixtures through this plugin too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from tests.support.hostile_http import (  # noqa: F401 - fixtures registered by this plugin
    hanging_server,
    hostile_http,
    unreachable_url,
)
from tests.support.mcp_server_app import (
    INSTRUCTIONS,
    REAL_TOOLS,
    SERVER_NAME,
    SERVER_VERSION,
    generated_tool_name,
)

__all__ = [
    "INSTRUCTIONS",
    "REAL_TOOLS",
    "SERVER_NAME",
    "SERVER_VERSION",
    "McpServerProcess",
    "generated_tool_name",
]

Transport = Literal["streamable-http", "sse"]
REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 90.0  # importing the SDK takes seconds on a busy 2-core machine
STOP_TIMEOUT_SECONDS = 10.0
_RUNNING: set[McpServerProcess] = set()


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class McpServerProcess:
    """One MCP SDK server subprocess; the port stays the same across stop/start."""

    def __init__(
        self,
        transport: Transport,
        *,
        tools: int = 0,
        page_size: int = 0,
        json_response: bool = False,
        port: int | None = None,
        modern_only: bool = False,
        required_header: tuple[str, Path] | None = None,
    ) -> None:
        self.transport: Transport = transport
        self.extra_tools = tools
        self.page_size = page_size
        self.json_response = json_response
        self.modern_only = modern_only
        self.required_header = required_header
        """(header, file): requests without that header, equal to the file's content, get 401."""
        self.port = port if port is not None else _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix=f"mcp-{transport}-{self.port}-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)

    @property
    def path(self) -> str:
        return "/mcp" if self.transport == "streamable-http" else "/sse"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def tool_names(self) -> list[str]:
        """Every tool the server lists, in order."""
        return [*REAL_TOOLS, *(generated_tool_name(i) for i in range(self.extra_tools))]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "tests.support.mcp_server_app",
            "--transport",
            self.transport,
            "--port",
            str(self.port),
            "--tools",
            str(self.extra_tools),
            "--page-size",
            str(self.page_size),
            "--parent-pid",
            str(os.getpid()),
        ]
        if self.json_response:
            argv.append("--json-response")
        if self.modern_only:
            argv.append("--modern-only")
        if self.required_header is not None:
            header, path = self.required_header
            argv += ["--require-header", header, "--expected-file", str(path)]
        return argv

    def start(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Start the server and wait (bounded) until it accepts connections."""
        if self.running:
            return
        python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
        self.process = subprocess.Popen(
            self.command(),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _RUNNING.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                _RUNNING.discard(self)
                raise RuntimeError(
                    f"MCP {self.transport} server exited during startup:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return  # uvicorn binds only after the app's startup is complete
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"MCP {self.transport} server not listening on port {self.port} after "
            f"{timeout:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Kill the server's process group and wait for it (bounded)."""
        process, self.process = self.process, None
        _RUNNING.discard(self)
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_SECONDS), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The port must be free again before a restart binds it.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return
            time.sleep(0.05)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Take the server away for the block, bring it back afterwards."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        self.stop()
        self._log.close()
        with contextlib.suppress(OSError):
            self.log_path.unlink()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def __repr__(self) -> str:
        return f"McpServerProcess({self.transport!r}, url={self.url!r}, running={self.running})"


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_RUNNING):
        server.stop()


@contextlib.contextmanager
def _serve(server: McpServerProcess) -> Iterator[McpServerProcess]:
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def mcp_streamable_server() -> Iterator[McpServerProcess]:
    """The MCP SDK server over streamable HTTP (answers with event streams)."""
    with _serve(McpServerProcess("streamable-http")) as server:
        yield server


@pytest.fixture(scope="session")
def mcp_sse_server() -> Iterator[McpServerProcess]:
    """The MCP SDK server over the legacy HTTP+SSE transport."""
    with _serve(McpServerProcess("sse")) as server:
        yield server


@pytest.fixture(scope="session")
def mcp_paginated_server() -> Iterator[McpServerProcess]:
    """Streamable HTTP (JSON answers), 25 tools listed 5 per page by the SDK server."""
    with _serve(
        McpServerProcess("streamable-http", tools=22, page_size=5, json_response=True)
    ) as server:
        yield server


@pytest.fixture(scope="session")
def mcp_huge_server() -> Iterator[McpServerProcess]:
    """Streamable HTTP with 10,000 tools in one tools/list answer."""
    with _serve(McpServerProcess("streamable-http", tools=10_000 - len(REAL_TOOLS))) as server:
        yield server


@pytest.fixture(scope="session")
def mcp_modern_server() -> Iterator[McpServerProcess]:
    """The MCP SDK server over streamable HTTP, forced to protocol 2026-07-28 only."""
    with _serve(McpServerProcess("streamable-http", modern_only=True)) as server:
        yield server


@pytest.fixture(scope="session")
def mcp_server_factory() -> Iterator[Callable[..., McpServerProcess]]:
    """Start further MCP SDK servers: ``factory(transport, tools=0, page_size=0, ...)``."""
    servers: list[McpServerProcess] = []

    def start(
        transport: Transport,
        *,
        tools: int = 0,
        page_size: int = 0,
        json_response: bool = False,
        modern_only: bool = False,
    ) -> McpServerProcess:
        server = McpServerProcess(
            transport,
            tools=tools,
            page_size=page_size,
            json_response=json_response,
            modern_only=modern_only,
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.close()
