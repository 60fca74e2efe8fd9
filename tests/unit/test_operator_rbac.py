"""The operator's own RBAC (manifests/operator_rbac.py): enough for every handler, no more.

The handlers and the API client are the evidence: whatever kopf watches must be listable and
watchable, and every kind the client can address must be covered or explicitly not needed.
A new kind that watches or writes something new fails here until the generator grants it.
"""

from __future__ import annotations

from typing import Any

import pytest

from devserver_operator.api import ALL_KINDS, GROUP
from devserver_operator.api.teamaccess import CLUSTER_ROLE_FOR
from devserver_operator.kinds import build_registry
from devserver_operator.kube.resources import RESOURCES
from devserver_operator.manifests.operator_rbac import (
    ROLE_NAME,
    InstallMode,
    kopf_peering_crds,
    operator_rbac,
    operator_rules,
)
from devserver_operator.settings import OperatorSettings

CLUSTER_SCOPED = {
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("", "namespaces"),
    ("kopf.dev", "clusterkopfpeerings"),
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
}

NOT_NEEDED = {
    # The client can address these, but the operator only ever needs them in ways covered
    # elsewhere: PVCs are referenced by pods (never read), cluster-wide SubjectAccessReviews are
    # not created (the admission webhook asks LocalSubjectAccessReviews, one namespace at a
    # time), and ClusterRoles are only bound (the `bind` rule).
    ("", "persistentvolumeclaims"),
    ("authorization.k8s.io", "subjectaccessreviews"),
    # Known to the client so that tests and `devserver-operator dev` can install the chart's
    # TeamAccess objects; the operator itself never reads or writes them (it binds roles
    # through RoleBindings only).
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
}


def granted(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in rules:
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def watched_resources() -> set[tuple[str, str]]:
    registry = build_registry(OperatorSettings())
    found = set()
    for handlers in (registry._watching, registry._changing, registry._indexing):
        for handler in handlers.get_all_handlers():
            selector = handler.selector
            if selector is not None:
                found.add((selector.group or "", selector.plural or selector.any_name))
    return found


@pytest.mark.parametrize("mode", list(InstallMode))
def test_everything_kopf_watches_is_listable_and_watchable(mode: InstallMode) -> None:
    rules = operator_rules(mode)
    watched = watched_resources()
    assert (GROUP, "mcpservers") in watched
    for group, plural in watched:
        assert {"list", "watch"} <= granted(rules, group, plural), (group, plural)


def test_every_kind_the_client_knows_is_granted_or_not_needed() -> None:
    rules = operator_rules(InstallMode.CLUSTER_WIDE)
    for resource in RESOURCES.values():
        group = resource.api_version.rpartition("/")[0]
        key = (group, resource.plural)
        if key in NOT_NEEDED or resource.kind == "ClusterRole":
            continue
        assert granted(rules, *key), f"no rule for {resource.api_version} {resource.kind}"


def test_custom_resources_status_and_finalizers() -> None:
    rules = operator_rules(InstallMode.CLUSTER_WIDE)
    for info in ALL_KINDS:
        assert granted(rules, GROUP, info.plural) == {"get", "list", "watch", "patch"}
        assert "patch" in granted(rules, GROUP, f"{info.plural}/status")
        assert granted(rules, GROUP, f"{info.plural}/finalizers") == {"update"}


def test_secrets_are_read_by_name_only_and_written_only_for_openhands() -> None:
    # No list, no watch, no update: referenced Secrets are read by name; create, patch and
    # delete serve the OpenHands Secret, which the code writes only while it controls it.
    for mode in InstallMode:
        assert granted(operator_rules(mode), "", "secrets") == {"get", "create", "patch", "delete"}


def test_bind_only_the_team_roles() -> None:
    rules = operator_rules(InstallMode.CLUSTER_WIDE)
    binds = [r for r in rules if "bind" in r["verbs"]]
    assert len(binds) == 1
    assert binds[0]["resources"] == ["clusterroles"]
    assert sorted(binds[0]["resourceNames"]) == sorted(CLUSTER_ROLE_FOR.values())
    assert not [r for r in rules if "escalate" in r["verbs"] or "impersonate" in r["verbs"]]


def test_the_admission_webhook_asks_per_namespace_and_patches_only_its_own_configuration() -> None:
    for mode in InstallMode:
        rules = operator_rules(mode)
        assert granted(rules, "authorization.k8s.io", "localsubjectaccessreviews") == {"create"}
        assert not granted(rules, "authorization.k8s.io", "subjectaccessreviews")
    [webhook_rule] = [
        rule
        for rule in operator_rules(InstallMode.CLUSTER_WIDE)
        if "validatingwebhookconfigurations" in rule["resources"]
    ]
    assert webhook_rule["resourceNames"] == ["devserver-operator-admission"]
    assert webhook_rule["verbs"] == ["get", "patch"]


def test_no_wildcards() -> None:
    for mode in InstallMode:
        for rule in operator_rules(mode, peering=True):
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule


def test_single_namespace_needs_nothing_cluster_scoped() -> None:
    rules = operator_rules(InstallMode.SINGLE_NAMESPACE, peering=True)
    for group, resource in CLUSTER_SCOPED:
        assert not granted(rules, group, resource), resource
    objects = operator_rbac(InstallMode.SINGLE_NAMESPACE, watched_namespaces=["a", "b"])
    assert [(o["kind"], o["metadata"]["namespace"]) for o in objects] == [
        ("Role", "a"),
        ("RoleBinding", "a"),
        ("Role", "b"),
        ("RoleBinding", "b"),
    ]


def test_single_namespace_without_a_namespace_is_refused() -> None:
    with pytest.raises(ValueError, match="watched namespace"):
        operator_rbac(InstallMode.SINGLE_NAMESPACE)


def test_peering_rules_only_with_peering() -> None:
    assert not granted(operator_rules(InstallMode.CLUSTER_WIDE), "kopf.dev", "clusterkopfpeerings")
    assert {"get", "list", "watch", "patch"} == granted(
        operator_rules(InstallMode.CLUSTER_WIDE, peering=True), "kopf.dev", "clusterkopfpeerings"
    )
    assert "patch" in granted(
        operator_rules(InstallMode.SINGLE_NAMESPACE, peering=True), "kopf.dev", "kopfpeerings"
    )
    names = sorted(crd["metadata"]["name"] for crd in kopf_peering_crds())
    assert names == ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"]


def test_the_operator_role_is_not_a_team_role() -> None:
    # "devserver-operator" is the TeamAccess preset role; holding `bind` on its own role would
    # let a TeamAccess hand out the operator's rights.
    assert ROLE_NAME not in CLUSTER_ROLE_FOR.values()
    cluster_role = operator_rbac(InstallMode.CLUSTER_WIDE)[0]
    assert cluster_role["metadata"]["name"] == ROLE_NAME
