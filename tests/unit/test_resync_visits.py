"""The resync loop's visits: what replaces per-object kopf timers and daemons (AlertRule
evaluations, TeamAccess expiries) and coalesces bursts (a WorkflowIntegration following many
MCPServer changes with one reconcile)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from devserver_operator.reconcile.resync import Resync


def _body(uid: str) -> dict[str, Any]:
    return {"kind": "Test", "metadata": {"uid": uid, "namespace": "n", "name": uid}}


async def _started(runs: list[tuple[str, float]]) -> Resync:
    resync = Resync()
    resync.configure(context=object(), interval=3600)

    async def check(body: Mapping[str, Any], context: Any) -> None:
        runs.append((body["metadata"]["uid"], time.monotonic()))

    for uid in ("a", "b"):
        resync.track("Test", _body(uid), check=check)
    return resync


async def test_requests_within_the_delay_share_one_visit() -> None:
    runs: list[tuple[str, float]] = []
    resync = await _started(runs)
    try:
        for _ in range(3):
            resync.visit_in("Test", "a", 0.05)
        resync.visit_in("Test", "b", 0.05)
        await asyncio.sleep(0.3)
        assert sorted(uid for uid, _ in runs) == ["a", "b"]
        # After it ran, a new request gets a visit of its own.
        resync.visit_in("Test", "a", 0.01)
        await asyncio.sleep(0.2)
        assert [uid for uid, _ in runs].count("a") == 2
        assert resync.visits == {}
    finally:
        await resync.stop()


async def test_a_sooner_request_moves_the_visit_earlier_and_a_later_one_does_not() -> None:
    runs: list[tuple[str, float]] = []
    resync = await _started(runs)
    try:
        started = time.monotonic()
        resync.visit_in("Test", "a", 10)
        resync.visit_in("Test", "a", 0.05)
        resync.visit_in("Test", "a", 20)
        await asyncio.sleep(0.3)
        assert [uid for uid, _ in runs] == ["a"]
        assert runs[0][1] - started < 0.25
    finally:
        await resync.stop()


async def test_a_forgotten_object_is_not_visited_and_stop_leaves_no_task() -> None:
    runs: list[tuple[str, float]] = []
    resync = await _started(runs)
    resync.visit_in("Test", "a", 0.05)
    resync.forget("Test", "a")
    await asyncio.sleep(0.2)
    assert runs == []
    task = resync.task
    await resync.stop()
    assert task is not None and task.done() and resync.task is None
