"""Streamable HTTP in front of the shared upstream session.

Each client gets an MCP session of its own (``Mcp-Session-Id``), answered from the one
session the proxy holds with the server process:

- ``initialize`` is answered from the process's own answer (its serverInfo, capabilities,
  instructions and protocol revision);
- requests are forwarded under an id of the proxy's own and answered as ``application/json``
  with the client's id; ``ping`` is answered by the proxy;
- ``notifications/cancelled`` is mapped to the forwarded request; ``notifications/initialized``
  is the proxy's business and stops here; other notifications are forwarded;
- there is no server-to-client stream: ``GET`` is 405, server notifications are dropped and
  server requests are refused (``upstream``);
- ``server/discover`` (the stateless 2026-07-28 revision) is "method not found", so clients
  fall back to the handshake, which is what the proxy can share.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import mcp_types
from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from .upstream import Upstream, error_message

logger = logging.getLogger(__name__)

SESSION_HEADER = "Mcp-Session-Id"
_MESSAGE = TypeAdapter[Any](mcp_types.JSONRPCMessage)


@dataclass
class Session:
    last_used: float
    in_flight: dict[Any, int] = field(default_factory=dict)
    """Client request id -> the proxy's id of it upstream."""


@dataclass(frozen=True)
class SessionLimits:
    max_sessions: int = 256
    """Client sessions at once; an initialize beyond that is refused with 503."""
    idle_seconds: float = 3600.0
    """A session unused this long is forgotten (clients rarely DELETE theirs)."""


class ProxyApp:
    def __init__(
        self, upstream: Upstream, *, path: str = "/mcp", limits: SessionLimits | None = None
    ) -> None:
        self.upstream = upstream
        self.path = path
        self.limits = limits or SessionLimits()
        self.sessions: dict[str, Session] = {}

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.upstream.limits.max_message_bytes)
        app.router.add_post(self.path, self.post)
        app.router.add_get(self.path, self.get)
        app.router.add_delete(self.path, self.delete)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, _: web.Request) -> web.Response:
        # Ready means: the server process answered initialize. The Deployment's readiness
        # (and so the MCPServer's Available condition) follows the server, not just the proxy.
        if self.upstream.ready:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="the MCP server process is not connected\n")

    async def get(self, _: web.Request) -> web.Response:
        return web.Response(
            status=405,
            headers={"Allow": "POST, DELETE"},
            text="this server offers no server-to-client stream\n",
        )

    async def delete(self, request: web.Request) -> web.Response:
        session_id = request.headers.get(SESSION_HEADER, "")
        if self.sessions.pop(session_id, None) is None:
            return _json(error_message(None, mcp_types.INVALID_REQUEST, "unknown session"), 404)
        return web.Response(status=204)

    async def post(self, request: web.Request) -> web.Response:
        try:
            raw = await request.read()
            data = json.loads(raw)
        except web.HTTPRequestEntityTooLarge:
            return _json(
                error_message(None, mcp_types.INVALID_REQUEST, "the message is too large"), 413
            )
        except ValueError:
            return _json(error_message(None, mcp_types.PARSE_ERROR, "the body is not JSON"), 400)
        if isinstance(data, list):
            return _json(
                error_message(
                    None, mcp_types.INVALID_REQUEST, "JSON-RPC batches are not supported"
                ),
                400,
            )
        try:
            _MESSAGE.validate_python(data)
        except ValidationError:
            return _json(
                error_message(
                    data.get("id") if isinstance(data, dict) else None,
                    mcp_types.INVALID_REQUEST,
                    "not a JSON-RPC 2.0 message",
                ),
                400,
            )
        method, message_id = data.get("method"), data.get("id")
        session_id = request.headers.get(SESSION_HEADER)
        if method == "initialize" and message_id is not None and session_id is None:
            return await self._initialize(message_id)
        if session_id is None:
            if method == "server/discover":
                return _json(
                    error_message(
                        message_id,
                        mcp_types.METHOD_NOT_FOUND,
                        "server/discover: this server speaks the initialize handshake",
                    )
                )
            return _json(
                error_message(message_id, mcp_types.INVALID_REQUEST, f"{SESSION_HEADER} missing"),
                400,
            )
        session = self.sessions.get(session_id)
        if session is None:
            # 404 tells a client to start a new session (the specification's rule).
            return _json(
                error_message(message_id, mcp_types.INVALID_REQUEST, "unknown session"), 404
            )
        session.last_used = time.monotonic()
        if not isinstance(method, str):
            return web.Response(status=202)  # an answer to a server request: none are routed
        if message_id is None:
            await self._notification(session, method, data.get("params"))
            return web.Response(status=202)
        return await self._request(session, message_id, method, data.get("params"))

    async def _initialize(self, message_id: Any) -> web.Response:
        self._forget_idle()
        if len(self.sessions) >= self.limits.max_sessions:
            return _json(
                error_message(
                    message_id,
                    mcp_types.INTERNAL_ERROR,
                    f"this MCP server has {self.limits.max_sessions} sessions; retry later",
                ),
                503,
            )
        upstream = self.upstream
        if not await upstream.wait_ready(upstream.limits.connect_wait):
            return _json(
                error_message(
                    message_id,
                    mcp_types.CONNECTION_CLOSED,
                    "The MCP server process is not running (starting or restarting); retry.",
                ),
                503,
            )
        assert upstream.initialize_result is not None
        session_id = secrets.token_hex(16)
        self.sessions[session_id] = Session(last_used=time.monotonic())
        answer = {"jsonrpc": "2.0", "id": message_id, "result": upstream.initialize_result}
        return _json(answer, headers={SESSION_HEADER: session_id})

    async def _notification(self, session: Session, method: str, params: Any) -> None:
        if method == "notifications/initialized":
            return
        if method == "notifications/cancelled":
            client_id = (params or {}).get("requestId") if isinstance(params, dict) else None
            upstream_id = session.in_flight.get(client_id)
            if upstream_id is not None:
                await self.upstream.cancel(upstream_id, str((params or {}).get("reason") or ""))
            return
        await self.upstream.notify(method, params)

    async def _request(
        self, session: Session, message_id: Any, method: str, params: Any
    ) -> web.Response:
        if method == "ping":
            return _json({"jsonrpc": "2.0", "id": message_id, "result": {}})
        if method == "initialize":
            return _json(
                error_message(message_id, mcp_types.INVALID_REQUEST, "the session is initialized")
            )

        def track(upstream_id: int) -> None:
            session.in_flight[message_id] = upstream_id

        try:
            answer = await self.upstream.request(method, params, track=track)
        finally:
            session.in_flight.pop(message_id, None)
        return _json({"jsonrpc": "2.0", "id": message_id, **answer})

    def _forget_idle(self) -> None:
        cutoff = time.monotonic() - self.limits.idle_seconds
        for session_id, session in list(self.sessions.items()):
            if session.last_used < cutoff and not session.in_flight:
                del self.sessions[session_id]


def _json(
    message: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(message, status=status, headers=headers)
