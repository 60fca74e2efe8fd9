"""TeamAccess on the real API server with RBAC on: members get the role through one RoleBinding,
follow spec changes, lose it at expiry (to the second, and across restarts), and never take over
a RoleBinding someone else owns.

The operator in these tests runs as a ServiceAccount with exactly the RBAC the chart ships
(``manifests/operator_rbac.py``), not as an administrator: whatever works here works with `bind`
on the three team roles and nothing more. The session's administrator operator is paused meanwhile,
so that two operators do not both reconcile.

The fixtures and helpers here are shared with ``test_teamaccess_escalation.py``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devserver_operator.api import API_VERSION
from devserver_operator.builders.teamaccess import binding_name
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.kube.errors import ForbiddenError, InvalidError
from devserver_operator.localcluster import read_kubeconfig_credentials
from devserver_operator.manifests.admission import (
    DENIED_MESSAGE,
    POLICY_NAME,
    admission_policy,
)
from devserver_operator.manifests.operator_rbac import InstallMode, operator_rbac
from devserver_operator.manifests.team_roles import ADMIN, team_cluster_roles
from tests.support.audit import AuditCursor
from tests.support.operator_harness import (
    TEST_MANAGER,
    RunningOperator,
    condition,
    custom_resource,
    paused,
    start_in_place,
    start_operator,
    wait_for,
    wait_for_condition,
)

pytestmark = pytest.mark.integration

RBAC = "rbac.authorization.k8s.io"
RBAC_V1 = f"{RBAC}/v1"
OPERATOR_NAMESPACE = "devserver-system"
OPERATOR_SERVICE_ACCOUNT = "devserver-operator"
OPERATOR_IDENTITY = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
SETUP_TIMEOUT = 30.0


# -- identities -----------------------------------------------------------------------------


class _Impersonating(httpx.AsyncBaseTransport):
    """Sends every request as another user: the administrator's connection plus
    Impersonate-User/-Group headers, which RBAC and admission then judge as that user."""

    def __init__(self, inner: httpx.AsyncBaseTransport, headers: Sequence[tuple[str, str]]):
        self._inner = inner
        self._headers = list(headers)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers = httpx.Headers([*request.headers.multi_items(), *self._headers])
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def client_as(control_plane: Any, user: str, groups: Sequence[str] = ()) -> KubeClient:
    """A KubeClient that acts as ``user`` (works on the local control plane and on kind)."""
    admin = read_kubeconfig_credentials(Path(control_plane.kubeconfig_path))
    headers = [*admin.headers().items(), ("Impersonate-User", user)]
    headers += [("Impersonate-Group", group) for group in groups]
    transport = _Impersonating(httpx.AsyncHTTPTransport(verify=admin.ssl_context), headers)
    return KubeClient(
        Credentials(server=admin.server_url, insecure=True),
        transport=transport,
        field_manager=TEST_MANAGER,
    )


async def may(
    kube: KubeClient,
    user: str,
    verb: str,
    resource: str,
    *,
    group: str = "",
    namespace: str | None = None,
    name: str = "",
    groups: Sequence[str] = ("system:authenticated",),
) -> bool:
    """SubjectAccessReview: may ``user`` do ``verb`` on ``resource`` (``pods/log`` style)?"""
    plural, _, subresource = resource.partition("/")
    attributes = {"group": group, "resource": plural, "verb": verb, "name": name}
    if subresource:
        attributes["subresource"] = subresource
    if namespace is not None:
        attributes["namespace"] = namespace
    review = await kube.raw(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": list(groups), "resourceAttributes": attributes},
        },
    )
    return bool(review.get("status", {}).get("allowed"))


def role_binding(
    name: str, namespace: str, role: str, user: str, *, kind: str = "ClusterRole"
) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_V1,
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role},
        "subjects": [{"kind": "User", "apiGroup": RBAC, "name": user}],
    }


def teamaccess(
    name: str, namespace: str, role: str, members: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return custom_resource(
        "TeamAccess", name, namespace, {"role": role, "members": members, **extra}
    )


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_seconds(seconds: float) -> datetime:
    # Whole seconds: the API server keeps expiresAt as written, and a round value is what
    # people write.
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


async def binding_of(kube: KubeClient, name: str, namespace: str) -> dict[str, Any] | None:
    return await kube.get(RBAC_V1, "RoleBinding", binding_name(name), namespace)


async def wait_binding(
    kube: KubeClient, name: str, namespace: str, **expect: Any
) -> dict[str, Any]:
    """The TeamAccess's binding once it exists and its fields equal ``expect``."""

    async def probe() -> dict[str, Any] | None:
        found = await binding_of(kube, name, namespace)
        if found and all(found.get(key) == value for key, value in expect.items()):
            return found
        return None

    async def dump() -> Any:
        return {
            "binding": await binding_of(kube, name, namespace),
            "teamaccess": await kube.get(API_VERSION, "TeamAccess", name, namespace),
        }

    return await wait_for(probe, seconds=20, what=f"RoleBinding of {namespace}/{name}", dump=dump)


async def wait_no_binding(kube: KubeClient, name: str, namespace: str, seconds: float = 20) -> None:
    async def gone() -> bool:
        return await binding_of(kube, name, namespace) is None

    await wait_for(gone, seconds=seconds, what=f"no RoleBinding of {namespace}/{name}")


# -- fixtures -------------------------------------------------------------------------------


async def _apply_all(kube: KubeClient, documents: Sequence[dict[str, Any]]) -> None:
    for document in documents:
        await kube.apply(document)


@pytest.fixture(scope="session")
def team_rbac(control_plane: Any, installed_crds: None) -> None:
    """The team ClusterRoles and the admission policy, installed as the chart installs them,
    and in force: aggregated into the built-in `admin`, and the policy refusing."""

    async def install() -> None:
        async with KubeClient(
            Credentials.from_kubeconfig(str(control_plane.kubeconfig_path)),
            field_manager=TEST_MANAGER,
        ) as kube:
            await _apply_all(kube, [*team_cluster_roles(), *admission_policy()])

            async def aggregated() -> bool:
                builtin = await kube.get(RBAC_V1, "ClusterRole", "admin", None)
                return any(
                    "bind" in rule.get("verbs", []) and ADMIN in rule.get("resourceNames", [])
                    for rule in (builtin or {}).get("rules") or []
                )

            await wait_for(aggregated, seconds=SETUP_TIMEOUT, what="devserver-admin in admin")
            probe = teamaccess("policy-probe", "default", "admin", [user("nobody")])

            async def refusing() -> bool:
                # A user with no rights at all is refused by RBAC before admission runs; a dry
                # run as a group that may create but not bind shows the policy at work.
                async with client_as(control_plane, "policy-probe", ["devserver:probe"]) as who:
                    try:
                        await who.create(probe, dry_run=True)
                    except ForbiddenError as error:
                        return DENIED_MESSAGE in error.message
                    return False

            await kube.apply(
                {
                    "apiVersion": RBAC_V1,
                    "kind": "ClusterRole",
                    "metadata": {"name": "devserver-test-teamaccess-creator"},
                    "rules": [
                        {
                            "apiGroups": ["devserver.ecosphere.network"],
                            "resources": ["teamaccesses"],
                            "verbs": ["create"],
                        }
                    ],
                }
            )
            await kube.apply(
                {
                    "apiVersion": RBAC_V1,
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": "devserver-test-teamaccess-creator"},
                    "roleRef": {
                        "apiGroup": RBAC,
                        "kind": "ClusterRole",
                        "name": "devserver-test-teamaccess-creator",
                    },
                    "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": "devserver:probe"}],
                }
            )
            await wait_for(refusing, seconds=SETUP_TIMEOUT, what=f"{POLICY_NAME} in force")

    asyncio.run(install())


def _operator_kubeconfig(control_plane: Any, directory: Path) -> Path:
    """A kubeconfig for the operator's ServiceAccount, bound to exactly the shipped RBAC."""

    async def setup() -> str:
        async with KubeClient(
            Credentials.from_kubeconfig(str(control_plane.kubeconfig_path)),
            field_manager=TEST_MANAGER,
        ) as kube:
            namespace = {"apiVersion": "v1", "kind": "Namespace"}
            await kube.apply({**namespace, "metadata": {"name": OPERATOR_NAMESPACE}})
            await kube.apply(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": OPERATOR_SERVICE_ACCOUNT, "namespace": OPERATOR_NAMESPACE},
                }
            )
            await _apply_all(
                kube,
                operator_rbac(
                    InstallMode.CLUSTER_WIDE,
                    namespace=OPERATOR_NAMESPACE,
                    service_account=OPERATOR_SERVICE_ACCOUNT,
                ),
            )
            token = await kube.raw(
                "POST",
                f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/serviceaccounts/"
                f"{OPERATOR_SERVICE_ACCOUNT}/token",
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"expirationSeconds": 6 * 3600},
                },
            )
            return str(token["status"]["token"])

    token = asyncio.run(setup())
    admin = yaml.safe_load(Path(control_plane.kubeconfig_path).read_text(encoding="utf-8"))
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    cluster = {**cluster, "cluster": dict(cluster["cluster"])}
    authority = cluster["cluster"].pop("certificate-authority", None)
    if authority is not None:  # embed it: the kubeconfig lives elsewhere
        path = Path(control_plane.kubeconfig_path).parent / authority
        cluster["cluster"]["certificate-authority-data"] = base64.b64encode(
            path.read_bytes()
        ).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}
        ],
        "current-context": "operator",
    }
    target = directory / "operator-serviceaccount.kubeconfig"
    target.write_text(yaml.safe_dump(document), encoding="utf-8")
    target.chmod(0o600)
    return target


@pytest.fixture(scope="session")
def operator_account_kubeconfig(
    control_plane: Any, installed_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return _operator_kubeconfig(control_plane, tmp_path_factory.mktemp("operator-account"))


@pytest.fixture(scope="module")
def least_privileged_operator(
    operator: RunningOperator, team_rbac: None, operator_account_kubeconfig: Path
) -> Iterator[RunningOperator]:
    """The operator as the chart runs it: its ServiceAccount with only the shipped RBAC."""
    with paused(operator):
        running = start_operator(operator_account_kubeconfig)
        try:
            yield running
        finally:
            running.stop()
            assert not running.errors, running.errors


# -- behaviour ------------------------------------------------------------------------------


async def test_members_get_the_role_through_one_owned_binding(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    members = [
        user("alice@example.com"),
        {"kind": "Group", "name": "oidc:platform"},
        {"kind": "ServiceAccount", "name": "ci-deployer"},
    ]
    created = await kube.create(teamaccess("platform", namespace, "operator", members))
    binding = await wait_binding(kube, "platform", namespace)
    assert binding["roleRef"] == {
        "apiGroup": RBAC,
        "kind": "ClusterRole",
        "name": "devserver-operator",
    }
    assert {(s["kind"], s["name"]) for s in binding["subjects"]} == {
        ("User", "alice@example.com"),
        ("Group", "oidc:platform"),
        ("ServiceAccount", "ci-deployer"),
    }
    (owner,) = binding["metadata"]["ownerReferences"]
    assert owner["uid"] == created["metadata"]["uid"] and owner["controller"] is True

    body = await wait_for_condition(kube, "TeamAccess", "platform", namespace, "Ready", "True")
    status = body["status"]
    assert status["memberCount"] == 3 and status["expired"] is False
    assert status["bindings"] == [
        {"name": "devserver-team-platform", "clusterRole": "devserver-operator", "subjects": 3}
    ]
    assert condition(body, "Expired")["reason"] == "NoExpiry"
    assert condition(body, "Reconciling") is None and condition(body, "Stalled") is None

    assert await may(
        kube,
        "alice@example.com",
        "create",
        "mcpservers",
        group="devserver.ecosphere.network",
        namespace=namespace,
    )
    assert not await may(
        kube,
        "alice@example.com",
        "create",
        "mcpservers",
        group="devserver.ecosphere.network",
        namespace="default",
    )
    assert not await may(
        kube,
        "alice@example.com",
        "create",
        "teamaccesses",
        group="devserver.ecosphere.network",
        namespace=namespace,
    )


async def test_member_changes_follow_and_removed_members_lose_access(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    await kube.create(teamaccess("team", namespace, "viewer", [user("ann"), user("ben")]))
    await wait_binding(kube, "team", namespace)
    assert await may(
        kube, "ben", "list", "mcpservers", group="devserver.ecosphere.network", namespace=namespace
    )

    await kube.apply(teamaccess("team", namespace, "viewer", [user("ann"), user("cid")]))
    binding = await wait_binding(
        kube,
        "team",
        namespace,
        subjects=[
            {"kind": "User", "apiGroup": RBAC, "name": "ann"},
            {"kind": "User", "apiGroup": RBAC, "name": "cid"},
        ],
    )
    assert len(binding["subjects"]) == 2
    assert not await may(
        kube, "ben", "list", "mcpservers", group="devserver.ecosphere.network", namespace=namespace
    )
    assert await may(
        kube, "cid", "list", "mcpservers", group="devserver.ecosphere.network", namespace=namespace
    )


async def test_a_role_change_replaces_the_binding_under_the_same_name(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    await kube.create(teamaccess("lead", namespace, "viewer", [user("dana")]))
    before = await wait_binding(kube, "lead", namespace)
    await kube.apply(teamaccess("lead", namespace, "admin", [user("dana")]))
    after = await wait_binding(
        kube, "lead", namespace, roleRef={"apiGroup": RBAC, "kind": "ClusterRole", "name": ADMIN}
    )
    assert after["metadata"]["uid"] != before["metadata"]["uid"]  # roleRef is immutable
    assert await may(kube, "dana", "get", "secrets", namespace=namespace)


async def test_deleting_the_teamaccess_removes_the_binding_by_the_operator_itself(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    await kube.create(teamaccess("temp", namespace, "viewer", [user("eve")]))
    await wait_binding(kube, "temp", namespace)
    # Garbage collection races the operator for the binding: when it wins, the operator sees
    # nothing left to delete. A finalizer of the test's keeps the binding (terminating) until
    # the operator has had its turn, so the operator's own delete is observed every run.
    name = binding_name("temp")
    path = f"/namespaces/{namespace}/rolebindings/{name}"

    async def set_finalizers(finalizers: list[str] | None) -> None:
        patch = {"metadata": {"finalizers": finalizers}}
        await kube.merge_patch(RBAC_V1, "RoleBinding", name, namespace, patch)

    await set_finalizers(["tests.devserver.ecosphere.network/hold"])
    cursor = AuditCursor.at_end(control_plane.local.audit_log_path)

    async def deleted_by_the_operator() -> bool:
        requests = cursor.requests(OPERATOR_IDENTITY)
        return any(verb == "delete" and path in uri for verb, uri in requests)

    try:
        await kube.delete(API_VERSION, "TeamAccess", "temp", namespace)
        await wait_for(deleted_by_the_operator, seconds=20, what="the operator's delete")
    finally:
        await set_finalizers(None)
    await wait_no_binding(kube, "temp", namespace)
    assert not await may(
        kube, "eve", "list", "mcpservers", group="devserver.ecosphere.network", namespace=namespace
    )


async def test_an_expiry_in_the_past_never_creates_a_binding(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    cursor = AuditCursor.at_end(control_plane.local.audit_log_path)
    past = rfc3339(datetime.now(UTC) - timedelta(hours=1))
    await kube.create(teamaccess("late", namespace, "admin", [user("fay")], expiresAt=past))
    body = await wait_for_condition(kube, "TeamAccess", "late", namespace, "Expired", "True")
    assert condition(body, "Ready")["status"] == "False"
    assert condition(body, "Ready")["reason"] == "Expired"
    assert condition(body, "Stalled")["reason"] == "Expired"
    assert condition(body, "Reconciling") is None
    assert body["status"]["expired"] is True and body["status"]["memberCount"] == 0
    assert "bindings" not in body["status"]
    assert await binding_of(kube, "late", namespace) is None
    writes = [u for v, u in cursor.writes(OPERATOR_IDENTITY) if "/rolebindings" in u]
    assert writes == []


async def test_access_ends_at_expiry_and_a_later_expiry_grants_it_again(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    ends = in_seconds(5)
    await kube.create(
        teamaccess("short", namespace, "viewer", [user("gus")], expiresAt=rfc3339(ends))
    )
    await wait_binding(kube, "short", namespace)
    body = await wait_for_condition(kube, "TeamAccess", "short", namespace, "Ready", "True")
    assert condition(body, "Expired")["status"] == "False"
    assert body["status"]["expiresAt"] == rfc3339(ends)

    await wait_no_binding(kube, "short", namespace, seconds=15)
    late_by = (datetime.now(UTC) - ends).total_seconds()
    assert late_by < 3.0, f"the binding outlived its expiry by {late_by:.1f} s"
    await wait_for_condition(kube, "TeamAccess", "short", namespace, "Expired", "True")

    later = rfc3339(in_seconds(3600))
    await kube.apply(teamaccess("short", namespace, "viewer", [user("gus")], expiresAt=later))
    await wait_binding(kube, "short", namespace)
    body = await wait_for_condition(kube, "TeamAccess", "short", namespace, "Ready", "True")
    assert condition(body, "Expired")["status"] == "False"
    assert condition(body, "Stalled") is None


async def test_expiry_while_the_operator_is_down_is_enforced_on_restart(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    ends = in_seconds(4)
    await kube.create(
        teamaccess("gap", namespace, "viewer", [user("hal")], expiresAt=rfc3339(ends))
    )
    await wait_binding(kube, "gap", namespace)
    least_privileged_operator.stop()
    try:
        await asyncio.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 1)
        assert await binding_of(kube, "gap", namespace) is not None  # nobody removed it yet
    finally:
        started = time.monotonic()
        start_in_place(least_privileged_operator)
    await wait_no_binding(kube, "gap", namespace, seconds=15)
    assert time.monotonic() - started < 15
    await wait_for_condition(kube, "TeamAccess", "gap", namespace, "Expired", "True")


async def test_a_foreign_rolebinding_of_the_same_name_is_never_taken_over(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    foreign = await kube.create(
        role_binding(binding_name("clash"), namespace, "view", "someone-else")
    )
    await kube.create(teamaccess("clash", namespace, "admin", [user("ivy")]))
    body = await wait_for_condition(
        kube, "TeamAccess", "clash", namespace, "Stalled", "True", reason="NameConflict"
    )
    assert binding_name("clash") in condition(body, "Stalled")["message"]
    assert condition(body, "Ready")["status"] == "False"
    await asyncio.sleep(least_privileged_operator.settings.resync_interval + 1)
    live = await binding_of(kube, "clash", namespace)
    assert live is not None
    assert live["metadata"]["uid"] == foreign["metadata"]["uid"]
    assert live["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]
    assert not await may(kube, "ivy", "get", "secrets", namespace=namespace)

    await kube.delete(RBAC_V1, "RoleBinding", binding_name("clash"), namespace)
    await wait_binding(
        kube, "clash", namespace, roleRef={"apiGroup": RBAC, "kind": "ClusterRole", "name": ADMIN}
    )
    await wait_for_condition(kube, "TeamAccess", "clash", namespace, "Ready", "True", seconds=20)


async def test_a_deleted_or_edited_binding_is_restored(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    await kube.create(teamaccess("keep", namespace, "viewer", [user("jo")]))
    first = await wait_binding(kube, "keep", namespace)
    await kube.delete(RBAC_V1, "RoleBinding", binding_name("keep"), namespace)

    async def recreated() -> dict[str, Any] | None:
        live = await binding_of(kube, "keep", namespace)
        return live if live and live["metadata"]["uid"] != first["metadata"]["uid"] else None

    await wait_for(recreated, seconds=15, what="the deleted binding to come back")
    await kube.merge_patch(
        RBAC_V1,
        "RoleBinding",
        binding_name("keep"),
        namespace,
        {"subjects": [{"kind": "User", "apiGroup": RBAC, "name": "intruder"}]},
    )
    await wait_binding(
        kube, "keep", namespace, subjects=[{"kind": "User", "apiGroup": RBAC, "name": "jo"}]
    )
    assert not await may(
        kube,
        "intruder",
        "list",
        "mcpservers",
        group="devserver.ecosphere.network",
        namespace=namespace,
    )


async def test_a_service_account_of_another_namespace_is_refused_even_without_the_policy(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    outsider = teamaccess(
        "outsider",
        namespace,
        "viewer",
        [{"kind": "ServiceAccount", "name": "robot", "namespace": "elsewhere"}],
    )
    with pytest.raises(InvalidError, match="own namespace"):
        await kube.create(outsider, dry_run=True)  # the admission policy's second rule

    # Clusters older than 1.30 have no policy: the operator refuses on its own.
    binding = await kube.get(
        "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", POLICY_NAME, None
    )
    assert binding is not None
    await kube.delete(
        "admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", POLICY_NAME, None
    )
    try:

        async def admitted() -> dict[str, Any] | None:
            try:
                return await kube.create(outsider)
            except InvalidError:
                return None

        await wait_for(admitted, seconds=15, what="the policy binding to be gone", interval=0.5)
    finally:
        await kube.apply(admission_policy()[1])
    body = await wait_for_condition(
        kube, "TeamAccess", "outsider", namespace, "Stalled", "True", reason="ForeignServiceAccount"
    )
    message = condition(body, "Stalled")["message"]
    assert "spec.members[0].namespace" in message and "'elsewhere'" in message
    assert await binding_of(kube, "outsider", namespace) is None

    async def refused_again() -> bool:
        try:
            await kube.create(
                {**outsider, "metadata": {**outsider["metadata"], "name": "again"}}, dry_run=True
            )
        except InvalidError:
            return True
        return False

    await wait_for(refused_again, seconds=15, what="the policy binding back in force", interval=0.5)


async def test_an_idle_teamaccess_costs_no_writes(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    await kube.create(
        teamaccess("idle", namespace, "viewer", [user("kim")], expiresAt=rfc3339(in_seconds(3600)))
    )
    await wait_binding(kube, "idle", namespace)
    await wait_for_condition(kube, "TeamAccess", "idle", namespace, "Ready", "True")
    await asyncio.sleep(1)  # the events of our own writes come back once
    cursor = AuditCursor.at_end(control_plane.local.audit_log_path)
    await asyncio.sleep(least_privileged_operator.settings.resync_interval * 2 + 1)
    requests = [
        r for r in cursor.requests(OPERATOR_IDENTITY) if f"/namespaces/{namespace}/" in r[1]
    ]
    assert [r for r in requests if r[0] not in ("get", "list", "watch")] == []
    assert [r for r in requests if r[0] == "get"] == []  # the watch cache answers


async def test_printer_columns_show_role_members_and_expiry(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    ends = rfc3339(in_seconds(3600))
    await kube.create(
        teamaccess("cols", namespace, "operator", [user("lu"), user("mo")], expiresAt=ends)
    )
    await wait_for_condition(kube, "TeamAccess", "cols", namespace, "Ready", "True")
    with control_plane.http_client() as client:
        table = client.get(
            f"/apis/{API_VERSION}/namespaces/{namespace}/teamaccesses/cols",
            headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
        ).json()
    names = [column["name"] for column in table["columnDefinitions"]]
    row = dict(zip(names, table["rows"][0]["cells"], strict=True))
    assert (row["Ready"], row["Role"], row["Members"]) == ("True", "operator", 2)
    # A "date" column shows an age, and an age of a future time reads "<invalid>"; the expiry
    # is only useful as the time itself.
    assert row["Expires"] == ends
