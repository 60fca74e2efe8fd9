"""SIGKILL of `devserver-operator run` at random points while it reconciles: after a restart
every object converges, nothing is duplicated, nothing is left behind.

50 kills in total (MCPServers and WorkflowIntegrations), at points drawn from a fixed seed:
during start-up, the initial listing, applies and status writes. Between kills the test keeps
changing the objects, so every start finds work to do.

Importing the operator costs ~3 s of CPU on the 2-core machine, more than the work each kill
interrupts; so one process imports it once and forks a fresh `devserver-operator run` (the same
``cli.main``, nothing run before it) for every start. That keeps 50 kills within the module's
time budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.builders.common import OWNER_KIND_LABEL
from devserver_operator.kube.client import KubeClient
from devserver_operator.localcluster import LocalControlPlane
from tests.reliability.harness import (
    CHILD_API_VERSIONS,
    IMAGE,
    converged,
    identity,
    list_by_name,
    mcpserver,
    wait_all_converged,
)
from tests.support.audit import AuditCursor
from tests.support.operator_harness import custom_resource, wait_for
from tests.support.workflow_specs import authorization_credential

pytestmark = pytest.mark.integration

SEED = 20261126
MCP_TRIALS = 38
WORKFLOW_TRIALS = 12  # 50 kills in all
START_SECONDS = 60.0  # bound for a start to reach its first write
CONVERGE_SECONDS = 90.0
SPAWN_SECONDS = 60.0  # bound for the zygote's imports on a loaded machine
STOP_SECONDS = 20.0

# The zygote imports the operator once and forks one `devserver-operator run` (``cli.main``)
# per "go" line, printing its pid. Each run gets a session of its own (one SIGKILL takes it
# whole) and dies with the zygote, which ends when the test closes its stdin, or dies.
ZYGOTE_PROGRAM = """
import ctypes, os, signal, sys, traceback
import devserver_operator.kinds, devserver_operator.runner
from devserver_operator.cli import main
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps runs: no zombie looks alive
print("ready", flush=True)
while sys.stdin.readline() == "go\\n":
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: ends with the zygote
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(os.environ["CRASH_TEST_LOG"], os.O_WRONLY | os.O_APPEND)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = 1
        try:
            code = main(sys.argv[1:])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
"""


class ForkedOperator:
    """`devserver-operator run`, each start a fresh process forked from one that has done
    the imports; start, SIGKILL and start again at will."""

    def __init__(self, kubeconfig: Path, log_path: Path, namespaces: list[str]) -> None:
        self.log_path = log_path
        self.pid: int | None = None
        self.starts = 0
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "CRASH_TEST_LOG": str(log_path),
            "DEVSERVER_OPERATOR_METRICS_PORT": "0",
            "DEVSERVER_OPERATOR_HEALTH_PORT": "0",
            "DEVSERVER_OPERATOR_RESYNC_INTERVAL": "5",
        }
        argv = [sys.executable, "-c", ZYGOTE_PROGRAM, "run"]
        for namespace in namespaces:
            argv += ["--namespace", namespace]
        with log_path.open("ab") as log:
            self.zygote = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        assert self._answer() == "ready", self.tail()

    def _answer(self) -> str:
        assert self.zygote.stdout is not None
        ready, _, _ = select.select([self.zygote.stdout], [], [], SPAWN_SECONDS)
        assert ready, self.tail()
        return self.zygote.stdout.readline().decode().strip()

    def start(self) -> None:
        assert not self.alive, "already running"
        assert self.zygote.stdin is not None
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts + 1} =====\n".encode())
        self.zygote.stdin.write(b"go\n")
        self.zygote.stdin.flush()
        self.pid = int(self._answer())
        self.starts += 1

    @property
    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)  # the zygote ignores SIGCHLD: a dead run leaves no zombie
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: no cleanup handler, no finished request."""
        self._signal_and_wait(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM (SIGKILL after a bound) to the run, then the zygote ends."""
        if self.alive and not self._signal_and_wait(signal.SIGTERM):
            self._signal_and_wait(signal.SIGKILL)
        if self.zygote.stdin is not None:
            self.zygote.stdin.close()
        try:
            self.zygote.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.zygote.kill()
            self.zygote.wait(STOP_SECONDS)

    def _signal_and_wait(self, signum: int) -> bool:
        assert self.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)
        deadline = time.monotonic() + STOP_SECONDS
        while self.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.alive

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


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
    for name in rng.sample(existing, min(3, len(existing))):
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


async def _writes_since(cursor: AuditCursor, user: str, namespace: str) -> int:
    return sum(1 for _, uri in cursor.writes(user) if f"/namespaces/{namespace}/" in uri)


async def _kill_at_a_random_point(
    operator: ForkedOperator,
    cursor: AuditCursor,
    user: str,
    namespace: str,
    rng: random.Random,
    *,
    work_seconds: float,
) -> None:
    """SIGKILL during start-up (a quarter of the kills: kopf's login, the initial listings,
    the first reconciles) or within ``work_seconds`` after the first write of this run, when
    the reconciles are in full swing. How long start-up takes depends on the machine's load,
    so a delay counted from the start alone would often miss the work."""
    if rng.random() < 0.25:
        await asyncio.sleep(rng.uniform(0.0, 0.8))
    else:
        started = time.monotonic()
        while not await _writes_since(cursor, user, namespace):
            assert operator.alive, operator.tail()
            assert time.monotonic() - started < START_SECONDS, "no write after the start"
            await asyncio.sleep(0.02)
        await asyncio.sleep(rng.uniform(0.0, work_seconds))
    operator.kill()


# 38 operator start-ups, each a few CPU-seconds of imports and kopf's start: on a loaded
# 2-core machine they alone took the default 300 s. Every wait inside is bounded on its own.
@pytest.mark.timeout(900)
async def test_mcpservers_converge_without_duplicates_after_random_sigkills(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    user = "op-crash-mcp"
    operator = ForkedOperator(identity(local, user), tmp_path / "operator.log", [namespace])
    assert local.audit_log_path is not None
    mid_work = 0
    try:
        for trial in range(MCP_TRIALS):
            await _mutate(kube, namespace, rng, trial)
            cursor = AuditCursor.at_end(local.audit_log_path)
            operator.start()
            await _kill_at_a_random_point(operator, cursor, user, namespace, rng, work_seconds=0.25)
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
        await _assert_no_finalizers(kube, namespace)
        await _assert_spec_changes_still_arrive(kube, namespace)
        # Converged means quiet: a resync round later, nothing is written any more.
        await asyncio.sleep(1)
        cursor = AuditCursor.at_end(local.audit_log_path)
        await asyncio.sleep(6)  # more than one resync interval (5 s)
        assert await _writes_since(cursor, user, namespace) == 0, cursor.writes(user)
        assert operator.alive, operator.tail()
    finally:
        operator.stop()
    print(f"{MCP_TRIALS} SIGKILLs, {mid_work} of them in the middle of reconciles")
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


async def _assert_no_finalizers(kube: KubeClient, namespace: str) -> None:
    """MCPServers never get a finalizer, crash or not: an uninstalled operator must not be
    able to block their deletion."""
    for body in (await list_by_name(kube, API_VERSION, "MCPServer", namespace)).values():
        assert not body["metadata"].get("finalizers"), body["metadata"]


async def _assert_spec_changes_still_arrive(kube: KubeClient, namespace: str) -> None:
    """No update is lost: kopf may keep a killed run's handler records in annotations
    (they can make it skip one update handler), but the periodic check is level-based and
    applies every spec it sees."""
    servers = await list_by_name(kube, API_VERSION, "MCPServer", namespace)
    for name, body in servers.items():
        spec = {**body["spec"], "args": ["--after-the-crashes"]}
        await kube.apply(custom_resource("MCPServer", name, namespace, spec))

    async def arrived() -> bool:
        deployments = await list_by_name(kube, "apps/v1", "Deployment", namespace)
        return all(
            deployments[name]["spec"]["template"]["spec"]["containers"][0].get("args")
            == ["--after-the-crashes"]
            for name in servers
            if name in deployments
        ) and set(servers) <= set(deployments)

    await wait_for(arrived, seconds=30, what="the last spec change in every Deployment")


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


def _n8n_contents(n8n_server: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Workflows (not archived) and credentials as n8n itself lists them. Its public API
    cannot list credentials, so this logs in to the editor's REST API as the owner."""
    from tests.support.n8n_server import BROWSER_ID, OWNER_EMAIL, OWNER_PASSWORD

    with httpx.Client(
        base_url=n8n_server.base_url, headers={"browser-id": BROWSER_ID}, timeout=30.0
    ) as client:
        client.post(
            "/rest/login",
            json={"emailOrLdapLoginId": OWNER_EMAIL, "password": OWNER_PASSWORD},
        ).raise_for_status()
        workflows = client.get("/rest/workflows").json()["data"]
        credentials = client.get("/rest/credentials").json()["data"]
    return [w for w in workflows if not w.get("isArchived")], credentials


def _integration_spec(n8n: dict[str, Any], name: str, trial: int) -> dict[str, Any]:
    return {
        "n8n": n8n,
        "workflows": [_workflow(f"{name}-{k}", trial) for k in range(3)],
        "credentials": [authorization_credential()],
    }


@pytest.mark.n8n
async def test_workflow_integrations_leave_no_duplicate_workflows_or_credentials_after_sigkills(
    local: LocalControlPlane,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
    n8n_server: Any,
) -> None:
    rng = random.Random(SEED + 1)
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "n8n", "namespace": namespace},
            "stringData": {"apiKey": n8n_server.api_key},
        }
    )
    n8n = {"url": n8n_server.base_url, "apiKeySecretRef": {"name": "n8n", "key": "apiKey"}}
    integrations = [f"wi{index}" for index in range(3)]
    deleted = "wi2"  # deleted half-way: its finalizer runs across kills
    user = "op-crash-wfi"
    operator = ForkedOperator(identity(local, user), tmp_path / "operator.log", [namespace])
    assert local.audit_log_path is not None
    try:
        for trial in range(WORKFLOW_TRIALS):
            if trial % 4 == 0:  # a new token now and then: credentials are replaced
                await kube.apply(
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": "token", "namespace": namespace},
                        "stringData": {"value": f"crash-test-token-{trial}"},
                    }
                )
            if trial == WORKFLOW_TRIALS // 2:
                integrations.remove(deleted)
                await kube.delete(API_VERSION, "WorkflowIntegration", deleted, namespace)
            for name in integrations:
                spec = _integration_spec(n8n, name, trial)
                await kube.apply(custom_resource("WorkflowIntegration", name, namespace, spec))
            cursor = AuditCursor.at_end(local.audit_log_path)
            operator.start()
            # n8n calls take longer than the API's: the work lasts a few seconds.
            await _kill_at_a_random_point(operator, cursor, user, namespace, rng, work_seconds=3.0)
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
            return ready if set(found) == set(ready) == set(integrations) else None

        async def statuses() -> Any:
            found = await list_by_name(kube, API_VERSION, "WorkflowIntegration", namespace)
            return {name: body.get("status") for name, body in found.items()}

        bodies = await wait_for(
            synced,
            seconds=120,
            what=f"every WorkflowIntegration Ready, {deleted} gone",
            dump=statuses,
        )
        assert operator.alive, operator.tail()
    finally:
        operator.stop()
    assert "Traceback" not in operator.log(), operator.tail(80)
    workflows, credentials = _n8n_contents(n8n_server)
    _assert_workflows_exact(bodies, workflows, deleted)
    events = [event.get("message", "") for event in await kube.list("v1", "Event", namespace)]
    _assert_credentials_exact(namespace, bodies, credentials, events)


def _assert_workflows_exact(
    bodies: dict[str, Any], workflows: list[dict[str, Any]], deleted: str
) -> None:
    """Each live integration's workflows exist once in n8n, under the ids its status names;
    the deleted one's are gone."""
    names = Counter(w["name"] for w in workflows)
    ids = {w["id"]: w["name"] for w in workflows}
    for name, body in bodies.items():
        for key in range(3):
            assert names[f"crash {name}-{key}"] == 1, names
        recorded = {entry["name"]: entry["id"] for entry in body["status"]["workflows"]}
        assert {key: ids.get(id_) for key, id_ in recorded.items()} == {
            f"{name}-{key}": f"crash {name}-{key}" for key in range(3)
        }, (recorded, ids)
    leftovers = [n for n in names if n.startswith(f"crash {deleted}-")]
    assert leftovers == [], leftovers


def _assert_credentials_exact(
    namespace: str,
    bodies: dict[str, Any],
    credentials: list[dict[str, Any]],
    events: list[str],
) -> None:
    """One n8n credential per live integration, the one its status names; replaced ones are
    deleted once nothing uses them, and the deleted integration's are gone. A kill between
    n8n's create and the status write must not leave a copy behind either: the operator
    marks the create in status first and deletes such a copy before creating another."""
    ours = [c for c in credentials if c["name"].startswith(f"{namespace}/")]
    recorded = {
        entry["id"]: entry["n8nName"]
        for body in bodies.values()
        for entry in body["status"]["credentials"]
    }
    assert len(recorded) == len(bodies), recorded
    for body in bodies.values():
        for entry in body["status"]["credentials"]:
            assert "retiredIds" not in entry and "creating" not in entry, body
    live = {c["id"]: c["name"] for c in ours}
    assert {id_: live.get(id_) for id_ in recorded} == recorded, (recorded, live)
    orphans = {id_: name for id_, name in live.items() if id_ not in recorded}
    assert not orphans, (orphans, events)
    leftovers = sum("an interrupted create left it" in message for message in events)
    print(f"n8n credential copies of interrupted creates, deleted: {leftovers}")
