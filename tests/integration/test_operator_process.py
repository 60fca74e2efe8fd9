"""The operator as users run it: `devserver-operator run` in its own process, and every kind
showing kstatus conditions from the moment it is created."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator.api import ALL_KINDS
from devserver_operator.kube.client import KubeClient
from tests.support.operator_harness import RunningOperator, condition, custom_resource, wait_for

pytestmark = pytest.mark.integration

MINIMAL_SPECS: dict[str, dict[str, Any]] = {
    "MCPServer": {"url": "http://127.0.0.1:9/mcp"},
    "WorkflowIntegration": {"openHands": {"configMapName": "openhands-mcp"}},
    "AlertRule": {"rules": [{"name": "Down", "builtin": {"condition": "MCPServerNotReady"}}]},
    "TeamAccess": {"role": "viewer", "members": [{"kind": "User", "name": "someone"}]},
}


@pytest.mark.parametrize("kind", [info.kind for info in ALL_KINDS])
async def test_every_kind_gets_kstatus_conditions_and_observed_generation(
    operator: RunningOperator, kube: KubeClient, namespace: str, kind: str
) -> None:
    created = await kube.apply(custom_resource(kind, "first", namespace, MINIMAL_SPECS[kind]))

    async def observed() -> dict[str, Any] | None:
        body = await kube.get(created["apiVersion"], kind, "first", namespace)
        status = (body or {}).get("status") or {}
        if status.get("observedGeneration") == created["metadata"]["generation"] and condition(
            body, "Ready"
        ):
            return body
        return None

    body = await wait_for(observed, seconds=30, what=f"{kind} status")
    types = [c["type"] for c in body["status"]["conditions"]]
    assert types[0] == "Ready"
    assert not {"Reconciling", "Stalled"} <= set(types)
    for item in body["status"]["conditions"]:
        assert item["lastTransitionTime"] and item["reason"]
        if item["type"] in ("Reconciling", "Stalled"):
            assert item["status"] == "True"
    if condition(body, "Ready")["status"] == "True":
        assert "Reconciling" not in types and "Stalled" not in types


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_run_command_serves_health_and_metrics_and_reconciles(
    control_plane: Any,
    installed_crds: None,
    kube: KubeClient,
    namespace: str,
    mcp_streamable_server: Any,
    tmp_path: Path,
) -> None:
    metrics_port, health_port = _free_port(), _free_port()
    log = (tmp_path / "operator.log").open("w")
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig_path),
        "DEVSERVER_OPERATOR_RESYNC_INTERVAL": "5",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, waited on with polling
        [
            str(Path(sys.executable).parent / "devserver-operator"),
            "run",
            "--namespace",
            namespace,
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            str(health_port),
            "--log-format",
            "json",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    if (
                        await http.get(f"http://127.0.0.1:{health_port}/healthz")
                    ).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, (tmp_path / "operator.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no /healthz within 60 s"
                await asyncio.sleep(0.3)
            await kube.apply(
                custom_resource(
                    "MCPServer", "via-cli", namespace, {"url": mcp_streamable_server.url}
                )
            )

            async def verified() -> dict[str, Any] | None:
                body = await kube.get(
                    "devserver.ecosphere.network/v1alpha1", "MCPServer", "via-cli", namespace
                )
                ready = condition(body, "Ready")
                return body if ready and ready["status"] == "True" else None

            await wait_for(verified, seconds=30, what="the MCPServer to be verified")

            async def reconciled_here() -> bool:
                # The session's in-process operator may win the race to write the status; this
                # process's own counter proves that it reconciled the object too.
                metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                prefix = 'devserver_reconcile_total{kind="MCPServer",result="ok"} '
                return any(
                    line.startswith(prefix) and float(line.removeprefix(prefix)) >= 1
                    for line in metrics.splitlines()
                )

            await wait_for(reconciled_here, seconds=30, what="a reconcile counted by the CLI")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()
    lines = (tmp_path / "operator.log").read_text().splitlines()
    assert any(line.startswith("{") for line in lines), "JSON log lines expected"
