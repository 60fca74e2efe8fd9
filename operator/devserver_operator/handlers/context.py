"""What every handler shares: settings, the API client, probe slots, verification memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devserver_operator.kube.client import KubeClient
from devserver_operator.settings import OperatorSettings

from .backoff import FailureBackoff
from .mcpserver_rejections import RejectedChildren
from .resync import Resync, StatusMemory


@dataclass
class VerificationMemory:
    """Failed handshakes per object, for backoff. Lost on restart, which costs one early retry."""

    failures: int = 0
    last_attempt: float = 0.0


ChildKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name
RECONCILE_CONCURRENCY = 8  # as many as the API client has connections


@dataclass
class RecentWrites:
    """What this process applied or deleted last, per child.

    The watch cache lags behind our own writes by an event; without this memory a reconcile
    that follows right after another would see the old object and apply again."""

    bodies: dict[ChildKey, dict[str, Any] | None] = field(default_factory=dict)
    written_at: dict[ChildKey, float] = field(default_factory=dict)
    # A watch event follows a write within milliseconds; a memory older than this has been
    # overtaken by events the cache reflects (for example, someone deleting the object).
    ttl_seconds: float = 10.0

    def remember(self, key: ChildKey, body: dict[str, Any] | None) -> None:
        self.bodies[key] = body
        self.written_at[key] = time.monotonic()

    def forget(self, key: ChildKey) -> None:
        """Drop the memory of ``key``: a watch event says something newer happened to it."""
        self.bodies.pop(key, None)
        self.written_at.pop(key, None)

    def newer_than_cache(
        self, key: ChildKey, cached: Mapping[str, Any] | None
    ) -> tuple[bool, Mapping[str, Any] | None]:
        """(True, body) when our own write is newer than the cached object."""
        if key not in self.bodies:
            return False, cached
        if time.monotonic() - self.written_at.get(key, 0.0) > self.ttl_seconds:
            self.forget(key)
            return False, cached
        ours = self.bodies[key]
        if ours is None:  # we deleted it; a cached copy is the stale one
            return (cached is not None), None
        if cached is None:
            return True, ours
        if _version(ours) > _version(cached):
            return True, ours
        self.forget(key)  # the cache has caught up
        return False, cached

    def settle(self, key: ChildKey, body: Mapping[str, Any], *, deleted: bool = False) -> bool:
        """A watch event brought ``body``: forget our copy once the cache is at least as new
        (it would otherwise stay until the next reconcile looks, which for a cold start
        with 1000 objects was 3000 full objects). True when ``body`` is exactly our own
        last write, an echo that needs no reconcile."""
        if deleted:
            # Ours was a delete: the cache has it now. Someone else's delete of what we
            # wrote: forget our copy, the child is gone; the caller repairs it.
            self.bodies.pop(key, None)
            return False
        ours = self.bodies.get(key)
        if ours is None:
            return False
        echo = _version(ours) == _version(body) > 0
        if _version(body) >= _version(ours):
            del self.bodies[key]
        return echo


def _version(body: Mapping[str, Any]) -> int:
    # resourceVersion is opaque by contract, but etcd's revision in practice; a non-number
    # simply makes the cache win.
    try:
        return int(body.get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0


def context_from(memo: Any) -> OperatorContext:
    context: OperatorContext = memo.context
    return context


@dataclass
class OperatorContext:
    settings: OperatorSettings
    kube: KubeClient
    probe_slots: asyncio.Semaphore
    verification: dict[str, VerificationMemory] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    recent: RecentWrites = field(default_factory=RecentWrites)
    statuses: StatusMemory = field(default_factory=StatusMemory)
    resync: Resync = field(default_factory=Resync)
    api_backoff: FailureBackoff = field(default_factory=FailureBackoff)
    rejected_children: RejectedChildren = field(default_factory=RejectedChildren)
    reconcile_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(RECONCILE_CONCURRENCY)
    )
    """Reconciles in flight at once. Without a bound, a cold start with 1000 objects starts
    1000 reconciles together: their requests queue for the 50 connections until they time
    out, and peak memory grows with the backlog."""

    def lock_for(self, uid: str) -> asyncio.Lock:
        """One reconcile at a time per object: handlers, timers and child events all funnel
        into the same reconcile and would otherwise race each other."""
        return self.locks.setdefault(uid, asyncio.Lock())

    def forget(self, uid: str) -> None:
        self.locks.pop(uid, None)
        self.verification.pop(uid, None)
        self.statuses.forget(uid)
        self.api_backoff.forget(uid)
        self.rejected_children.forget(uid)
