"""The stdio proxy's core against real stdio MCP server processes (the official Python SDK's
server of the e2e image, started locally): sessions multiplexed onto one upstream session,
ids rewritten, bounds, and a server process that ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mcp_types
import pytest
from aiohttp.test_utils import TestServer

from devserver_operator.stdio_proxy.channel import LineSplitter, StdioChannel, SubprocessChannel
from devserver_operator.stdio_proxy.http import SESSION_HEADER, ProxyApp, SessionLimits
from devserver_operator.stdio_proxy.upstream import Limits, Upstream

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "hack" / "kind" / "images" / "python-mcp-server" / "server.py"
FAST = Limits(
    request_timeout=5.0,
    connect_wait=5.0,
    initialize_timeout=10.0,
    backoff_initial=0.05,
    backoff_max=0.2,
)


@dataclass
class Proxy:
    url: str
    upstream: Upstream
    app: ProxyApp
    http: httpx.AsyncClient

    async def initialize(self) -> str:
        answer = await self.http.post(self.url, json=_request(1, "initialize", _init_params()))
        assert answer.status_code == 200, answer.text
        return answer.headers[SESSION_HEADER]

    async def call(self, session: str, request_id: Any, tool: str, **arguments: Any) -> Any:
        answer = await self.http.post(
            self.url,
            json=_request(request_id, "tools/call", {"name": tool, "arguments": arguments}),
            headers={SESSION_HEADER: session},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


def _request(request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def _init_params() -> dict[str, Any]:
    return {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    }


def _text(answer: dict[str, Any]) -> str:
    return str(answer["result"]["content"][0]["text"])


async def _proxy(
    open_channel: Callable[[], Awaitable[StdioChannel]],
    limits: Limits = FAST,
    sessions: SessionLimits | None = None,
    reset: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[Proxy]:
    upstream = Upstream(open_channel, limits=limits, reset=reset)
    runner = asyncio.create_task(upstream.run())
    app = ProxyApp(upstream, limits=sessions)
    server = TestServer(app.application(), host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            yield Proxy(str(server.make_url("/mcp")), upstream, app, http)
    finally:
        await server.close()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def python_server(*args: str) -> Callable[[], Awaitable[StdioChannel]]:
    async def start() -> StdioChannel:
        return await SubprocessChannel.start([sys.executable, str(SERVER), *args])

    return start


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    async for value in _proxy(python_server("hello")):
        yield value


async def test_initialize_is_answered_from_the_servers_own_answer(proxy: Proxy) -> None:
    answer = await proxy.http.post(proxy.url, json=_request("a", "initialize", _init_params()))
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == "a"
    assert body["result"]["serverInfo"]["name"] == "devserver-python-stdio"
    assert body["result"]["protocolVersion"] == "2025-11-25"
    assert len(answer.headers[SESSION_HEADER]) == 32
    listed = await proxy.http.post(
        proxy.url,
        json=_request(2, "tools/list"),
        headers={SESSION_HEADER: answer.headers[SESSION_HEADER]},
    )
    names = {tool["name"] for tool in listed.json()["result"]["tools"]}
    assert {"add", "echo", "sleep", "exit"} <= names


async def test_a_tool_call_returns_the_result_and_the_image_arguments_arrive(proxy: Proxy) -> None:
    session = await proxy.initialize()
    assert _text(await proxy.call(session, 7, "add", a=2, b=40)) == "42"
    assert _text(await proxy.call(session, 8, "echo", text="world")) == "hello world"


async def test_concurrent_sessions_with_the_same_ids_get_their_own_answers(proxy: Proxy) -> None:
    sessions = [await proxy.initialize() for _ in range(5)]
    answers = await asyncio.gather(
        *(
            proxy.call(session, 1, "echo", text=f"client-{index}")
            for index, session in enumerate(sessions)
        )
    )
    assert [answer["id"] for answer in answers] == [1] * 5
    assert [_text(answer) for answer in answers] == [f"hello client-{i}" for i in range(5)]
    assert proxy.upstream.connections == 1  # one server process, one upstream session


async def test_requests_outside_a_session_are_refused_clearly(proxy: Proxy) -> None:
    discover = await proxy.http.post(proxy.url, json=_request(1, "server/discover", {}))
    assert discover.json()["error"]["code"] == mcp_types.METHOD_NOT_FOUND
    no_session = await proxy.http.post(proxy.url, json=_request(1, "tools/list"))
    assert no_session.status_code == 400
    assert SESSION_HEADER in no_session.json()["error"]["message"]
    unknown = await proxy.http.post(
        proxy.url, json=_request(1, "tools/list"), headers={SESSION_HEADER: "nope"}
    )
    assert unknown.status_code == 404
    batch = await proxy.http.post(proxy.url, json=[_request(1, "ping")])
    assert batch.status_code == 400
    not_json = await proxy.http.post(proxy.url, content=b"{nope")
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == mcp_types.PARSE_ERROR
    not_rpc = await proxy.http.post(proxy.url, json={"hello": 1})
    assert not_rpc.status_code == 400
    assert (await proxy.http.get(proxy.url)).status_code == 405


async def test_a_deleted_session_is_gone_and_others_stay(proxy: Proxy) -> None:
    first, second = await proxy.initialize(), await proxy.initialize()
    deleted = await proxy.http.delete(proxy.url, headers={SESSION_HEADER: first})
    assert deleted.status_code == 204
    gone = await proxy.http.post(
        proxy.url, json=_request(1, "ping"), headers={SESSION_HEADER: first}
    )
    assert gone.status_code == 404
    assert _text(await proxy.call(second, 1, "add", a=1, b=1)) == "2"


async def test_a_slow_request_ends_at_the_deadline_and_the_server_goes_on() -> None:
    limits = Limits(**{**FAST.__dict__, "request_timeout": 1.0})
    async for proxy in _proxy(python_server(), limits):
        session = await proxy.initialize()
        started = time.monotonic()
        answer = await proxy.call(session, 3, "sleep", seconds=30)
        assert time.monotonic() - started < 3.0
        assert answer["id"] == 3
        assert answer["error"]["code"] == mcp_types.REQUEST_TIMEOUT
        assert _text(await proxy.call(session, 4, "add", a=1, b=2)) == "3"
        assert proxy.upstream.connections == 1


async def test_a_client_cancel_reaches_the_server_under_the_proxys_id(proxy: Proxy) -> None:
    session = await proxy.initialize()
    slow = asyncio.create_task(proxy.call(session, "slow", "sleep", seconds=30))
    for _ in range(100):
        if proxy.app.sessions[session].in_flight:
            break
        await asyncio.sleep(0.05)
    assert "slow" in proxy.app.sessions[session].in_flight
    cancelled = await proxy.http.post(
        proxy.url,
        json={
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": "slow"},
        },
        headers={SESSION_HEADER: session},
    )
    assert cancelled.status_code == 202
    # The SDK drops a cancelled request without an answer: the proxy's deadline ends it.
    answer = await slow
    assert answer["error"]["code"] == mcp_types.REQUEST_TIMEOUT
    assert not proxy.app.sessions[session].in_flight


async def test_a_server_that_exits_fails_pending_requests_at_once_then_serves_again(
    proxy: Proxy,
) -> None:
    session = await proxy.initialize()
    waiting = asyncio.create_task(proxy.call(session, 1, "sleep", seconds=30))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    exited = await proxy.call(session, 2, "exit", code=3)
    assert exited["error"]["code"] == mcp_types.CONNECTION_CLOSED
    assert (await waiting)["error"]["code"] == mcp_types.CONNECTION_CLOSED
    assert time.monotonic() - started < 3.0
    # The same client session works with the new process: no hung request, no new session.
    # (Until the new process has answered initialize, requests fail after connect_wait.)
    assert await proxy.upstream.wait_ready(30.0)
    assert _text(await proxy.call(session, 3, "add", a=20, b=22)) == "42"
    assert proxy.upstream.connections == 2


async def test_requests_while_the_server_is_down_fail_after_connect_wait() -> None:
    async def never() -> StdioChannel:
        raise ConnectionError("container not running")

    limits = Limits(**{**FAST.__dict__, "connect_wait": 0.5})
    async for proxy in _proxy(never, limits):
        ready = await proxy.http.get(proxy.url.replace("/mcp", "/readyz"))
        assert ready.status_code == 503
        assert (await proxy.http.get(proxy.url.replace("/mcp", "/healthz"))).status_code == 200
        started = time.monotonic()
        answer = await proxy.http.post(proxy.url, json=_request(1, "initialize", _init_params()))
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == mcp_types.CONNECTION_CLOSED
        assert time.monotonic() - started < 2.0


async def test_too_many_requests_in_flight_are_refused_at_once() -> None:
    limits = Limits(**{**FAST.__dict__, "max_pending": 1})
    async for proxy in _proxy(python_server(), limits):
        session = await proxy.initialize()
        slow = asyncio.create_task(proxy.call(session, 1, "sleep", seconds=1))
        await asyncio.sleep(0.3)
        refused = await proxy.call(session, 2, "add", a=1, b=1)
        assert "in flight" in refused["error"]["message"]
        assert _text(await slow) == "slept"


async def test_sessions_beyond_the_limit_are_refused_with_503() -> None:
    async for proxy in _proxy(python_server(), sessions=SessionLimits(max_sessions=1)):
        await proxy.initialize()
        second = await proxy.http.post(proxy.url, json=_request(9, "initialize", _init_params()))
        assert second.status_code == 503
        assert second.json()["id"] == 9
        assert "sessions" in second.json()["error"]["message"]


async def test_a_message_over_the_size_bound_is_refused() -> None:
    limits = Limits(**{**FAST.__dict__, "max_message_bytes": 1024})
    async for proxy in _proxy(python_server(), limits):
        session = await proxy.initialize()
        big = await proxy.http.post(
            proxy.url,
            json=_request(1, "tools/call", {"name": "echo", "arguments": {"text": "x" * 4096}}),
            headers={SESSION_HEADER: session},
        )
        assert big.status_code == 413


# A raw stdio server (a real process, no SDK): refuses every initialize while the flag file
# is missing, as an SDK server refuses a second initialize after a proxy restart; asks the
# client for roots in a tool call and reports what it got back.
RAW_SERVER = textwrap.dedent(
    """
    import json, os, sys
    flag = sys.argv[1]
    def send(message):
        sys.stdout.write(json.dumps(message) + "\\n"); sys.stdout.flush()
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("method") == "initialize":
            if not os.path.exists(flag):
                send({"jsonrpc": "2.0", "id": message["id"],
                      "error": {"code": 0, "message": "duplicate initialize"}})
                continue
            send({"jsonrpc": "2.0", "id": message["id"], "result": {
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "0"}}})
        elif message.get("method") == "tools/call":
            send({"jsonrpc": "2.0", "id": "srv-1", "method": "roots/list"})
            send({"jsonrpc": "2.0", "id": "srv-2", "method": "ping"})
            send({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})
            answers = [json.loads(sys.stdin.readline()) for _ in range(2)]
            send({"jsonrpc": "2.0", "id": message["id"],
                  "result": {"content": [{"type": "text", "text": json.dumps(answers)}]}})
    """
)


async def test_a_refused_initialize_restarts_the_server_and_server_requests_get_clean_errors(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "fresh"
    resets = 0

    async def reset() -> None:
        nonlocal resets
        resets += 1
        flag.touch()  # the "new process" accepts initialize

    async def start() -> StdioChannel:
        return await SubprocessChannel.start([sys.executable, "-c", RAW_SERVER, str(flag)])

    async for proxy in _proxy(start, reset=reset):
        session = await proxy.initialize()
        assert resets == 1
        answer = await proxy.call(session, 1, "anything")
        roots, ping = sorted(json.loads(_text(answer)), key=lambda message: message["id"])
        assert roots["id"] == "srv-1"
        assert roots["error"]["code"] == mcp_types.METHOD_NOT_FOUND
        assert "cannot reach a client" in roots["error"]["message"]
        assert ping == {"jsonrpc": "2.0", "id": "srv-2", "result": {}}


def test_line_splitter_drops_only_lines_over_the_bound() -> None:
    splitter = LineSplitter(8)
    assert splitter.feed(b"short\nlo") == [b"short"]
    assert splitter.feed(b"ng-line-over-the-bound") == []
    assert splitter.feed(b"-still\nok\n") == [b"ok"]
    assert splitter.dropped == 1
    assert splitter.feed(b"0123456789\nfine\n") == [b"fine"]
    assert splitter.dropped == 2


async def test_the_operators_own_verification_sees_an_ordinary_streamable_http_server(
    proxy: Proxy,
) -> None:
    from devserver_operator.integrations.mcp_probe import probe_mcp_server

    result = await probe_mcp_server(proxy.url, "streamable-http", timeout=20.0)
    assert result.server_name == "devserver-python-stdio"
    assert result.protocol_version == "2025-11-25"
    assert {"add", "echo", "exit"} <= {tool.name for tool in result.tools}
    assert not proxy.app.sessions  # the probe ended its session with DELETE
