"""The operator keeps working when its login changes under it, on the real API server.

Its identity is a ServiceAccount whose tokens come from TokenRequests bound to a Secret:
deleting the Secret revokes the token at once (the API server's own check of bound tokens),
which stands in for expiry (a TokenRequest may not expire sooner than 10 minutes). Two ways
of logging in, each rotated while the operator runs:

- a kubeconfig ``tokenFile``, as the kubelet's projected service-account token in a pod;
- an ``exec`` plugin (a small script) that prints the token in a file with a short
  ``expirationTimestamp``, as EKS and GKE logins do.

After the rotation the old token is revoked, and a new MCPServer must still get its
children, written by the operator's own client (checked in the audit log by identity).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devserver_operator.kube.client import KubeClient
from devserver_operator.localcluster.audit import read_audit_events
from tests.support.audit import AuditCursor
from tests.support.operator_harness import (
    RunningOperator,
    custom_resource,
    paused,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.integration
ACCOUNT = "rotating-operator"
PLUGIN_LIFETIME_SECONDS = 8
TOKEN_FILE_CHECK_SECONDS = 10.0  # how often the operator compares its token file (kube/login.py)


class RotatingAccount:
    """A ServiceAccount with cluster-admin whose tokens are bound to throw-away Secrets."""

    def __init__(self, admin: httpx.Client, namespace: str) -> None:
        self.admin = admin
        self.namespace = namespace
        self.anchors: list[str] = []
        self.tokens: list[str] = []

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{ACCOUNT}"

    def create(self) -> None:
        ns = self.namespace
        self._post(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": ACCOUNT}})
        self._post(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "metadata": {"name": f"{ns}-{ACCOUNT}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": ns}],
            },
        )

    def delete(self) -> None:
        self.admin.delete(
            f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{self.namespace}-{ACCOUNT}"
        )

    def new_token(self) -> str:
        """A token that stays valid until :meth:`revoke_all_but_last` deletes its Secret."""
        name = f"anchor-{len(self.anchors) + 1}"
        secret = self._post(
            f"/api/v1/namespaces/{self.namespace}/secrets", {"metadata": {"name": name}}
        )
        self.anchors.append(name)
        answer = self._post(
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{ACCOUNT}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "expirationSeconds": 3600,
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "name": name,
                        "uid": secret["metadata"]["uid"],
                    },
                },
            },
        )
        token: str = answer["status"]["token"]
        self.tokens.append(token)
        return token

    def revoke_all_but_last(self) -> None:
        for name in self.anchors[:-1]:
            self.admin.delete(f"/api/v1/namespaces/{self.namespace}/secrets/{name}")
        self.anchors = self.anchors[-1:]

    async def wait_until_refused(self, token: str, server: str, verify: Any) -> None:
        """The API server caches a token's authentication for a few seconds (10 s)."""
        context = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        async with httpx.AsyncClient(base_url=server, verify=context, timeout=10.0) as client:

            async def refused() -> bool:
                answer = await client.get("/api", headers={"Authorization": f"Bearer {token}"})
                return answer.status_code == 401

            await wait_for(refused, seconds=40, what="the revoked token to be refused", interval=1)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.admin.post(path, json=body)
        assert answer.status_code < 300, answer.text
        result: dict[str, Any] = answer.json()
        return result


@pytest.fixture
def account(control_plane: Any, namespace: str) -> Iterator[RotatingAccount]:
    with control_plane.http_client() as admin:
        rotating = RotatingAccount(admin, namespace)
        rotating.create()
        yield rotating
        rotating.delete()


def _cluster_entry(control_plane: Any) -> dict[str, Any]:
    config = yaml.safe_load(Path(control_plane.kubeconfig_path).read_text(encoding="utf-8"))
    return dict(config["clusters"][0]["cluster"])


def _kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": cluster}],
                "users": [{"name": "rotating", "user": user}],
                "contexts": [
                    {"name": "rotating", "context": {"cluster": "local", "user": "rotating"}}
                ],
                "current-context": "rotating",
            }
        ),
        encoding="utf-8",
    )
    return path


def _server_tls(control_plane: Any) -> Any:
    cluster = _cluster_entry(control_plane)
    if control_plane.local is not None:
        return str(control_plane.local.ca_cert_path)
    return not cluster.get("insecure-skip-tls-verify", False)


async def _children_written_by(
    kube: KubeClient, control_plane: Any, account: RotatingAccount, name: str, since: AuditCursor
) -> None:
    server = custom_resource(
        "MCPServer",
        name,
        account.namespace,
        {"image": "ghcr.io/example/mcp:1", "verification": {"enabled": False}},
    )
    await kube.create(server)

    async def applied() -> bool:
        if await kube.get("apps/v1", "Deployment", name, account.namespace) is None:
            return False
        if control_plane.local is None:
            return True
        # The operator's own client wrote it, as the rotated identity (not another operator).
        return any(
            verb == "patch" and f"/deployments/{name}" in uri
            for verb, uri in since.requests(account.username)
        )

    await wait_for(
        applied, seconds=60, what=f"the Deployment of {name}, applied by {account.username}"
    )


def _jti(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


def _credential_ids(cursor: AuditCursor, user: str, uri_part: str) -> set[str]:
    """The tokens (by JTI) ``user``'s requests to ``uri_part`` came with since ``cursor``."""
    found: set[str] = set()
    events, _ = read_audit_events(cursor.path, cursor.offset)
    for event in events:
        if event.get("user", {}).get("username") == user and uri_part in event["requestURI"]:
            extra = event["user"].get("extra", {})
            found.update(extra.get("authentication.kubernetes.io/credential-id", []))
    return found


@pytest.fixture(autouse=True, scope="module")
def _session_operator_paused(operator: RunningOperator) -> Iterator[None]:
    # The session's operator watches every namespace: left running, it would write the
    # children before the operator under test, and the audit log would name the wrong user.
    with paused(operator):
        yield


def _started(kubeconfig: Path, namespace: str) -> RunningOperator:
    return start_operator(kubeconfig, namespaces=[namespace])


def _audit(control_plane: Any) -> AuditCursor:
    if control_plane.local is None:
        return AuditCursor(Path("/dev/null"))
    return AuditCursor.at_end(control_plane.local.audit_log_path)


@pytest.mark.usefixtures("installed_crds")
async def test_a_rotated_and_revoked_token_file_is_read_again(
    control_plane: Any, kube: KubeClient, account: RotatingAccount, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(account.new_token(), encoding="utf-8")
    kubeconfig = _kubeconfig(
        tmp_path / "kubeconfig", _cluster_entry(control_plane), {"tokenFile": str(token_file)}
    )
    running = _started(kubeconfig, account.namespace)
    try:
        await _children_written_by(kube, control_plane, account, "before", _audit(control_plane))

        # The kubelet's rotation: the old token still works, yet the new one is taken up
        # (the file is compared every TOKEN_FILE_CHECK_SECONDS; the audit log names the
        # token each request came with).
        token_file.write_text(account.new_token(), encoding="utf-8")
        await asyncio.sleep(TOKEN_FILE_CHECK_SECONDS + 1)
        cursor = _audit(control_plane)
        await _children_written_by(kube, control_plane, account, "middle", cursor)
        if control_plane.local is not None:
            new_id = f"JTI={_jti(token_file.read_text(encoding='utf-8'))}"
            assert new_id in _credential_ids(cursor, account.username, "/deployments/middle")

        old = account.tokens[-2]
        account.revoke_all_but_last()
        await account.wait_until_refused(old, control_plane.server_url, _server_tls(control_plane))

        await _children_written_by(kube, control_plane, account, "after", _audit(control_plane))
    finally:
        running.stop()
    assert not running.errors, running.errors


PLUGIN = textwrap.dedent(
    """
    import datetime, json, sys
    token_file, runs_file, lifetime = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(runs_file, "a") as runs:
        runs.write("run\\n")
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
    print(json.dumps({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "token": open(token_file).read().strip(),
            "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }))
    """
)


@pytest.mark.usefixtures("installed_crds")
async def test_an_exec_plugin_runs_again_when_its_token_expires_or_is_refused(
    control_plane: Any, kube: KubeClient, account: RotatingAccount, tmp_path: Path
) -> None:
    token_file, runs_file, plugin = tmp_path / "token", tmp_path / "runs", tmp_path / "plugin.py"
    plugin.write_text(PLUGIN, encoding="utf-8")
    token_file.write_text(account.new_token(), encoding="utf-8")
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin), str(token_file), str(runs_file), str(PLUGIN_LIFETIME_SECONDS)],
            "interactiveMode": "Never",
        }
    }
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", _cluster_entry(control_plane), exec_user)

    def runs() -> int:
        return len(runs_file.read_text(encoding="utf-8").splitlines()) if runs_file.exists() else 0

    running = _started(kubeconfig, account.namespace)
    try:
        await _children_written_by(kube, control_plane, account, "before", _audit(control_plane))
        first_runs = runs()

        # Its token expires while still accepted by the server: the next request runs the
        # plugin again first (no 401 needed).
        await asyncio.sleep(PLUGIN_LIFETIME_SECONDS + 1)
        await _children_written_by(kube, control_plane, account, "middle", _audit(control_plane))
        assert runs() > first_runs, "the plugin did not run again when its token expired"
        first_runs = runs()

        # The plugin now hands out another token, and the one it gave before stops working.
        old = token_file.read_text(encoding="utf-8")
        token_file.write_text(account.new_token(), encoding="utf-8")
        account.revoke_all_but_last()
        await account.wait_until_refused(old, control_plane.server_url, _server_tls(control_plane))

        await _children_written_by(kube, control_plane, account, "after", _audit(control_plane))
        assert runs() > first_runs
    finally:
        running.stop()
    assert not running.errors, running.errors
