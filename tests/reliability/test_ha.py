"""Two operator replicas with kopf peering: exactly one works, the other stands by and takes
over within a bounded time when the first dies (SIGKILL) or leaves (SIGTERM); nothing is
processed twice, and a replica that loses the lead stops all its work, background loops
included, until it leads again.

Each replica runs as `devserver-operator run --peering NAME` under its own identity, so the
API server's audit log says which replica wrote what.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator.kube.client import KubeClient
from devserver_operator.localcluster import LocalControlPlane
from tests.integration.conftest import ControlPlaneAccess
from tests.reliability.harness import (
    OperatorProcess,
    identity,
    mcpserver,
    wait_all_converged,
)
from tests.support.audit import AuditCursor
from tests.support.hostile_http import unused_port
from tests.support.operator_harness import custom_resource, wait_for, wait_for_condition

pytestmark = pytest.mark.integration

PEERING = "devserver-ha"
LIFETIME_SECONDS = 20
# A replica refreshes its keep-alive 5-10 s before it expires: a silently dead leader is
# noticed between LIFETIME - 10 and LIFETIME seconds after its death.
EARLIEST_SILENT_TAKEOVER = LIFETIME_SECONDS - 10
# Listing, resuming and reconciling after the takeover, on a loaded 2-core machine.
RESUME_MARGIN_SECONDS = 25
KILLED_TAKEOVER_BOUND = LIFETIME_SECONDS + RESUME_MARGIN_SECONDS
# A replica that stops gracefully leaves the peering at once: the standby must not need to
# wait for its keep-alive to expire.
GRACEFUL_TAKEOVER_BOUND = EARLIEST_SILENT_TAKEOVER
RESYNC_ROUND_SECONDS = 6  # the harness's resync interval (5 s), plus a little
RESTARTED_AS_STANDBY = "starting again as a standby"


def _object_writes(cursor: AuditCursor, user: str, namespace: str) -> list[str]:
    """Writes of ``user`` to objects in ``namespace``, apart from its peering keep-alives and
    Events (which only report)."""
    return [
        uri
        for _, uri in cursor.writes(user)
        if f"/namespaces/{namespace}/" in uri
        and "/kopfpeerings/" not in uri
        and not uri.split("?")[0].endswith("/events")
    ]


def _touching(uris: list[str], names: list[str]) -> list[str]:
    def names_one(uri: str) -> bool:
        path = uri.split("?", 1)[0]
        return any(path.endswith(f"/{n}") or f"/{n}/" in path for n in names)

    return [uri for uri in uris if names_one(uri)]


def _peering_path(namespace: str) -> str:
    return f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings"


async def _peers(kube: KubeClient, namespace: str) -> dict[str, Any]:
    body = await kube.raw("GET", f"{_peering_path(namespace)}/{PEERING}")
    return dict(body.get("status") or {})


async def _create_peering(kube: KubeClient, namespace: str) -> None:
    # What the chart installs beside the Deployment when replicas > 1.
    await kube.raw(
        "POST",
        _peering_path(namespace),
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": PEERING, "namespace": namespace},
        },
    )


def _replica(local: LocalControlPlane, user: str, namespace: str, work: Path) -> OperatorProcess:
    return OperatorProcess(
        identity(local, user),
        work / f"{user}.log",
        [namespace],
        {
            "peering": PEERING,
            "peering_lifetime": str(LIFETIME_SECONDS),
            "metrics_port": str(unused_port()),  # for the devserver_leader gauge
        },
    )


async def _leader_gauge(replica: OperatorProcess) -> float | None:
    url = f"http://127.0.0.1:{replica.settings['metrics_port']}/metrics"
    async with httpx.AsyncClient(timeout=5) as http:
        try:
            text = (await http.get(url)).text
        except httpx.TransportError:
            return None
    for line in text.splitlines():
        if line.startswith("devserver_leader "):
            return float(line.split()[1])
    return None


@pytest.fixture
def replicas(
    local: LocalControlPlane, namespace: str, tmp_path: Path
) -> Iterator[dict[str, OperatorProcess]]:
    running = {user: _replica(local, user, namespace, tmp_path) for user in ("op-ha-a", "op-ha-b")}
    try:
        yield running
    finally:
        for replica in running.values():
            replica.stop()
    for replica in running.values():
        if replica.starts:
            assert "Traceback" not in replica.log(), replica.tail(60)


async def test_one_replica_works_and_the_other_takes_over_when_it_dies_or_leaves(
    local: LocalControlPlane,
    kube: KubeClient,
    namespace: str,
    replicas: dict[str, OperatorProcess],
) -> None:
    assert local.audit_log_path is not None
    await _create_peering(kube, namespace)
    for replica in replicas.values():
        replica.start()

    async def both_peered() -> bool:
        return len(await _peers(kube, namespace)) >= 2

    await wait_for(both_peered, seconds=60, what="both replicas in the peering object")
    await asyncio.sleep(3)  # a replica that led for a moment at start has stepped down by now
    cursor = AuditCursor.at_end(local.audit_log_path)
    first = [f"h{i}" for i in range(5)]
    for name in first:
        await kube.create(mcpserver(name, namespace))
    await wait_all_converged(kube, namespace, first, seconds=60)
    await asyncio.sleep(RESYNC_ROUND_SECONDS)  # a second active replica would write now
    writes = {user: _object_writes(cursor, user, namespace) for user in replicas}
    working = [user for user, found in writes.items() if found]
    assert len(working) == 1, {user: len(found) for user, found in writes.items()}
    leader = working[0]
    standby = next(user for user in replicas if user != leader)
    # The leader did all the work, once: 3 children, status and kopf's record per server.
    assert len(writes[leader]) == len(first) * 5, writes[leader]
    assert replicas[standby].alive, replicas[standby].tail()
    assert await _leader_gauge(replicas[leader]) == 1
    assert await _leader_gauge(replicas[standby]) == 0

    # SIGKILL: no goodbye; the standby waits until the leader's keep-alive expires.
    replicas[leader].kill()
    killed = time.monotonic()
    cursor = AuditCursor.at_end(local.audit_log_path)
    second = [f"t{i}" for i in range(3)]
    for name in second:
        await kube.create(mcpserver(name, namespace))
    await wait_all_converged(kube, namespace, second, seconds=KILLED_TAKEOVER_BOUND)
    takeover = time.monotonic() - killed
    print(f"takeover after SIGKILL of the leader: {takeover:.1f} s (lifetime {LIFETIME_SECONDS} s)")
    assert _object_writes(cursor, leader, namespace) == []
    taken_over = _object_writes(cursor, standby, namespace)
    assert taken_over, "the standby took over"
    # What the dead replica did is not done again: the first servers need no write.
    assert _touching(taken_over, first) == [], taken_over
    assert await _leader_gauge(replicas[standby]) == 1  # the gauge follows the lead

    # The killed replica comes back (as a restarted pod would): the older replica keeps the
    # lead, the newcomer only stands by.
    leader, standby = standby, leader
    replicas[standby].start()
    await wait_for(both_peered, seconds=60, what="the restarted replica in the peering object")
    cursor = AuditCursor.at_end(local.audit_log_path)
    await asyncio.sleep(RESYNC_ROUND_SECONDS)
    assert _object_writes(cursor, standby, namespace) == []

    # SIGTERM: the leader removes itself from the peering as it exits, so the standby takes
    # over at once instead of waiting for the keep-alive to expire.
    before = await _peers(kube, namespace)
    leaving = max(before, key=lambda peer: int(before[peer]["priority"]))  # the oldest leads
    cursor = AuditCursor.at_end(local.audit_log_path)
    stopped = time.monotonic()
    os.killpg(replicas[leader].pid, signal.SIGTERM)  # not waiting for the exit: pods neither
    third = [f"g{i}" for i in range(2)]
    for name in third:
        await kube.create(mcpserver(name, namespace))
    await wait_all_converged(kube, namespace, third, seconds=KILLED_TAKEOVER_BOUND)
    handover = time.monotonic() - stopped
    print(f"takeover after SIGTERM of the leader: {handover:.1f} s")
    assert handover < GRACEFUL_TAKEOVER_BOUND
    replicas[leader].stop()
    assert not replicas[leader].alive
    assert leaving not in await _peers(kube, namespace), "the leaver said goodbye"
    taken_over = _object_writes(cursor, standby, namespace)
    assert taken_over, "the standby took over"
    assert _touching(taken_over, first + second) == [], taken_over
    assert replicas[standby].alive, replicas[standby].tail()


def _freeze(control_plane: ControlPlaneAccess, namespace: str, seconds: int | None) -> None:
    """What `kopf freeze` does: a peer of priority 0 outranks every replica (theirs are
    negative), so they all pause; `kopf resume` (``seconds=None``) removes it again."""
    entry = (
        None
        if seconds is None
        else {"priority": 0, "lifetime": seconds, "lastseen": datetime.now(UTC).isoformat()}
    )
    with control_plane.http_client() as client:
        client.patch(
            f"{_peering_path(namespace)}/{PEERING}",
            json={"status": {"freezer": entry}},
            headers={"Content-Type": "application/merge-patch+json"},
        ).raise_for_status()


async def test_a_paused_replica_stops_all_its_work_until_it_leads_again(
    local: LocalControlPlane,
    control_plane: ControlPlaneAccess,
    kube: KubeClient,
    namespace: str,
    replicas: dict[str, OperatorProcess],
    mcp_server_factory: Any,
) -> None:
    assert local.audit_log_path is not None
    server = mcp_server_factory("streamable-http")
    await _create_peering(kube, namespace)
    user = "op-ha-a"
    replica = replicas[user].start()
    workloads = ["w0", "w1"]
    for name in workloads:
        await kube.create(mcpserver(name, namespace))
    spec = {"url": server.url, "verification": {"interval": "10s", "timeout": "5s"}}
    await kube.create(custom_resource("MCPServer", "remote", namespace, spec))
    await wait_all_converged(kube, namespace, workloads, seconds=60)
    await wait_for_condition(kube, "MCPServer", "remote", namespace, "Ready", "True", seconds=60)

    _freeze(control_plane, namespace, seconds=120)

    async def stepped_down() -> bool:
        return RESTARTED_AS_STANDBY in replica.log()

    await wait_for(stepped_down, seconds=30, what="the replica to step down")
    cursor = AuditCursor.at_end(local.audit_log_path)
    # While paused, its periodic checks must not run: re-verifying the server that is now
    # gone would write Verified=False; a repaired Deployment would be a write too.
    server.stop()
    await kube.delete("apps/v1", "Deployment", "w0", namespace)
    await asyncio.sleep(2 * RESYNC_ROUND_SECONDS)
    assert _object_writes(cursor, user, namespace) == []
    assert await kube.get("apps/v1", "Deployment", "w0", namespace) is None

    _freeze(control_plane, namespace, seconds=None)
    await wait_all_converged(kube, namespace, workloads, seconds=60)
    await wait_for_condition(
        kube, "MCPServer", "remote", namespace, "Verified", "False", seconds=60
    )
    # Leading again, it repairs what changed and leaves the rest alone.
    resumed = _object_writes(cursor, user, namespace)
    assert _touching(resumed, ["w1"]) == [], resumed
    assert replica.alive, replica.tail()
