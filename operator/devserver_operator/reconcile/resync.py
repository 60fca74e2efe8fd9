"""One periodic resync loop for every tracked object, instead of kopf timers and daemons.

kopf timers and daemons put a finalizer on every object (an uninstalled operator would then
block deletion) and run one task per object; one loop over a dict scales to thousands of
objects and leaves the custom resources free of finalizers.

Two schedules share the tracked objects and their checks:

- **rounds**: every ``interval`` seconds every object is checked (drift, Secret rotation,
  re-verification);
- **visits**: a check may ask to be run again sooner (an AlertRule's evaluation interval, a
  TeamAccess's expiry, a WorkflowIntegration following a burst of MCPServer changes). One
  task sleeps until the earliest visit is due; asking again before then only moves it
  earlier, so a burst of requests costs one visit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

logger = logging.getLogger(__name__)

# (body, context) -> seconds until this object wants its next visit (None: the next round)
Check = Callable[[Mapping[str, Any], Any], Awaitable[float | None]]
Key = tuple[str, str]  # kind, uid


@dataclass
class Tracked:
    body: dict[str, Any]
    check: Check


@dataclass
class Resync:
    """Objects to check periodically, the kopf indexes to check them with, and the loops."""

    objects: dict[Key, Tracked] = field(default_factory=dict)
    indices: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 10
    context: Any = None
    interval: float = 60.0
    task: asyncio.Task[None] | None = None
    # For the liveness probe (reconcile/probes.py): when the loop last finished a check or a
    # round (monotonic seconds), and how many rounds it has completed.
    last_progress: float = 0.0
    last_round: float | None = None
    rounds: int = 0
    visits: dict[Key, float] = field(default_factory=dict)
    """When each object asked to be visited next (monotonic clock)."""
    _heap: list[tuple[float, int, Key]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _visiting: set[asyncio.Task[None]] = field(default_factory=set)

    def configure(self, context: Any, interval: float) -> None:
        self.context, self.interval = context, interval

    def _ensure_running(self) -> None:
        # Started from the first handler that tracks an object, not at start-up: tasks inherit
        # the creator's context variables, and kopf's event posting only works inside the
        # context of its handlers.
        if self.task is None and self.context is not None:
            self.last_progress = time.monotonic()
            self.task = asyncio.create_task(self.run(self.context, self.interval), name="resync")

    async def stop(self) -> None:
        tasks = [*self._visiting, *([self.task] if self.task is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.task = None

    def capture_indices(self, kwargs: Mapping[str, Any]) -> None:
        # kopf hands its (live, read-only) indexes only to handlers; the loop borrows them.
        if not self.indices:
            self.indices = {k: v for k, v in kwargs.items() if isinstance(v, kopf.Index)}

    def track(self, kind: str, body: dict[str, Any], *, check: Check) -> None:
        self._ensure_running()
        uid = body.get("metadata", {}).get("uid", "")
        self.objects[(kind, uid)] = Tracked(body, check)

    def forget(self, kind: str, uid: str) -> None:
        self.objects.pop((kind, uid), None)
        self.visits.pop((kind, uid), None)

    def visit_in(self, kind: str, uid: str, seconds: float) -> None:
        """Check this object again after ``seconds`` (or sooner, if it is due sooner)."""
        key = (kind, uid)
        due = time.monotonic() + max(seconds, 0.0)
        current = self.visits.get(key)
        if current is not None and current <= due:
            return
        self.visits[key] = due
        heapq.heappush(self._heap, (due, next(self._order), key))
        self._wake.set()

    async def run(self, context: Any, interval: float) -> None:
        visits = asyncio.create_task(self._run_visits(context), name="resync-visits")
        try:
            await self._run_rounds(context, interval)
        finally:
            visits.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await visits

    async def _run_rounds(self, context: Any, interval: float) -> None:
        """Check every tracked object once per ``interval``."""
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            started = time.monotonic()
            await asyncio.sleep(interval)
            snapshot = list(self.objects.items())
            await asyncio.gather(
                *(self._check(key, item, context, slots) for key, item in snapshot)
            )
            elapsed = time.monotonic() - started - interval
            if elapsed > interval:
                logger.warning("a resync round took %.1f s, longer than the interval", elapsed)
            self.last_round = self.last_progress = time.monotonic()
            self.rounds += 1
            release_free_memory()

    async def _run_visits(self, context: Any) -> None:
        """Run each visit when it is due; sleep until the earliest one (or a new one)."""
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            self._wake.clear()
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                due, _, key = heapq.heappop(self._heap)
                if self.visits.get(key) != due:
                    continue  # moved earlier since, or forgotten
                del self.visits[key]
                item = self.objects.get(key)
                if item is not None:
                    task = asyncio.create_task(self._check(key, item, context, slots))
                    self._visiting.add(task)
                    task.add_done_callback(self._visiting.discard)
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _check(self, key: Key, item: Tracked, context: Any, slots: asyncio.Semaphore) -> None:
        async with slots:
            try:
                # The latest copy: a visit may have waited while events refreshed it.
                latest = self.objects.get(key, item)
                again = await latest.check(latest.body, context)
            except kopf.TemporaryError as error:
                logger.info("resync of %s: %s (retried later)", _name(item.body), error)
                return
            except Exception:  # one object's bug must not stop the loop for all others
                logger.exception("resync of %s failed", _name(item.body))
                return
            finally:
                self.last_progress = time.monotonic()
        if again is not None and key in self.objects:
            self.visit_in(*key, again)


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to release
        return None
    return trim


_malloc_trim = _load_malloc_trim()


def release_free_memory() -> None:
    """Hand memory that is free again back to the system.

    A burst (a cold start with a thousand objects: listings, a request per child, buffers of
    dozens of TLS connections) leaves most of its memory free but held by glibc's heap; the
    process would report its peak as RSS forever. Cheap (a few milliseconds), once a round."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _name(body: Mapping[str, Any]) -> str:
    metadata = body.get("metadata", {})
    return f"{body.get('kind')} {metadata.get('namespace')}/{metadata.get('name')}"
