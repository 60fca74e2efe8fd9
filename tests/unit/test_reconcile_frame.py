"""The one reconcile frame: every kind fails, retries and reports in the same way.

The Kubernetes API here is a port nobody listens on (a real refused connection, no mock), so
every kind's first request fails the way an API server that is down fails it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from devserver_operator import metrics
from devserver_operator.api import API_VERSION
from devserver_operator.api.kinds import KindInfo
from devserver_operator.api.mcpserver import MCPServerSpec, MCPServerStatus
from devserver_operator.kinds import all_kinds
from devserver_operator.kube.client import Credentials, KubeClient, RetryPolicy
from devserver_operator.reconcile import build_registry
from devserver_operator.reconcile.backoff import FIRST_DELAY_SECONDS
from devserver_operator.reconcile.context import OperatorContext
from devserver_operator.reconcile.frame import reconcile
from devserver_operator.reconcile.kind import Kind, Outcome, Request
from devserver_operator.reconcile.lookup import ChildKind
from devserver_operator.settings import OperatorSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(kind: str) -> dict[str, Any]:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == kind:
                metadata = {**document["metadata"], "uid": f"uid-{kind}", "generation": 1}
                return {**document, "metadata": metadata}
    raise AssertionError(f"no example of {kind}")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def context() -> AsyncIterator[OperatorContext]:
    settings = OperatorSettings()
    kube = KubeClient(
        Credentials(server=f"https://127.0.0.1:{_closed_port()}", insecure=True),
        retry=RetryPolicy(attempts=1),
    )
    kinds = all_kinds()
    context = OperatorContext(
        settings=settings,
        kube=kube,
        probe_slots=asyncio.Semaphore(1),
        states={kind.info.kind: kind.new_state(settings) for kind in kinds},
    )
    yield context
    for kind in kinds:
        await kind.close(context.states[kind.info.kind])
    await kube.close()


@pytest.mark.parametrize("kind", all_kinds(), ids=lambda kind: kind.info.kind)
async def test_every_kind_backs_off_on_the_one_shared_schedule(
    kind: Kind, context: OperatorContext
) -> None:
    """Before the frame, AlertRule and WorkflowIntegration retried every 15 s for ever."""
    body = _example(kind.info.kind)
    delays = []
    for _ in range(3):
        with pytest.raises(kopf.TemporaryError) as raised:
            await reconcile(kind, body, context, {}, "change")
        delays.append(raised.value.delay)
    assert delays == [FIRST_DELAY_SECONDS, 2 * FIRST_DELAY_SECONDS, 4 * FIRST_DELAY_SECONDS]
    assert context.backoff.waiting(body["metadata"]["uid"])


class Widget(Kind):
    """A fifth kind, as a newcomer would write it: a model (borrowed here), no registration
    anywhere else."""

    info = KindInfo(
        kind="Widget",
        plural="widgets",
        short_names=(),
        spec_model=MCPServerSpec,
        status_model=MCPServerStatus,
        description="A test kind.",
        summary_columns=(),
    )
    children = (ChildKind("v1", "ConfigMap", "configmaps"),)

    async def reconcile(self, request: Request) -> Outcome:
        raise ValueError("a bug that some spec triggers")


async def test_a_bug_in_a_kind_ends_as_internal_error_not_as_a_retry_loop(
    context: OperatorContext,
) -> None:
    build_registry(OperatorSettings(), [Widget()])
    body = {"metadata": {"name": "w", "namespace": "n", "uid": "uid-w", "generation": 1}}
    before = metrics.RECONCILE_TOTAL.labels("Widget", "InternalError")._value.get()
    outcome = await reconcile(Widget(), body, context, {}, "change")  # no TemporaryError
    assert outcome.result == "InternalError"
    assert metrics.RECONCILE_TOTAL.labels("Widget", "InternalError")._value.get() == before + 1
    assert not context.backoff.waiting("uid-w")


def test_a_new_kind_gets_every_trigger_from_the_frame() -> None:
    registry = build_registry(OperatorSettings(), [Widget()])
    changing = {h.id for h in registry._changing.get_all_handlers()}
    assert {"widget-create", "widget-update/spec", "widget-resume"} <= changing
    watching = {h.id for h in registry._watching.get_all_handlers()}
    assert {"widget-track", "widget-child-configmaps"} <= watching
    indexing = {h.id for h in registry._indexing.get_all_handlers()}
    assert {"widget_index", "owned_configmap_v1"} <= indexing
    # No finalizer unless the kind asks for one (it would block deletion without the operator).
    assert not [h for h in registry._changing.get_all_handlers() if h.reason == "delete"]


def test_only_the_workflowintegration_carries_a_finalizer() -> None:
    registry = build_registry(OperatorSettings(), all_kinds())
    deleting = {
        str(h.id) for h in registry._changing.get_all_handlers() if "delete" in str(h.reason)
    }
    assert deleting == {"workflowintegration-cleanup"}
    assert not list(registry._spawning.get_all_handlers())  # no timers, no daemons
    assert API_VERSION
