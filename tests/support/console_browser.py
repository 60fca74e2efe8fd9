"""The console's browser scripts (console-ui/e2e/*.mjs: playwright-core driving Debian's
Chromium) run from Python, for the browser tests and the browser benchmark.

A script prints one JSON object per line (``{"step": ..., ...}``) and may wait for lines on
its stdin, so the Python side can act on the cluster in the middle of a scenario (restart
the API server, patch a status) and tell the page to go on.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

REPOSITORY = Path(__file__).resolve().parents[2]
UI = REPOSITORY / "console-ui"
E2E = UI / "e2e"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
Step = dict[str, Any]


def ensure_browser_tools() -> None:
    """Chromium from Debian and the built UI with its npm packages (setup installs both; a
    missing build is made here rather than skipped)."""
    if not CHROMIUM.is_file():
        subprocess.run(["bash", str(REPOSITORY / "hack/install-debian-packages.sh")], check=True)
    built = REPOSITORY / "operator/devserver_operator/console/ui/index.html"
    if not built.is_file() or not (UI / "node_modules/playwright-core").is_dir():
        subprocess.run(["bash", str(REPOSITORY / "hack/console/build.sh")], check=True, timeout=900)


class BrowserScript:
    """``node console-ui/e2e/<name>`` with ``env``; its steps as they come."""

    def __init__(self, name: str, env: Mapping[str, str]) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.process = subprocess.Popen(
            ["node", str(E2E / name)],
            env={**os.environ, "CHROMIUM": str(CHROMIUM), **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.steps: list[Step] = []
        self._lines: queue.Queue[Step | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            if line.startswith("{"):
                self._lines.put(json.loads(line))
        self._lines.put(None)

    def next_step(self, timeout: float) -> Step | None:
        """The next step, or None once the script ended (or said nothing for ``timeout``)."""
        try:
            step = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if step is not None:
            self.steps.append(step)
        else:
            self._lines.put(None)  # ended: every later call says so too
        return step

    def wait_for(self, name: str, timeout: float) -> Step:
        """Steps up to the first named ``name``; fails on "failed", an end or a timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            step = self.next_step(left)
            if step is None or step["step"] == "failed":
                break
            if step["step"] == name:
                return step
        raise AssertionError(f"no step {name!r} within {timeout:.0f}s\n{self.transcript()}")

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float) -> dict[str, list[Step]]:
        """Waits for the script to end; every step it reported, by name."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
        while self.next_step(5) is not None:
            pass
        by_step: dict[str, list[Step]] = {}
        for step in self.steps:
            by_step.setdefault(step["step"], []).append(step)
        return by_step

    def transcript(self) -> str:
        """The steps so far and the end of stderr, for an assertion message."""
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace")[-3000:]
        return f"{json.dumps(self.steps, indent=1)[-4000:]}\n{tail}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self._stderr.close()

    def __enter__(self) -> BrowserScript:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
