"""What the operator says about itself: the checks of /healthz, its own metrics, and the name
it signs its Events with, on the real API server."""

from __future__ import annotations

import platform
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator import __version__
from devserver_operator.api import API_VERSION
from devserver_operator.kube.client import KubeClient
from tests.integration.conftest import ControlPlaneAccess
from tests.reliability.harness import operator_process
from tests.support.hostile_http import HangingServer, unused_port
from tests.support.operator_harness import RunningOperator, custom_resource, wait_for

pytestmark = pytest.mark.integration

RESYNC_INTERVAL = 5  # the operator process's (reliability harness); stalled after 15 s
# How long the hanging server holds the object's lock, and with it the resync round: the
# create handler's handshake, then the round's own (up to twice this, 50 s against a 15 s bound).
HANDSHAKE_TIMEOUT = "25s"


async def test_events_say_they_come_from_devserver_operator(
    operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    spec = {"url": f"http://127.0.0.1:{unused_port()}/mcp"}  # refused: VerificationFailed
    await kube.apply(custom_resource("MCPServer", "unreachable", namespace, spec))

    async def posted() -> list[dict[str, Any]]:
        return [
            event
            for event in await kube.list("v1", "Event", namespace)
            if event.get("involvedObject", {}).get("name") == "unreachable"
        ]

    events = await wait_for(posted, seconds=60, what="an Event about the MCPServer")
    for event in events:
        assert event["reportingComponent"] == "devserver-operator", event
        assert event["source"]["component"] == "devserver-operator", event
        assert event["reportingInstance"], event


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        return await http.get(url)
    except httpx.TransportError:
        return None


def _sample(metrics: str, name: str) -> list[str]:
    return [line for line in metrics.splitlines() if line.startswith(name)]


async def test_healthz_reports_its_checks_and_fails_while_the_resync_loop_stalls(
    control_plane: ControlPlaneAccess,
    installed_crds: None,
    kube: KubeClient,
    namespace: str,
    hanging_server: HangingServer,
    tmp_path: Path,
) -> None:
    health_port, metrics_port = unused_port(), unused_port()
    healthz = f"http://127.0.0.1:{health_port}/healthz"
    await kube.apply(custom_resource("MCPServer", "quick", namespace, {"image": "example/mcp:1"}))
    with operator_process(
        Path(control_plane.kubeconfig_path),
        tmp_path / "operator.log",
        [namespace],
        health_port=str(health_port),
        metrics_port=str(metrics_port),
    ) as process:
        async with httpx.AsyncClient(timeout=10) as http:

            async def healthy() -> dict[str, Any] | None:
                assert process.alive, process.tail()
                response = await _get(http, healthz)
                if response is None or response.status_code != 200:
                    return None
                checks: dict[str, Any] = response.json()
                return checks if checks["resync"]["rounds"] >= 1 else None

            checks = await wait_for(healthy, seconds=60, what="/healthz after a resync round")
            assert checks["resync"]["running"] is True
            assert checks["resync"]["boundSeconds"] == 3 * RESYNC_INTERVAL
            assert checks["resync"]["lastRoundAgeSeconds"] <= 3 * RESYNC_INTERVAL
            assert checks["watches"]["streams"] >= 4  # the four kinds, at least
            assert checks["leadership"] == {"peering": None, "leading": True}

            metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            assert _sample(metrics, "devserver_build_info{") == [
                f'devserver_build_info{{kopf_version="{version("kopf")}",'
                f'python_version="{platform.python_version()}",version="{__version__}"}} 1.0'
            ]
            assert _sample(metrics, "devserver_leader ") == ["devserver_leader 1.0"]

            # The injected fault: a server that never answers holds one object's check for
            # the whole handshake timeout, and the round with it.
            spec = {"url": hanging_server.url(), "verification": {"timeout": HANDSHAKE_TIMEOUT}}
            await kube.apply(custom_resource("MCPServer", "hangs", namespace, spec))
            stalled_since = time.monotonic()

            async def unhealthy() -> bool:
                response = await _get(http, healthz)
                return response is not None and response.status_code == 500

            await wait_for(unhealthy, seconds=55, what="/healthz to fail", interval=1)
            print(f"/healthz failed {time.monotonic() - stalled_since:.1f} s after the stall")
            assert "the resync loop made no progress" in process.log()
            await kube.delete(API_VERSION, "MCPServer", "hangs", namespace)

            # Once the handshake times out the loop moves on, and /healthz is fine again.
            await wait_for(healthy, seconds=120, what="/healthz to recover", interval=1)
    assert "Traceback" not in process.log(), process.tail(60)
