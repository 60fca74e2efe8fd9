"""A byte channel to a stdio MCP server process, and newline framing with a size bound."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

logger = logging.getLogger(__name__)


class StdioChannel(Protocol):
    """The server process's stdin (write) and stdout (read) as one connection."""

    async def write(self, data: bytes) -> None:
        """Send bytes to the process's stdin; raises ConnectionError once it is gone."""

    async def read(self) -> bytes:
        """The next bytes of stdout; b"" once the process (or the connection) has ended."""

    async def close(self) -> None:
        """Let go of the connection (the process itself may go on running)."""


class LineSplitter:
    """Splits a byte stream into lines. A line longer than ``max_bytes`` is dropped whole
    (its start, the rest up to the next newline) instead of growing the buffer without end."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._buffer = bytearray()
        self._discarding = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            piece = data[start:end]
            start = end + 1
            if self._discarding:
                self._discarding = False
                continue
            if len(self._buffer) + len(piece) > self._max:
                self._buffer.clear()
                self.dropped += 1
                continue
            self._buffer += piece
            lines.append(bytes(self._buffer))
            self._buffer.clear()
        rest = data[start:]
        if not self._discarding:
            if len(self._buffer) + len(rest) > self._max:
                self._buffer.clear()
                self._discarding = True
                self.dropped += 1
            else:
                self._buffer += rest
        return lines


class SubprocessChannel:
    """A local process as the server: the tests' stand-in for an attached container, and a
    way to run the proxy around a command without Kubernetes. Each open starts a new process,
    so a reset has nothing to do."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout

    @classmethod
    async def start(cls, argv: Sequence[str]) -> SubprocessChannel:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # the server's log goes where the proxy's goes
        )
        return cls(process)

    async def write(self, data: bytes) -> None:
        try:
            self._stdin.write(data)
            await self._stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as error:
            raise ConnectionError(f"the server process's stdin is closed: {error}") from error

    async def read(self) -> bytes:
        return await self._stdout.read(65536)

    async def close(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await self._process.wait()
