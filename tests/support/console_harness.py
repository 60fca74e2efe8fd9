"""Run the console against the test cluster, as its own least-privileged identity.

The console serves on a loopback port from a thread (uvicorn, the same app that
`devserver-operator console` serves), authenticated to the API server as a client-certificate
user holding exactly the chart's console ClusterRole. People are ServiceAccounts with tokens
from the TokenRequest API, granted team roles through TeamAccess, as in a real cluster.
Every log line the console writes is kept, so tests can read the audit log and check that a
secret never reaches it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from devserver_operator.console.app import create_app
from devserver_operator.console.settings import ConsoleSettings
from devserver_operator.localcluster.processes import free_loopback_port
from devserver_operator.manifests.console_rbac import CONSOLE_CLUSTER_ROLE, console_cluster_role
from devserver_operator.manifests.team_roles import team_cluster_roles

CONSOLE_USER = "devserver-console-test"
START_TIMEOUT = 30.0
RBAC_V1 = "rbac.authorization.k8s.io/v1"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class RunningConsole:
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    log: _Lines
    responses: list[str] = field(default_factory=list)
    """Every response body a test client read (see ``client``), for the secret canary."""

    @property
    def lines(self) -> list[str]:
        return self.log.lines

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """A client of the console; with ``token``, sent as a bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}

        def keep(response: httpx.Response) -> None:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                response.read()
                self.responses.append(response.text)

        return httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=30.0,
            event_hooks={"response": [keep]},
            **kwargs,
        )

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        logging.getLogger("devserver_operator.console").removeHandler(self.log)
        assert not self.thread.is_alive(), "the console did not stop"


def start_console(kubeconfig: Path, **overrides: Any) -> RunningConsole:
    port = free_loopback_port()
    settings = ConsoleSettings(kubeconfig=str(kubeconfig), port=port, **overrides)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    lines = _Lines()
    console_logger = logging.getLogger("devserver_operator.console")
    console_logger.addHandler(lines)
    console_logger.setLevel(logging.INFO)
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the console did not start")
        time.sleep(0.05)
    return RunningConsole(f"http://127.0.0.1:{port}", server, thread, lines)


def apply(admin: httpx.Client, manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply as the test's administrator."""
    from devserver_operator.kube.resources import resource_for

    metadata = manifest["metadata"]
    path = resource_for(manifest["apiVersion"], manifest["kind"]).item(
        metadata["name"], metadata.get("namespace")
    )
    response = admin.patch(
        path,
        params={"fieldManager": "devserver-tests", "force": "true"},
        json=manifest,
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def console_kubeconfig(control_plane: Any) -> Path:
    """A kubeconfig for the console's own identity, bound to the chart's console role only."""
    if control_plane.local is None:
        pytest.skip("the console's identity is a client certificate of the local control plane")
    path: Path = control_plane.local.write_user_kubeconfig(CONSOLE_USER)
    with control_plane.http_client() as admin:
        apply(admin, console_cluster_role())
        apply(
            admin,
            {
                "apiVersion": RBAC_V1,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{CONSOLE_CLUSTER_ROLE}-test"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": CONSOLE_CLUSTER_ROLE,
                },
                "subjects": [
                    {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": CONSOLE_USER}
                ],
            },
        )
        for role in team_cluster_roles():
            apply(admin, role)
    return path


def service_account_token(admin: httpx.Client, namespace: str, name: str) -> str:
    """A ServiceAccount (created if missing) and a one-hour token for it (TokenRequest)."""
    apply(
        admin,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        },
    )
    response = admin.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        json={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    response.raise_for_status()
    token: str = response.json()["status"]["token"]
    return token


@pytest.fixture(scope="module")
def console(control_plane: Any, installed_crds: None) -> Iterator[RunningConsole]:
    running = start_console(console_kubeconfig(control_plane))
    yield running
    running.stop()


def wait_for_answer(
    client: httpx.Client, path: str, test: Any, what: str, seconds: float = 60.0
) -> dict[str, Any]:
    """GET ``path`` through the console until it answers 200 with a body ``test`` accepts."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(path)
        if response.status_code == 200 and test(response.json()):
            body: dict[str, Any] = response.json()
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {response.text[:2000]}")
        time.sleep(0.2)


def is_ready(body: dict[str, Any]) -> bool:
    conditions = (body.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
