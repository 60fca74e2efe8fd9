"""The checks behind /healthz (``kopf.on.probe``): the resync loop, the watch streams, the lead.

kopf answers /healthz with the results of these handlers as JSON (cached for 10 s), and with
HTTP 500 when one of them fails. A failing check raises a permanent error: kopf would
otherwise retry it with backoff inside the request, and the probe would time out instead of
saying why (the reason is in kopf's log, "kopf.activities.probe").
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import kopf

# kopf raises it from /healthz when a check fails, and does not export it at the top level.
from kopf._core.engines.activities import ActivityError

from devserver_operator.leadership import LeadWatch

from .resync import Resync

# A round sleeps one interval and then checks every object; each finished check counts as
# progress. Three intervals without any means the loop hangs (or is starved), not busy.
STALL_INTERVALS = 3
# kopf names the task of every watch stream so (kopf/_core/reactor/orchestration.py).
WATCHER_TASK_PREFIX = "watcher for "


def resync_report(resync: Resync, now: float) -> dict[str, Any]:
    """The loop's progress; raises when it ended or made no progress for too long."""
    if resync.task is None:
        # It starts with the first object a handler tracks: a standby, or nothing to watch.
        return {"running": False, "rounds": 0}
    if resync.task.done():
        raise kopf.PermanentError("the resync loop has ended")
    bound = STALL_INTERVALS * resync.interval
    quiet = now - resync.last_progress
    if quiet > bound:
        raise kopf.PermanentError(
            f"the resync loop made no progress for {quiet:.0f} s "
            f"(bound {bound:.0f} s: {STALL_INTERVALS} resync intervals)"
        )
    last_round = None if resync.last_round is None else round(now - resync.last_round, 1)
    return {
        "running": True,
        "rounds": resync.rounds,
        "lastRoundAgeSeconds": last_round,
        "boundSeconds": bound,
    }


@dataclass
class WatchStreams:
    """kopf's watch tasks seen so far. kopf never restarts a watch task that crashed or
    returned; its resource would then go unwatched for the rest of the process's life."""

    seen: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        for task in asyncio.all_tasks():
            name = task.get_name()
            if name.startswith(WATCHER_TASK_PREFIX):
                self.seen[name] = task
        for name, task in list(self.seen.items()):
            if task.cancelled():  # kopf stops watches of resources that went away
                del self.seen[name]
        dead = sorted(name for name, task in self.seen.items() if task.done())
        if dead:
            raise kopf.PermanentError(f"watch streams ended: {', '.join(dead)}")
        if not self.seen:
            raise kopf.PermanentError("no watch stream is running")
        return {"streams": len(self.seen)}


def lead_report(lead: LeadWatch | None) -> dict[str, Any]:
    """Whether this replica leads; a standby is healthy too, so this never fails."""
    if lead is None or lead.peering is None:
        return {"peering": None, "leading": True}
    return {"peering": lead.peering, "leading": lead.leading}


class _FailedProbeFilter(logging.Filter):
    """kopf lets a failed check escape its HTTP handler, and aiohttp then logs a traceback for
    every probe request; kopf has already logged the reason in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, ActivityError)


def _quiet_failed_probes() -> None:
    server_logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _FailedProbeFilter) for f in server_logger.filters):
        server_logger.addFilter(_FailedProbeFilter())


def register_probes(registry: kopf.OperatorRegistry) -> None:
    _quiet_failed_probes()
    watches = WatchStreams()  # one per registry, that is per run of the operator

    # Coroutines, so that they run in the operator's event loop: kopf runs plain functions in
    # a thread, where asyncio.all_tasks() would find no loop.
    async def resync(memo: Any, **_: Any) -> dict[str, Any]:
        context = getattr(memo, "context", None)
        if context is None:
            raise kopf.PermanentError("the operator has not started yet")
        return resync_report(context.resync, time.monotonic())

    async def watch_streams(**_: Any) -> dict[str, Any]:
        return watches.report()

    async def leadership(memo: Any, **_: Any) -> dict[str, Any]:
        return lead_report(getattr(memo, "lead", None))

    permanent = kopf.ErrorsMode.PERMANENT
    kopf.on.probe(id="resync", errors=permanent, registry=registry)(resync)
    kopf.on.probe(id="watches", errors=permanent, registry=registry)(watch_streams)
    kopf.on.probe(id="leadership", errors=permanent, registry=registry)(leadership)
