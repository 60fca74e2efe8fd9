"""Peering priorities, and LeadWatch reading the decisions of kopf's real peering code (so an
upgrade of kopf that rewords them fails here, not in a cluster)."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._core.engines import peering
from prometheus_client import REGISTRY

from devserver_operator import leadership
from devserver_operator.leadership import PEERING_LOGGER, start_priority, watching_the_lead

ME = peering.Identity("me")


def test_the_older_replica_has_the_higher_priority_below_kopfs_own_tools() -> None:
    older, newer = start_priority(now_ms=1_000), start_priority(now_ms=1_001)
    assert newer < older < 0  # `kopf freeze` and `kopf run --dev` (0 and up) outrank both
    assert len({start_priority(now_ms=5) for _ in range(50)}) > 1  # ties are broken


def _event(**priorities: int) -> Any:
    now = datetime.now(UTC).isoformat()
    status = {
        name: {"priority": priority, "lifetime": 60, "lastseen": now}
        for name, priority in priorities.items()
    }
    return {"type": "MODIFIED", "object": {"metadata": {"name": "ha"}, "status": status}}


async def _process(
    raw_event: Any, settings: kopf.OperatorSettings, paused: aiotoggles.Toggle
) -> None:
    awake = asyncio.Event()
    awake.set()  # kopf would sleep until a blocking peer expires; not here
    await peering.process_peering_event(
        raw_event=raw_event,
        namespace=None,
        resource=None,  # type: ignore[arg-type]  # used only to clean up dead peers
        identity=ME,
        settings=settings,
        autoclean=False,
        stream_pressure=awake,
        conflicts_found=paused,
    )


async def test_lead_watch_follows_kopfs_pause_and_resume() -> None:
    settings = kopf.OperatorSettings()
    settings.peering.name = "ha"
    settings.peering.priority = -10
    paused = aiotoggles.Toggle(True)  # kopf starts every peering operator paused
    with watching_the_lead("ha") as lead:
        await _process(_event(me=-10, older=-5), settings, paused)
        assert paused.is_on() and not lead.leading and not lead.lost.is_set()
        assert _leader_gauge() == 0

        await _process(_event(me=-10), settings, paused)
        assert paused.is_off() and lead.leading and not lead.lost.is_set()
        assert _leader_gauge() == 1

        await _process(_event(me=-10, freezer=0), settings, paused)
        assert paused.is_on() and not lead.leading and lead.lost.is_set()
        assert _leader_gauge() == 0


def _leader_gauge() -> float:
    value = REGISTRY.get_sample_value("devserver_leader")
    assert value is not None
    return value


def test_a_replica_without_peering_always_leads() -> None:
    with watching_the_lead("ha"):
        assert _leader_gauge() == 0
    lead = leadership.standalone()
    assert lead.leading and lead.peering is None and not lead.lost.is_set()
    assert _leader_gauge() == 1


def test_watching_the_lead_leaves_the_logger_as_it_was() -> None:
    peering_logger = logging.getLogger(PEERING_LOGGER)
    peering_logger.setLevel(logging.WARNING)
    try:
        with watching_the_lead("ha") as lead:
            assert peering_logger.isEnabledFor(logging.INFO)
            assert lead in peering_logger.handlers
        assert peering_logger.level == logging.WARNING
        assert lead not in peering_logger.handlers
    finally:
        peering_logger.setLevel(logging.NOTSET)


def test_the_identity_needs_no_passwd_entry_for_the_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image runs as UID 10001 with no passwd entry (and OpenShift assigns arbitrary UIDs):
    kopf's default identity calls getpass.getuser(), which raises KeyError there."""

    def no_passwd_entry() -> str:
        raise KeyError("getpwuid(): uid not found: 10001")

    monkeypatch.delenv("POD_ID", raising=False)
    monkeypatch.setattr(leadership.getpass, "getuser", no_passwd_entry)
    identity = leadership.own_identity()
    assert identity.startswith(f"uid{os.getuid()}@")


def test_the_identity_is_the_pod_name_in_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_ID", "devserver-operator-5d9c-abcde")
    assert leadership.own_identity() == "devserver-operator-5d9c-abcde"
