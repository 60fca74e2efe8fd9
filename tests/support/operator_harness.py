"""Run the operator against the test cluster and wait for what it should do.

The operator runs in-process, in a thread with its own event loop (the same `operate()` that
`devserver-operator run` uses), so a test can start, stop and restart it and read its client's
request counters. Waits are bounded and print the object when they give up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.api.crd import build_all_crds
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.runner import operate
from devserver_operator.settings import OperatorSettings
from tests.support.audit import OPERATOR_USER

T = TypeVar("T")
CRD_ESTABLISHED_TIMEOUT = 30.0
TEST_MANAGER = "devserver-tests"  # what a user's kubectl would be, as opposed to the operator


@dataclass
class RunningOperator:
    settings: OperatorSettings
    thread: threading.Thread
    stop_flag: threading.Event
    ready_flag: threading.Event
    errors: list[BaseException] = field(default_factory=list)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_flag.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the operator did not stop in time"


def start_operator(kubeconfig: Path, **overrides: Any) -> RunningOperator:
    settings = OperatorSettings(
        kubeconfig=str(kubeconfig),
        metrics_port=0,
        health_port=0,
        resync_interval=5.0,
        **overrides,
    )
    stop_flag, ready_flag = threading.Event(), threading.Event()
    running = RunningOperator(settings, threading.Thread(), stop_flag, ready_flag)

    def target() -> None:
        try:
            asyncio.run(operate(settings, stop_flag=stop_flag, ready_flag=ready_flag))
        except BaseException as error:  # surfaced by the fixture
            running.errors.append(error)

    running.thread = threading.Thread(target=target, name="operator", daemon=True)
    running.thread.start()
    if not ready_flag.wait(60):
        raise RuntimeError(f"the operator did not start: {running.errors}")
    return running


def install_crds(client: httpx.Client) -> None:
    for crd in build_all_crds():
        name = crd["metadata"]["name"]
        response = client.patch(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
            params={"fieldManager": "devserver-operator-tests", "force": "true"},
            content=json.dumps(crd),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        response.raise_for_status()
    deadline = time.monotonic() + CRD_ESTABLISHED_TIMEOUT
    for crd in build_all_crds():
        name = crd["metadata"]["name"]
        while True:
            body = client.get(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            ).json()
            conditions = {
                c["type"]: c["status"] for c in body.get("status", {}).get("conditions", [])
            }
            if conditions.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established: {conditions}")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def installed_crds(control_plane: Any) -> None:
    with control_plane.http_client() as client:
        install_crds(client)
    if control_plane.local is not None:
        # The garbage collector rediscovers API types only every 30 s; a restart makes it see
        # the new CRDs at once, so ownerReference tests need not wait for the next round.
        control_plane.local.restart_controller_manager()


def operator_kubeconfig(control_plane: Any) -> Path:
    """The operator's own identity, so the audit log tells its requests from the tests'."""
    if control_plane.local is None:
        return Path(control_plane.kubeconfig_path)
    path: Path = control_plane.local.write_user_kubeconfig(OPERATOR_USER, ["system:masters"])
    return path


@pytest.fixture(scope="session")
def operator(control_plane: Any, installed_crds: None) -> Iterator[RunningOperator]:
    running = start_operator(operator_kubeconfig(control_plane))
    yield running
    running.stop()
    assert not running.errors, running.errors


@pytest.fixture
async def kube(control_plane: Any) -> AsyncIterator[KubeClient]:
    client = KubeClient(
        Credentials.from_kubeconfig(str(control_plane.kubeconfig_path)), field_manager=TEST_MANAGER
    )
    yield client
    await client.close()


@pytest.fixture
async def namespace(kube: KubeClient) -> AsyncIterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    await kube.delete("v1", "Namespace", name, None)


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    seconds: float,
    what: str,
    dump: Callable[[], Awaitable[Any]] | None = None,
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``dump()`` shown."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            shown = json.dumps(await dump(), indent=1, default=str)[:6000] if dump else ""
            raise AssertionError(f"timed out after {seconds}s waiting for {what}\n{shown}")
        await asyncio.sleep(interval)


def condition(body: dict[str, Any] | None, condition_type: str) -> dict[str, Any] | None:
    for item in (body or {}).get("status", {}).get("conditions", []) or []:
        if item.get("type") == condition_type:
            return dict(item)
    return None


async def wait_for_condition(
    kube: KubeClient,
    kind: str,
    name: str,
    namespace: str,
    condition_type: str,
    status: str,
    *,
    seconds: float = 30.0,
    reason: str | None = None,
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = await kube.get(API_VERSION, kind, name, namespace)
        found = condition(body, condition_type)
        if found and found["status"] == status and (reason is None or found["reason"] == reason):
            return body
        return None

    async def dump() -> Any:
        return await kube.get(API_VERSION, kind, name, namespace)

    return await wait_for(
        probe,
        seconds=seconds,
        what=f"{kind} {namespace}/{name} {condition_type}={status}"
        + (f" ({reason})" if reason else ""),
        dump=dump,
    )


def custom_resource(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def start_in_place(stopped: RunningOperator) -> None:
    """Start a stopped operator again in the same object, so that fixtures holding it see the
    running one (its settings, thread and error list)."""
    fresh = start_operator(Path(str(stopped.settings.kubeconfig)))
    stopped.settings, stopped.thread, stopped.errors = fresh.settings, fresh.thread, fresh.errors
    stopped.stop_flag, stopped.ready_flag = fresh.stop_flag, fresh.ready_flag


@contextlib.contextmanager
def paused(session_operator: RunningOperator) -> Iterator[None]:
    """The session's operator stopped meanwhile: a test that runs its own operator (another
    identity, other settings) must not race it for the same objects."""
    session_operator.stop()
    try:
        yield
    finally:
        start_in_place(session_operator)
