"""A restart of the API server under an open console page: the page says it is reconnecting,
comes back live without a reload, and keeps what was typed into a form.

The browser part is console-ui/e2e/reconnect.mjs (playwright-core driving Debian's Chromium).
The session's local control plane restarts its kube-apiserver (same port, same etcd) while a
number is typed into the Scale form; afterwards a status change made on the API server must
reach the page, the typed number must still be there, and scaling with it must work. The
console's shared watches must have resumed with a bounded backoff (a handful of retries per
kind, not a hot loop).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devserver_operator.api import API_VERSION
from tests.support.console_browser import BrowserScript, ensure_browser_tools
from tests.support.console_harness import RunningConsole, apply, service_account_token

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOWNTIME_SECONDS = 3.0
MAX_WATCH_RETRIES = 60
"""Four kinds, backing off 0.5 s -> 10 s: a few dozen retries over a minute at most."""


@pytest.fixture(scope="module")
def person(control_plane: Any, console: RunningConsole) -> Iterator[tuple[str, str]]:
    """A namespace, an image MCPServer in it, and the token of a ServiceAccount bound to
    the admin team role (a RoleBinding: no operator needed)."""
    if control_plane.local is None:
        pytest.skip("restarts the local control plane's API server")
    ensure_browser_tools()
    namespace = f"r-{uuid.uuid4().hex[:8]}"
    with control_plane.http_client() as admin:
        apply(admin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        token = service_account_token(admin, namespace, "editor")
        apply(
            admin,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "editor", "namespace": namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "devserver-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "editor", "namespace": namespace}],
            },
        )
        apply(
            admin,
            {
                "apiVersion": API_VERSION,
                "kind": "MCPServer",
                "metadata": {"name": "workload", "namespace": namespace},
                "spec": {"image": "example.com/mcp:1", "port": 8080, "replicas": 1},
            },
        )
        yield namespace, token
        admin.delete(f"/api/v1/namespaces/{namespace}")


def _watch_retries(console: RunningConsole) -> int:
    return sum(1 for line in console.lines if line.startswith("watch of ") and "failed" in line)


def test_an_api_server_restart_keeps_the_page_and_its_pending_edit(
    console: RunningConsole, control_plane: Any, person: tuple[str, str]
) -> None:
    namespace, token = person
    environment = {
        "CONSOLE_URL": console.url,
        "CONSOLE_TOKEN": token,
        "CONSOLE_NAMESPACE": namespace,
        "WORKLOAD_NAME": "workload",
    }
    with BrowserScript("reconnect.mjs", environment) as script:
        typed = script.wait_for("edit-typed", timeout=120)
        assert typed["ariaLive"] == "polite"
        retries_before = _watch_retries(console)

        control_plane.local.restart_apiserver(DOWNTIME_SECONDS)
        assert script.wait_for("reconnecting", timeout=60)["role"] == "status"
        script.wait_for("live-again", timeout=120)

        marker = f"marker-{uuid.uuid4().hex[:12]}"
        with control_plane.http_client() as admin:
            admin.patch(
                f"/apis/{API_VERSION}/namespaces/{namespace}/mcpservers/workload/status",
                json={"status": {"conditions": [
                    {"type": "Ready", "status": "False", "reason": "AfterRestart",
                     "message": marker, "lastTransitionTime": "2026-01-01T00:00:00Z"},
                ]}},
                headers={"Content-Type": "application/merge-patch+json"},
            ).raise_for_status()  # fmt: skip
        script.send(marker)
        shown = script.wait_for("change-shown", timeout=90)
        assert shown["typed"] == "3" and shown["reloaded"] is False, shown
        assert script.wait_for("scaled", timeout=60)["reloaded"] is False
        by_step = script.finish(timeout=60)
        assert "done" in by_step, script.transcript()

    with control_plane.http_client() as admin:
        path = f"/apis/{API_VERSION}/namespaces/{namespace}/mcpservers/workload"
        assert admin.get(path).json()["spec"]["replicas"] == 3
    retries = _watch_retries(console) - retries_before
    assert 1 <= retries <= MAX_WATCH_RETRIES, retries
