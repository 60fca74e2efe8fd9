"""No confused deputy: through the operator, nobody gets what they could not do directly.

On the real API server with the shipped team roles and the operator running as its
ServiceAccount with the generated RBAC, the admission webhook (admission/) is registered at
https://127.0.0.1:<port> and checks every create and update of MCPServers,
WorkflowIntegrations and AlertRules against the requester's own rights. Requesters act
through impersonation; the matrix is printed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator.admission import WEBHOOK_PATH
from devserver_operator.admission.decision import REFUSED_PREFIX
from devserver_operator.api import API_VERSION
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.kube.errors import ForbiddenError
from devserver_operator.localcluster.certs import generate_ca, issue_serving_certificate
from devserver_operator.manifests.operator_rbac import ADMISSION_WEBHOOK_CONFIGURATION
from devserver_operator.manifests.team_roles import ADMIN, OPERATOR, VIEWER
from devserver_operator.manifests.webhook import admission_webhook_configuration
from tests.integration.test_teamaccess import (  # fixtures are found by name
    RBAC_V1,
    client_as,
    operator_account_kubeconfig,
    role_binding,
    team_rbac,
)
from tests.support.operator_harness import (
    TEST_MANAGER,
    RunningOperator,
    paused,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.integration
__all__ = ["operator_account_kubeconfig", "team_rbac"]

APPROVED = "ghcr.io/approved/"
APPROVED_IMAGE = "ghcr.io/approved/mcp-server:1.0"
FOREIGN_IMAGE = "ghcr.io/foreign/mcp-server:1.0"
SELECTOR_LABEL = "devserver-test-admission"
WEBHOOK_ADMIN = "devserver-test-webhook-admin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Webhook:
    operator: RunningOperator
    url: str
    ca_file: Path


@pytest.fixture(scope="module")
def webhook(
    control_plane: Any,
    operator: RunningOperator,
    team_rbac: None,
    operator_account_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Webhook]:
    """The least-privileged operator with its admission webhook, registered for namespaces
    labelled SELECTOR_LABEL (so the session's other tests never depend on it)."""
    directory = tmp_path_factory.mktemp("admission-tls")
    ca = generate_ca("devserver-admission-test-ca")
    ca.write(directory / "ca.crt", directory / "ca.key")
    issue_serving_certificate(ca, dns_names=["localhost"]).write(
        directory / "tls.crt", directory / "tls.key"
    )
    port = free_port()
    url = f"https://127.0.0.1:{port}{WEBHOOK_PATH}"
    configuration = admission_webhook_configuration(
        {"url": url}, namespace_selector={"matchLabels": {SELECTOR_LABEL: "on"}}
    )

    async def register(kube: KubeClient) -> None:
        await kube.apply(configuration)  # without caBundle: the operator publishes it

    async def unregister(kube: KubeClient) -> None:
        await kube.delete(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            ADMISSION_WEBHOOK_CONFIGURATION,
            None,
        )

    with paused(operator):
        asyncio.run(_as_admin(control_plane, register))
        running = start_operator(
            operator_account_kubeconfig,
            admission_port=port,
            admission_address="127.0.0.1",
            admission_cert_file=str(directory / "tls.crt"),
            admission_key_file=str(directory / "tls.key"),
            admission_ca_file=str(directory / "ca.crt"),
            admission_webhook_configuration=ADMISSION_WEBHOOK_CONFIGURATION,
            allowed_images=[APPROVED],
        )
        try:
            yield Webhook(running, url, directory / "ca.crt")
        finally:
            asyncio.run(_as_admin(control_plane, unregister))
            running.stop()
            assert not running.errors, running.errors


async def _as_admin(control_plane: Any, action: Any) -> None:
    async with KubeClient(
        Credentials.from_kubeconfig(str(control_plane.kubeconfig_path)), field_manager=TEST_MANAGER
    ) as kube:
        await action(kube)


# -- the world of the matrix ----------------------------------------------------------------

READABLE, UNREADABLE = "readable", "unreadable"


async def _bind(
    kube: KubeClient, namespace: str, who: str, role: str, kind: str = "ClusterRole"
) -> None:
    await kube.create(role_binding(f"{who}-{role}"[:63], namespace, role, who, kind=kind))


async def _role(kube: KubeClient, namespace: str, name: str, rules: list[dict[str, Any]]) -> None:
    await kube.apply(
        {
            "apiVersion": RBAC_V1,
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": rules,
        }
    )


POD_CREATOR = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create"]}]
READER_OF_READABLE = [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [READABLE]}
]


@dataclass(frozen=True)
class Requester:
    roles: tuple[str, ...]  # ClusterRoles
    local_roles: tuple[str, ...]  # Roles of the test namespace
    may: frozenset[str]
    """What the requester may do directly: write (the kinds), pods, readable, unreadable."""


REQUESTERS = {
    "viewer": Requester((VIEWER,), (), frozenset()),
    "operator": Requester((OPERATOR,), (), frozenset({"write"})),
    "operator+pods": Requester((OPERATOR,), ("pod-creator",), frozenset({"write", "pods"})),
    "operator+secret": Requester((OPERATOR,), ("reader",), frozenset({"write", READABLE})),
    "admin": Requester((ADMIN,), (), frozenset({"write", READABLE, UNREADABLE})),
    "edit": Requester(("edit",), (), frozenset({"write", "pods", READABLE, UNREADABLE})),
    "pods-only": Requester((), ("pod-creator",), frozenset({"pods"})),
}


def secret_env(name: str) -> list[dict[str, Any]]:
    return [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": name, "key": "token"}}}]


N8N_DOWN = "http://127.0.0.1:9"  # nothing listens: the integration reconciles to a condition
EMAIL = {"smtpHost": "127.0.0.1", "smtpPort": 9, "from": "a@example.com", "to": ["b@example.com"]}
BUILTIN = [{"name": "down", "builtin": {"condition": "MCPServerNotReady"}}]


@dataclass(frozen=True)
class Case:
    kind: str
    spec: dict[str, Any]
    needs: frozenset[str]
    field: str  # named in the refusal


CASES = {
    "approved-image": Case("MCPServer", {"image": APPROVED_IMAGE}, frozenset(), ""),
    "foreign-image": Case("MCPServer", {"image": FOREIGN_IMAGE}, frozenset({"pods"}), "spec.image"),
    "bridge-image": Case(
        "MCPServer",
        {"transport": "stdio", "command": ["npx", "server"]},
        frozenset({"pods"}),
        "spec.transport",
    ),
    "env-readable": Case(
        "MCPServer",
        {"image": APPROVED_IMAGE, "env": secret_env(READABLE)},
        frozenset({READABLE}),
        "spec.env[0].valueFrom.secretKeyRef.name",
    ),
    "volume-unreadable": Case(
        "MCPServer",
        {
            "image": APPROVED_IMAGE,
            "volumes": [{"name": "s", "mountPath": "/s", "secret": {"secretName": UNREADABLE}}],
        },
        frozenset({UNREADABLE}),
        "spec.volumes[0].secret.secretName",
    ),
    "configmap-volume": Case(
        "MCPServer",
        {
            "image": APPROVED_IMAGE,
            "volumes": [{"name": "c", "mountPath": "/c", "configMap": {"name": "settings"}}],
        },
        frozenset(),
        "",
    ),
    "serviceaccount": Case(
        "MCPServer",
        {"image": APPROVED_IMAGE, "serviceAccount": {"name": "deployer"}},
        frozenset({"pods"}),
        "spec.serviceAccount.name",
    ),
    "own-serviceaccount": Case(
        "MCPServer", {"image": APPROVED_IMAGE, "serviceAccount": {"create": True}}, frozenset(), ""
    ),
    "n8n-key-readable": Case(
        "WorkflowIntegration",
        {"n8n": {"url": N8N_DOWN, "apiKeySecretRef": {"name": READABLE, "key": "token"}}},
        frozenset({READABLE}),
        "spec.n8n.apiKeySecretRef.name",
    ),
    "n8n-credential-unreadable": Case(
        "WorkflowIntegration",
        {
            "n8n": {"url": N8N_DOWN, "apiKeySecretRef": {"name": READABLE, "key": "token"}},
            "credentials": [
                {
                    "name": "c",
                    "type": "httpHeaderAuth",
                    "secretRef": {"name": UNREADABLE},
                    "fields": [{"field": "value", "secretKey": "token"}],
                }
            ],
        },
        frozenset({READABLE, UNREADABLE}),
        "spec.credentials[0].secretRef.name",
    ),
    "email-password-readable": Case(
        "AlertRule",
        {
            "rules": BUILTIN,
            "channels": [
                {
                    "name": "mail",
                    "email": {
                        **EMAIL,
                        "usernameSecretRef": {"name": READABLE, "key": "token"},
                        "passwordSecretRef": {"name": READABLE, "key": "token"},
                    },
                }
            ],
        },
        frozenset({READABLE}),
        "spec.channels[0].email.passwordSecretRef.name",
    ),
    "webhook-url-unreadable": Case(
        "AlertRule",
        {
            "rules": BUILTIN,
            "channels": [
                {"name": "hook", "webhook": {"urlSecretRef": {"name": UNREADABLE, "key": "token"}}}
            ],
        },
        frozenset({UNREADABLE}),
        "spec.channels[0].webhook.urlSecretRef.name",
    ),
}

FORBIDDEN, REFUSED, ADMITTED = "forbidden (RBAC)", "refused", "admitted"


def expected(requester: Requester, case: Case) -> str:
    if "write" not in requester.may:
        return FORBIDDEN
    return REFUSED if case.needs - requester.may else ADMITTED


async def _world(kube: KubeClient, namespace: str) -> None:
    for name in (READABLE, UNREADABLE):
        await kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "stringData": {"token": f"{name}-value"},
            }
        )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"a": "b"},
        }
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "deployer", "namespace": namespace},
        }
    )
    await _role(kube, namespace, "pod-creator", POD_CREATOR)
    await _role(kube, namespace, "reader", READER_OF_READABLE)
    for who, requester in REQUESTERS.items():
        for role in requester.roles:
            await _bind(kube, namespace, who, role)
        for role in requester.local_roles:
            await _bind(kube, namespace, who, role, kind="Role")


@pytest.fixture
async def checked_namespace(
    control_plane: Any, kube: KubeClient, namespace: str, webhook: Webhook
) -> str:
    """A namespace under the webhook, once the webhook answers there (caBundle published)."""
    await kube.merge_patch(
        "v1", "Namespace", namespace, None, {"metadata": {"labels": {SELECTOR_LABEL: "on"}}}
    )
    await _world(kube, namespace)
    probe = {
        "apiVersion": API_VERSION,
        "kind": "MCPServer",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"image": FOREIGN_IMAGE},
    }

    async def in_force() -> bool:
        async with client_as(control_plane, "operator") as who:
            try:
                await who.create(probe, dry_run=True)
            except ForbiddenError as error:
                return REFUSED_PREFIX in error.message
        return False

    await wait_for(in_force, seconds=60, what="the admission webhook in force", interval=0.5)
    return namespace


def document(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


async def attempt(control_plane: Any, who: str, body: dict[str, Any]) -> tuple[str, str]:
    async with client_as(control_plane, who) as requester:
        try:
            await requester.create(body)
        except ForbiddenError as error:
            outcome = REFUSED if REFUSED_PREFIX in error.message else FORBIDDEN
            return outcome, error.message
    return ADMITTED, ""


async def reconciled(kube: KubeClient, kind: str, name: str, namespace: str) -> None:
    async def probe() -> bool:
        body = await kube.get(API_VERSION, kind, name, namespace) or {}
        status = body.get("status") or {}
        return status.get("observedGeneration") == body["metadata"]["generation"] and bool(
            status.get("conditions")
        )

    async def dump() -> Any:
        return await kube.get(API_VERSION, kind, name, namespace)

    await wait_for(
        probe, seconds=60, what=f"{kind} {namespace}/{name} reconciled", dump=dump, interval=0.3
    )


# -- tests ----------------------------------------------------------------------------------


async def test_the_matrix(
    control_plane: Any, kube: KubeClient, checked_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = checked_namespace
    rows: list[tuple[str, str, str, str, str]] = []
    admitted: list[tuple[str, str]] = []
    mismatches = []
    for who, requester in REQUESTERS.items():
        for label, case in CASES.items():
            name = f"{label}-{who}".replace("+", "-")
            outcome, message = await attempt(
                control_plane, who, document(case.kind, name, namespace, case.spec)
            )
            want = expected(requester, case)
            rows.append((who, case.kind, label, outcome, message))
            if outcome != want:
                mismatches.append((who, label, want, outcome, message))
            if outcome == REFUSED:
                # The refusal names the field and the missing right.
                assert case.field in message, message
                assert "needs permission to" in message, message
            if outcome == ADMITTED:
                admitted.append((case.kind, name))
    with capsys.disabled():
        print(f"\n{'requester':<16} {'kind':<20} {'case':<26} outcome")
        for who, kind, label, outcome, _ in rows:
            print(f"{who:<16} {kind:<20} {label:<26} {outcome}")
        for who, _, label, outcome, message in rows:
            if outcome == REFUSED and who == "operator":
                print(f"  e.g. {label}: {message}")
    assert not mismatches, mismatches
    # Every admitted object is reconciled by the operator.
    await asyncio.gather(*(reconciled(kube, kind, name, namespace) for kind, name in admitted))


async def test_updates_check_only_what_changed(
    control_plane: Any, kube: KubeClient, checked_namespace: str
) -> None:
    namespace = checked_namespace
    spec = {"image": APPROVED_IMAGE, "env": secret_env(UNREADABLE), "replicas": 1}
    async with client_as(control_plane, "admin") as admin:
        await admin.create(document("MCPServer", "shared", namespace, spec))
    async with client_as(control_plane, "operator") as olga:
        # Another author may scale what an admin wrote...
        await olga.merge_patch(
            API_VERSION, "MCPServer", "shared", namespace, {"spec": {"replicas": 2}}
        )
        # ...but not change what runs with the admin's Secret...
        with pytest.raises(ForbiddenError) as refused:
            await olga.merge_patch(
                API_VERSION,
                "MCPServer",
                "shared",
                namespace,
                {"spec": {"command": ["sh", "-c", "env"]}},
            )
        assert "spec.env[0].valueFrom.secretKeyRef.name" in refused.value.message
        assert 'get secrets "unreadable"' in refused.value.message
        # ...nor add another Secret (the same one again gives the pod nothing new).
        with pytest.raises(ForbiddenError) as refused:
            more = {"spec": {"envFrom": [{"secretRef": {"name": READABLE}}]}}
            await olga.merge_patch(API_VERSION, "MCPServer", "shared", namespace, more)
        assert "spec.envFrom[0].secretRef.name" in refused.value.message


async def test_a_new_n8n_url_needs_the_key_again(
    control_plane: Any, kube: KubeClient, checked_namespace: str
) -> None:
    namespace = checked_namespace
    spec = {"n8n": {"url": N8N_DOWN, "apiKeySecretRef": {"name": UNREADABLE, "key": "token"}}}
    async with client_as(control_plane, "admin") as admin:
        await admin.create(document("WorkflowIntegration", "wired", namespace, spec))
    async with client_as(control_plane, "operator") as olga:
        await olga.merge_patch(
            API_VERSION,
            "WorkflowIntegration",
            "wired",
            namespace,
            {"spec": {"syncInterval": "10m"}},
        )
        with pytest.raises(ForbiddenError) as refused:
            move = {"spec": {"n8n": {"url": "http://olgas-server.example:5678"}}}
            await olga.merge_patch(API_VERSION, "WorkflowIntegration", "wired", namespace, move)
    assert "spec.n8n.apiKeySecretRef.name" in refused.value.message


async def test_the_operators_own_writes_do_not_wait_for_the_webhook(
    kube: KubeClient, checked_namespace: str
) -> None:
    """Label and annotation edits never call the webhook (matchConditions): with it gone,
    they still pass, while a spec change is refused (fail closed)."""
    namespace = checked_namespace
    await kube.create(
        document("MCPServer", "labelled", namespace, {"url": "http://127.0.0.1:9/mcp"})
    )
    configuration = await kube.get(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        ADMISSION_WEBHOOK_CONFIGURATION,
        None,
    )
    assert configuration is not None
    broken = [
        {**w, "clientConfig": {**w["clientConfig"], "url": f"https://127.0.0.1:{free_port()}/x"}}
        for w in configuration["webhooks"]
    ]
    await kube.merge_patch(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        ADMISSION_WEBHOOK_CONFIGURATION,
        None,
        {"webhooks": broken},
    )
    try:
        await kube.merge_patch(
            API_VERSION, "MCPServer", "labelled", namespace, {"metadata": {"labels": {"a": "b"}}}
        )

        async def refused_closed() -> bool:
            try:
                await kube.merge_patch(
                    API_VERSION,
                    "MCPServer",
                    "labelled",
                    namespace,
                    {"spec": {"url": "http://127.0.0.1:8/mcp"}},
                )
            except Exception as error:  # the API server's "failed calling webhook"
                return "failed calling webhook" in str(error)
            return False

        await wait_for(
            refused_closed,
            seconds=30,
            what="fail closed while the webhook is unreachable",
            interval=0.5,
        )
    finally:
        await kube.merge_patch(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            ADMISSION_WEBHOOK_CONFIGURATION,
            None,
            {"webhooks": configuration["webhooks"]},
        )


async def test_bad_requests_to_the_webhook(webhook: Webhook) -> None:
    async with httpx.AsyncClient(
        verify=ssl.create_default_context(cafile=webhook.ca_file)
    ) as client:
        garbage = await client.post(webhook.url, content=b"{not json")
        assert garbage.status_code == 400
        foreign = await client.post(
            webhook.url, json={"request": {"uid": "1", "kind": {"kind": "Pod"}, "object": {}}}
        )
        assert foreign.status_code == 400
        invalid = await client.post(
            webhook.url,
            json={
                "request": {
                    "uid": "2",
                    "kind": {"kind": "MCPServer"},
                    "operation": "CREATE",
                    "namespace": "x",
                    "userInfo": {"username": "u"},
                    "object": {"spec": {"image": "unpinned"}},
                }
            },
        )
        assert invalid.status_code == 200
        assert invalid.json()["response"]["status"]["code"] == 422


async def test_creating_a_foreign_service_account_is_taking_it_over(
    control_plane: Any, kube: KubeClient, checked_namespace: str
) -> None:
    namespace = checked_namespace
    # _world made ServiceAccount deployer: it exists and no MCPServer owns it.
    takeover = {"image": APPROVED_IMAGE, "serviceAccount": {"create": True, "name": "deployer"}}
    outcome, message = await attempt(
        control_plane, "operator", document("MCPServer", "takeover", namespace, takeover)
    )
    assert outcome == REFUSED, message
    assert "spec.serviceAccount.name: needs permission to create pods" in message, message
    # Without a name the account is named after the MCPServer: "deployer" is taken over too.
    unnamed = {"image": APPROVED_IMAGE, "serviceAccount": {"create": True}}
    outcome, message = await attempt(
        control_plane, "operator", document("MCPServer", "deployer", namespace, unnamed)
    )
    assert outcome == REFUSED, message
    assert "spec.serviceAccount.create (the account deployer): needs permission" in message
    own = {"image": APPROVED_IMAGE, "serviceAccount": {"create": True, "name": "own-sa"}}
    outcome, message = await attempt(
        control_plane, "operator", document("MCPServer", "own", namespace, own)
    )
    assert outcome == ADMITTED, message

    async def created() -> bool:
        account = await kube.get("v1", "ServiceAccount", "own-sa", namespace)
        return bool(account and (account["metadata"].get("ownerReferences") or []))

    await wait_for(created, seconds=60, what="the MCPServer's own ServiceAccount", interval=0.3)
    async with client_as(control_plane, "operator") as olga:
        await olga.merge_patch(
            API_VERSION, "MCPServer", "own", namespace, {"spec": {"replicas": 2}}
        )
