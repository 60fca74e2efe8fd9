"""Workload-mode MCPServers on the real API server: children, status from the Deployment,
drift repair, Secret rotation, scale to zero, no writes when idle, garbage collection.

There is no kubelet here, so pods never run: tests set the Deployment's status the way the
Deployment controller would once pods are ready. Real pods are the kind e2e suite's job.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.builders.common import CONFIG_HASH_ANNOTATION
from devserver_operator.kube.client import KubeClient
from tests.support.audit import AuditCursor
from tests.support.operator_harness import (
    RunningOperator,
    condition,
    custom_resource,
    wait_for,
    wait_for_condition,
)

pytestmark = pytest.mark.integration
IMAGE = "ghcr.io/example/mcp-server:1.0.0"
NO_VERIFY = {"enabled": False}


async def deployment(kube: KubeClient, name: str, namespace: str) -> dict[str, Any] | None:
    return await kube.get("apps/v1", "Deployment", name, namespace)


async def make_available(kube: KubeClient, name: str, namespace: str, replicas: int = 1) -> None:
    """Play the Deployment controller: report the pods as ready."""
    live = await deployment(kube, name, namespace)
    assert live is not None
    await kube.patch_status(
        "apps/v1",
        "Deployment",
        name,
        namespace,
        {
            "observedGeneration": live["metadata"]["generation"],
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "message": "ok",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable",
                    "message": "ok",
                },
            ],
        },
    )


async def wait_children(kube: KubeClient, name: str, namespace: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        return await deployment(kube, name, namespace)

    return await wait_for(probe, seconds=15, what=f"Deployment {namespace}/{name}")


async def test_children_are_created_owned_and_status_follows_the_deployment(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    created = await kube.apply(
        custom_resource("MCPServer", "fs", namespace, {"image": IMAGE, "verification": NO_VERIFY})
    )
    live = await wait_children(kube, "fs", namespace)
    owner = live["metadata"]["ownerReferences"][0]
    assert owner["uid"] == created["metadata"]["uid"] and owner["controller"] is True
    service = await kube.get("v1", "Service", "fs", namespace)
    policy = await kube.get("networking.k8s.io/v1", "NetworkPolicy", "fs", namespace)
    assert service is not None and policy is not None
    waiting = await wait_for_condition(kube, "MCPServer", "fs", namespace, "Reconciling", "True")
    assert condition(waiting, "Ready")["status"] == "False"
    assert waiting["status"]["url"] == f"http://fs.{namespace}.svc.cluster.local:8080/mcp"

    async def created_event() -> bool:
        events = await kube.list("v1", "Event", namespace)
        return any(e["reason"] == "Created" and e["involvedObject"]["name"] == "fs" for e in events)

    await wait_for(created_event, seconds=10, what="a Created event")
    await make_available(kube, "fs", namespace)
    ready = await wait_for_condition(kube, "MCPServer", "fs", namespace, "Ready", "True")
    assert condition(ready, "Available")["status"] == "True"
    assert condition(ready, "Reconciling") is None
    assert ready["status"]["readyReplicas"] == 1


async def test_spec_changes_reach_the_deployment(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    spec = {"image": IMAGE, "args": ["--a"], "verification": NO_VERIFY}
    await kube.apply(custom_resource("MCPServer", "upd", namespace, spec))
    await wait_children(kube, "upd", namespace)
    changed = {
        **spec,
        "image": "ghcr.io/example/mcp-server:2.0.0",
        "args": ["--b"],
        "env": [{"name": "MODE", "value": "x"}],
    }
    await kube.apply(custom_resource("MCPServer", "upd", namespace, changed))

    async def updated() -> bool:
        live = await deployment(kube, "upd", namespace)
        container = live["spec"]["template"]["spec"]["containers"][0] if live else {}
        return container.get("image") == changed["image"] and container.get("args") == ["--b"]

    await wait_for(updated, seconds=15, what="the new image and args")


async def test_scale_to_zero_and_back(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    spec = {"image": IMAGE, "replicas": 2, "verification": NO_VERIFY}
    await kube.apply(custom_resource("MCPServer", "sc", namespace, spec))
    await wait_children(kube, "sc", namespace)
    assert await kube.get("policy/v1", "PodDisruptionBudget", "sc", namespace)
    await kube.apply(custom_resource("MCPServer", "sc", namespace, {**spec, "replicas": 0}))
    body = await wait_for_condition(
        kube, "MCPServer", "sc", namespace, "Ready", "False", reason="ScaledToZero"
    )
    assert condition(body, "Reconciling") is None and condition(body, "Stalled") is None
    assert (await deployment(kube, "sc", namespace))["spec"]["replicas"] == 0

    async def pdb_gone() -> bool:
        return await kube.get("policy/v1", "PodDisruptionBudget", "sc", namespace) is None

    await wait_for(pdb_gone, seconds=15, what="the PodDisruptionBudget to be pruned")
    await kube.apply(custom_resource("MCPServer", "sc", namespace, {**spec, "replicas": 1}))

    async def one() -> bool:
        live = await deployment(kube, "sc", namespace)
        return bool(live and live["spec"]["replicas"] == 1)

    await wait_for(one, seconds=15, what="replicas back to 1")


async def test_deleted_and_edited_children_are_restored(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    await kube.apply(
        custom_resource(
            "MCPServer", "drift", namespace, {"image": IMAGE, "verification": NO_VERIFY}
        )
    )
    original = await wait_children(kube, "drift", namespace)
    await kube.delete("apps/v1", "Deployment", "drift", namespace)

    async def recreated() -> dict[str, Any] | None:
        live = await deployment(kube, "drift", namespace)
        return live if live and live["metadata"]["uid"] != original["metadata"]["uid"] else None

    await wait_for(recreated, seconds=5, what="the deleted Deployment to come back")

    service = await kube.get("v1", "Service", "drift", namespace)
    assert service is not None
    edited = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "drift", "namespace": namespace},
        "spec": {"ports": [{"name": "mcp", "port": 9999, "targetPort": "mcp", "protocol": "TCP"}]},
    }
    await kube._request(  # an edit by another manager, as kubectl edit would do
        "PATCH",
        f"/api/v1/namespaces/{namespace}/services/drift?fieldManager=kubectl-edit",
        body=__import__("json").dumps(edited).encode(),
        content_type="application/merge-patch+json",
    )

    async def port_restored() -> bool:
        live = await kube.get("v1", "Service", "drift", namespace)
        return bool(live and [p["port"] for p in live["spec"]["ports"]] == [8080])

    await wait_for(port_restored, seconds=5, what="the Service port to be restored")


async def test_secret_rotation_rolls_the_pod_template(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": namespace},
        "data": {"value": base64.b64encode(b"first").decode()},
    }
    await kube.apply(secret)
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "token", "key": "value"}}}]
    await kube.apply(
        custom_resource(
            "MCPServer", "rot", namespace, {"image": IMAGE, "env": env, "verification": NO_VERIFY}
        )
    )
    first = await wait_children(kube, "rot", namespace)
    first_hash = first["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    await kube.apply({**secret, "data": {"value": base64.b64encode(b"second").decode()}})

    async def rolled() -> str | None:
        live = await deployment(kube, "rot", namespace)
        value = (
            live["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
            if live
            else None
        )
        return value if value and value != first_hash else None

    await wait_for(rolled, seconds=20, what="a new config hash after the Secret changed")
    body = await kube.get(API_VERSION, "MCPServer", "rot", namespace)
    assert "second" not in str(body) and "first" not in str(body)


async def test_missing_secret_stalls_with_its_name_and_recovers(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "value"}}}]
    await kube.apply(
        custom_resource(
            "MCPServer", "miss", namespace, {"image": IMAGE, "env": env, "verification": NO_VERIFY}
        )
    )
    body = await wait_for_condition(
        kube, "MCPServer", "miss", namespace, "Stalled", "True", reason="MissingReference"
    )
    assert f"Secret {namespace}/later does not exist" in condition(body, "Stalled")["message"]
    await kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "later", "namespace": namespace},
            "stringData": {"value": "x"},
        }
    )
    await wait_children(kube, "miss", namespace)
    body = await wait_for_condition(
        kube, "MCPServer", "miss", namespace, "Reconciling", "True", seconds=20
    )
    assert condition(body, "Stalled") is None


async def test_an_existing_service_account_is_never_taken_over(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    # No admission webhook runs here: the operator itself refuses, for every author.
    foreign = {"apiVersion": "v1", "kind": "ServiceAccount"}
    for name in ("deployer", "unnamed"):
        await kube.apply({**foreign, "metadata": {"name": name, "namespace": namespace}})
    specs = {
        "named": {"image": IMAGE, "serviceAccount": {"create": True, "name": "deployer"}},
        # Without a name the account is named after the MCPServer.
        "unnamed": {"image": IMAGE, "serviceAccount": {"create": True}},
    }
    for server, spec in specs.items():
        await kube.apply(
            custom_resource("MCPServer", server, namespace, {**spec, "verification": NO_VERIFY})
        )
    for server, account in (("named", "deployer"), ("unnamed", "unnamed")):
        body = await wait_for_condition(
            kube, "MCPServer", server, namespace, "Stalled", "True", reason="ServiceAccountConflict"
        )
        message = condition(body, "Stalled")["message"]
        assert f"ServiceAccount {account} exists and is not controlled by this MCPServer" in (
            message
        )
        live = await kube.get("v1", "ServiceAccount", account, namespace)
        assert live is not None
        assert not live["metadata"].get("ownerReferences"), live["metadata"]
        assert await deployment(kube, server, namespace) is None
    # Once the account is gone, the MCPServer creates its own and goes on.
    await kube.delete("v1", "ServiceAccount", "deployer", namespace)
    await wait_children(kube, "named", namespace)
    owned = await kube.get("v1", "ServiceAccount", "deployer", namespace)
    assert owned is not None
    assert owned["metadata"]["ownerReferences"][0]["name"] == "named"


async def test_an_idle_resync_makes_no_write(
    operator: RunningOperator, kube: KubeClient, namespace: str, control_plane: Any
) -> None:
    await kube.apply(
        custom_resource(
            "MCPServer",
            "idle",
            namespace,
            {"image": IMAGE, "replicas": 2, "verification": NO_VERIFY},
        )
    )
    await wait_children(kube, "idle", namespace)
    await make_available(kube, "idle", namespace, replicas=2)
    await wait_for_condition(kube, "MCPServer", "idle", namespace, "Ready", "True")
    await asyncio.sleep(1)  # let the last status write land
    audit_log = control_plane.local.audit_log_path
    cursor = AuditCursor.at_end(audit_log)
    resync = operator.settings.resync_interval
    await asyncio.sleep(resync * 2 + 1)  # at least two periodic checks of every object
    writes = [w for w in cursor.writes() if f"/namespaces/{namespace}/" in w[1]]
    assert writes == []


async def test_deleting_the_server_removes_its_children(
    operator: RunningOperator, kube: KubeClient, namespace: str, control_plane: Any
) -> None:
    await kube.apply(
        custom_resource("MCPServer", "gc", namespace, {"image": IMAGE, "verification": NO_VERIFY})
    )
    await wait_children(kube, "gc", namespace)
    await kube.delete(API_VERSION, "MCPServer", "gc", namespace)

    async def collected() -> bool:
        return (
            await deployment(kube, "gc", namespace) is None
            and await kube.get("v1", "Service", "gc", namespace) is None
        )

    await wait_for(collected, seconds=30, what="garbage collection of the children")


async def test_invalid_spec_that_passes_the_schema_stalls(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    # A probe the embedded schema accepts but the API server refuses in a Deployment.
    spec = {
        "image": IMAGE,
        "verification": NO_VERIFY,
        "probes": {"readiness": {"periodSeconds": 5}},
    }
    await kube.apply(custom_resource("MCPServer", "badprobe", namespace, spec))
    body = await wait_for_condition(kube, "MCPServer", "badprobe", namespace, "Stalled", "True")
    assert condition(body, "Stalled")["reason"] == "ChildRejected"
    assert "readinessProbe" in condition(body, "Stalled")["message"]
