"""The console's tool calls, "verify now"/"sync now" and the alert rules view, on a real API
server with the operator running, as people holding TeamAccess roles.

The MCPServer "remote" points at a real MCP SDK server on loopback and is called with a
header from a Secret (a canary); "plain" has no headers; "work" is a workload server, never
Ready here (the local control plane has no kubelet). "caller" holds a hand-made Role that may
call tools but not read Secrets: it may call "plain" and not "remote".
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.builders.common import REQUEST_ANNOTATION
from tests.support.console_harness import (
    RunningConsole,
    apply,
    is_ready,
    service_account_token,
    wait_for_answer,
)
from tests.support.operator_harness import RunningOperator

pytestmark = pytest.mark.integration

SETUP_TIMEOUT = 60.0
CANARY = f"canary-{uuid.uuid4().hex}"
RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class People:
    namespace: str
    viewer: str
    operator: str
    admin: str
    caller: str


def _object(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _caller_role(namespace: str) -> list[dict[str, Any]]:
    """May read MCPServers and call their tools, and nothing else (no Secrets)."""
    role = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "tool-caller", "namespace": namespace},
        "rules": [
            {"apiGroups": ["devserver.ecosphere.network"], "resources": ["mcpservers"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["devserver.ecosphere.network"], "resources": ["mcpservers/tools"],
             "verbs": ["create"]},
        ],
    }  # fmt: skip
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "tool-caller", "namespace": namespace},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "tool-caller"},
        "subjects": [{"kind": "ServiceAccount", "name": "caller", "namespace": namespace}],
    }
    return [role, binding]


@pytest.fixture(scope="module")
def people(
    control_plane: Any, operator: RunningOperator, mcp_streamable_server: Any
) -> Iterator[People]:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    with control_plane.http_client() as admin:
        apply(admin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        tokens = {
            who: service_account_token(admin, namespace, who)
            for who in ("viewer", "operator", "admin", "caller")
        }
        for role in ("viewer", "operator", "admin"):
            members = [{"kind": "ServiceAccount", "name": role}]
            spec = {"role": role, "members": members}
            apply(admin, _object("TeamAccess", f"{role}s", namespace, spec))
        for manifest in _caller_role(namespace):
            apply(admin, manifest)
        apply(
            admin,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "mcp-token", "namespace": namespace},
                "stringData": {"token": CANARY},
            },
        )
        reference = {"secretKeyRef": {"name": "mcp-token", "key": "token"}}
        header = {"name": "X-Canary", "valueFrom": reference}
        url = mcp_streamable_server.url
        apply(admin, _object("MCPServer", "remote", namespace, {"url": url, "headers": [header]}))
        apply(admin, _object("MCPServer", "plain", namespace, {"url": url}))
        workload = {"image": "example.com/mcp:1", "port": 8080}
        apply(admin, _object("MCPServer", "work", namespace, workload))
        apply(
            admin,
            _object(
                "AlertRule",
                "servers",
                namespace,
                {
                    "evaluation": {"interval": "1s"},
                    "rules": [
                        {"name": "WorkDown", "severity": "critical",
                         "builtin": {"condition": "MCPServerNotReady", "names": ["work"]}},
                        {"name": "WorkStillDown", "for": "1h",
                         "builtin": {"condition": "MCPServerNotReady", "names": ["work"]}},
                        {"name": "PlainDown",
                         "builtin": {"condition": "MCPServerNotReady", "names": ["plain"]}},
                    ],
                },
            ),
        )  # fmt: skip
        for role in ("viewers", "operators", "admins"):
            wait_for_answer(
                admin,
                f"/apis/{RBAC}/v1/namespaces/{namespace}/rolebindings/devserver-team-{role}",
                lambda body: True,
                f"the RoleBinding of TeamAccess {role}",
            )
        for name in ("remote", "plain"):
            wait_for_answer(
                admin,
                f"/apis/{API_VERSION}/namespaces/{namespace}/mcpservers/{name}",
                is_ready,
                f"MCPServer {name} Ready",
            )
        yield People(namespace, **tokens)
        admin.delete(f"/api/v1/namespaces/{namespace}")


def _audit(console: RunningConsole) -> list[dict[str, Any]]:
    return [json.loads(line) for line in console.lines if '"audit": "devserver-console"' in line]


def _call(
    console: RunningConsole, token: str, namespace: str, name: str, tool: str, arguments: Any
) -> httpx.Response:
    with console.client(token) as http:
        return http.post(
            f"/api/v1/namespaces/{namespace}/mcpservers/{name}/tools/call",
            json={"tool": tool, "arguments": arguments},
        )


# -- trying a tool ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["viewer", "operator"])
def test_only_an_admin_may_call_a_tool(console: RunningConsole, people: People, who: str) -> None:
    refused = _call(console, getattr(people, who), people.namespace, "plain", "get_time", {})
    assert refused.status_code == 403, refused.text
    assert "mcpservers/tools" in refused.json()["message"]
    assert any(
        line["action"] == "call-tool" and line["status"] == 403 and line["user"].endswith(f":{who}")
        for line in _audit(console)
    )


@pytest.mark.parametrize(("who", "may"), [("viewer", False), ("operator", False), ("admin", True)])
def test_the_ui_learns_who_may_call_tools(
    console: RunningConsole, people: People, who: str, may: bool
) -> None:
    with console.client(getattr(people, who)) as http:
        answer = http.get(f"/api/v1/namespaces/{people.namespace}/mcpservers/plain/tools")
    assert answer.status_code == 200 and answer.json() == {"mayCall": may}


def test_an_admin_calls_a_tool_of_a_header_authenticated_server_and_it_is_audited(
    console: RunningConsole, people: People
) -> None:
    marker = f"argument-{uuid.uuid4().hex}"
    answer = _call(console, people.admin, people.namespace, "remote", "echo", {"text": marker})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["isError"] is False and body["tool"] == "echo"
    assert marker in body["content"][0]["text"]
    (line,) = [
        line
        for line in _audit(console)
        if line["action"] == "call-tool" and line["name"] == "remote" and line["status"] == 200
    ]
    assert line["tool"] == "echo" and line["user"].endswith(":admin")
    assert line["namespace"] == people.namespace and line["outcome"] == "allowed"
    assert line["time"]
    # Neither the arguments nor the header Secret's value reach the log or the answer.
    assert not [entry for entry in console.lines if marker in entry or CANARY in entry]
    assert CANARY not in answer.text


def test_a_tool_error_is_shown_as_such(console: RunningConsole, people: People) -> None:
    answer = _call(console, people.admin, people.namespace, "plain", "add", {"a": "x", "b": 1})
    assert answer.status_code == 200 and answer.json()["isError"] is True


def test_a_server_that_is_not_ready_is_refused_clearly(
    console: RunningConsole, people: People
) -> None:
    refused = _call(console, people.admin, people.namespace, "work", "get_time", {})
    assert refused.status_code == 409
    assert refused.json()["reason"] == "NotReady"
    assert f"MCPServer {people.namespace}/work is not Ready" in refused.json()["message"]


def test_header_secrets_the_caller_may_not_read_are_never_read_for_them(
    console: RunningConsole, people: People
) -> None:
    plain = _call(console, people.caller, people.namespace, "plain", "add", {"a": 1, "b": 2})
    assert plain.status_code == 200 and plain.json()["content"][0]["text"] == "3"
    remote = _call(console, people.caller, people.namespace, "remote", "get_time", {})
    assert remote.status_code == 403
    assert "headers from Secrets" in remote.json()["message"]


def test_a_missing_server_is_404_and_bad_arguments_are_422(
    console: RunningConsole, people: People
) -> None:
    assert _call(console, people.admin, people.namespace, "nope", "echo", {}).status_code == 404
    assert _call(console, people.admin, people.namespace, "plain", "", {}).status_code == 422
    assert _call(console, people.admin, people.namespace, "plain", "echo", [1]).status_code == 422


# -- verify now and sync now ----------------------------------------------------------------


def test_verify_now_runs_the_handshake_again_and_a_viewer_may_not_ask(
    console: RunningConsole, people: People, control_plane: Any
) -> None:
    path = f"/api/v1/namespaces/{people.namespace}/mcpservers/plain/verify"
    with console.client(people.viewer) as http:
        assert http.post(path).status_code == 403
    with control_plane.http_client() as admin:
        item = f"/apis/{API_VERSION}/namespaces/{people.namespace}/mcpservers/plain"
        before = admin.get(item).json()["status"]["lastVerifiedTime"]
        time.sleep(1.1)  # lastVerifiedTime has whole seconds
        with console.client(people.operator) as http:
            asked = http.post(path)
        assert asked.status_code == 200, asked.text
        requested = asked.json()["requestedAt"]
        assert asked.json()["object"]["metadata"]["annotations"][REQUEST_ANNOTATION] == requested
        # The interval is 5 minutes: only the request explains a new handshake this soon.
        wait_for_answer(
            admin,
            item,
            lambda body: body["status"]["lastVerifiedTime"] != before,
            "a new handshake after verify now",
        )
    assert any(
        line["action"] == "verify" and line["status"] == 200 and line["name"] == "plain"
        for line in _audit(console)
    )


def test_sync_now_sets_the_request_as_the_user(console: RunningConsole, people: People) -> None:
    with console.client(people.admin) as http:
        created = http.post(
            f"/api/v1/namespaces/{people.namespace}/workflowintegrations",
            json={
                "metadata": {"name": "flows"},
                "spec": {
                    # Nothing listens there: the sync fails, which is not what this tests.
                    "n8n": {
                        "url": "http://127.0.0.1:9/",
                        "apiKeySecretRef": {"name": "mcp-token", "key": "token"},
                    },
                    "mcpServers": {"names": ["plain"]},
                },
            },
        )
        assert created.status_code == 201, created.text
    path = f"/api/v1/namespaces/{people.namespace}/workflowintegrations/flows/sync"
    with console.client(people.viewer) as http:
        assert http.post(path).status_code == 403
    with console.client(people.operator) as http:
        asked = http.post(path)
    assert asked.status_code == 200
    annotations = asked.json()["object"]["metadata"]["annotations"]
    assert annotations[REQUEST_ANNOTATION] == asked.json()["requestedAt"]


# -- alert rules -----------------------------------------------------------------------------


def test_the_alerts_view_shows_firing_and_pending_alerts(
    console: RunningConsole, people: People
) -> None:
    def rows() -> dict[str, Any]:
        with console.client(people.viewer) as http:
            answer = http.get("/api/v1/views/alerts")
        assert answer.status_code == 200, answer.text
        return {row["name"]: row for row in answer.json()["items"]}

    deadline = time.monotonic() + SETUP_TIMEOUT
    while True:
        row = rows().get("servers")
        if row and row["firing"] == 1 and row["pending"] == 1:
            break
        assert time.monotonic() < deadline, row
        time.sleep(0.5)
    states = {rule["name"]: rule["state"] for rule in row["rules"]}
    assert states == {"WorkDown": "firing", "WorkStillDown": "pending", "PlainDown": "inactive"}
    firing = row["rules"][0]
    assert firing["name"] == "WorkDown"  # firing first
    assert firing["severity"] == "critical" and firing["source"] == "builtin MCPServerNotReady"
    assert firing["activeSince"]
    with console.client(people.caller) as http:  # may not list AlertRules: sees none
        assert http.get("/api/v1/views/alerts").json()["items"] == []
