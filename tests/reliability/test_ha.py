"""Two operator replicas with kopf peering: exactly one works, the other stands by and takes
over within a bounded time when the first dies; no object is processed by both.

Each replica runs as `devserver-operator run --peering NAME` under its own identity, so the
API server's audit log says which replica wrote what.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from devserver_operator.kube.client import KubeClient
from devserver_operator.localcluster import LocalControlPlane
from tests.reliability.harness import (
    OperatorProcess,
    identity,
    mcpserver,
    wait_all_converged,
)
from tests.support.audit import AuditCursor
from tests.support.operator_harness import wait_for

pytestmark = pytest.mark.integration

PEERING = "devserver-ha"
LIFETIME_SECONDS = 15  # keep-alives every 5-10 s; a dead replica is noticed after this
TAKEOVER_BOUND_SECONDS = LIFETIME_SECONDS + 25  # plus resuming and reconciling
PEERING_PATH = "/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings"


def _object_writes(cursor: AuditCursor, user: str, namespace: str) -> list[tuple[str, str]]:
    """Writes of ``user`` to objects in ``namespace``, apart from its peering keep-alives."""
    return [
        (verb, uri)
        for verb, uri in cursor.writes(user)
        if f"/namespaces/{namespace}/" in uri and "/kopfpeerings/" not in uri
    ]


def _names(uri: str, name: str) -> bool:
    path = uri.split("?", 1)[0]
    return path.endswith(f"/{name}") or f"/{name}/" in path


async def _peers(kube: KubeClient, namespace: str) -> dict[str, Any]:
    path = PEERING_PATH.format(namespace=namespace) + f"/{PEERING}"
    body = await kube.raw("GET", path)
    return dict(body.get("status") or {})


async def test_one_replica_works_and_the_other_takes_over_when_it_dies(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    assert local.audit_log_path is not None
    await kube.raw(
        "POST",
        PEERING_PATH.format(namespace=namespace),
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": PEERING, "namespace": namespace},
        },
    )
    users = {"a": "op-ha-a", "b": "op-ha-b"}
    replicas = {
        key: OperatorProcess(
            identity(local, user),
            tmp_path / f"operator-{key}.log",
            [namespace],
            {"peering": PEERING, "peering_lifetime": str(LIFETIME_SECONDS)},
        )
        for key, user in users.items()
    }
    try:
        for replica in replicas.values():
            replica.start()

        async def both_peered() -> bool:
            return len(await _peers(kube, namespace)) >= 2

        await wait_for(both_peered, seconds=60, what="both replicas in the peering object")
        await asyncio.sleep(3)  # the lower-priority replica has paused by now
        cursor = AuditCursor.at_end(local.audit_log_path)
        first = [f"h{i}" for i in range(5)]
        for name in first:
            await kube.create(mcpserver(name, namespace))
        await wait_all_converged(kube, namespace, first, seconds=60)
        await asyncio.sleep(6)  # a resync round: a second active replica would write now
        writes = {key: _object_writes(cursor, user, namespace) for key, user in users.items()}
        working = [key for key, found in writes.items() if found]
        assert len(working) == 1, {k: len(v) for k, v in writes.items()}
        active, standby = working[0], "b" if working[0] == "a" else "a"
        # The active one did all the work, once: 3 children + status + kopf's record each.
        assert len(writes[active]) <= len(first) * 5 + 2, writes[active]
        assert replicas[standby].alive, replicas[standby].tail()

        replicas[active].kill()
        killed = time.monotonic()
        cursor = AuditCursor.at_end(local.audit_log_path)
        second = [f"t{i}" for i in range(3)]
        for name in second:
            await kube.create(mcpserver(name, namespace))
        await wait_all_converged(kube, namespace, second, seconds=TAKEOVER_BOUND_SECONDS)
        takeover = time.monotonic() - killed
        assert takeover <= TAKEOVER_BOUND_SECONDS
        assert _object_writes(cursor, users[active], namespace) == []
        assert _object_writes(cursor, users[standby], namespace), "the standby took over"
        # What the dead replica did is not done again: the first servers need no write.
        redone = [
            uri
            for _, uri in _object_writes(cursor, users[standby], namespace)
            if any(_names(uri, name) for name in first)
        ]
        assert redone == [], redone
        assert replicas[standby].alive, replicas[standby].tail()
    finally:
        for replica in replicas.values():
            replica.stop()
    for replica in replicas.values():
        assert "Traceback" not in replica.log(), replica.tail(60)
    print(f"takeover after SIGKILL of the active replica: {takeover:.1f} s")
