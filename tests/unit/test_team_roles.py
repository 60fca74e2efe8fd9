"""The team ClusterRoles and the TeamAccess admission policy, read as a security specification:
each role contains the one below it, nothing grants more than its tier says, and the policy
asks the question Kubernetes asks before a RoleBinding (may the author bind this role here?)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kubernetes_validate
import pytest

from devserver_operator.api import ALL_KINDS, GROUP
from devserver_operator.api.teamaccess import CLUSTER_ROLE_FOR
from devserver_operator.kinds.mcpserver import CHILDREN as MCPSERVER_CHILDREN
from devserver_operator.manifests.admission import (
    DENIED_MESSAGE,
    MINIMUM_KUBERNETES_VERSION,
    POLICY_NAME,
    admission_policy,
)
from devserver_operator.manifests.operator_rbac import InstallMode, operator_rules
from devserver_operator.manifests.team_roles import (
    ADMIN,
    OPERATOR,
    TEAM_ROLES,
    VIEWER,
    team_cluster_roles,
)

KUBERNETES_VERSION = "1.35.0"
Permission = tuple[str, str, str, str]  # group, resource, verb, resourceName ("" = any)
READ = {"get", "list", "watch"}
ESCALATING_VERBS = {"escalate", "impersonate", "*"}


def permissions(rules: Iterable[dict[str, Any]]) -> set[Permission]:
    return {
        (group, resource, verb, name)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
    }


ROLES = {role["metadata"]["name"]: role for role in team_cluster_roles()}
GRANTS = {name: permissions(role["rules"]) for name, role in ROLES.items()}


def test_three_roles_named_as_teamaccess_binds_them() -> None:
    assert list(ROLES) == [VIEWER, OPERATOR, ADMIN] == list(TEAM_ROLES)
    assert set(CLUSTER_ROLE_FOR.values()) == set(ROLES)


def test_each_role_contains_the_one_below_and_adds_something() -> None:
    assert GRANTS[VIEWER] < GRANTS[OPERATOR] < GRANTS[ADMIN]


@pytest.mark.parametrize("name", TEAM_ROLES)
def test_no_wildcards_and_no_escalating_verbs(name: str) -> None:
    for group, resource, verb, _ in GRANTS[name]:
        assert "*" not in (group, resource)
        assert verb not in ESCALATING_VERBS


def test_viewer_only_reads() -> None:
    assert {verb for _, _, verb, _ in GRANTS[VIEWER]} == READ


@pytest.mark.parametrize("name", [VIEWER, OPERATOR])
def test_secrets_only_for_admin(name: str) -> None:
    assert not {p for p in GRANTS[name] if p[1] == "secrets"}
    assert ("", "secrets", "get", "") in GRANTS[ADMIN]


def test_viewer_reads_every_kind_and_every_child_the_operator_creates() -> None:
    for info in ALL_KINDS:
        assert (GROUP, info.plural, "list", "") in GRANTS[VIEWER], info.kind
    for child in MCPSERVER_CHILDREN:
        if child.group == "rbac.authorization.k8s.io":
            # The stdio proxy's Role and RoleBinding: RBAC objects stay out of the team roles
            # (aggregated into view, which does not read RBAC either).
            continue
        assert (child.group, child.plural, "get", "") in GRANTS[VIEWER], child.plural


def test_operator_changes_the_workload_kinds_but_not_teamaccess() -> None:
    for plural in ("mcpservers", "workflowintegrations", "alertrules"):
        assert (GROUP, plural, "create", "") in GRANTS[OPERATOR]
        assert (GROUP, plural, "delete", "") in GRANTS[OPERATOR]
    writes = {verb for g, r, verb, _ in GRANTS[OPERATOR] if (g, r) == (GROUP, "teamaccesses")}
    assert writes == READ


def test_nobody_writes_status_the_operator_owns_it() -> None:
    for grants in GRANTS.values():
        for _, resource, verb, _ in grants:
            assert not (resource.endswith("/status") and verb not in READ), resource


def test_admin_manages_teamaccess() -> None:
    for verb in ("create", "update", "patch", "delete"):
        assert (GROUP, "teamaccesses", verb, "") in GRANTS[ADMIN]


def test_only_admin_may_call_tools_from_the_console() -> None:
    call = (GROUP, "mcpservers/tools", "create", "")
    assert call in GRANTS[ADMIN]
    assert call not in GRANTS[OPERATOR] and call not in GRANTS[VIEWER]
    # Operators write MCPServers but never a subresource of them: nothing implies the call.
    assert not {p for p in GRANTS[OPERATOR] if p[1].startswith("mcpservers/") and p[2] not in READ}


def test_rbac_rights_are_bind_on_the_team_roles_only() -> None:
    rbac = {p for p in GRANTS[ADMIN] if p[0] == "rbac.authorization.k8s.io"}
    assert rbac == {("rbac.authorization.k8s.io", "clusterroles", "bind", n) for n in TEAM_ROLES}
    for name in (VIEWER, OPERATOR):
        assert not {p for p in GRANTS[name] if p[0] == "rbac.authorization.k8s.io"}


def test_aggregation_into_the_matching_builtin_role_only() -> None:
    expected = {
        VIEWER: "rbac.authorization.k8s.io/aggregate-to-view",
        OPERATOR: "rbac.authorization.k8s.io/aggregate-to-edit",
        ADMIN: "rbac.authorization.k8s.io/aggregate-to-admin",
    }
    for name, role in ROLES.items():
        aggregation = {k for k in role["metadata"]["labels"] if "aggregate-to" in k}
        assert aggregation == {expected[name]}
        assert "aggregationRule" not in role  # fixed rules: nothing can be aggregated into them


@pytest.mark.parametrize("role", team_cluster_roles(), ids=lambda r: r["metadata"]["name"])
def test_roles_are_valid_kubernetes_objects(role: dict[str, Any]) -> None:
    kubernetes_validate.validate(role, KUBERNETES_VERSION, strict=True)


# -- admission policy ------------------------------------------------------------------------

POLICY, BINDING = admission_policy()


def test_policy_and_binding_belong_together_and_deny() -> None:
    assert POLICY["kind"] == "ValidatingAdmissionPolicy"
    assert BINDING["kind"] == "ValidatingAdmissionPolicyBinding"
    assert POLICY["metadata"]["name"] == POLICY_NAME == BINDING["spec"]["policyName"]
    assert BINDING["spec"]["validationActions"] == ["Deny"]
    assert "paramRef" not in BINDING["spec"] and "matchResources" not in BINDING["spec"]


def test_policy_fails_closed() -> None:
    assert POLICY["spec"]["failurePolicy"] == "Fail"


def test_policy_matches_create_and_update_of_teamaccess_only() -> None:
    (rule,) = POLICY["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == [GROUP]
    assert rule["resources"] == ["teamaccesses"]  # not teamaccesses/status: the operator's
    assert sorted(rule["operations"]) == ["CREATE", "UPDATE"]


def test_policy_asks_for_bind_on_the_requested_role_in_the_request_namespace() -> None:
    bind_check = POLICY["spec"]["validations"][0]["expression"]
    assert ".resource('clusterroles')" in bind_check
    assert ".namespace(request.namespace)" in bind_check
    assert ".check('bind').allowed()" in bind_check
    assert "escalate" not in bind_check
    role_map = POLICY["spec"]["variables"][0]["expression"]
    for role, cluster_role in CLUSTER_ROLE_FOR.items():
        assert f"'{role}': '{cluster_role}'" in role_map


def test_every_expression_stays_within_the_authorizer_cost_limit() -> None:
    # An authorizer check costs 350,000 of the 1,000,000 one expression may spend.
    for validation in POLICY["spec"]["validations"]:
        for key in ("expression", "messageExpression"):
            assert validation.get(key, "").count(".check(") <= 2


def test_refusals_say_what_to_do() -> None:
    validation = POLICY["spec"]["validations"][0]
    assert validation["reason"] == "Forbidden"
    assert DENIED_MESSAGE in validation["message"]
    assert DENIED_MESSAGE in validation["messageExpression"]


def test_policy_needs_a_kubernetes_with_validating_admission_policy_v1() -> None:
    assert POLICY["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert MINIMUM_KUBERNETES_VERSION == "1.30"


@pytest.mark.parametrize("document", admission_policy(), ids=lambda d: d["kind"])
def test_policy_documents_are_valid_kubernetes_objects(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


# -- the operator's own RBAC, as far as TeamAccess depends on it ------------------------------


@pytest.mark.parametrize("mode", list(InstallMode))
def test_operator_may_bind_exactly_the_team_roles_and_never_escalate(mode: InstallMode) -> None:
    grants = permissions(operator_rules(mode))
    binds = {p for p in grants if p[2] == "bind"}
    assert binds == {("rbac.authorization.k8s.io", "clusterroles", "bind", n) for n in TEAM_ROLES}
    assert not {p for p in grants if p[2] in ESCALATING_VERBS}
    other_rbac = {
        p
        for p in grants
        if p[0] == "rbac.authorization.k8s.io"
        and p[1] not in ("rolebindings", "roles")
        and p[2] != "bind"
    }
    assert other_rbac == set()  # no ClusterRoles or ClusterRoleBindings of its making
    # Roles only for the stdio proxy: the API server lets the operator put into a Role only
    # what it holds itself, and on pods it holds exactly what the proxy's Role names.
    on_pods = {p for p in grants if p[0] == "" and p[1].startswith("pods")}
    assert on_pods == {
        ("", "pods/attach", "create", ""),
        ("", "pods/attach", "get", ""),
        ("", "pods", "delete", ""),
    }
    assert not {p for p in grants if p[1] in ("pods/exec", "pods/portforward", "pods/proxy")}
    for verb in ("create", "patch", "delete"):
        assert ("rbac.authorization.k8s.io", "rolebindings", verb, "") in grants
