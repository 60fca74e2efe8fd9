"""The console's own ClusterRole: it authenticates and impersonates, and nothing else writes.

Everything a person does through the console is a request made as that person (impersonation),
so RBAC judges it exactly as it would judge kubectl. The console's own identity needs only:

- ``create`` on TokenReviews: to learn who a bearer token belongs to;
- ``impersonate`` on users, groups, ServiceAccounts, and (authentication.k8s.io) uids and user
  extras: to act as that person;
- ``get``/``list``/``watch`` on the four kinds: the one shared watch per kind that feeds live
  updates. What it reads reaches a person only after a SelfSubjectAccessReview made as that
  person says they may list that kind in that namespace. The four kinds carry no Secret
  values (they refer to Secrets by name).

Impersonation is powerful: whoever controls the console's identity can act as anyone. The
chart keeps it off by default, runs it as its own ServiceAccount and Deployment, and
docs/security.md says so. Pure functions: no I/O.
"""

from __future__ import annotations

from typing import Any

from devserver_operator.api import ALL_KINDS, GROUP

CONSOLE_CLUSTER_ROLE = "devserver-console"
CONSOLE_SERVICE_ACCOUNT = "devserver-console"


def console_rules() -> list[dict[str, Any]]:
    return [
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["tokenreviews"],
            "verbs": ["create"],
        },
        {
            "apiGroups": [""],
            "resources": ["users", "groups", "serviceaccounts"],
            "verbs": ["impersonate"],
        },
        {
            "apiGroups": ["authentication.k8s.io"],
            # RBAC has no "userextras/<any key>" pattern (only "*/<subresource>"), and the
            # extra keys (credential-id, pod-name, ...) vary; "*" here is still only
            # `impersonate`, which this API group grants for uids and extras alone.
            "resources": ["*"],
            "verbs": ["impersonate"],
        },
        {
            "apiGroups": [GROUP],
            "resources": sorted(info.plural for info in ALL_KINDS),
            "verbs": ["get", "list", "watch"],
        },
    ]


def console_cluster_role() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": CONSOLE_CLUSTER_ROLE,
            "labels": {"app.kubernetes.io/name": "devserver-console"},
        },
        "rules": console_rules(),
    }


def console_rbac(name: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
    """The console's ClusterRole and its binding to the ServiceAccount ``namespace/name``, as
    the chart names them (``<release>-console``); the kustomize component ships these."""
    metadata = {"name": name, "labels": dict(labels)}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": metadata,
            "rules": console_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": metadata,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
