"""One list-and-watch per kind for the whole console, fanned out to every open browser.

Browsers never cause a request to Kubernetes by watching: the console keeps one watch per
kind (as its own identity), holds the objects in memory, and hands each change to the
subscribers, which filter it per user (see permissions.py). A lost watch resumes from the
last resourceVersion; an expired one (410 Gone) lists again and tells subscribers to resync.
While a kind's watch is down (the API server restarts, the connection broke) subscribers hear
DOWN, and UP once a watch stream is open again, so pages can say they are reconnecting.
Retries back off from FIRST_BACKOFF to MAX_BACKOFF; a watch that ends early without an error
waits too, so nothing loops hot against an API server that closes streams at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from devserver_operator.api import ALL_KINDS, API_VERSION, KindInfo
from devserver_operator.kube.resources import resource_for

from .objects import slim

WATCH_SECONDS = 240
"""The server ends each watch after this long; the console then resumes it (kube-apiserver
would otherwise pick a random 30-60 min timeout, and a dead stream goes unnoticed longer)."""
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 10.0
HEALTHY_SECONDS = 5.0
"""A round (list and watch) that lasted this long was healthy: the backoff starts anew."""
QUEUE_LIMIT = 2_000
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    type: str
    """ADDED, MODIFIED, DELETED, RESYNC (the kind was listed anew: refetch it), DOWN (its
    watch is lost, reconnecting) or UP (watching again)."""
    plural: str
    namespace: str = ""
    name: str = ""
    object: dict[str, Any] | None = None


class _GoneError(Exception):
    """The resourceVersion is too old to resume from: list again."""


@dataclass(eq=False)  # compared by identity: each is one open page
class Subscriber:
    queue: asyncio.Queue[Change] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False
    """A browser that fell this far behind gets a RESYNC instead of the changes it missed."""


class KindWatch:
    def __init__(self, info: KindInfo, hub: WatchHub) -> None:
        self.info = info
        self._hub = hub
        self._path = resource_for(API_VERSION, info.kind).collection(None)
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.restarts = 0
        self.down = False
        """The last round failed and no watch stream is open yet."""

    async def run(self, http: httpx.AsyncClient) -> None:
        backoff = FIRST_BACKOFF
        version: str | None = None
        clock = asyncio.get_running_loop().time
        while True:
            began, failed = clock(), True
            try:
                if version is None:
                    version = await self._list(http)
                version = await self._watch(http, version)
                failed = False
            except _GoneError:
                version = None
            except (httpx.HTTPError, ValueError) as error:
                self._lost(str(error) or type(error).__name__, backoff)
                version = None if isinstance(error, httpx.HTTPStatusError) else version
            except Exception:  # an answer we did not foresee must not end the watch for good
                _log.exception("watch of %s failed; listing again in %.1fs", self._path, backoff)
                self._lost("", backoff)
                version = None
            if clock() - began >= HEALTHY_SECONDS:
                backoff = FIRST_BACKOFF
                if not failed:
                    continue  # the server ended a long watch as asked: resume at once
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)

    def _lost(self, error: str, backoff: float) -> None:
        self.restarts += 1
        if error:
            _log.warning("watch of %s failed (%s); retrying in %.1fs", self._path, error, backoff)
        if not self.down:
            self.down = True
            self._hub.publish(Change("DOWN", self.info.plural))

    async def _list(self, http: httpx.AsyncClient) -> str:
        response = await http.get(self._path)
        response.raise_for_status()
        body = response.json()
        self.objects = {_key(item): slim(item) for item in body.get("items") or ()}
        self.synced.set()
        self._hub.publish(Change("RESYNC", self.info.plural))
        return str(body["metadata"]["resourceVersion"])

    async def _watch(self, http: httpx.AsyncClient, version: str) -> str:
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        async with http.stream("GET", self._path, params=params) as response:
            if response.status_code == 410:
                raise _GoneError
            response.raise_for_status()
            if self.down:
                self.down = False
                self._hub.publish(Change("UP", self.info.plural))
            async for line in response.aiter_lines():
                if line:
                    version = self._apply(json.loads(line), version)
        return version

    def _apply(self, event: dict[str, Any], version: str) -> str:
        kind, item = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if item.get("code") == 410:
                raise _GoneError
            raise ValueError(f"watch error: {item.get('message')}")
        version = str((item.get("metadata") or {}).get("resourceVersion") or version)
        if kind == "BOOKMARK":
            return version
        key = _key(item)
        if kind == "DELETED":
            self.objects.pop(key, None)
        else:
            item = self.objects[key] = slim(item)
        self._hub.publish(Change(str(kind), self.info.plural, key[0], key[1], item))
        return version


def _key(item: dict[str, Any]) -> tuple[str, str]:
    metadata = item.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


class WatchHub:
    def __init__(self, kinds: Iterable[KindInfo] = ALL_KINDS) -> None:
        self.watches = {info.plural: KindWatch(info, self) for info in kinds}
        self._subscribers: set[Subscriber] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, http: httpx.AsyncClient) -> None:
        self._tasks = [
            asyncio.create_task(watch.run(http), name=f"watch {plural}")
            for plural, watch in self.watches.items()
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def down_kinds(self) -> list[str]:
        """The kinds whose watch is lost right now."""
        return [plural for plural, watch in self.watches.items() if watch.down]

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, change: Change) -> None:
        for subscriber in self._subscribers:
            if subscriber.overflowed:
                continue
            try:
                subscriber.queue.put_nowait(change)
            except asyncio.QueueFull:
                subscriber.overflowed = True
