"""Watch health: every watch request has a server-side and a client-side time limit, so a
connection that dies without a word (a crashed load balancer, a lost NAT entry) is noticed
and the operator resumes instead of waiting for events that never come.

The operator runs as `devserver-operator run` behind the fault proxy, which can cut its watch
connections or let them go silent while keeping them open.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import kopf
import pytest

from devserver_operator.kube.client import KubeClient
from devserver_operator.localcluster import LocalControlPlane
from devserver_operator.reconcile.operator import configure_kopf
from devserver_operator.settings import OperatorSettings
from tests.reliability.harness import (
    mcpserver,
    operator_process,
    proxied_api,
    wait_all_converged,
)
from tests.support.operator_harness import wait_for

SERVER_TIMEOUT = 8
CLIENT_TIMEOUT = 10


def test_watches_have_explicit_server_and_client_timeouts() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings())
    assert settings.watching.server_timeout == 300
    assert settings.watching.client_timeout == 330
    assert settings.watching.connect_timeout is not None
    assert settings.watching.inactivity_timeout is not None


def test_the_client_timeout_always_outlasts_the_server_timeout() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorSettings(watch_server_timeout=600, watch_client_timeout=60))
    assert settings.watching.server_timeout == 600
    assert settings.watching.client_timeout is not None
    assert settings.watching.client_timeout > settings.watching.server_timeout


@pytest.mark.integration
async def test_a_silently_dead_watch_is_noticed_and_the_operator_resumes(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    with proxied_api(local, "op-watch-health", tmp_path) as (proxy, kubeconfig):
        settings = {
            "watch_server_timeout": str(SERVER_TIMEOUT),
            "watch_client_timeout": str(CLIENT_TIMEOUT),
        }
        log = tmp_path / "operator.log"
        with operator_process(kubeconfig, log, [namespace], **settings) as operator:
            await kube.create(mcpserver("before", namespace))
            await wait_all_converged(kube, namespace, ["before"], seconds=60)
            await asyncio.sleep(1)
            stalled = proxy.stall_streams()
            assert stalled >= 6, stalled  # at least the operator's own kinds
            silenced = time.monotonic()
            # Created while every watch is silent: only a fresh watch can bring it in (the
            # periodic check walks known objects only).
            await kube.create(mcpserver("during", namespace))
            await wait_all_converged(
                kube, namespace, ["during"], seconds=CLIENT_TIMEOUT + 25, what="resumed watches"
            )
            noticed = time.monotonic() - silenced
            assert noticed <= CLIENT_TIMEOUT + 25
            print(f"silently dead watches noticed and resumed after {noticed:.1f} s")
            assert operator.alive, operator.tail()


@pytest.mark.integration
async def test_cut_watch_connections_are_reopened_at_once(
    local: LocalControlPlane, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    with (
        proxied_api(local, "op-watch-cut", tmp_path) as (proxy, kubeconfig),
        operator_process(kubeconfig, tmp_path / "operator.log", [namespace]) as operator,
    ):
        await kube.create(mcpserver("first", namespace))
        await wait_all_converged(kube, namespace, ["first"], seconds=60)
        cut = proxy.cut_streams()
        assert cut >= 6, cut

        async def reopened() -> bool:
            return proxy.open_streams >= cut

        await wait_for(reopened, seconds=10, what="the watches to be reopened")
        started = time.monotonic()
        await kube.create(mcpserver("second", namespace))
        await wait_all_converged(kube, namespace, ["second"], seconds=15)
        assert time.monotonic() - started <= 15
        assert operator.alive, operator.tail()
