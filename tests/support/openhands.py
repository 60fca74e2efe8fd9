"""Real OpenHands from PyPI for the contract tests: openhands-sdk and openhands-agent-server
(``/opt/openhands``), and openhands-ai 1.6.0, the last release with the legacy ``config.toml``
``[mcp]`` tables (``/opt/openhands-legacy``).

OpenHands needs Python >= 3.12; the host has 3.11. ``hack/openhands/install.sh`` puts the
locked packages into a Debian trixie root (Python 3.13) outside the clone; its Python runs
here through ``chroot`` in a private mount namespace (``unshare``) that mounts /proc and the
host's /dev for it and drops both when the process ends. chroot keeps the host's network, so
OpenHands reaches MCP servers, n8n reaches the agent-server, all on 127.0.0.1.

Fixtures: ``openhands_root`` (session; installs when needed) and ``agent_server`` (a running
``python -m openhands.agent_server`` on a free loopback port, with a session API key).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "openhands" / "install.sh"
INSTALL_TIMEOUT = 1800.0  # cold: ~90 s here (debootstrap ~40 s, pip ~50 s); room for a slow mirror
START_TIMEOUT = 120.0
PYTHON = "/opt/openhands/bin/python"
LEGACY_PYTHON = "/opt/openhands-legacy/bin/python"
# The CLI declares Python ==3.12.*; none can be had here, so it runs on 3.13 (install.sh).
CLI_PYTHON = "/opt/openhands-cli/bin/python"
# Quiet and offline where OpenHands would reach out on its own (LiteLLM's price list).
QUIET_ENV = {
    "OPENHANDS_SUPPRESS_BANNER": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LOG_LEVEL": "WARNING",
}
_RUNNING: set[subprocess.Popen[bytes]] = set()


def _chroot_argv(root: Path, env: Mapping[str, str], argv: list[str], cwd: str) -> list[str]:
    settings = " ".join(f"{k}={shlex.quote(v)}" for k, v in {**QUIET_ENV, **env}.items())
    inner = f"cd {shlex.quote(cwd)} && exec {shlex.join(argv)}"
    script = (
        f"mount -t proc proc {shlex.quote(str(root / 'proc'))} && "
        f"mount --rbind /dev {shlex.quote(str(root / 'dev'))} && "
        f"exec chroot {shlex.quote(str(root))} /usr/bin/env -i PATH=/usr/bin:/bin "
        f"HOME=/root {settings} /bin/bash -c {shlex.quote(inner)}"
    )
    return ["unshare", "--mount", "--propagation", "private", "--fork", "bash", "-c", script]


@dataclass
class OpenHandsRoot:
    """The trixie root with OpenHands in /opt/openhands."""

    root: Path

    def scratch(self) -> tuple[Path, str]:
        """A fresh directory inside the root: (host path, path as OpenHands sees it)."""
        host = Path(tempfile.mkdtemp(prefix="oh-", dir=self.root / "tmp"))
        return host, "/" + str(host.relative_to(self.root))

    def python(
        self,
        script: str,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        python: str = PYTHON,
    ) -> str:
        """Run ``script`` with OpenHands' Python; its stdout (stderr is in the error)."""
        host, inside = self.scratch()
        (host / "script.py").write_text(script)
        argv = _chroot_argv(self.root, env or {}, [python, f"{inside}/script.py", *args], inside)
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=True,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"OpenHands' Python failed ({result.returncode}):\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def list_mcp_tools(self, config: str, env: Mapping[str, str] | None = None) -> list[str]:
        """The tool names OpenHands' own MCP code finds for an ``mcpServers`` JSON text:
        ``coerce_mcp_config`` (the SDK's loader) then ``create_mcp_tools`` (its client)."""
        host, inside = self.scratch()
        (host / "mcp.json").write_text(config)
        output = self.python(LIST_TOOLS, f"{inside}/mcp.json", env=env)
        listed: list[str] = json.loads(output.strip().splitlines()[-1])
        return listed

    def load_legacy_toml(self, config_toml: str) -> dict[str, Any]:
        """What openhands-ai 1.6.0 makes of a ``config.toml``: its own loader
        (``load_from_toml`` into ``OpenHandsConfig``) gives the ``[mcp]`` server URLs, and its
        own MCP client code (``fetch_mcp_tools_from_config``) lists their tools.
        ``{"sse": [url], "shttp": [url], "tools": [name]}``."""
        host, inside = self.scratch()
        (host / "config.toml").write_text(config_toml)
        output = self.python(LEGACY_LOAD, f"{inside}/config.toml", python=LEGACY_PYTHON)
        loaded: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        return loaded

    def cli_mcp(self, config: str) -> dict[str, Any]:
        """What the ``openhands`` CLI 1.16.0 makes of ``config`` at ``~/.openhands/mcp.json``:
        its own loader (``list_enabled_servers``, which the CLI hands the agent as its
        ``mcp_config``) and the tools that the SDK it pins lists with that.
        ``{"path": ..., "servers": [name], "tools": [name]}``."""
        host, inside = self.scratch()
        (host / ".openhands").mkdir()
        (host / ".openhands" / "mcp.json").write_text(config)
        output = self.python(CLI_MCP, env={"HOME": inside}, python=CLI_PYTHON)
        loaded: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
        return loaded

    def version(self, package: str, python: str = PYTHON) -> str:
        script = f"from importlib.metadata import version; print(version({package!r}))"
        return self.python(script, python=python).strip()


LIST_TOOLS = """
import json, sys
from openhands.sdk.mcp.config import coerce_mcp_config
from openhands.sdk.mcp.utils import create_mcp_tools

config = coerce_mcp_config(json.load(open(sys.argv[1])))
with create_mcp_tools(config, timeout=60) as client:
    print(json.dumps(sorted(tool.name for tool in client.tools)))
"""


LEGACY_LOAD = """
import asyncio, json, sys
from openhands.core.config import OpenHandsConfig
from openhands.core.config.utils import load_from_toml
from openhands.mcp.utils import fetch_mcp_tools_from_config

config = OpenHandsConfig()
load_from_toml(config, sys.argv[1])
tools = asyncio.run(fetch_mcp_tools_from_config(config.mcp))
print(json.dumps({
    "sse": [server.url for server in config.mcp.sse_servers],
    "shttp": [server.url for server in config.mcp.shttp_servers],
    "tools": sorted(tool["function"]["name"] for tool in tools),
}))
"""


CLI_MCP = """
import json
from openhands.sdk.mcp.utils import create_mcp_tools
from openhands_cli.mcp.mcp_utils import _get_mcp_config_path, list_enabled_servers

servers = list_enabled_servers()
with create_mcp_tools({"mcpServers": servers}, timeout=60) as client:
    tools = sorted(tool.name for tool in client.tools)
print(json.dumps({"path": str(_get_mcp_config_path()), "servers": sorted(servers), "tools": tools}))
"""


def install() -> Path:
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        stdout=subprocess.PIPE,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"{INSTALL_SCRIPT} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AgentServer:
    """``python -m openhands.agent_server`` on 127.0.0.1, its data in a scratch directory."""

    def __init__(self, root: OpenHandsRoot, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.session_key = secrets.token_hex(16)
        self.home, self.inside = root.scratch()
        self.env = dict(env or {})
        self.log_path = self.home / "agent-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Session-API-Key": self.session_key}

    def start(self) -> None:
        env = {"HOME": self.inside, "SESSION_API_KEY": self.session_key, **self.env}
        argv = [PYTHON, "-m", "openhands.agent_server", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                _chroot_argv(self.root.root, env, argv, self.inside),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _RUNNING.add(self._proc)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"agent-server exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.url}/api/conversations/count", headers=self.headers)
                if answer.status_code == 200:
                    return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"agent-server not up after {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _RUNNING.discard(proc)
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def conversations(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/conversations/search", headers=self.headers)
        answer.raise_for_status()
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def user_messages(self, conversation_id: str) -> list[str]:
        """The text of every user message in a conversation's event log."""
        answer = httpx.get(
            f"{self.url}/api/conversations/{conversation_id}/events/search",
            params={"limit": 100},
            headers=self.headers,
        )
        answer.raise_for_status()
        texts: list[str] = []
        for event in answer.json()["items"]:
            if event.get("kind") == "MessageEvent" and event.get("source") == "user":
                content = event["llm_message"]["content"]
                texts.append("".join(part.get("text", "") for part in content))
        return texts


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def openhands_root() -> OpenHandsRoot:
    """The OpenHands install (hack/openhands/install.sh; cached outside the clone)."""
    return OpenHandsRoot(install())


@pytest.fixture
def agent_server(openhands_root: OpenHandsRoot) -> Iterator[AgentServer]:
    server = AgentServer(openhands_root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
