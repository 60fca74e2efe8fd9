"""No privilege escalation through TeamAccess, proven on the real API server with RBAC on.

Requesters act through impersonation (RBAC and admission judge the impersonated user exactly as
if they had logged in), the operator runs as its ServiceAccount with only the shipped RBAC, and
every claim is checked with SubjectAccessReviews or real requests, never by reading rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from devserver_operator.api import API_VERSION, GROUP
from devserver_operator.kube.client import KubeClient
from devserver_operator.kube.errors import ForbiddenError
from devserver_operator.manifests.admission import DENIED_MESSAGE
from devserver_operator.manifests.team_roles import ADMIN, OPERATOR, RULES_OF, TEAM_ROLES, VIEWER
from tests.integration.test_teamaccess import (  # fixtures are found by name
    OPERATOR_IDENTITY,
    RBAC,
    RBAC_V1,
    client_as,
    in_seconds,
    least_privileged_operator,
    may,
    operator_account_kubeconfig,
    rfc3339,
    role_binding,
    team_rbac,
    teamaccess,
    user,
    wait_binding,
)
from tests.support.operator_harness import RunningOperator, wait_for, wait_for_condition

pytestmark = pytest.mark.integration
__all__ = ["least_privileged_operator", "operator_account_kubeconfig", "team_rbac"]

ROLE_OF = {"viewer": VIEWER, "operator": OPERATOR, "admin": ADMIN}
TEAMACCESS_EDITOR = "devserver-test-teamaccess-editor"
"""A Role that may create and change TeamAccesses but holds nothing else: delegated management."""

Permission = tuple[str, str, str, str]  # group, resource (with /subresource), verb, name


def expand(rules: Iterable[dict[str, Any]]) -> set[Permission]:
    return {
        (group, resource, verb, name)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
    }


ROLE_PERMISSIONS = {name: expand(RULES_OF[name]()) for name in TEAM_ROLES}
BEYOND_THE_TEAM_ROLES: set[Permission] = {
    ("", "pods", "create", ""),
    ("", "pods/exec", "create", ""),
    ("apps", "deployments", "update", ""),
    ("", "configmaps", "create", ""),
    (RBAC, "rolebindings", "create", ""),
    (RBAC, "roles", "create", ""),
    (RBAC, "roles", "escalate", ""),
    (RBAC, "clusterroles", "bind", "admin"),
    (RBAC, "clusterroles", "bind", "cluster-admin"),
    ("", "serviceaccounts", "impersonate", ""),
    (GROUP, "teamaccesses/status", "patch", ""),
}
UNIVERSE = sorted(set().union(*ROLE_PERMISSIONS.values()) | BEYOND_THE_TEAM_ROLES)


async def rights(kube: KubeClient, who: str, namespace: str) -> set[Permission]:
    """Everything in UNIVERSE that ``who`` may do in ``namespace``, by SubjectAccessReview."""
    slots = asyncio.Semaphore(16)

    async def check(permission: Permission) -> Permission | None:
        group, resource, verb, name = permission
        async with slots:
            allowed = await may(
                kube, who, verb, resource, group=group, namespace=namespace, name=name
            )
        return permission if allowed else None

    results = await asyncio.gather(*(check(p) for p in UNIVERSE))
    return {p for p in results if p is not None}


async def settled_rights(kube: KubeClient, who: str, namespace: str) -> set[Permission]:
    """``rights`` once the API server's RBAC cache has caught up with bindings just created:
    two answers in a row that agree (bounded)."""
    previous = await rights(kube, who, namespace)
    for _ in range(20):
        await asyncio.sleep(0.5)
        current = await rights(kube, who, namespace)
        if current == previous:
            return current
        previous = current
    return previous


async def bindable(kube: KubeClient, who: str, namespace: str) -> set[str]:
    """The team roles ``who`` may bind in ``namespace`` (what Kubernetes asks before a
    RoleBinding, and what the admission policy asks before a TeamAccess)."""
    return {
        role
        for role in TEAM_ROLES
        if await may(kube, who, "bind", "clusterroles", group=RBAC, namespace=namespace, name=role)
    }


async def _aggregation_settled(kube: KubeClient) -> None:
    """Wait until the controller manager has aggregated the built-in `admin` role (from `edit`
    and from ours). Measured earlier, a namespace admin's "rights before" would miss what
    aggregation adds a moment later, and the matrix would report a gain that is not one."""

    async def settled() -> bool:
        role = await kube.get("rbac.authorization.k8s.io/v1", "ClusterRole", "admin", None)
        resources = {
            (group, resource)
            for rule in (role or {}).get("rules") or []
            for group in rule.get("apiGroups") or []
            for resource in rule.get("resources") or []
        }
        return ("", "pods/exec") in resources and any(
            group == "devserver.ecosphere.network" for group, _ in resources
        )

    await wait_for(settled, seconds=60, what="aggregation of the built-in admin ClusterRole")


# -- requesters -----------------------------------------------------------------------------

Setup = Callable[[KubeClient, str, str], Awaitable[None]]


async def _bind(kube: KubeClient, namespace: str, who: str, role: str, kind: str = "ClusterRole"):
    await kube.create(role_binding(f"{who}-{role}"[:253], namespace, role, who, kind=kind))


async def _editor_role(kube: KubeClient, namespace: str) -> None:
    await kube.apply(
        {
            "apiVersion": RBAC_V1,
            "kind": "Role",
            "metadata": {"name": TEAMACCESS_EDITOR, "namespace": namespace},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": ["teamaccesses"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch"],
                }
            ],
        }
    )


def _with_editor(*cluster_roles: str) -> Setup:
    async def setup(kube: KubeClient, namespace: str, who: str) -> None:
        await _bind(kube, namespace, who, TEAMACCESS_EDITOR, kind="Role")
        for role in cluster_roles:
            await _bind(kube, namespace, who, role)

    return setup


def _cluster_roles(*cluster_roles: str) -> Setup:
    async def setup(kube: KubeClient, namespace: str, who: str) -> None:
        for role in cluster_roles:
            await _bind(kube, namespace, who, role)

    return setup


async def _nothing(kube: KubeClient, namespace: str, who: str) -> None:
    del kube, namespace, who


async def _operator_binder(kube: KubeClient, namespace: str, who: str) -> None:
    await _with_editor()(kube, namespace, who)
    await kube.apply(
        {
            "apiVersion": RBAC_V1,
            "kind": "Role",
            "metadata": {"name": "devserver-test-bind-operator", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": [RBAC],
                    "resources": ["clusterroles"],
                    "verbs": ["bind"],
                    "resourceNames": [OPERATOR],
                }
            ],
        }
    )
    await _bind(kube, namespace, who, "devserver-test-bind-operator", kind="Role")


async def _cluster_admin(kube: KubeClient, namespace: str, who: str) -> None:
    del namespace
    binding = role_binding(who, "", "cluster-admin", who)
    await kube.create(
        {**binding, "kind": "ClusterRoleBinding", "metadata": {"name": f"devserver-test-{who}"}}
    )


REQUESTERS: dict[str, Setup] = {
    "nothing": _nothing,
    "teamaccess-editor": _with_editor(),
    "viewer+editor": _with_editor(VIEWER),
    "operator+editor": _with_editor(OPERATOR),
    "operator-binder": _operator_binder,
    "devserver-admin": _cluster_roles(ADMIN),
    "namespace-admin": _cluster_roles("admin"),
    "cluster-admin": _cluster_admin,
}

# What happens when each requester creates a TeamAccess that grants each role to themselves.
# forbidden: RBAC refuses the create; refused: the admission policy refuses it; granted: admitted
# and the operator binds. Holding a role's permissions is not enough: only `bind` is (see
# docs/security.md, "Why only bind").
G, R, F = "granted", "refused", "forbidden"
EXPECTED: dict[str, dict[str, str]] = {
    "nothing": {"viewer": F, "operator": F, "admin": F},
    "teamaccess-editor": {"viewer": R, "operator": R, "admin": R},
    "viewer+editor": {"viewer": R, "operator": R, "admin": R},
    "operator+editor": {"viewer": R, "operator": R, "admin": R},
    "operator-binder": {"viewer": R, "operator": G, "admin": R},
    "devserver-admin": {"viewer": G, "operator": G, "admin": G},
    "namespace-admin": {"viewer": G, "operator": G, "admin": G},
    "cluster-admin": {"viewer": G, "operator": G, "admin": G},
}


async def attempt(requester: KubeClient, document: dict[str, Any]) -> str:
    try:
        await requester.create(document)
    except ForbiddenError as error:
        return R if DENIED_MESSAGE in error.message else F
    return G


# -- tests ----------------------------------------------------------------------------------


async def test_a_viewer_who_may_edit_teamaccesses_still_cannot_grant_admin(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    await _editor_role(kube, namespace)
    await _with_editor(VIEWER)(kube, namespace, "vera")
    async with client_as(control_plane, "vera") as vera:
        with pytest.raises(ForbiddenError) as refused:
            await vera.create(teamaccess("promote-me", namespace, "admin", [user("vera")]))
    message = refused.value.message
    assert DENIED_MESSAGE in message
    assert "vera" in message and ADMIN in message and namespace in message
    assert await kube.get(API_VERSION, "TeamAccess", "promote-me", namespace) is None
    assert not await may(kube, "vera", "get", "secrets", namespace=namespace)

    async with client_as(control_plane, "walt") as walt:  # a plain viewer: RBAC says no first
        await _bind(kube, namespace, "walt", VIEWER)
        with pytest.raises(ForbiddenError) as forbidden:
            await walt.create(teamaccess("nope", namespace, "viewer", [user("walt")]))
    assert DENIED_MESSAGE not in forbidden.value.message


async def test_changing_an_admin_teamaccess_needs_bind_on_admin_too(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    await kube.create(teamaccess("admins", namespace, "admin", [user("root-ish")]))
    await _editor_role(kube, namespace)
    await _with_editor(VIEWER)(kube, namespace, "xena")
    async with client_as(control_plane, "xena") as xena:
        with pytest.raises(ForbiddenError, match=DENIED_MESSAGE):
            await xena.apply(teamaccess("admins", namespace, "admin", [user("xena")]))
        # Metadata-only changes grant nothing and are not checked.
        await xena.merge_patch(
            API_VERSION, "TeamAccess", "admins", namespace, {"metadata": {"labels": {"a": "b"}}}
        )


async def test_a_namespace_admin_can_grant_operator(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    await _bind(kube, namespace, "nadia", "admin")
    async with client_as(control_plane, "nadia") as nadia:
        await nadia.create(teamaccess("helpers", namespace, "operator", [user("otto")]))
    await wait_binding(kube, "helpers", namespace)
    assert await may(kube, "otto", "create", "mcpservers", group=GROUP, namespace=namespace)
    assert not await may(kube, "otto", "create", "teamaccesses", group=GROUP, namespace=namespace)
    assert not await may(kube, "otto", "get", "secrets", namespace=namespace)


async def test_at_expiry_the_access_review_flips_from_allowed_to_denied(
    least_privileged_operator: RunningOperator, kube: KubeClient, namespace: str
) -> None:
    ends = in_seconds(5)
    await kube.create(
        teamaccess("visit", namespace, "viewer", [user("pia")], expiresAt=rfc3339(ends))
    )
    await wait_binding(kube, "visit", namespace)
    assert await may(kube, "pia", "list", "mcpservers", group=GROUP, namespace=namespace)

    async def denied() -> bool:
        return not await may(kube, "pia", "list", "mcpservers", group=GROUP, namespace=namespace)

    await wait_for(denied, seconds=15, what="the access review to deny pia", interval=0.2)
    late_by = (datetime.now(UTC) - ends).total_seconds()
    assert late_by < 3.0, f"access outlived the expiry by {late_by:.1f} s"
    await wait_for_condition(kube, "TeamAccess", "visit", namespace, "Expired", "True")


async def test_the_operator_account_may_bind_only_the_team_roles(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    assert not await may(kube, OPERATOR_IDENTITY, "create", "clusterrolebindings", group=RBAC)
    assert not await may(kube, OPERATOR_IDENTITY, "create", "clusterroles", group=RBAC)
    # Roles, for the proxy of a stdio server image; the escalation check below bounds them.
    assert await may(kube, OPERATOR_IDENTITY, "create", "roles", group=RBAC, namespace=namespace)
    assert not await may(kube, OPERATOR_IDENTITY, "escalate", "clusterroles", group=RBAC)
    assert not await may(kube, OPERATOR_IDENTITY, "escalate", "roles", group=RBAC)
    assert not await may(kube, OPERATOR_IDENTITY, "impersonate", "users")
    for role in ("cluster-admin", "admin", "edit", "view"):
        assert not await may(
            kube,
            OPERATOR_IDENTITY,
            "bind",
            "clusterroles",
            group=RBAC,
            namespace=namespace,
            name=role,
        ), role
    for role in TEAM_ROLES:
        assert await may(
            kube,
            OPERATOR_IDENTITY,
            "bind",
            "clusterroles",
            group=RBAC,
            namespace=namespace,
            name=role,
        ), role

    # And the API server's own escalation check agrees, on real requests.
    async with client_as(control_plane, OPERATOR_IDENTITY, ["system:serviceaccounts"]) as account:
        with pytest.raises(ForbiddenError):
            await account.create(role_binding("grab", namespace, "cluster-admin", "mallory"))
        with pytest.raises(ForbiddenError):
            await account.create(
                {
                    **role_binding("grab", "", "cluster-admin", "mallory"),
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": "devserver-test-grab"},
                }
            )
        # Updates are checked like creates: no joining an existing powerful binding either.
        await kube.create(role_binding("powerful", namespace, "cluster-admin", "trusted"))
        with pytest.raises(ForbiddenError):
            await account.merge_patch(
                RBAC_V1,
                "RoleBinding",
                "powerful",
                namespace,
                {"subjects": [{"kind": "User", "apiGroup": RBAC, "name": "mallory"}]},
            )
        created = await account.create(role_binding("fine", namespace, VIEWER, "mallory"))
        assert created["roleRef"]["name"] == VIEWER
        # A Role holds only what the operator holds: the stdio proxy's (attach to and delete
        # one pod) passes; exec, or reading every Secret, is refused by the API server.
        proxy_rules = [
            {"apiGroups": [""], "resources": ["pods/attach"], "resourceNames": ["s-server-0"],
             "verbs": ["create", "get"]},
            {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["s-server-0"],
             "verbs": ["delete"]},
        ]  # fmt: skip
        await account.create(_role("proxy", namespace, proxy_rules))
        for name, rules in (
            ("exec", [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]),
            ("secrets", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
            ("star", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ):
            with pytest.raises(ForbiddenError):
                await account.create(_role(name, namespace, rules))


def _role(name: str, namespace: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_V1,
        "kind": "Role",
        "metadata": {"name": f"devserver-test-{name}", "namespace": namespace},
        "rules": rules,
    }


async def test_matrix_nobody_ends_with_more_than_they_had_plus_what_they_could_bind(
    least_privileged_operator: RunningOperator, control_plane: Any, kube: KubeClient, namespace: str
) -> None:
    await _editor_role(kube, namespace)
    await _aggregation_settled(kube)
    combinations = [(r, role) for r in REQUESTERS for role in ROLE_OF]
    at_once = asyncio.Semaphore(4)  # two shared cores; each combination runs ~150 reviews

    async def one(requester_kind: str, role: str) -> tuple[str, str, str]:
        async with at_once:
            return await _one(requester_kind, role)

    async def _one(requester_kind: str, role: str) -> tuple[str, str, str]:
        who = f"m-{requester_kind}-{role}".replace("+", "-")
        await REQUESTERS[requester_kind](kube, namespace, who)
        before = await settled_rights(kube, who, namespace)
        may_bind = await bindable(kube, who, namespace)
        async with client_as(control_plane, who) as requester:
            outcome = await attempt(requester, teamaccess(who, namespace, role, [user(who)]))
        if outcome == G:
            await wait_binding(kube, who, namespace)
        after = await rights(kube, who, namespace)
        reachable = before.union(*(ROLE_PERMISSIONS[r] for r in may_bind))
        gained = after - reachable
        assert not gained, f"{requester_kind} granting {role} gained {sorted(gained)}"
        if outcome == G:
            assert ROLE_PERMISSIONS[ROLE_OF[role]] <= after, f"{requester_kind}: {role} not granted"
        else:
            assert after == before, f"{requester_kind}: {role} changed rights without a grant"
        return requester_kind, role, outcome

    # Clusterrole bindings for cluster-admin are cluster-wide: clean them up whatever happens.
    try:
        results = await asyncio.gather(*(one(r, role) for r, role in combinations))
    finally:
        for role in ROLE_OF:
            await kube.delete(
                RBAC_V1, "ClusterRoleBinding", f"devserver-test-m-cluster-admin-{role}", None
            )
    table = {(r, role): outcome for r, role, outcome in results}
    expected = {(r, role): EXPECTED[r][role] for r, role in combinations}
    assert table == expected
