"""One MCP session with the server process, shared by every client of the proxy.

The proxy initializes the process itself, once per process, and keeps the answer: clients'
``initialize`` calls are answered from it. Each forwarded request gets a fresh id of the
proxy's own, so the answers of many clients never mix; the caller puts the client's id back.

Every wait is bounded. When the process ends (the kubelet restarts the container) or the
connection breaks, every request in flight gets a JSON-RPC error at once, and the proxy
connects again with backoff and initializes the new process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import ValidationError

from devserver_operator import __version__

from .channel import LineSplitter, StdioChannel

logger = logging.getLogger(__name__)

OpenChannel = Callable[[], Awaitable[StdioChannel]]
"""Connects to the server process (attach, or start a local process)."""
Reset = Callable[[], Awaitable[None]]
"""Restarts the server process; called when it refuses or ignores initialize."""


@dataclass(frozen=True)
class Limits:
    request_timeout: float = 60.0
    """Longest a forwarded request waits for its answer."""
    connect_wait: float = 10.0
    """Longest a request waits for the server to come (back) up before it fails."""
    initialize_timeout: float = 30.0
    """Longest the process may take to answer the proxy's initialize."""
    max_message_bytes: int = 8 * 1024 * 1024
    """Largest message in either direction; a longer line from the server is dropped."""
    max_pending: int = 64
    """Requests in flight to the server at once; more are refused at once."""
    backoff_initial: float = 0.5
    backoff_max: float = 15.0


def error_message(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class InitializeRefusedError(Exception):
    """The process answered the proxy's initialize with an error, or not at all."""


class Upstream:
    def __init__(
        self, open_channel: OpenChannel, *, limits: Limits | None = None, reset: Reset | None = None
    ) -> None:
        self._open = open_channel
        self._reset = reset
        self.limits = limits or Limits()
        self._ids = itertools.count(1)
        self._pending: dict[int | str, asyncio.Future[dict[str, Any]]] = {}
        self._channel: StdioChannel | None = None
        self._ready = asyncio.Event()
        self.initialize_result: dict[str, Any] | None = None
        self.connections = 0
        """Processes initialized so far (a restart adds one)."""

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def run(self) -> None:
        """Connect, initialize, serve until the process ends; again, with backoff, forever."""
        delay = self.limits.backoff_initial
        while True:
            try:
                await self._serve_one_connection()
                delay = self.limits.backoff_initial  # it ran: the next process starts fresh
                logger.warning("the MCP server process ended; connecting again")
            except InitializeRefusedError as error:
                logger.warning("%s; restarting the server process", error)
                if self._reset is not None:
                    try:
                        await self._reset()
                    except Exception as reset_error:  # retried with the next refusal
                        logger.warning("restarting the server process failed: %s", reset_error)
            except (OSError, ConnectionError, TimeoutError) as error:
                logger.warning("cannot reach the MCP server process: %s", error)
            except Exception:
                # Whatever broke one connection must not end the loop: the proxy would stay
                # up, alive and never ready again.
                logger.exception("the connection to the MCP server process failed")
            # Jitter: many proxies whose servers share a node do not retry in step.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not secrets
            delay = min(delay * 2, self.limits.backoff_max)

    async def _serve_one_connection(self) -> None:
        channel = await self._open()
        reader = asyncio.create_task(self._read(channel))
        try:
            self.initialize_result = await self._initialize(channel, reader)
            self._channel = channel
            self.connections += 1
            self._ready.set()
            logger.info("connected to the MCP server process (%d)", self.connections)
            await reader
        finally:
            self._ready.clear()
            self._channel = None
            self._fail_pending("The MCP server process ended; the request was not answered.")
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            with contextlib.suppress(Exception):
                await channel.close()

    async def _initialize(
        self, channel: StdioChannel, reader: asyncio.Task[None]
    ) -> dict[str, Any]:
        request = mcp_types.InitializeRequest(
            params=mcp_types.InitializeRequestParams(
                protocol_version=LATEST_HANDSHAKE_VERSION,
                # No client capabilities: the proxy cannot route sampling, roots or
                # elicitation to a client, so it does not invite the server to ask.
                capabilities=mcp_types.ClientCapabilities(),
                client_info=mcp_types.Implementation(
                    name="devserver-operator-stdio-proxy", version=__version__
                ),
            )
        ).model_dump(by_alias=True, mode="json", exclude_none=True)
        request_id = f"proxy-initialize-{self.connections + 1}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await channel.write(_line({"jsonrpc": "2.0", "id": request_id, **request}))
            waited: set[asyncio.Future[Any]] = {future, reader}
            done, _ = await asyncio.wait(
                waited,
                timeout=self.limits.initialize_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self._pending.pop(request_id, None)
        if future not in done:
            if reader in done:
                raise ConnectionError("the server process ended before it answered initialize")
            raise InitializeRefusedError(
                f"the server did not answer initialize within {self.limits.initialize_timeout}s"
            )
        answer = future.result()
        if "error" in answer:
            # Most likely the process was initialized by an earlier connection (a proxy
            # restart): SDK servers refuse a second initialize, and what the first one
            # agreed is lost with that connection. Only a fresh process helps.
            raise InitializeRefusedError(f"the server refused initialize: {answer['error']}")
        result = answer.get("result")
        try:
            parsed = mcp_types.InitializeResult.model_validate(result, by_name=False)
        except ValidationError as error:
            raise InitializeRefusedError(
                f"the server's initialize answer is not MCP: {error}"
            ) from None
        if parsed.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
            raise InitializeRefusedError(f"the server speaks {parsed.protocol_version!r}")
        await channel.write(_line({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        assert isinstance(result, dict)
        return result

    async def _read(self, channel: StdioChannel) -> None:
        splitter = LineSplitter(self.limits.max_message_bytes)
        while True:
            data = await channel.read()
            if not data:
                return
            for line in splitter.feed(data):
                await self._dispatch(channel, line)
            if splitter.dropped:
                logger.warning(
                    "dropped %d line(s) from the server longer than %d bytes",
                    splitter.dropped,
                    self.limits.max_message_bytes,
                )
                splitter.dropped = 0

    async def _dispatch(self, channel: StdioChannel, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = json.loads(line)
        except ValueError:
            logger.warning("the server wrote a line that is not JSON: %.200r", line)
            return
        if not isinstance(message, dict):
            return
        method, message_id = message.get("method"), message.get("id")
        if isinstance(method, str):
            if message_id is not None:
                await self._answer_server_request(channel, message_id, method)
            # Notifications (progress, logging, list changes) have no client to go to: the
            # proxy offers no server-to-client stream.
            return
        future = self._pending.get(message_id) if isinstance(message_id, int | str) else None
        if future is not None and not future.done():
            future.set_result(message)

    async def _answer_server_request(
        self, channel: StdioChannel, message_id: Any, method: str
    ) -> None:
        if method == "ping":
            answer: dict[str, Any] = {"jsonrpc": "2.0", "id": message_id, "result": {}}
        else:
            answer = error_message(
                message_id,
                mcp_types.METHOD_NOT_FOUND,
                f"{method} cannot reach a client: the stdio proxy shares this session among "
                "its clients and routes no server-to-client requests",
            )
        with contextlib.suppress(ConnectionError, OSError):
            await channel.write(_line(answer))

    def _fail_pending(self, why: str) -> None:
        for future in list(self._pending.values()):
            if not future.done():
                future.set_result(error_message(None, mcp_types.CONNECTION_CLOSED, why))

    async def wait_ready(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bounded wait
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.ready

    async def request(
        self,
        method: str,
        params: Any,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the request's own deadline
        track: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Forward one request; returns the answer (``result`` or ``error``) without its id.

        Never raises for the server's sake: an absent, ended or slow server is a JSON-RPC
        error in the answer."""
        deadline = self.limits.request_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        if len(self._pending) >= self.limits.max_pending:
            return _error(
                mcp_types.INTERNAL_ERROR,
                f"The MCP server has {self.limits.max_pending} requests in flight; retry later.",
            )
        if not await self.wait_ready(min(self.limits.connect_wait, deadline)):
            return _error(
                mcp_types.CONNECTION_CLOSED,
                "The MCP server process is not running (starting or restarting); retry.",
            )
        channel = self._channel
        assert channel is not None
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending[request_id] = future
        if track is not None:
            track(request_id)  # lets a client's notifications/cancelled find this request
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            try:
                await channel.write(_line(message))
            except (ConnectionError, OSError):
                return _error(mcp_types.CONNECTION_CLOSED, "The MCP server process ended.")
            remaining = max(0.0, deadline - (loop.time() - started))
            try:
                answer = await asyncio.wait_for(asyncio.shield(future), remaining)
            except TimeoutError:
                await self.cancel(request_id, "the proxy's deadline passed")
                return _error(
                    mcp_types.REQUEST_TIMEOUT,
                    f"The MCP server did not answer {method} within {deadline:g}s.",
                )
        finally:
            self._pending.pop(request_id, None)
        return {key: value for key, value in answer.items() if key in ("result", "error")}

    async def notify(self, method: str, params: Any) -> None:
        """Forward a client notification; dropped while no process is connected."""
        channel = self._channel
        if channel is None:
            return
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        with contextlib.suppress(ConnectionError, OSError):
            await channel.write(_line(message))

    async def cancel(self, request_id: int, reason: str) -> None:
        """Tell the server that nobody waits for ``request_id`` any more."""
        await self.notify("notifications/cancelled", {"requestId": request_id, "reason": reason})


def _error(code: int, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
