"""One periodic resync loop for every tracked object, instead of a kopf timer per object.

kopf timers put a finalizer on every object (an uninstalled operator would then block
deletion) and run one task per object; one loop over a dict scales to thousands of objects
and leaves MCPServers free of finalizers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

logger = logging.getLogger(__name__)

Check = Callable[[Mapping[str, Any], Any], Awaitable[None]]


@dataclass
class Tracked:
    body: dict[str, Any]
    check: Check


@dataclass
class Resync:
    """Objects to check periodically, the kopf indexes to check them with, and the loop."""

    objects: dict[tuple[str, str], Tracked] = field(default_factory=dict)
    indices: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 10
    context: Any = None
    interval: float = 60.0
    task: asyncio.Task[None] | None = None
    # For the liveness probe (handlers/probes.py): when the loop last finished a check or a
    # round (monotonic seconds), and how many rounds it has completed.
    last_progress: float = 0.0
    last_round: float | None = None
    rounds: int = 0

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
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def capture_indices(self, kwargs: Mapping[str, Any]) -> None:
        # kopf hands its (live, read-only) indexes only to handlers; the loop borrows them.
        if not self.indices:
            self.indices = {k: v for k, v in kwargs.items() if isinstance(v, kopf.Index)}

    def track(self, kind: str, body: dict[str, Any], *, deleted: bool, check: Check) -> None:
        self._ensure_running()
        uid = body.get("metadata", {}).get("uid", "")
        if deleted:
            self.objects.pop((kind, uid), None)
        else:
            self.objects[(kind, uid)] = Tracked(body, check)

    def forget(self, kind: str, uid: str) -> None:
        self.objects.pop((kind, uid), None)

    async def run(self, context: Any, interval: float) -> None:
        """Check every tracked object once per ``interval``, spread over the interval."""
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            started = time.monotonic()
            await asyncio.sleep(interval)
            snapshot = list(self.objects.values())
            await asyncio.gather(*(self._check(item, context, slots) for item in snapshot))
            elapsed = time.monotonic() - started - interval
            if elapsed > interval:
                logger.warning("a resync round took %.1f s, longer than the interval", elapsed)
            self.last_round = self.last_progress = time.monotonic()
            self.rounds += 1
            release_free_memory()

    async def _check(self, item: Tracked, context: Any, slots: asyncio.Semaphore) -> None:
        async with slots:
            try:
                await item.check(item.body, context)
            except kopf.TemporaryError as error:
                logger.info("resync of %s: %s (retried next round)", _name(item.body), error)
            except Exception:  # one object's bug must not stop the loop for all others
                logger.exception("resync of %s failed", _name(item.body))
            self.last_progress = time.monotonic()


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


@dataclass
class StatusMemory:
    """The status this process last wrote per object. Handlers triggered by child events see
    the parent from a cache that may predate our own last status write; diffing against the
    stale copy would write the same status again."""

    written: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def remember(self, uid: str, written_object: Mapping[str, Any]) -> None:
        # Only what freshest() reads: the whole object (managedFields and all) for every
        # object would be megabytes for nothing. Not forgotten when the watch catches up:
        # a reconcile may still hold an older copy of the object (see freshest).
        self.written[uid] = {
            "metadata": {
                "resourceVersion": written_object.get("metadata", {}).get("resourceVersion")
            },
            "status": written_object.get("status"),
        }

    def freshest(self, uid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        ours = self.written.get(uid)
        if ours is not None and _version(ours) > _version(body):
            return dict(ours.get("status") or {})
        self.written.pop(uid, None)
        return dict(body.get("status") or {})

    def forget(self, uid: str) -> None:
        self.written.pop(uid, None)


def _version(body: Mapping[str, Any]) -> int:
    try:
        return int(body.get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0
