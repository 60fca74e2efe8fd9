"""A real n8n on loopback for the integration tests (pytest plugin: fixture ``n8n_server``).

:class:`N8nServer` installs the pinned n8n (``hack/n8n/install.sh``, cached outside the
clone) if needed, starts it on a free 127.0.0.1 port with SQLite in a temp
``N8N_USER_FOLDER``, waits until its REST routes answer, creates the owner account and an
API key with every scope. ``stop()`` and ``start()`` again keep the data (same folder, same
port, same API key), for restart tests.

No orphans: n8n runs in its own session (process group), gets SIGKILL when the thread that
started it dies (``PR_SET_PDEATHSIG``), and the whole group is killed on ``stop()``,
on fixture teardown and at interpreter exit.

:class:`SlowProxy` sits between a client and n8n and holds answers back, for tests of what
happens when the caller stops while n8n is working.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import http.server
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator.localcluster.n8n_account import (
    BROWSER_ID,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    N8nSetupError,
    create_owner_and_api_key,
    routes_ready,
)

__all__ = ["BROWSER_ID", "OWNER_EMAIL", "OWNER_PASSWORD", "N8nServer", "N8nStartError", "SlowProxy"]

REPO_ROOT = Path(__file__).resolve().parents[2]
N8N_DIR = REPO_ROOT / "hack" / "n8n"
INSTALL_SCRIPT = N8N_DIR / "install.sh"
INSTALL_TIMEOUT = 2400.0  # a cold install takes ~5.5 min on 2 cores; leave room
START_TIMEOUT = 180.0
STOP_TIMEOUT = 20.0


_PR_SET_PDEATHSIG = 1
_libc: Any = None
with contextlib.suppress(OSError):
    _libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def cache_dir() -> Path:
    root = os.environ.get("DEVSERVER_CACHE_DIR") or str(
        Path.home() / ".cache" / "devserver-operator"
    )
    sha = hashlib.sha256((N8N_DIR / "package-lock.json").read_bytes()).hexdigest()
    return Path(root) / "n8n" / sha


def is_installed() -> bool:
    """True when install.sh has completed for the current lock file (cheap: no subprocess)."""
    d = cache_dir()
    return (d / ".install-complete").is_file() and (d / "node_modules" / ".bin" / "n8n").exists()


def install() -> Path:
    """Run install.sh (a no-op when cached) and return the n8n executable.

    ``DEVSERVER_N8N_BIN`` may name an n8n executable to use instead.
    """
    override = os.environ.get("DEVSERVER_N8N_BIN")
    if override:
        return Path(override)
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        stdout=subprocess.PIPE,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{INSTALL_SCRIPT} failed with exit code {result.returncode}")
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{INSTALL_SCRIPT} printed no n8n path")
    return Path(lines[-1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class N8nStartError(RuntimeError):
    pass


class N8nServer:
    """One n8n process on loopback with its own data folder."""

    def __init__(self, data_dir: Path | None = None, *, start_timeout: float = START_TIMEOUT):
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="n8n-")) if data_dir is None else data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "n8n.log"
        self._tmp_dir = self.data_dir / "tmp"
        self._tmp_dir.mkdir(exist_ok=True)
        self.start_timeout = start_timeout
        self.port = free_port()
        self.broker_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_key = ""
        self.version = ""
        self.start_seconds: float | None = None  # how long the last start() took
        self._encryption_key = secrets.token_hex(24)
        self._proc: subprocess.Popen[bytes] | None = None
        self._bin: Path | None = None
        atexit.register(self.stop)

    def __repr__(self) -> str:
        return f"N8nServer(base_url={self.base_url!r}, data_dir={str(self.data_dir)!r})"

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start n8n (installing it first if needed); set up owner and API key on first start."""
        if self.running:
            return
        if self._bin is None:
            self._bin = install()
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n===== starting n8n on {self.base_url} =====\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [str(self._bin), "start"],
                cwd=self.data_dir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only a prctl call
            )
        try:
            self._wait_ready(began + self.start_timeout)
            if not self.api_key:
                self._setup_owner_and_api_key()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop n8n and everything it started (its process group); keeps the data."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
        # Whatever is left of the group (task runner, a hung shutdown) goes now.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def close(self) -> None:
        """Stop n8n and remove a data folder this object created."""
        self.stop()
        atexit.unregister(self.stop)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    def rss_bytes(self) -> int:
        """Resident memory of n8n's whole process group (Linux /proc), 0 when stopped."""
        if not self.running or self._proc is None:
            return 0
        pgid = self._proc.pid
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                if os.getpgid(int(entry.name)) != pgid:
                    continue
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ internals

    def _env(self) -> dict[str, str]:
        env = {
            key: os.environ[key]
            for key in ("PATH", "LANG", "LC_ALL", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS")
            if key in os.environ
        }
        env.update(
            {
                "HOME": str(self.data_dir),
                "TMPDIR": str(self._tmp_dir),  # n8n writes upload dirs there
                "TZ": "UTC",
                "GENERIC_TIMEZONE": "UTC",
                "N8N_USER_FOLDER": str(self.data_dir),
                "N8N_ENCRYPTION_KEY": self._encryption_key,
                "N8N_PORT": str(self.port),
                "N8N_LISTEN_ADDRESS": "127.0.0.1",
                "N8N_HOST": "127.0.0.1",
                "N8N_PROTOCOL": "http",
                "WEBHOOK_URL": f"{self.base_url}/",
                "N8N_EDITOR_BASE_URL": f"{self.base_url}/",
                "N8N_SECURE_COOKIE": "false",
                "DB_TYPE": "sqlite",
                "N8N_DIAGNOSTICS_ENABLED": "false",
                "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
                "N8N_PERSONALIZATION_ENABLED": "false",
                "N8N_TEMPLATES_ENABLED": "false",
                "N8N_HIRING_BANNER_ENABLED": "false",
                "N8N_PUBLIC_API_SWAGGERUI_DISABLED": "true",
                "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
                "N8N_RUNNERS_ENABLED": "true",
                "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1",
                "N8N_RUNNERS_BROKER_PORT": str(self.broker_port),
                "N8N_LOG_LEVEL": "info",
                "N8N_LOG_OUTPUT": "console",
                "NODE_ENV": "production",
            }
        )
        return env

    def _fail(self, why: str) -> N8nStartError:
        return N8nStartError(f"{why}\n--- last lines of {self.log_path} ---\n{self.log_tail()}")

    def _wait_ready(self, deadline: float) -> None:
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.poll() is not None:
                    code = self._proc.returncode if self._proc is not None else None
                    raise self._fail(f"n8n exited with code {code} while starting")
                if routes_ready(client):
                    return
                time.sleep(0.25)
        raise self._fail(f"n8n did not become ready within {self.start_timeout:g}s")

    def _setup_owner_and_api_key(self) -> None:
        try:
            access = create_owner_and_api_key(self.base_url)
        except N8nSetupError as error:
            raise self._fail(str(error)) from None
        self.api_key, self.version = access.api_key, access.version


# ---------------------------------------------------------------------- pytest plugin


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A cold n8n install (~5.5 min) runs inside the first n8n test's setup: give the
    tests that use the fixture room for it, but only while n8n is not installed yet."""
    if is_installed() or os.environ.get("DEVSERVER_N8N_BIN"):
        return
    for item in items:
        if "n8n_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(INSTALL_TIMEOUT + START_TIMEOUT))


@pytest.fixture(scope="session")
def n8n_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[N8nServer]:
    """A running n8n (session-wide). Tests that stop it must start it again."""
    server = N8nServer(tmp_path_factory.mktemp("n8n"))
    try:
        server.start()
        yield server
    finally:
        server.close()


# ---------------------------------------------------------------------- a slow path to n8n


class SlowProxy:
    """A reverse proxy on 127.0.0.1 in front of n8n that can hold answers back.

    ``delay`` seconds pass before every request is forwarded; a request matching
    ``hold_after`` (``(method, path regex)``) is forwarded at once but its answer is held
    for ``hold_seconds``: n8n has done the work, the client does not know yet. That is the
    window in which an operator that stops has created something it has not recorded.
    ``forwarded`` lists ``(method, path, status)`` of every request n8n answered.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = 0.0
        self.hold_after: tuple[str, str] | None = None
        self.hold_seconds = 0.0
        self.forwarded: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                time.sleep(proxy.delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                try:
                    with httpx.Client(timeout=30.0) as client:
                        answer = client.request(
                            self.command, proxy.upstream + self.path, headers=headers, content=body
                        )
                except httpx.HTTPError:
                    self.send_error(502)
                    return
                path = self.path.partition("?")[0]
                with proxy._lock:
                    proxy.forwarded.append((self.command, path, answer.status_code))
                    hold = proxy.hold_after
                if hold and self.command == hold[0] and re.search(hold[1], path):
                    time.sleep(proxy.hold_seconds)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay  # noqa: N815

            def log_message(self, *_: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p, _ in self.forwarded if m == method and re.search(path, p))

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


# Not passed on: hop-by-hop headers, and content-encoding (httpx hands over the body decoded).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "host",
        "upgrade",
    }
)
