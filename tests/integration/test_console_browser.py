"""The console in a real headless Chromium, on the local control plane with the operator running.

The browser part is console-ui/e2e/console.mjs (playwright-core driving Debian's
/usr/bin/chromium); this module prepares the cluster, starts it, and checks what it reports:
login, an MCPServer created from a template turning Ready live, one of its tools called
and its answer shown, "Verify now", a firing alert on the alert rules page, a grant with an expiry
and its countdown (a remote server pointing at
a real MCP server on loopback: the local control plane has no kubelet to run a workload),
a scale, the API server's refusal shown with its field, no serious axe-core violation on any
page, and no Content-Security-Policy violation. Screenshots land in a temporary folder, or in
$CONSOLE_SCREENSHOT_DIR (docs/console/ to refresh the docs' pictures).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver_operator.api import API_VERSION
from tests.support.console_browser import BrowserScript, ensure_browser_tools
from tests.support.console_harness import RunningConsole, apply, service_account_token
from tests.support.operator_harness import RunningOperator

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERIOUS = {"serious", "critical"}


@pytest.fixture(scope="module")
def browser_tools() -> None:
    ensure_browser_tools()


@pytest.fixture(scope="module")
def person(control_plane: Any, operator: RunningOperator) -> Iterator[tuple[str, str]]:
    """A namespace and the token of a ServiceAccount holding the `admin` team role (it
    scales, and grants access)."""
    namespace = f"b-{uuid.uuid4().hex[:8]}"
    with control_plane.http_client() as admin:
        apply(admin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        token = service_account_token(admin, namespace, "browser")
        apply(
            admin,
            {
                "apiVersion": API_VERSION,
                "kind": "TeamAccess",
                "metadata": {"name": "browser", "namespace": namespace},
                "spec": {
                    "role": "admin",
                    "members": [{"kind": "ServiceAccount", "name": "browser"}],
                },
            },
        )
        apply(
            admin,
            {
                "apiVersion": API_VERSION,
                "kind": "MCPServer",
                "metadata": {"name": "workload", "namespace": namespace},
                "spec": {"image": "example.com/mcp:1", "port": 8080},
            },
        )
        # Fires at once: the workload server never becomes Ready without a kubelet.
        down = {"name": "WorkloadDown", "builtin": {"condition": "MCPServerNotReady"}}
        apply(
            admin,
            {
                "apiVersion": API_VERSION,
                "kind": "AlertRule",
                "metadata": {"name": "servers", "namespace": namespace},
                "spec": {"evaluation": {"interval": "1s"}, "rules": [down]},
            },
        )
        yield namespace, token
        admin.delete(f"/api/v1/namespaces/{namespace}")


def _wait_for_binding(control_plane: Any, namespace: str) -> None:
    path = (
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        "/rolebindings/devserver-team-browser"
    )
    deadline = time.monotonic() + 60
    with control_plane.http_client() as admin:
        while admin.get(path).status_code != 200:
            assert time.monotonic() < deadline, "the operator made no RoleBinding"
            time.sleep(0.2)


def _seconds(countdown: str) -> int:
    """ "1h 59m 58s" -> 7198."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)\s*([dhms])", countdown)
    assert parts, countdown
    return sum(int(value) * units[unit] for value, unit in parts)


def test_log_in_create_from_a_template_watch_it_turn_ready_live_call_a_tool_and_scale(
    browser_tools: None,
    console: RunningConsole,
    control_plane: Any,
    person: tuple[str, str],
    mcp_streamable_server: Any,
    tmp_path: Path,
) -> None:
    namespace, token = person
    _wait_for_binding(control_plane, namespace)
    # A test run leaves the clone as it found it: the screenshots in docs/console/ are
    # refreshed on purpose only, with CONSOLE_SCREENSHOT_DIR=docs/console.
    shots = Path(os.environ.get("CONSOLE_SCREENSHOT_DIR", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with BrowserScript(
        "console.mjs",
        {
            "CONSOLE_URL": console.url,
            "CONSOLE_TOKEN": token,
            "CONSOLE_NAMESPACE": namespace,
            "MCP_URL": mcp_streamable_server.url,
            "WORKLOAD_NAME": "workload",
            "SCREENSHOT_DIR": str(shots),
        },
    ) as script:
        by_step = script.finish(timeout=240)
        assert script.process.returncode == 0 and "done" in by_step, script.transcript()

    (ready,) = by_step["ready-live"]
    assert ready["reloaded"] is False
    (called,) = by_step["tool-called"]
    assert "Result of echo" in called["result"] and "hello from the browser" in called["result"]
    assert "verify-requested" in by_step
    assert by_step["alerts"] == [{"step": "alerts", "firing": "firing"}]
    assert "alert-detail" in by_step
    assert by_step["scaled"] == [{"step": "scaled", "replicas": 2}]
    (granted,) = by_step["granted"]
    # Two hours, counting down live: "1h 59m 58s", then a second later "1h 59m 57s" (on a
    # loaded machine the first reading may come a while after the grant, or still say 2h).
    first, later = _seconds(granted["first"]), _seconds(granted["later"])
    assert 2 * 3600 - 300 <= first <= 2 * 3600, granted
    assert later < first, granted
    (rejected,) = by_step["rejected"]
    assert "422" in rejected["message"] and "is invalid" in rejected["message"]
    assert rejected["field"].startswith("spec")

    pages = {entry["page"] for entry in by_step["axe"]}
    assert pages == {
        "login", "dashboard", "create", "detail", "tool", "scale", "grants", "list", "alerts",
        "alert-detail", "create-rejected",
    }  # fmt: skip
    serious = [
        (entry["page"], violation)
        for entry in by_step["axe"]
        for violation in entry["violations"]
        if violation["impact"] in SERIOUS
    ]
    assert serious == []
    assert by_step["csp"] == [{"step": "csp", "violations": []}]
    assert all((shots / f"{page}.png").is_file() for page in pages)
