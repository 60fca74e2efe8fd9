"""The checks behind /healthz, on a real resync loop and real asyncio tasks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf
import pytest

from devserver_operator.leadership import LeadWatch
from devserver_operator.reconcile.probes import WatchStreams, lead_report, resync_report
from devserver_operator.reconcile.resync import Resync


async def _check_forever(body: Any, context: Any) -> None:
    await asyncio.Event().wait()  # a check that hangs: the injected fault


async def _quick_check(body: Any, context: Any) -> None:
    return None


def _body(uid: str) -> dict[str, Any]:
    return {"kind": "MCPServer", "metadata": {"uid": uid, "namespace": "n", "name": uid}}


async def test_an_idle_loop_is_healthy_and_a_progressing_one_reports_its_rounds() -> None:
    resync = Resync()
    assert resync_report(resync, time.monotonic()) == {"running": False, "rounds": 0}
    resync.configure(context=object(), interval=0.05)
    resync.track("MCPServer", _body("a"), check=_quick_check)
    try:
        deadline = time.monotonic() + 10
        while resync.rounds < 2:
            assert time.monotonic() < deadline, "no two rounds within 10 s"
            await asyncio.sleep(0.02)
        report = resync_report(resync, time.monotonic())
        assert report["running"] and report["rounds"] >= 2
        assert 0 <= report["lastRoundAgeSeconds"] < 1
        assert report["boundSeconds"] == pytest.approx(0.15)
    finally:
        await resync.stop()


async def test_a_stalled_loop_fails_after_three_intervals_and_an_ended_one_at_once() -> None:
    resync = Resync()
    resync.configure(context=object(), interval=0.05)
    resync.track("MCPServer", _body("hangs"), check=_check_forever)
    try:
        started = time.monotonic()
        assert resync_report(resync, started)["running"]
        # The round begins after one interval and never ends: no progress from then on.
        with pytest.raises(kopf.PermanentError, match="no progress for"):
            deadline = started + 10
            while time.monotonic() < deadline:
                resync_report(resync, time.monotonic())
                await asyncio.sleep(0.02)
        assert time.monotonic() - started >= 0.15
        assert resync.task is not None
        resync.task.cancel()
        await asyncio.wait([resync.task], timeout=5)
        with pytest.raises(kopf.PermanentError, match="has ended"):
            resync_report(resync, time.monotonic())
    finally:
        await resync.stop()


async def _watch_until_cancelled() -> None:
    await asyncio.Event().wait()


async def _watch_that_crashes(go: asyncio.Event) -> None:
    await go.wait()
    raise RuntimeError("the stream broke")


async def test_watch_streams_fail_when_one_ends_but_not_when_kopf_stops_it() -> None:
    watches = WatchStreams()
    with pytest.raises(kopf.PermanentError, match="no watch stream"):
        watches.report()
    alive = asyncio.create_task(_watch_until_cancelled(), name="watcher for mcpservers@None")
    stopped = asyncio.create_task(_watch_until_cancelled(), name="watcher for crds@None")
    await asyncio.sleep(0)
    assert watches.report() == {"streams": 2}
    stopped.cancel()  # kopf stops the watch of a resource that went away
    await asyncio.sleep(0)
    assert watches.report() == {"streams": 1}
    go = asyncio.Event()
    crashed = asyncio.create_task(_watch_that_crashes(go), name="watcher for services@ns")
    await asyncio.sleep(0)
    assert watches.report() == {"streams": 2}
    go.set()
    with pytest.raises(RuntimeError):
        await crashed
    with pytest.raises(kopf.PermanentError, match="services@ns"):
        watches.report()
    alive.cancel()


def test_leadership_reports_peering_and_lead_without_failing() -> None:
    assert lead_report(None) == {"peering": None, "leading": True}
    standby = LeadWatch("ha")
    assert lead_report(standby) == {"peering": "ha", "leading": False}
    standby.leading = True
    assert lead_report(standby) == {"peering": "ha", "leading": True}
