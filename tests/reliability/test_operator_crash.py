"""SIGKILL of `devserver-operator run` at random points while it reconciles: after a restart
every object converges, nothing is duplicated, nothing is left behind.

50 kills in total (MCPServers and WorkflowIntegrations), at points drawn from a fixed seed:
during start-up, the initial listing, applies and status writes. Between kills the test keeps
changing the objects, so every start finds work to do.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.builders.common import ANNOTATION_PREFIX, OWNER_KIND_LABEL
from devserver_operator.kube.client import KubeClient
from devserver_operator.localcluster import LocalControlPlane
from tests.reliability.harness import (
    CHILD_API_VERSIONS,
    IMAGE,
    OperatorProcess,
    converged,
    identity,
    list_by_name,
    mcpserver,
    wait_all_converged,
)
from tests.support.audit import AuditCursor
from tests.support.operator_harness import custom_resource, wait_for

pytestmark = pytest.mark.integration

SEED = 20261126
MCP_TRIALS = 38
WORKFLOW_TRIALS = 12  # 50 kills in all
KILL_AFTER_SECONDS = (0.4, 3.2)  # start-up of the process is ~1.5 s on a busy 2-core machine
CONVERGE_SECONDS = 90.0


async def _mutate(kube: KubeClient, namespace: str, rng: random.Random, trial: int) -> None:
    """New work for the next start: creates, spec changes (some adding or removing a
    PodDisruptionBudget), a delete and a delete-and-recreate under the same name."""
    servers = await list_by_name(kube, API_VERSION, "MCPServer", namespace)
    for index in range(3):
        name = f"s{trial:02d}-{index}"
        replicas = rng.choice([1, 1, 2])
        await kube.create(
            mcpserver(
                name,
                namespace,
                {"image": IMAGE, "replicas": replicas, "verification": {"enabled": False}},
            )
        )
    existing = sorted(servers)
    for name in rng.sample(existing, min(2, len(existing))):
        spec = dict(servers[name]["spec"])
        spec["replicas"] = 1 if spec.get("replicas", 1) == 2 else 2
        spec["args"] = [f"--trial={trial}"]
        await kube.apply(custom_resource("MCPServer", name, namespace, spec))
    if len(existing) > 6 and rng.random() < 0.5:
        await kube.delete(API_VERSION, "MCPServer", rng.choice(existing), namespace)
    if len(existing) > 6 and rng.random() < 0.3:
        name = rng.choice(existing)
        if await kube.delete(API_VERSION, "MCPServer", name, namespace):

            async def gone() -> bool:
                return await kube.get(API_VERSION, "MCPServer", name, namespace) is None

            await wait_for(gone, seconds=10, what=f"MCPServer {name} deleted")
            await kube.create(mcpserver(name, namespace))


def _kill_points(rng: random.Random, trials: int) -> list[float]:
    return [rng.uniform(*KILL_AFTER_SECONDS) for _ in range(trials)]


async def _writes_since(cursor: AuditCursor, user: str, namespace: str) -> int:
    return sum(1 for _, uri in cursor.writes(user) if f"/namespaces/{namespace}/" in uri)


async def test_mcpservers_converge_without_duplicates_after_random_sigkills(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    user = "op-crash-mcp"
    operator = OperatorProcess(identity(local, user), tmp_path / "operator.log", [namespace])
    assert local.audit_log_path is not None
    mid_work = 0
    try:
        for trial, kill_after in enumerate(_kill_points(rng, MCP_TRIALS)):
            await _mutate(kube, namespace, rng, trial)
            cursor = AuditCursor.at_end(local.audit_log_path)
            operator.start()
            await asyncio.sleep(kill_after)
            operator.kill()
            # Killed in the middle of the work: it had written something, not everything.
            servers = await list_by_name(kube, API_VERSION, "MCPServer", namespace)
            if await _writes_since(cursor, user, namespace) and not all(
                converged(s) for s in servers.values()
            ):
                mid_work += 1
        operator.start()
        servers = await list_by_name(kube, API_VERSION, "MCPServer", namespace)
        await wait_all_converged(kube, namespace, sorted(servers), seconds=CONVERGE_SECONDS)
        await _assert_children_exact(kube, namespace)
        await _assert_no_kopf_leftovers(kube, namespace)
        # Converged means quiet: a resync round later, nothing is written any more.
        await asyncio.sleep(1)
        cursor = AuditCursor.at_end(local.audit_log_path)
        await asyncio.sleep(6)  # more than one resync interval (5 s)
        assert await _writes_since(cursor, user, namespace) == 0, cursor.writes(user)
        assert operator.alive, operator.tail()
    finally:
        operator.stop()
    # The kill points must really hit reconciles, not only start-ups.
    assert mid_work >= MCP_TRIALS // 3, f"only {mid_work} kills landed mid-work"
    assert "Traceback" not in operator.log(), operator.tail(80)


async def _assert_children_exact(kube: KubeClient, namespace: str) -> None:
    """Each live MCPServer has exactly the children its spec asks for, each controlled by
    that very object (not an earlier incarnation of the same name); nothing else is left
    once the garbage collector has removed the children of deleted servers."""
    servers = await list_by_name(kube, API_VERSION, "MCPServer", namespace)
    uids = {name: body["metadata"]["uid"] for name, body in servers.items()}

    async def problems() -> dict[str, Any]:
        found: dict[str, Any] = {}
        for kind in ("Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"):
            children = await kube.list(
                CHILD_API_VERSIONS[kind], kind, namespace, {OWNER_KIND_LABEL: "mcpserver"}
            )
            names = Counter(child["metadata"]["name"] for child in children)
            wanted = {
                name
                for name, body in servers.items()
                if kind != "PodDisruptionBudget" or body["spec"].get("replicas", 1) > 1
            }
            if set(names) != wanted:
                found[kind] = {
                    "missing": sorted(wanted - set(names)),
                    "extra": sorted(set(names) - wanted),
                }
            for child in children:
                controllers = [
                    ref for ref in child["metadata"].get("ownerReferences", []) if ref["controller"]
                ]
                name = child["metadata"]["name"]
                if [ref["uid"] for ref in controllers] != [uids.get(name)]:
                    found[f"{kind}/{name}"] = controllers
        return found

    async def exact() -> bool:
        return not await problems()

    await wait_for(exact, seconds=60, what="exactly the wanted children", dump=problems)


async def _assert_no_kopf_leftovers(kube: KubeClient, namespace: str) -> None:
    """No half-done handler bookkeeping and no finalizer are left on any object."""
    for body in (await list_by_name(kube, API_VERSION, "MCPServer", namespace)).values():
        annotations = body["metadata"].get("annotations") or {}
        progress = [
            key
            for key in annotations
            if key.startswith(ANNOTATION_PREFIX)
            and key != ANNOTATION_PREFIX + "last-handled-configuration"
        ]
        assert progress == [], (body["metadata"]["name"], progress)
        assert not body["metadata"].get("finalizers"), body["metadata"]


# ----------------------------------------------------------------- WorkflowIntegration


def _workflow(name: str, marker: int) -> dict[str, Any]:
    return {
        "name": name,
        "inline": {
            "name": f"crash {name}",
            "nodes": [
                {
                    "id": f"{name}-start",
                    "name": "Start",
                    "type": "n8n-nodes-base.manualTrigger",
                    "typeVersion": 1,
                    "position": [0, 0],
                    "parameters": {},
                },
                {
                    "id": f"{name}-set",
                    "name": "Mark",
                    "type": "n8n-nodes-base.noOp",
                    "typeVersion": 1,
                    "position": [200, 0],
                    "parameters": {},
                    "notes": f"revision {marker}",
                },
            ],
            "connections": {"Start": {"main": [[{"node": "Mark", "type": "main", "index": 0}]]}},
            "settings": {},
        },
        "active": False,
    }


def _n8n_counts(n8n_server: Any) -> tuple[Counter[str], Counter[str]]:
    """Workflow and credential names as n8n stores them (its SQLite, read-only): the public
    API cannot list credentials."""
    database = Path(n8n_server.data_dir) / ".n8n" / "database.sqlite"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        workflows = Counter(
            row[0] for row in db.execute("SELECT name FROM workflow_entity WHERE isArchived = 0")
        )
        credentials = Counter(row[0] for row in db.execute("SELECT name FROM credentials_entity"))
    return workflows, credentials


@pytest.mark.n8n
async def test_workflow_integrations_leave_no_duplicate_workflows_or_credentials_after_sigkills(
    local: LocalControlPlane,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
    n8n_server: Any,
) -> None:
    from devserver_operator.handlers import workflowintegration  # noqa: F401 - must exist

    rng = random.Random(SEED + 1)
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "n8n", "namespace": namespace},
            "stringData": {"apiKey": n8n_server.api_key},
        }
    )
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "token", "namespace": namespace},
            "stringData": {"value": "crash-test-token"},
        }
    )
    n8n = {"url": n8n_server.base_url, "apiKeySecretRef": {"name": "n8n", "key": "apiKey"}}
    integrations = [f"wi{index}" for index in range(3)]
    operator = OperatorProcess(
        identity(local, "op-crash-wfi"), tmp_path / "operator.log", [namespace]
    )
    try:
        for trial, kill_after in enumerate(_kill_points(rng, WORKFLOW_TRIALS)):
            for name in integrations:
                spec = {
                    "n8n": n8n,
                    "workflows": [_workflow(f"{name}-{k}", trial) for k in range(3)],
                    "credentials": [
                        {
                            "name": "token",
                            "type": "httpHeaderAuth",
                            "secretRef": {"name": "token"},
                            "fields": [
                                {"field": "name", "value": "Authorization"},
                                {"field": "value", "secretKey": "value"},
                            ],
                        }
                    ],
                }
                await kube.apply(custom_resource("WorkflowIntegration", name, namespace, spec))
            if trial % 4 == 3:  # rotate the Secret now and then: credentials are recreated
                await kube.apply(
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "token", "namespace": namespace},
                        "stringData": {"value": f"crash-test-token-{trial}"},
                    }
                )
            operator.start()
            await asyncio.sleep(kill_after + 1.0)  # n8n calls are slower than the API's
            operator.kill()
        operator.start()

        async def synced() -> dict[str, Any] | None:
            found = await list_by_name(kube, API_VERSION, "WorkflowIntegration", namespace)
            ready = {
                name: body
                for name, body in found.items()
                if converged(body)
                and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in body["status"]["conditions"]
                )
            }
            return ready if set(ready) == set(integrations) else None

        async def statuses() -> Any:
            found = await list_by_name(kube, API_VERSION, "WorkflowIntegration", namespace)
            return {name: body.get("status") for name, body in found.items()}

        bodies = await wait_for(
            synced, seconds=120, what="every WorkflowIntegration Ready", dump=statuses
        )
    finally:
        operator.stop()
    workflows, credentials = _n8n_counts(n8n_server)
    for name in integrations:
        for key in range(3):
            assert workflows[f"crash {name}-{key}"] == 1, workflows
        ids = {w["name"]: w["id"] for w in bodies[name]["status"]["workflows"]}
        assert len(set(ids.values())) == 3, ids
        credential = bodies[name]["status"]["credentials"][0]
        # One live credential per integration; rotated ones are gone once nothing uses them.
        assert credentials[credential["n8nName"]] == 1, credentials
    duplicated = {name: count for name, count in credentials.items() if count > 1}
    assert duplicated == {}, json.dumps(credentials, indent=1)
    assert "Traceback" not in operator.log(), operator.tail(80)
