"""Small loopback HTTP servers that misbehave in the ways MCP verification must survive.

One threaded ``http.server`` answers many routes (``hostile_http.url("html")``):

=========================  ===============================================================
route                      behaviour
=========================  ===============================================================
``html``                   an HTML page (200, text/html) for every method
``plain``                  200 text/plain
``garbage``                200 application/json whose body is not JSON
``not-jsonrpc``            200 application/json with JSON that is not JSON-RPC
``rpc-error``              a JSON-RPC error object as the answer to ``initialize``
``wrong-version``          ``initialize`` answers protocol version ``1999-01-01``
``no-server-info``         ``initialize`` answers without ``serverInfo``
``accepted``               202 Accepted with no body for every request
``mcp``                    a correct (JSON-answering) MCP server with two tools
``paged``                  pagination: ``?pages=N&per_page=M`` (default 50 x 4)
``endless``                every ``tools/list`` page has a new ``nextCursor``
``cursor-loop``            every ``tools/list`` page has the same ``nextCursor``
``huge``                   10,000 tools in one ``tools/list`` answer
``too-large``              ``initialize`` answer padded to ~64 KB
``resumable``              answers as an event stream that closes after a priming event
                           id; the answer comes on the GET with ``Last-Event-ID``
``echo-headers``           200 text/plain echoing the request headers (a leaky server)
``echo-headers-401``       401 text/plain echoing the request headers
``redirect``               307 to ``mcp`` (same origin)
``redirect-away``          307 to another origin (``127.0.0.2``)
``sse``                    a legacy HTTP+SSE MCP server; its ``endpoint`` event names
                           another origin (as servers behind proxies do); ``?ping=1``
                           sends a ``ping`` request and a notification before the
                           ``initialize`` answer
``sse-no-endpoint``        an event stream that ends without an ``endpoint`` event
``modern-future``          ``server/discover`` fails with -32022 naming only ``2099-01-01``
``modern-legacy-list``     ``server/discover`` succeeds but lists only ``2025-06-18``
``modern-bad-result``      ``server/discover`` answers a result without capabilities
=========================  ===============================================================

A route may be combined with a JSON-RPC behaviour through the query, e.g.
``sse?tools=huge``; ``?version=V`` sets the protocol version ``initialize`` answers,
``?no_tools=1`` leaves out the tools capability, ``?long=1`` makes tool names and
descriptions very long.
Every request is recorded in ``requests`` (method, path, headers, body) so tests can check
what the client sent and where.

``HangingServer`` listens and never accepts: connections complete in the kernel's backlog and
then nothing ever answers.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

HUGE_TOOL_COUNT = 10_000
HTML_PAGE = (
    "<!DOCTYPE html>\n<html>\n<head><title>Welcome to nginx!</title></head>\n"
    "<body><h1>Welcome to nginx!</h1><p>If you see this page, the web server works.</p>"
    "</body>\n</html>\n"
)
_SSE_WAIT_SECONDS = 30.0
_CREDENTIALS = ("authorization", "x-api-key")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _tool(name: str, index: int) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"Hostile tool number {index}.",
        "inputSchema": {"type": "object", "properties": {}},
    }


def jsonrpc_answer(route: str, query: dict[str, str], message: Any) -> dict[str, Any] | None:
    """The answer of the hostile MCP logic to one JSON-RPC message (``None``: no answer)."""
    if not isinstance(message, dict) or "id" not in message:
        return None
    request_id = message["id"]
    method = message.get("method")
    params = message.get("params") or {}
    behaviour = query.get("tools", route)
    if method == "server/discover":
        return _discover_answer(route, request_id, params)
    if method == "initialize":
        if route == "rpc-error":
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32603, "message": "Internal error: database unavailable"},
            }
        version = query.get("version", "2025-06-18")
        result: dict[str, Any] = {
            "protocolVersion": "1999-01-01" if route == "wrong-version" else version,
            "capabilities": {"tools": {"listChanged": True}, "logging": {}},
            "serverInfo": {"name": f"hostile-{route}", "version": "0.0.1"},
        }
        if route == "no-server-info":
            del result["serverInfo"]
        if query.get("no_tools"):
            result["capabilities"] = {"prompts": {}}
        if route == "too-large":
            result["instructions"] = "x" * 64_000
        return {"jsonrpc": "2.0", "id": request_id, "result": result}
    if method == "ping":
        return {"jsonrpc": "2.0", "id": request_id, "result": {}}
    if method != "tools/list":
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": -32601, "message": "Method not found"},
        }
    cursor = params.get("cursor") if isinstance(params, dict) else None
    page = int(cursor.removeprefix("page-")) if isinstance(cursor, str) and cursor else 0
    result = {"tools": [_tool("alpha", 0), _tool("beta", 1)]}
    if behaviour == "paged":
        pages = int(query.get("pages", "50"))
        per_page = int(query.get("per_page", "4"))
        result = {
            "tools": [
                _tool(f"page{page:04d}_tool{i}", page * per_page + i) for i in range(per_page)
            ]
        }
        if page + 1 < pages:
            result["nextCursor"] = f"page-{page + 1}"
    elif behaviour == "endless":
        result["nextCursor"] = f"page-{page + 1}"
    elif behaviour == "cursor-loop":
        result["nextCursor"] = "page-1"
    elif behaviour == "huge":
        result = {"tools": [_tool(f"tool_{i:05d}", i) for i in range(HUGE_TOOL_COUNT)]}
    if query.get("long"):
        for tool in result["tools"]:
            tool["description"] = "d" * 5000
            tool["name"] = tool["name"] * 100
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _discover_answer(route: str, request_id: Any, params: Any) -> dict[str, Any]:
    meta = params.get("_meta", {}) if isinstance(params, dict) else {}
    requested = meta.get("io.modelcontextprotocol/protocolVersion")
    unsupported = {
        "code": -32022,
        "message": "Unsupported protocol version",
        "data": {"supported": ["2099-01-01"], "requested": requested},
    }
    result: dict[str, Any] = {
        "supportedVersions": ["2026-07-28"],
        "capabilities": {"tools": {}},
        "_meta": {
            "io.modelcontextprotocol/serverInfo": {"name": f"hostile-{route}", "version": "9"}
        },
    }
    if route == "modern-future":
        return {"jsonrpc": "2.0", "id": request_id, "error": unsupported}
    if route == "modern-legacy-list":
        result["supportedVersions"] = ["2025-06-18"]
    elif route == "modern-bad-result":
        del result["capabilities"]
    elif not route.startswith("modern"):
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": -32601, "message": "Method not found"},
        }
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.sse_sessions: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.resumable_answers: dict[str, dict[str, Any]] = {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait for a delayed ACK (40 ms)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing --------------------------------------------------------------------------

    def _record(self, body: bytes) -> None:
        with self.server.lock:
            self.server.requests.append(
                RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
            )

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes | str = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(200, json.dumps(payload), "application/json", headers)

    def _start_event_stream(self, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True

    def _event(self, data: str, *, event: str | None = None, event_id: str | None = None) -> None:
        lines = []
        if event_id is not None:
            lines.append(f"id: {event_id}")
        if event is not None:
            lines.append(f"event: {event}")
        lines += [f"data: {line}" for line in data.split("\n")]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.wfile.flush()

    def _route(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return parts.path.strip("/"), query

    # -- methods ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record(b"")
        route, _ = self._route()
        if route == "html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
        elif route == "sse":
            self._legacy_sse_stream()
        elif route == "sse-no-endpoint":
            self._start_event_stream()
            self.wfile.write(b": keep-alive\r\n\r\nevent: hello\r\ndata: not an endpoint\r\n\r\n")
        elif route == "resumable":
            last_id = self.headers.get("Last-Event-ID", "")
            answer = self.server.resumable_answers.pop(last_id, None)
            if answer is None:
                self._send(400, "unknown Last-Event-ID", "text/plain")
                return
            self._start_event_stream()
            self._event(json.dumps(answer), event="message", event_id=f"{last_id}-done")
        elif route in ("mcp", "paged", "endless", "cursor-loop", "huge"):
            self._send(405, "", None, {"Allow": "POST, DELETE"})
        else:
            self._common(route)

    def do_DELETE(self) -> None:
        self._record(b"")
        self._send(200)

    def do_POST(self) -> None:
        body = self._read_body()
        self._record(body)
        route, query = self._route()
        if route == "messages":
            self._legacy_sse_post(body, query)
            return
        if route == "html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
        elif route == "plain":
            self._send(200, "OK", "text/plain")
        elif route == "garbage":
            self._send(200, "this is {not json", "application/json")
        elif route == "not-jsonrpc":
            self._send_json({"status": "ok", "items": [1, 2, 3]})
        elif route == "accepted":
            self._send(202)
        elif route == "resumable":
            self._resumable_post(body)
        else:
            self._common(route, body, query)

    def _common(self, route: str, body: bytes = b"", query: dict[str, str] | None = None) -> None:
        if route == "echo-headers":
            self._send(200, self._echo_headers(), "text/plain")
        elif route == "echo-headers-401":
            self._send(401, self._echo_headers(), "text/plain")
        elif route == "redirect":
            self._send(307, "", None, {"Location": "/mcp"})
        elif route == "redirect-away":
            port = self.server.server_address[1]
            self._send(307, "", None, {"Location": f"http://127.0.0.2:{port}/mcp"})
        elif self.command == "POST" and route in (
            "mcp",
            "rpc-error",
            "wrong-version",
            "no-server-info",
            "too-large",
            "paged",
            "endless",
            "cursor-loop",
            "huge",
            "modern-future",
            "modern-legacy-list",
            "modern-bad-result",
        ):
            message = json.loads(body)
            answer = jsonrpc_answer(route, query or {}, message)
            if answer is None:
                self._send(202)
                return
            headers = {}
            if isinstance(message, dict) and message.get("method") == "initialize":
                headers["Mcp-Session-Id"] = f"hostile-{uuid.uuid4().hex}"
            self._send_json(answer, headers)
        else:
            self._send(404, "not found", "text/plain")

    def _echo_headers(self) -> str:
        # Credentials first, so that they fall within what a client shows of the body.
        items = sorted(self.headers.items(), key=lambda kv: kv[0].lower() not in _CREDENTIALS)
        return "You sent: " + "; ".join(f"{name}: {value}" for name, value in items)

    def _resumable_post(self, body: bytes) -> None:
        message = json.loads(body)
        answer = jsonrpc_answer("mcp", {}, message)
        if answer is None:
            self._send(202)
            return
        event_id = f"evt-{uuid.uuid4().hex}"
        self.server.resumable_answers[event_id] = answer
        headers = {}
        if message.get("method") == "initialize":
            headers["Mcp-Session-Id"] = "resumable-session"
        self._start_event_stream(headers)
        # The priming event: an id, a short retry, empty data; then the server hangs up.
        self.wfile.write(f"id: {event_id}\r\nretry: 10\r\ndata:\r\n\r\n".encode())
        self.wfile.flush()

    def _legacy_sse_stream(self) -> None:
        _, query = self._route()
        session = uuid.uuid4().hex
        outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.server.sse_sessions[session] = outbox
        self._start_event_stream()
        port = self.server.server_address[1]
        passed_on = "".join(f"&{key}={value}" for key, value in query.items())
        # Another origin, as a server behind a proxy would announce its internal address.
        self._event(
            f"http://10.255.255.1:{port}/messages?session_id={session}{passed_on}",
            event="endpoint",
        )
        waited = 0.0
        try:
            while waited < _SSE_WAIT_SECONDS and not self.server.closing.is_set():
                try:
                    message = outbox.get(timeout=0.2)
                except queue.Empty:
                    waited += 0.2
                    continue
                self._event(json.dumps(message), event="message")
        except OSError:
            pass  # the client went away
        finally:
            self.server.sse_sessions.pop(session, None)

    def _legacy_sse_post(self, body: bytes, query: dict[str, str]) -> None:
        outbox = self.server.sse_sessions.get(query.get("session_id", ""))
        if outbox is None:
            self._send(404, "unknown session", "text/plain")
            return
        message = json.loads(body)
        answer = jsonrpc_answer("sse", query, message)
        self._send(202, "Accepted", "text/plain")
        if (
            query.get("ping")
            and isinstance(message, dict)
            and message.get("method") == "initialize"
        ):
            # The server's own request and a notification, interleaved before the answer.
            outbox.put({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"})
            outbox.put({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})
        if answer is not None:
            outbox.put(answer)


class HostileHttpServer:
    """The threaded hostile server; ``url(route)`` gives the full URL of a route."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, route: str) -> str:
        return f"{self.base_url}/{route.lstrip('/')}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._server.lock:
            return list(self._server.requests)

    def clear(self) -> None:
        with self._server.lock:
            self._server.requests.clear()

    def close(self) -> None:
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class HangingServer:
    """A socket that listens and never accepts: requests to it never get an answer."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def url(self, path: str = "mcp") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self._socket.close()


def unused_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def hostile_http() -> Iterator[HostileHttpServer]:
    """The hostile HTTP server (see the module docstring for its routes)."""
    server = HostileHttpServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def hanging_server() -> Iterator[HangingServer]:
    """A server that accepts connections (in the kernel backlog) and never answers."""
    server = HangingServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def unreachable_url() -> str:
    """An MCP URL on a loopback port where nothing listens."""
    return f"http://127.0.0.1:{unused_port()}/mcp"
