"""Child processes that cannot outlive us.

Three layers make sure no etcd or kube-apiserver is left running:

1. ``stop()`` in the normal path (context manager exit, fixture teardown).
2. ``atexit`` for an interpreter that exits without reaching (1), e.g. ``sys.exit`` in a
   CLI or an exception that escapes a test session.
3. ``PR_SET_PDEATHSIG``: the kernel sends SIGKILL to the child when its parent dies,
   which covers SIGKILL of Python, a crash, or an OOM kill, where no Python code runs.

Each child also gets its own session (``start_new_session``) so that a Ctrl-C in the
terminal reaches only Python, which then stops the children in order (apiserver before
etcd) instead of all of them dying at once mid-write.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TextIO

_PR_SET_PDEATHSIG: Final = 1
LOG_TAIL_LINES: Final = 40


def _load_prctl() -> Callable[..., int] | None:
    # Resolved in the parent: a forked child must do as little as possible before exec
    # (no dlopen, no imports), because another thread may have held a lock at fork time.
    if not hasattr(os, "fork"):
        return None
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
    except OSError:
        return None
    prctl: Callable[..., int] | None = getattr(libc, "prctl", None)
    return prctl


_prctl = _load_prctl()


def _make_preexec(parent_pid: int) -> Callable[[], None]:
    def die_with_parent() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # The parent may have died between fork() and prctl(); then the signal would
        # never come, and we would be re-parented to init.
        if os.getppid() != parent_pid:
            os._exit(1)

    return die_with_parent


class ManagedProcess:
    """A child process whose output goes to a log file, stopped by ``stop()`` or at exit.

    Caveat: the kernel ties PDEATHSIG to the *thread* that forked the child. Start
    processes from a thread that lives as long as they should (normally the main thread).
    """

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.argv = tuple(argv)
        self.log_path = log_path
        self._log: TextIO = log_path.open("w", encoding="utf-8")
        self._popen = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_make_preexec(os.getpid()),  # noqa: PLW1509 - see _load_prctl
        )
        _live_processes.add(self)

    @property
    def pid(self) -> int:
        return self._popen.pid

    def exit_code(self) -> int | None:
        """None while the process runs."""
        return self._popen.poll()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            return f"(log {self.log_path} unreadable: {error})"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_seconds``; reaps the process."""
        try:
            if self._popen.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    self._popen.wait(timeout=grace_seconds)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    self._popen.wait()
        finally:
            self._log.close()
            _live_processes.discard(self)

    def _signal(self, signum: int) -> None:
        # The child leads its own process group; signalling the group also reaches
        # anything it may have spawned.
        try:
            os.killpg(self._popen.pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            self._popen.send_signal(signum)


class _ProcessRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: list[ManagedProcess] = []

    def add(self, process: ManagedProcess) -> None:
        with self._lock:
            self._processes.append(process)

    def discard(self, process: ManagedProcess) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._processes.remove(process)

    def stop_all(self) -> None:
        with self._lock:
            # Newest first: dependants (apiserver) stop before what they depend on (etcd).
            processes = list(reversed(self._processes))
        for process in processes:
            process.stop(grace_seconds=5.0)


_live_processes = _ProcessRegistry()
atexit.register(_live_processes.stop_all)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    The port is released before the server binds it, so another process could take it
    in between; on a test machine that race is rare enough to accept.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
