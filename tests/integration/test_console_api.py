"""The console's REST API on a real API server, as people with different TeamAccess roles.

Identities are ServiceAccounts with real tokens (TokenRequest), granted `viewer` and
`operator` through TeamAccess objects that the running operator turns into RoleBindings;
`nobody` holds nothing. The console authenticates each token (TokenReview) and impersonates
its owner, so every answer here is RBAC's own. A Secret canary is referenced by an MCPServer
and must never appear in a response or a log line of the console.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devserver_operator.api import API_VERSION
from tests.support.console_harness import (
    RunningConsole,
    apply,
    console_kubeconfig,
    is_ready,
    service_account_token,
    start_console,
    wait_for_answer,
)
from tests.support.operator_harness import RunningOperator

pytestmark = pytest.mark.integration

CANARY = f"canary-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Team:
    home: str
    """The namespace where viewer and operator hold their roles."""
    other: str
    """A namespace where none of them holds anything."""
    viewer: str
    operator: str
    admin: str
    nobody: str


def _mcpserver(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "MCPServer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def team(
    control_plane: Any, operator: RunningOperator, mcp_streamable_server: Any
) -> Iterator[Team]:
    home, other = f"c-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    with control_plane.http_client() as admin:
        for namespace in (home, other):
            apply(admin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        viewer = service_account_token(admin, home, "viewer")
        operator_token = service_account_token(admin, home, "operator")
        nobody = service_account_token(admin, home, "nobody")
        admin_token = service_account_token(admin, home, "admin")
        for role in ("viewer", "operator", "admin"):
            apply(
                admin,
                {
                    "apiVersion": API_VERSION,
                    "kind": "TeamAccess",
                    "metadata": {"name": f"{role}s", "namespace": home},
                    "spec": {
                        "role": role,
                        "members": [{"kind": "ServiceAccount", "name": role}],
                        "expiresAt": "2099-01-01T00:00:00Z",
                    },
                },
            )
        apply(
            admin,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "mcp-token", "namespace": home},
                "stringData": {"token": CANARY},
            },
        )
        header = {
            "name": "X-Canary",
            "valueFrom": {"secretKeyRef": {"name": "mcp-token", "key": "token"}},
        }
        apply(
            admin,
            _mcpserver("remote", home, {"url": mcp_streamable_server.url, "headers": [header]}),
        )
        apply(admin, _mcpserver("work", home, {"image": "example.com/mcp:1", "port": 8080}))
        apply(admin, _mcpserver("elsewhere", other, {"url": mcp_streamable_server.url}))
        for role in ("viewers", "operators", "admins"):
            wait_for_answer(
                admin,
                f"/apis/rbac.authorization.k8s.io/v1/namespaces/{home}/rolebindings/devserver-team-{role}",
                lambda body: True,
                f"the RoleBinding of TeamAccess {role}",
            )
        wait_for_answer(
            admin,
            f"/apis/{API_VERSION}/namespaces/{home}/mcpservers/remote",
            is_ready,
            "MCPServer remote Ready",
        )
        yield Team(home, other, viewer, operator_token, admin_token, nobody)
        for namespace in (home, other):
            admin.delete(f"/api/v1/namespaces/{namespace}")


def _names(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(row["namespace"], row["name"]) for row in rows}


def _audit(console: RunningConsole) -> list[dict[str, Any]]:
    return [json.loads(line) for line in console.lines if '"audit": "devserver-console"' in line]


# -- documentation and login --------------------------------------------------------------


def test_the_openapi_document_lists_the_kinds_views_and_stream(console: RunningConsole) -> None:
    with console.client() as http:
        paths = http.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/namespaces/{namespace}/{plural}/{name}" in paths
    assert set(paths["/api/v1/namespaces/{namespace}/{plural}/{name}"]) == {
        "get",
        "patch",
        "delete",
    }
    assert "/api/v1/views/mcpservers" in paths and "/api/v1/stream" in paths
    assert "/api/v1/preview" in paths


def test_a_request_without_credentials_is_unauthorized(console: RunningConsole) -> None:
    with console.client() as http:
        response = http.get("/api/v1/mcpservers")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_the_api_server_rejects_is_unauthorized(console: RunningConsole) -> None:
    with console.client("not-a-token") as http:
        assert http.get("/api/v1/mcpservers").status_code == 401


def test_login_sets_a_strict_session_cookie_and_writes_need_the_csrf_token(
    console: RunningConsole, team: Team
) -> None:
    with console.client() as http:
        login = http.post("/api/v1/session", json={"token": team.operator})
        assert login.status_code == 200, login.text
        assert login.json()["user"]["username"] == f"system:serviceaccount:{team.home}:operator"
        session_cookie = next(
            c
            for c in login.headers.get_list("set-cookie")
            if c.startswith("devserver_console_session=")
        )
        attributes = {part.strip().lower() for part in session_cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes
        cookie = session_cookie.split(";")[0]
        csrf = login.json()["csrfToken"]
        path = f"/api/v1/namespaces/{team.home}/mcpservers/work/scale"
        headers = {"Cookie": cookie}
        # The cookie alone reads...
        assert http.get("/api/v1/session", headers=headers).status_code == 200
        # ...but does not write: a forged form post carries no CSRF token.
        refused = http.post(path, json={"replicas": 1}, headers=headers)
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        foreign = http.post(
            path,
            json={"replicas": 1},
            headers={**headers, "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403 and "cross-origin" in foreign.json()["detail"]
        allowed = http.post(path, json={"replicas": 1}, headers={**headers, "X-CSRF-Token": csrf})
        assert allowed.status_code == 200, allowed.text
        # Logged out, the same cookie is worth nothing.
        assert (
            http.delete("/api/v1/session", headers={**headers, "X-CSRF-Token": csrf}).status_code
            == 204
        )
        assert http.get("/api/v1/session", headers=headers).status_code == 401


def test_the_interactive_docs_are_served_by_the_console_itself(console: RunningConsole) -> None:
    with console.client() as http:
        page = http.get("/api/v1/docs")
        assert page.status_code == 200 and "/swagger/swagger-ui-bundle.js" in page.text
        assert http.get("/swagger/swagger-ui-bundle.js").status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN


def test_every_response_carries_a_strict_content_security_policy(console: RunningConsole) -> None:
    with console.client() as http:
        for path in ("/", "/api/v1/openapi.json", "/api/v1/docs"):
            policy = http.get(path).headers["Content-Security-Policy"]
            assert "default-src 'self'" in policy and "script-src 'self'" in policy
            assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy


# -- what each role sees and may do ---------------------------------------------------------


def test_a_viewer_sees_their_namespace_only(console: RunningConsole, team: Team) -> None:
    with console.client(team.viewer) as http:
        rows = http.get("/api/v1/mcpservers").json()["items"]
        assert _names(rows) == {(team.home, "remote"), (team.home, "work")}
        body = http.get(f"/api/v1/namespaces/{team.home}/mcpservers/remote").json()
        assert body["status"]["toolCount"] == 3
        assert "managedFields" not in body["metadata"]
        refused = http.get(f"/api/v1/namespaces/{team.other}/mcpservers/elsewhere")
    assert refused.status_code == 403
    assert refused.json()["reason"] == "Forbidden"
    assert f'in the namespace "{team.other}"' in refused.json()["message"]


def test_a_viewer_cannot_change_anything_and_the_refusal_is_audited(
    console: RunningConsole, team: Team
) -> None:
    base = f"/api/v1/namespaces/{team.home}/mcpservers"
    with console.client(team.viewer) as http:
        scale = http.post(f"{base}/work/scale", json={"replicas": 3})
        patch = http.patch(f"{base}/work", json={"metadata": {"labels": {"x": "y"}}})
        delete = http.delete(f"{base}/work")
        create = http.post(
            base, json={"metadata": {"name": "new"}, "spec": {"url": "http://x.example/mcp"}}
        )
    for response in (scale, patch, delete, create):
        assert response.status_code == 403, response.text
        # The API server's own words, naming the impersonated user.
        assert f"system:serviceaccount:{team.home}:viewer" in response.json()["message"]
    viewer = f"system:serviceaccount:{team.home}:viewer"
    refused = [a for a in _audit(console) if a["user"] == viewer]
    assert {a["action"] for a in refused} == {"scale", "patch", "delete", "create"}
    assert all(a["outcome"] == "refused" and a["status"] == 403 for a in refused)
    assert all(a["kind"] == "MCPServer" and a["namespace"] == team.home for a in refused)


def test_an_operator_can_scale_and_the_write_is_audited(
    console: RunningConsole, team: Team
) -> None:
    with console.client(team.operator) as http:
        response = http.post(
            f"/api/v1/namespaces/{team.home}/mcpservers/work/scale", json={"replicas": 2}
        )
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["replicas"] == 2
    operator = f"system:serviceaccount:{team.home}:operator"
    entry = [a for a in _audit(console) if a["user"] == operator and a["action"] == "scale"][-1]
    assert entry["name"] == "work" and entry["status"] == 200
    assert entry["outcome"] == "allowed" and entry["time"]


def test_an_operator_cannot_grant_access(console: RunningConsole, team: Team) -> None:
    with console.client(team.operator) as http:
        response = http.post(
            f"/api/v1/namespaces/{team.home}/teamaccesses",
            json={
                "metadata": {"name": "sneaky"},
                "spec": {"role": "admin", "members": [{"kind": "User", "name": "me"}]},
            },
        )
    assert response.status_code == 403


def test_an_admin_grants_time_limited_access_and_it_shows_with_its_time_left(
    console: RunningConsole, team: Team
) -> None:
    with console.client(team.admin) as http:
        granted = http.post(
            f"/api/v1/namespaces/{team.home}/teamaccesses",
            json={
                "metadata": {"name": "contractor"},
                "spec": {
                    "role": "viewer",
                    "members": [{"kind": "User", "name": "bob@example.com"}],
                    "expiresAt": "2098-01-01T00:00:00Z",
                },
            },
        )
        assert granted.status_code == 201, granted.text
        deadline = time.monotonic() + 10
        while True:
            rows = {row["name"]: row for row in http.get("/api/v1/views/grants").json()["items"]}
            if "contractor" in rows or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    contractor = rows["contractor"]
    assert contractor["role"] == "viewer" and contractor["secondsLeft"] > 0
    admin = f"system:serviceaccount:{team.home}:admin"
    assert any(
        a["user"] == admin and a["action"] == "create" and a["kind"] == "TeamAccess"
        for a in _audit(console)
    )


def test_an_invalid_create_returns_the_api_servers_own_422(
    console: RunningConsole, team: Team
) -> None:
    with console.client(team.operator) as http:
        response = http.post(
            f"/api/v1/namespaces/{team.home}/mcpservers",
            json={
                "metadata": {"name": "both"},
                "spec": {"image": "example.com/x:1", "url": "http://x.example/mcp"},
            },
        )
    assert response.status_code == 422
    body = response.json()
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('MCPServer.devserver.ecosphere.network "both" is invalid')


def test_a_user_without_rights_gets_403_and_sees_nothing(
    console: RunningConsole, team: Team
) -> None:
    with console.client(team.nobody) as http:
        for plural in ("mcpservers", "workflowintegrations", "alertrules", "teamaccesses"):
            assert http.get(f"/api/v1/{plural}").json()["items"] == []
        assert http.get("/api/v1/views/mcpservers").json()["items"] == []
        assert http.get("/api/v1/views/grants").json()["items"] == []
        for namespace in (team.home, team.other):
            assert http.get(f"/api/v1/namespaces/{namespace}/mcpservers").status_code == 403
        assert http.get(f"/api/v1/namespaces/{team.home}/mcpservers/remote").status_code == 403
        assert (
            http.get(f"/api/v1/namespaces/{team.home}/mcpservers/remote/children").status_code
            == 403
        )


# -- derived views ---------------------------------------------------------------------------


def test_the_servers_view_shows_tools_and_the_negotiated_protocol(
    console: RunningConsole, team: Team
) -> None:
    with console.client(team.viewer) as http:
        rows = {row["name"]: row for row in http.get("/api/v1/views/mcpservers").json()["items"]}
    remote = rows["remote"]
    assert remote["health"] == "Ready" and remote["mode"] == "remote"
    assert remote["protocolVersion"]
    assert sorted(tool["name"] for tool in remote["tools"]) == ["add", "echo", "get_time"]


def test_the_grants_view_shows_who_which_role_and_the_time_left(
    console: RunningConsole, team: Team
) -> None:
    with console.client(team.viewer) as http:
        rows = {row["name"]: row for row in http.get("/api/v1/views/grants").json()["items"]}
    viewers = rows["viewers"]
    assert viewers["role"] == "viewer"
    assert viewers["members"] == [{"kind": "ServiceAccount", "name": "viewer"}]
    assert viewers["secondsLeft"] > 3600 * 24 * 365


def test_children_and_events_of_an_object(console: RunningConsole, team: Team) -> None:
    with console.client(team.viewer) as http:
        groups = http.get(f"/api/v1/namespaces/{team.home}/mcpservers/work/children").json()[
            "groups"
        ]
        events = http.get(f"/api/v1/namespaces/{team.home}/mcpservers/work/events")
    children = {group["kind"]: [i["metadata"]["name"] for i in group["items"]] for group in groups}
    assert children["Deployment"] == ["work"] and children["Service"] == ["work"]
    assert "Secret" not in children
    assert events.status_code == 200 and isinstance(events.json()["items"], list)


def test_the_preview_renders_children_without_creating_anything(
    console: RunningConsole, team: Team
) -> None:
    manifest = _mcpserver("preview-only", team.home, {"image": "example.com/mcp:2", "port": 9000})
    with console.client(team.viewer) as http:
        preview = http.post("/api/v1/preview", json=manifest).json()
        kinds = sorted(child["kind"] for child in preview["children"])
        assert "Deployment" in kinds and "Service" in kinds
        assert (
            http.get(f"/api/v1/namespaces/{team.home}/mcpservers/preview-only").status_code == 404
        )


# -- live updates -----------------------------------------------------------------------------


def _collect(
    console: RunningConsole, token: str, into: list[dict[str, Any]], stop: threading.Event
) -> None:
    try:
        _read_stream(console, token, into, stop)
    except BaseException as error:
        into.append({"event": "error", "error": repr(error)})


def _read_stream(
    console: RunningConsole, token: str, into: list[dict[str, Any]], stop: threading.Event
) -> None:
    with (
        console.client(token) as http,
        http.stream("GET", "/api/v1/stream", timeout=httpx.Timeout(30, read=None)) as response,
    ):
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                into.append({"event": event, **json.loads(line[6:])})
            if stop.is_set():
                return


def test_live_updates_reach_those_who_may_list_and_nobody_else(
    console: RunningConsole, team: Team
) -> None:
    seen: dict[str, list[dict[str, Any]]] = {"viewer": [], "nobody": []}
    stop = threading.Event()
    readers = [
        threading.Thread(
            target=_collect, args=(console, getattr(team, who), seen[who], stop), daemon=True
        )
        for who in seen
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 10
    while not all(seen.values()) and time.monotonic() < deadline:
        time.sleep(0.05)  # both streams said hello
    with console.client(team.operator) as http:
        http.post(f"/api/v1/namespaces/{team.home}/mcpservers/work/scale", json={"replicas": 3})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(
            e.get("name") == "work" and (e.get("object") or {}).get("spec", {}).get("replicas") == 3
            for e in seen["viewer"]
        ):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the viewer saw no live change: {seen['viewer'][-3:]}")
    stop.set()
    assert [e for e in seen["nobody"] if e["event"] == "change"] == []


# -- limits and secrets ---------------------------------------------------------------------


def test_a_user_over_the_rate_limit_gets_429_with_retry_after(
    control_plane: Any, team: Team
) -> None:
    limited = start_console(
        console_kubeconfig(control_plane), rate_limit_per_second=0.5, rate_limit_burst=3
    )
    try:
        with limited.client(team.viewer) as http:
            answers = [http.get("/api/v1/mcpservers").status_code for _ in range(3)]
            refused = http.get("/api/v1/mcpservers")
        with limited.client(team.operator) as other:
            assert other.get("/api/v1/mcpservers").status_code == 200  # limits are per user
    finally:
        limited.stop()
    assert answers == [200, 200, 200]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1


def test_the_secret_canary_never_appears_in_a_response_or_log_line(
    console: RunningConsole, team: Team
) -> None:
    with console.client(team.operator) as http:
        # Everything an operator can reach about the server that references the Secret.
        for path in (
            "/api/v1/mcpservers",
            "/api/v1/views/mcpservers",
            f"/api/v1/namespaces/{team.home}/mcpservers",
            f"/api/v1/namespaces/{team.home}/mcpservers/remote",
            f"/api/v1/namespaces/{team.home}/mcpservers/remote/children",
            f"/api/v1/namespaces/{team.home}/mcpservers/remote/events",
        ):
            assert http.get(path).status_code == 200, path
    assert console.responses
    assert not [body for body in console.responses if CANARY in body]
    assert not [line for line in console.lines if CANARY in line]
