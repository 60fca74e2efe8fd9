"""The admission policy that keeps TeamAccess from laundering the operator's rights.

The operator may bind the three team roles anywhere it reconciles. Without a check, anyone who
may create a TeamAccess would get any of those roles through the operator, whatever they hold
themselves. This ValidatingAdmissionPolicy restores Kubernetes' own rule for RoleBindings: a
TeamAccess that grants role R in namespace N is admitted only if its author may ``bind`` the
ClusterRole ``devserver-R`` in N, which the API server's authorizer answers (CEL ``authorizer``).

Why only ``bind``: Kubernetes also lets people bind a role whose every permission they hold, but
each authorizer check costs 350,000 of the 1,000,000 an expression may spend, too little to test
dozens of permissions. devserver-admin (and so the built-in ``admin``, through aggregation)
therefore carries ``bind`` on the three team roles; anyone else needs ``bind`` granted
explicitly. ``escalate`` is not accepted: by itself it grants nothing, and whoever holds it
together with write access to roles can give themselves ``bind`` anyway.

ValidatingAdmissionPolicy is GA (``admissionregistration.k8s.io/v1``) since Kubernetes 1.30,
the minimum version for this policy. Pure functions: no I/O.
"""

from __future__ import annotations

from typing import Any

from devserver_operator.api import GROUP
from devserver_operator.api.teamaccess import CLUSTER_ROLE_FOR

POLICY_NAME = "devserver-teamaccess-bind-check"
ADMISSION_API_VERSION = "admissionregistration.k8s.io/v1"
MINIMUM_KUBERNETES_VERSION = "1.30"

DENIED_MESSAGE = "may not grant this role through a TeamAccess"
"""Part of every refusal, whatever the details: a stable string to look for."""
SERVICE_ACCOUNT_NAMESPACE_MESSAGE = (
    "a TeamAccess binds only ServiceAccounts of its own namespace: "
    "spec.members[].namespace must be empty or the TeamAccess's namespace"
)

_ROLE_MAP = "{" + ", ".join(f"'{role}': '{name}'" for role, name in CLUSTER_ROLE_FOR.items()) + "}"
_BIND_CHECK = (
    "authorizer.group('rbac.authorization.k8s.io').resource('clusterroles')"
    ".namespace(request.namespace).name(variables.clusterRole).check('bind').allowed()"
)
_DENIED_EXPRESSION = (
    "'you (' + request.userInfo.username + ') " + DENIED_MESSAGE + ": granting role ' + "
    "object.spec.role + ' needs permission to bind the ClusterRole ' + variables.clusterRole + "
    "' in namespace ' + request.namespace + ' (namespace admins have it)'"
)
_LABELS = {
    "app.kubernetes.io/name": "devserver-operator",
    "app.kubernetes.io/part-of": "devserver-operator",
    "app.kubernetes.io/component": "team-access",
}


def validating_admission_policy() -> dict[str, Any]:
    return {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": dict(_LABELS)},
        "spec": {
            # A policy that cannot be evaluated must refuse: failing open would reopen the hole.
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["teamaccesses"],
                    }
                ]
            },
            # Updates that leave spec alone (labels, annotations, the operator's own bookkeeping)
            # grant nothing new and are not checked; status is a subresource and never matches.
            "matchConditions": [
                {
                    "name": "changes-who-gets-what",
                    "expression": "request.operation == 'CREATE' || object.spec != oldObject.spec",
                }
            ],
            "variables": [
                {"name": "clusterRole", "expression": f"{_ROLE_MAP}[object.spec.role]"},
            ],
            "validations": [
                {
                    "expression": _BIND_CHECK,
                    "message": f"You {DENIED_MESSAGE}: you need permission to bind its "
                    "ClusterRole in this namespace.",
                    "messageExpression": _DENIED_EXPRESSION,
                    "reason": "Forbidden",
                },
                {
                    # The CRD's CEL rules cannot see metadata.namespace; admission can. Unlike
                    # CRD rules, admission sees the object untyped: no __namespace__ escaping.
                    "expression": "object.spec.members.all(m, m.kind != 'ServiceAccount' || "
                    "!has(m.namespace) || m.namespace == request.namespace)",
                    "message": SERVICE_ACCOUNT_NAMESPACE_MESSAGE,
                    "reason": "Invalid",
                },
            ],
        },
    }


def validating_admission_policy_binding() -> dict[str, Any]:
    return {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": dict(_LABELS)},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }


def admission_policy() -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its cluster-wide binding, as the chart ships them."""
    return [validating_admission_policy(), validating_admission_policy_binding()]
