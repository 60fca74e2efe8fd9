"""The three team roles a TeamAccess binds: devserver-viewer, devserver-operator, devserver-admin.

Each role contains the one below it, so binding a higher role never takes a right away. They
also flow into Kubernetes' built-in roles through aggregation labels, so people who already hold
``view``, ``edit`` or ``admin`` in a namespace see and use this project's resources there:

- devserver-viewer  -> view:  read-only; no Secrets (``view`` must never read Secrets).
- devserver-operator -> edit: also write MCPServer, WorkflowIntegration, AlertRule.
- devserver-admin   -> admin: also TeamAccess, Secrets, ``bind`` on the three team roles, and
  calling MCP tools from the console (``create`` on ``mcpservers/tools``).

The ``bind`` rule is what lets a namespace admin create a TeamAccess: the admission policy
(``admission.py``) admits a TeamAccess only if its author may bind the requested role in that
namespace. devserver-admin contains every permission of the three roles, so granting it
``bind`` on them adds nothing that Kubernetes would not already let its holder bind.

Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devserver_operator.api import GROUP
from devserver_operator.api.teamaccess import CLUSTER_ROLE_FOR

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_API_VERSION = f"{RBAC_GROUP}/v1"

VIEWER = CLUSTER_ROLE_FOR["viewer"]
OPERATOR = CLUSTER_ROLE_FOR["operator"]
ADMIN = CLUSTER_ROLE_FOR["admin"]
TEAM_ROLES = (VIEWER, OPERATOR, ADMIN)
"""The only ClusterRoles the operator may bind (its RBAC names them in ``resourceNames``)."""

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")

AGGREGATE_TO = {
    VIEWER: "rbac.authorization.k8s.io/aggregate-to-view",
    OPERATOR: "rbac.authorization.k8s.io/aggregate-to-edit",
    ADMIN: "rbac.authorization.k8s.io/aggregate-to-admin",
}

OUR_KINDS = ("mcpservers", "workflowintegrations", "alertrules", "teamaccesses")
CALL_TOOLS = ("mcpservers/tools", "create")
"""The console's "Try a tool" permission: ``create`` on a subresource the API server does not
serve, so it grants nothing but what the console asks about (a SubjectAccessReview as the
person). A tool call acts on the world with the server's own credentials, and a server's
header Secrets are only readable by admins anyway, so it belongs to devserver-admin."""
WORKLOAD_KINDS = ("mcpservers", "workflowintegrations", "alertrules")
"""What devserver-operator may change: everything but TeamAccess, which hands out rights."""

# The children the operator creates for the four kinds, and what a person looks at when
# something goes wrong with them (pods, replica sets, events).
CHILDREN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("services", "serviceaccounts", "configmaps", "pods", "events")),
    ("apps", ("deployments", "replicasets", "statefulsets")),
    ("networking.k8s.io", ("networkpolicies",)),
    ("policy", ("poddisruptionbudgets",)),
    ("autoscaling", ("horizontalpodautoscalers",)),
    ("events.k8s.io", ("events",)),
    ("monitoring.coreos.com", ("prometheusrules",)),
)


def _rule(
    group: str, resources: Sequence[str], verbs: Sequence[str], **extra: Any
) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), **extra, "verbs": list(verbs)}


def viewer_rules() -> list[dict[str, Any]]:
    """Read the four kinds, their status and their children. No Secrets."""
    return [
        _rule(GROUP, [*OUR_KINDS, *(f"{kind}/status" for kind in OUR_KINDS)], READ),
        *(_rule(group, resources, READ) for group, resources in CHILDREN),
    ]


def operator_rules() -> list[dict[str, Any]]:
    """devserver-viewer, plus writing the three workload kinds and reading pod logs."""
    return [
        *viewer_rules(),
        _rule(GROUP, WORKLOAD_KINDS, WRITE),
        _rule("", ["pods/log"], ["get"]),
    ]


def admin_rules() -> list[dict[str, Any]]:
    """devserver-operator, plus TeamAccess, the namespace's Secrets (the four kinds reference
    them; RBAC cannot narrow to "referenced"), binding the team roles in the namespace, and
    calling MCP tools from the console."""
    return [
        *operator_rules(),
        _rule(GROUP, ["teamaccesses"], WRITE),
        _rule(GROUP, [CALL_TOOLS[0]], [CALL_TOOLS[1]]),
        _rule("", ["secrets"], (*READ, *WRITE)),
        _rule(RBAC_GROUP, ["clusterroles"], ["bind"], resourceNames=list(TEAM_ROLES)),
    ]


RULES_OF = {VIEWER: viewer_rules, OPERATOR: operator_rules, ADMIN: admin_rules}


def team_cluster_role(name: str) -> dict[str, Any]:
    """One team ClusterRole by name (``devserver-viewer``, ``-operator`` or ``-admin``)."""
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "devserver-operator",
                "app.kubernetes.io/part-of": "devserver-operator",
                "app.kubernetes.io/component": "team-access",
                AGGREGATE_TO[name]: "true",
            },
            "annotations": {
                "devserver.ecosphere.network/description": _DESCRIPTIONS[name],
            },
        },
        "rules": RULES_OF[name](),
    }


def team_cluster_roles() -> list[dict[str, Any]]:
    """The three team ClusterRoles, lowest first, as the chart and manifests ship them."""
    return [team_cluster_role(name) for name in TEAM_ROLES]


_DESCRIPTIONS = {
    VIEWER: "TeamAccess role viewer: read MCPServers, WorkflowIntegrations, AlertRules, "
    "TeamAccesses and their children. No Secrets.",
    OPERATOR: "TeamAccess role operator: viewer, plus create, change and delete MCPServers, "
    "WorkflowIntegrations and AlertRules, and read pod logs.",
    ADMIN: "TeamAccess role admin: operator, plus TeamAccesses, Secrets, binding the team "
    "roles in the namespace, and calling MCP tools from the console.",
}
