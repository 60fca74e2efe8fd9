"""The two HTTP transports of MCP, as far as the probe needs them (client side, on httpx).

- :class:`StreamableHttpConnection`: the streamable HTTP transport (protocol 2025-03-26 and
  later). Every message is a POST to the one MCP endpoint with
  ``Accept: application/json, text/event-stream``; the answer is a JSON body or an event
  stream. The session id the server hands out with the ``initialize`` answer
  (``Mcp-Session-Id``) and the negotiated ``MCP-Protocol-Version`` go with every later
  request, and the session is ended with a DELETE. A stream that the server closes before
  the answer (after sending an event id, as 2025-11-25 allows) is resumed with a GET and
  ``Last-Event-ID``.
- :class:`LegacySseConnection`: the HTTP+SSE transport of protocol 2024-11-05. A GET opens an
  event stream whose first ``endpoint`` event names the URL to POST messages to; answers
  arrive on the event stream, matched by JSON-RPC id.

Both answer the server's own requests that may interleave (``ping`` with an empty result,
anything else with "method not found"), ignore its notifications, bound the size of every
answer, and map every httpx failure to an :class:`McpProbeError`. They never follow a
redirect to another origin, and never send a request to a host other than the configured
one (an SSE ``endpoint`` on another origin is re-based onto the configured origin), so
credentials in headers stay with the server they were meant for.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, aclosing, asynccontextmanager, contextmanager, suppress
from http import HTTPStatus
from typing import Any, Final, Literal

import httpx

from devserver_operator.integrations.mcp_errors import McpProbeError, McpProbeReason, snippet
from devserver_operator.integrations.mcp_sse import (
    SseEvent,
    SseEventTooLargeError,
    SseParser,
    iter_sse_events,
)

__all__ = [
    "JSONObject",
    "LegacySseConnection",
    "McpConnection",
    "StreamableHttpConnection",
]

JSONObject = dict[str, Any]
Transport = Literal["streamable-http", "sse"]

MAX_REDIRECTS: Final = 3
MAX_RESUMPTIONS: Final = 10
MAX_RETRY_WAIT_SECONDS: Final = 5.0
MAX_SERVER_REQUESTS_ANSWERED: Final = 100
_ERROR_BODY_BYTES: Final = 4096
_ACCEPT_BOTH: Final = "application/json, text/event-stream"
_SSE: Final = "text/event-stream"
_JSON: Final = "application/json"


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


def _connect_detail(exc: BaseException) -> str:
    """The most telling cause of a connection failure (e.g. "Connection refused")."""
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None:
            break
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.strerror or cause}"
        if isinstance(cause, OSError) and cause.errno is not None and cause.errno > 0:
            return os.strerror(cause.errno)
        if isinstance(cause, OSError) and cause.strerror and cause.errno is not None:
            return cause.strerror  # e.g. name resolution failures (negative errno)
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


class McpConnection:
    """What both transports share: JSON-RPC bookkeeping, bounded reads, error mapping."""

    transport: Transport

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        *,
        headers: httpx.Headers,
        shown_url: str,
        secrets: list[str],
        max_response_bytes: int,
    ) -> None:
        self.client = client
        self.url = url
        self.headers = headers
        self.shown_url = shown_url
        self.secrets = secrets
        self.max_response_bytes = max_response_bytes
        self.protocol_version: str | None = None
        self.phase = "connecting"
        self._next_id = 0
        self._answered = 0
        self._stack = AsyncExitStack()

    # -- the interface the probe uses ------------------------------------------------------

    async def start(self) -> None:
        """Open what the transport needs before the first request."""

    async def request(
        self,
        method: str,
        params: JSONObject | None,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
    ) -> JSONObject:
        """Send a request and return its ``result`` (``what`` names it in messages).

        ``headers`` go with this request only (e.g. ``Mcp-Method`` on protocol 2026-07-28).
        """
        raise NotImplementedError

    async def notify(self, method: str, params: JSONObject | None) -> None:
        raise NotImplementedError

    async def aclose(self, deadline: float) -> None:
        """Release the connection (best effort, never raises, done by ``deadline``)."""
        with suppress(Exception):
            await self._stack.aclose()

    # -- helpers ---------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _error(
        self, reason: McpProbeReason, message: str, rpc: Mapping[str, Any] | None = None
    ) -> McpProbeError:
        if rpc is None:
            return McpProbeError(reason, message)
        code = rpc.get("code")
        return McpProbeError(
            reason,
            message,
            rpc_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            rpc_data=rpc.get("data"),
        )

    @contextmanager
    def _http_errors(self, action: str) -> Iterator[None]:
        """Map httpx failures inside the block to McpProbeError (``action``: "sending X")."""
        try:
            yield
        except SseEventTooLargeError as exc:
            raise self._error(
                "ResponseTooLarge",
                f"The MCP server at {self.shown_url} sent an event of more than "
                f"{self.max_response_bytes} bytes while {action}; the probe refuses answers "
                "that large.",
            ) from exc
        except httpx.TimeoutException as exc:
            raise self._error(
                "Timeout",
                f"The MCP server at {self.shown_url} did not answer in time while {action}; "
                "check that it is up, or raise the verification timeout if it starts slowly.",
            ) from exc
        except httpx.ConnectError as exc:
            detail = snippet(_connect_detail(exc), 160, self.secrets)
            raise self._error(
                "ConnectionFailed",
                f"Could not connect to the MCP server at {self.shown_url} ({detail}); "
                "check the URL and that the server is running and reachable.",
            ) from exc
        except httpx.DecodingError as exc:
            raise self._error(
                "ProtocolError",
                f"The MCP server at {self.shown_url} sent a body that cannot be decoded (its "
                f"Content-Encoding is broken) while {action}; check the server and any proxy.",
            ) from exc
        except (httpx.RequestError, httpx.StreamError) as exc:
            detail = snippet(str(exc) or type(exc).__name__, 160, self.secrets)
            raise self._error(
                "ConnectionFailed",
                f"The connection to the MCP server at {self.shown_url} broke while {action} "
                f"({detail}); check the server's logs.",
            ) from exc

    def _request_headers(self, *, accept: str, json_body: bool = False) -> httpx.Headers:
        headers = httpx.Headers(self.headers)
        headers["Accept"] = accept
        if json_body:
            headers["Content-Type"] = _JSON
        return headers

    @asynccontextmanager
    async def _send(
        self, method: str, url: httpx.URL, headers: httpx.Headers, content: bytes | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the streamed response, following same-origin 307/308."""
        for _ in range(MAX_REDIRECTS + 1):
            request = self.client.build_request(method, url, headers=headers, content=content)
            response = await self.client.send(request, stream=True, follow_redirects=False)
            location = response.headers.get("location")
            if response.is_redirect and location is not None:
                await response.aclose()
                target = url.join(location)
                if response.status_code not in (307, 308) or _origin(target) != _origin(url):
                    raise self._error(
                        "HTTPError",
                        f"The MCP server at {self.shown_url} answered "
                        f"{_status_text(response.status_code)}, a redirect to "
                        f"{snippet(str(target.copy_with(query=None, fragment=None)), 200)}; "
                        "set the URL to the final location.",
                    )
                url = target
                continue
            try:
                yield response
            finally:
                await response.aclose()
            return
        raise self._error(
            "HTTPError",
            f"The MCP server at {self.shown_url} redirected more than {MAX_REDIRECTS} times; "
            "set the URL to the final location.",
        )

    async def _read_body(self, response: httpx.Response, action: str) -> bytes:
        """The whole body, bounded by ``max_response_bytes``."""
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.max_response_bytes:
                raise self._error(
                    "ResponseTooLarge",
                    f"The MCP server at {self.shown_url} sent more than "
                    f"{self.max_response_bytes} bytes while "
                    f"{action}; the probe refuses answers that large.",
                )
        return bytes(body)

    async def _read_start(self, response: httpx.Response) -> bytes:
        """The first few KB of a body that is only shown in an error message."""
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_BYTES:
                break
        return bytes(body[:_ERROR_BODY_BYTES])

    def _hint_for_status(self, status: int, *, method: str) -> str:
        streamable = self.transport == "streamable-http"
        if status == 404 and streamable and self.protocol_version is not None:
            return "the server lost the session; it may have restarted"
        if status == 405 and method == "POST" and streamable:
            return (
                "the URL does not take POST requests (if this is a legacy SSE server, "
                "set the transport to sse)"
            )
        if status == 405 and method == "GET":
            return (
                "the URL does not take GET requests (if this is a streamable HTTP server, "
                "set the transport to streamable-http)"
            )
        usual_path = "/mcp" if streamable else "/sse"
        hints = {
            401: "check the credentials (headers) the probe sends",
            403: "check the credentials (headers) the probe sends",
            404: f"check the URL's path (MCP servers often serve {usual_path})",
            406: "the server does not accept the media types the probe asks for",
            421: "the server rejected the Host header; allow the host the operator uses",
        }
        if status >= 500:
            return "the server failed; check its logs"
        return hints.get(status, "check the URL and the server's configuration")

    async def _raise_for_status(
        self, response: httpx.Response, *, method: str, action: str
    ) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        body = await self._read_start(response)
        detail = ""
        rpc: Mapping[str, Any] | None = None
        if _media_type(response) == _JSON:
            with suppress(ValueError, AttributeError, RecursionError):
                error = json.loads(body).get("error")
                if isinstance(error, Mapping):
                    rpc = error
                    detail = f" (JSON-RPC error {self._describe_error(error)})"
        elif body and _media_type(response) in ("text/plain", ""):
            detail = f" ({snippet(body, 100, self.secrets)!r})"
        raise self._error(
            "HTTPError",
            f"The MCP server at {self.shown_url} answered {_status_text(status)} while "
            f"{action}{detail}; {self._hint_for_status(status, method=method)}.",
            rpc,
        )

    def _describe_error(self, error: Mapping[str, Any]) -> str:
        code = error.get("code")
        message = error.get("message")
        code_text = str(code) if isinstance(code, int) and not isinstance(code, bool) else "?"
        text = snippet(message, 200, self.secrets) if isinstance(message, str) else ""
        return f"{code_text}: {text!r}" if text else code_text

    def _not_mcp(self, response: httpx.Response, body: bytes, action: str) -> McpProbeError:
        media_type = _media_type(response) or "no content type"
        shown = snippet(body, 100, self.secrets)
        received = f"{media_type} starting with {shown!r}" if shown else f"an empty {media_type}"
        hint = (
            "this looks like a web page, not an MCP endpoint; check the URL's path"
            if "html" in media_type or shown.lstrip().lower().startswith(("<!doctype", "<html"))
            else "check that the URL points at an MCP endpoint"
        )
        return self._error(
            "NotMCP",
            f"The server at {self.shown_url} is not an MCP server: while {action} it answered "
            f"{received}; {hint}.",
        )

    def _parse_json(self, data: bytes | str, action: str) -> Any:
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            shown = snippet(data, 100, self.secrets)
            raise self._error(
                "InvalidJSONRPC",
                f"The MCP server at {self.shown_url} sent a message that is not valid JSON "
                f"while {action} ({shown!r}); check the server's implementation.",
            ) from exc

    async def _handle_message(
        self, message: Any, expect_id: int, what: str, action: str
    ) -> JSONObject | None:
        """The result if ``message`` answers ``expect_id``; ``None`` for anything else."""
        if isinstance(message, list):  # a JSON-RPC batch (protocol 2025-03-26)
            for item in message:
                if isinstance(item, list):
                    raise self._error(
                        "InvalidJSONRPC",
                        f"The MCP server at {self.shown_url} sent a nested JSON-RPC batch while "
                        f"{action}; check the server's implementation.",
                    )
                result = await self._handle_message(item, expect_id, what, action)
                if result is not None:
                    return result
            return None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            shown = snippet(json.dumps(message), 100, self.secrets)
            raise self._error(
                "InvalidJSONRPC",
                f"The MCP server at {self.shown_url} sent JSON that is not a JSON-RPC 2.0 "
                f"message while {action} ({shown!r}); check that the URL points at an MCP "
                "endpoint.",
            )
        if "method" in message:
            if "id" in message:
                await self._answer_server_request(message)
            return None  # a notification from the server: nothing to do
        if "id" not in message or ("result" not in message and "error" not in message):
            raise self._error(
                "InvalidJSONRPC",
                f"The MCP server at {self.shown_url} sent a JSON-RPC message with neither a "
                f"method nor a result or error while {action}; check the server's "
                "implementation.",
            )
        answer_id = message["id"]
        if isinstance(answer_id, bool) or answer_id not in (expect_id, str(expect_id)):
            return None  # an answer to something else: not ours to handle
        error = message.get("error")
        if error is not None:
            if not isinstance(error, Mapping):
                raise self._error(
                    "InvalidJSONRPC",
                    f"The MCP server at {self.shown_url} sent a JSON-RPC error that is not an "
                    f"object while {action}; check the server's implementation.",
                )
            raise self._error(
                "ProtocolError",
                f"The MCP server at {self.shown_url} answered {what} with JSON-RPC error "
                f"{self._describe_error(error)}; check the server's logs and configuration.",
                error,
            )
        result = message.get("result")
        if not isinstance(result, dict):
            raise self._error(
                "InvalidJSONRPC",
                f"The MCP server at {self.shown_url} sent a JSON-RPC result that is not an "
                f"object while {action}; check the server's implementation.",
            )
        return result

    async def _answer_server_request(self, message: JSONObject) -> None:
        """Answer a server's request (``ping`` gets ``{}``, anything else "method not found")."""
        if self._answered >= MAX_SERVER_REQUESTS_ANSWERED:
            return
        self._answered += 1
        reply: JSONObject = {"jsonrpc": "2.0", "id": message["id"]}
        if message.get("method") == "ping":
            reply["result"] = {}
        else:
            reply["error"] = {"code": -32601, "message": "Method not found"}
        with suppress(httpx.HTTPError, McpProbeError):
            await self._post_no_answer(reply)

    async def _post_no_answer(self, message: JSONObject) -> None:
        raise NotImplementedError

    def _message_event_data(self, event: SseEvent) -> str | None:
        """The JSON text of an event that carries a JSON-RPC message, else ``None``."""
        if event.event != "message" or not event.data.strip():
            return None  # priming events (an id and empty data) and other event types
        return event.data


class StreamableHttpConnection(McpConnection):
    """The streamable HTTP transport: POST every message, read JSON or an event stream."""

    transport: Transport = "streamable-http"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_id: str | None = None

    def _session_headers(self, headers: httpx.Headers) -> httpx.Headers:
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version is not None:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    async def request(
        self,
        method: str,
        params: JSONObject | None,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
    ) -> JSONObject:
        request_id = self._new_id()
        message: JSONObject = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        action = f"waiting for the answer to {what}"
        self.phase = action
        extra = headers
        headers = self._session_headers(self._request_headers(accept=_ACCEPT_BOTH, json_body=True))
        headers.update(extra or {})
        with self._http_errors(action):
            async with self._send("POST", self.url, headers, json.dumps(message).encode()) as resp:
                await self._raise_for_status(resp, method="POST", action=action)
                if method == "initialize":
                    session_id = resp.headers.get("mcp-session-id")
                    if session_id:
                        self.session_id = session_id
                media_type = _media_type(resp)
                if resp.status_code == 202 or (media_type == _JSON and resp.status_code == 204):
                    raise self._error(
                        "ProtocolError",
                        f"The MCP server at {self.shown_url} accepted {what} but sent no "
                        "answer; check that it implements the streamable HTTP transport.",
                    )
                if media_type == _JSON:
                    body = await self._read_body(resp, action)
                    if not body.strip():
                        raise self._error(
                            "InvalidJSONRPC",
                            f"The MCP server at {self.shown_url} sent an empty JSON body while "
                            f"{action}; check the server's implementation.",
                        )
                    result = await self._handle_message(
                        self._parse_json(body, action), request_id, what, action
                    )
                    if result is None:
                        raise self._error(
                            "InvalidJSONRPC",
                            f"The MCP server at {self.shown_url} sent a JSON body without the "
                            f"answer to {what}; check the server's implementation.",
                        )
                    return result
                if media_type == _SSE:
                    return await self._answer_from_stream(resp, request_id, what, action)
                body = await self._read_start(resp)
                raise self._not_mcp(resp, body, action)

    async def _answer_from_stream(
        self, response: httpx.Response, request_id: int, what: str, action: str
    ) -> JSONObject:
        last_id: str | None = None
        retry_ms: int | None = None
        resumptions = 0
        async with AsyncExitStack() as stack:
            while True:
                parser = SseParser(max_event_bytes=self.max_response_bytes)
                async with aclosing(iter_sse_events(response.aiter_bytes(), parser)) as events:
                    async for event in events:
                        data = self._message_event_data(event)
                        if data is None:
                            continue
                        result = await self._handle_message(
                            self._parse_json(data, action), request_id, what, action
                        )
                        if result is not None:
                            return result
                last_id = parser.last_event_id or last_id
                retry_ms = parser.retry if parser.retry is not None else retry_ms
                if last_id is None or resumptions >= MAX_RESUMPTIONS:
                    raise self._error(
                        "ProtocolError",
                        f"The MCP server at {self.shown_url} ended its event stream without "
                        f"the answer to {what}; check the server's logs.",
                    )
                resumptions += 1
                # 2025-11-25: the server may close the stream after an event id; resume it.
                await asyncio.sleep(min((retry_ms or 0) / 1000, MAX_RETRY_WAIT_SECONDS))
                headers = self._session_headers(self._request_headers(accept=_SSE))
                headers["Last-Event-ID"] = last_id
                response = await stack.enter_async_context(self._send("GET", self.url, headers))
                await self._raise_for_status(response, method="GET", action=action)
                if _media_type(response) != _SSE:
                    body = await self._read_start(response)
                    raise self._not_mcp(response, body, action)

    async def notify(self, method: str, params: JSONObject | None) -> None:
        message: JSONObject = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        action = f"sending {method}"
        self.phase = action
        with self._http_errors(action):
            await self._post_no_answer(message, action=action)

    async def _post_no_answer(self, message: JSONObject, action: str = "answering") -> None:
        headers = self._session_headers(self._request_headers(accept=_ACCEPT_BOTH, json_body=True))
        async with self._send("POST", self.url, headers, json.dumps(message).encode()) as resp:
            await self._raise_for_status(resp, method="POST", action=action)

    async def aclose(self, deadline: float) -> None:
        """End the session with a DELETE (servers may answer 405: that is fine)."""
        loop = asyncio.get_running_loop()
        if self.session_id is not None and loop.time() < deadline:
            headers = self._session_headers(self._request_headers(accept=_ACCEPT_BOTH))
            with suppress(Exception):
                async with asyncio.timeout_at(deadline), self._send("DELETE", self.url, headers):
                    pass
        await super().aclose(deadline)


class LegacySseConnection(McpConnection):
    """The HTTP+SSE transport of 2024-11-05: one GET event stream, messages POSTed aside."""

    transport: Transport = "sse"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoint: httpx.URL | None = None
        self._events: AsyncGenerator[SseEvent, None] | None = None

    async def start(self) -> None:
        action = "opening the SSE stream"
        self.phase = action
        with self._http_errors(action):
            response = await self._stack.enter_async_context(
                self._send("GET", self.url, self._request_headers(accept=_SSE))
            )
            await self._raise_for_status(response, method="GET", action=action)
            if _media_type(response) != _SSE:
                body = await self._read_start(response)
                raise self._not_mcp(response, body, action)
            parser = SseParser(max_event_bytes=self.max_response_bytes)
            self._events = await self._stack.enter_async_context(
                aclosing(iter_sse_events(response.aiter_bytes(), parser))
            )
            action = "waiting for the endpoint event on the SSE stream"
            self.phase = action
            async for event in self._events:
                if event.event == "endpoint" and event.data.strip():
                    self.endpoint = self._resolve_endpoint(response.url, event.data.strip())
                    return
            raise self._error(
                "ProtocolError",
                f"The SSE stream of {self.shown_url} ended without the endpoint event; check "
                "that the URL points at a legacy MCP SSE endpoint (often /sse), or set the "
                "transport to streamable-http.",
            )

    def _resolve_endpoint(self, stream_url: httpx.URL, data: str) -> httpx.URL:
        endpoint = stream_url.join(data)
        if endpoint.scheme not in ("http", "https"):
            raise self._error(
                "ProtocolError",
                f"The SSE stream of {self.shown_url} named an endpoint that is not an http(s) "
                "URL; check the server's configuration.",
            )
        if _origin(endpoint) != _origin(stream_url):
            # Servers behind proxies announce their internal address: keep the path and
            # query, but never send our headers to another origin.
            endpoint = stream_url.copy_with(raw_path=endpoint.raw_path, fragment=None)
        return endpoint

    async def _post(
        self, message: JSONObject, action: str, extra: Mapping[str, str] | None = None
    ) -> None:
        assert self.endpoint is not None
        headers = self._request_headers(accept=_ACCEPT_BOTH, json_body=True)
        if self.protocol_version is not None:
            headers["MCP-Protocol-Version"] = self.protocol_version
        headers.update(extra or {})
        async with self._send("POST", self.endpoint, headers, json.dumps(message).encode()) as r:
            await self._raise_for_status(r, method="POST", action=action)

    async def request(
        self,
        method: str,
        params: JSONObject | None,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
    ) -> JSONObject:
        assert self._events is not None
        request_id = self._new_id()
        message: JSONObject = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        action = f"sending {what}"
        self.phase = action
        with self._http_errors(action):
            await self._post(message, action, headers)
            action = f"waiting for the answer to {what}"
            self.phase = action
            async for event in self._events:
                data = self._message_event_data(event)
                if data is None:
                    continue
                result = await self._handle_message(
                    self._parse_json(data, action), request_id, what, action
                )
                if result is not None:
                    return result
        raise self._error(
            "ConnectionFailed",
            f"The MCP server at {self.shown_url} closed its SSE stream before the answer to "
            f"{what}; check the server's logs.",
        )

    async def notify(self, method: str, params: JSONObject | None) -> None:
        message: JSONObject = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        action = f"sending {method}"
        self.phase = action
        with self._http_errors(action):
            await self._post(message, action)

    async def _post_no_answer(self, message: JSONObject) -> None:
        await self._post(message, "answering a request of the server")
