"""A real Prometheus (Debian's package) on loopback, scraping a target the test controls.

- :class:`MetricTarget`: a tiny HTTP server on 127.0.0.1 that serves ``/metrics`` in the
  Prometheus text format; the test sets gauge values (``target.set("name", {"l": "v"}, 7)``)
  and removes series.
- :class:`PrometheusServer`: ``prometheus`` with a temporary config that scrapes the target
  every second (and evaluates every second), TSDB in a temporary directory, listening on
  127.0.0.1 only. ``wait_until(expr, predicate)`` polls its query API, bounded.

The binaries come from ``hack/install-debian-packages.sh``; when ``prometheus`` is missing
the fixture runs that script (idempotent) instead of skipping. The process runs in its own
process group, dies with the thread that started it (``PR_SET_PDEATHSIG``), and is killed on
``stop()`` and at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "install-debian-packages.sh"
START_TIMEOUT = 60.0
SCRAPE_INTERVAL = "1s"

_PR_SET_PDEATHSIG = 1
_libc: Any = None
with contextlib.suppress(OSError):
    _libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def ensure_installed(command: str = "prometheus") -> str:
    """The path of ``command`` (prometheus or promtool), installing the package if needed."""
    found = shutil.which(command)
    if found:
        return found
    subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=900)
    found = shutil.which(command)
    if not found:
        raise RuntimeError(f"{command} is still missing after {INSTALL_SCRIPT}")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _label_text(labels: Mapping[str, str]) -> str:
    """``{a="1",b="x"}`` in the text exposition format (backslash, quote, newline escaped)."""
    if not labels:
        return ""

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in sorted(labels.items())) + "}"


class MetricTarget:
    """Gauges the test controls, served at http://127.0.0.1:PORT/metrics."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()
        self.scrapes = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = target.exposition().encode()
                with target._lock:
                    target.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, labels: Mapping[str, str], value: float) -> None:
        with self._lock:
            self._series[(name, tuple(sorted(labels.items())))] = value

    def remove(self, name: str, labels: Mapping[str, str]) -> None:
        with self._lock:
            self._series.pop((name, tuple(sorted(labels.items()))), None)

    def exposition(self) -> str:
        with self._lock:
            series = sorted(self._series.items())
        lines: list[str] = []
        typed: set[str] = set()
        for (name, labels), value in series:
            if name not in typed:
                lines.append(f"# TYPE {name} gauge")
                typed.add(name)
            lines.append(f"{name}{_label_text(dict(labels))} {value!r}")
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class PrometheusServer:
    def __init__(self, targets: list[str]) -> None:
        self.binary = ensure_installed("prometheus")
        self._directory = tempfile.TemporaryDirectory(prefix="devserver-prometheus-")
        self.directory = Path(self._directory.name)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "scrape_configs": [
                {"job_name": "devserver-tests", "static_configs": [{"targets": targets}]}
            ],
        }
        self.config_path = self.directory / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = self.directory / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, async-signal-safe
        )
        log.close()
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"prometheus exited: {self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"prometheus not ready in {START_TIMEOUT}s: {self.log_tail()}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._directory.cleanup()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.post(f"{self.url}/api/v1/query", data={"query": expr}, timeout=5.0)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def wait_until(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        *,
        timeout: float = 20.0,
        what: str = "",
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what or expr}: not true after {timeout}s: {result}")
            time.sleep(0.2)


@contextlib.contextmanager
def running_prometheus() -> Iterator[tuple[PrometheusServer, MetricTarget]]:
    """A Prometheus scraping a fresh MetricTarget every second."""
    target = MetricTarget()
    server = PrometheusServer([target.address]).start()
    try:
        yield server, target
    finally:
        server.stop()
        target.stop()
