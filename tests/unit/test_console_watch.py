"""The console's shared watch against a small real HTTP server that misbehaves on purpose:
streams that end at once, and an API server that is away and comes back. Retries back off
(never a hot loop), subscribers hear DOWN once and UP when the watch is open again."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from devserver_operator.api import ALL_KINDS
from devserver_operator.console import watch
from devserver_operator.console.watch import Change, KindWatch, WatchHub
from devserver_operator.localcluster.processes import free_loopback_port

Answer = Callable[[str], bytes]


def _response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def list_then_empty_watches(path: str) -> bytes:
    """A list with one object, then watches that end at once without an event."""
    if "watch=1" in path:
        return _response(b"")
    item = {"metadata": {"name": "a", "namespace": "n", "resourceVersion": "5"}}
    return _response(json.dumps({"items": [item], "metadata": {"resourceVersion": "5"}}).encode())


@contextlib.asynccontextmanager
async def server(port: int, answer: Answer, requests: list[str]) -> AsyncIterator[None]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readuntil(b"\r\n\r\n")).decode()
        path = request.split(" ", 2)[1]
        requests.append(path)
        writer.write(answer(path))
        await writer.drain()
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        listening.close()
        await listening.wait_closed()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "FIRST_BACKOFF", 0.05)
    monkeypatch.setattr(watch, "MAX_BACKOFF", 0.4)


def drained(queue: asyncio.Queue[Change]) -> list[str]:
    found = []
    while not queue.empty():
        change = queue.get_nowait()
        found.append(change.type)
    return found


async def run_for(kind: KindWatch, port: int, seconds: float) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        task = asyncio.create_task(kind.run(http))
        await asyncio.sleep(seconds)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_watches_that_end_at_once_are_retried_with_backoff_not_in_a_hot_loop() -> None:
    hub = WatchHub(ALL_KINDS[:1])
    (kind,) = hub.watches.values()
    port, requests = free_loopback_port(), list[str]()
    async with server(port, list_then_empty_watches, requests):
        await run_for(kind, port, 1.5)
    watches = [path for path in requests if "watch=1" in path]
    # 0.05 + 0.1 + 0.2 + 0.4 + 0.4 + ... within 1.5 s: about six; a hot loop makes thousands.
    assert 3 <= len(watches) <= 10, len(watches)
    assert all("resourceVersion=5" in path for path in watches)  # resumed, not listed again
    assert kind.objects.keys() == {("n", "a")}


async def test_an_api_server_that_is_away_then_back_gives_down_once_then_up_and_a_resync() -> None:
    hub = WatchHub(ALL_KINDS[:1])
    (kind,) = hub.watches.values()
    subscriber = hub.subscribe()
    port, requests = free_loopback_port(), list[str]()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        task = asyncio.create_task(kind.run(http))
        try:
            await asyncio.sleep(1.0)  # nothing listens: connection refused, again and again
            assert kind.restarts >= 3
            assert drained(subscriber.queue) == ["DOWN"]
            assert hub.down_kinds() == [kind.info.plural]
            async with server(port, list_then_empty_watches, requests):
                for _ in range(100):
                    if not kind.down:
                        break
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    changes: list[Any] = drained(subscriber.queue)
    assert changes[:2] == ["RESYNC", "UP"], changes
    assert hub.down_kinds() == []
