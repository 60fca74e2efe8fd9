"""The operator's own least-privilege RBAC, generated in one place for the Helm chart and the
kustomize manifests (``devserver-operator manifests``).

Two install modes:

- **cluster-wide**: one ClusterRole + ClusterRoleBinding; the operator watches every namespace.
- **single-namespace**: a Role + RoleBinding in each watched namespace and nothing
  cluster-scoped. kopf then cannot watch CustomResourceDefinitions or namespaces; it says so
  in a warning and works from what API discovery (open to every authenticated user) tells it.

Every rule names why the operator needs it. A unit test checks the rules against what the
handlers watch and the kinds the API client knows, so a new kind cannot ship without them.
Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from devserver_operator.api import ALL_KINDS, GROUP
from devserver_operator.api.teamaccess import CLUSTER_ROLE_FOR

SERVICE_ACCOUNT = "devserver-operator"
"""Name of the operator's ServiceAccount in the default install."""
ROLE_NAME = "devserver-operator-manager"
"""Name of the operator's (Cluster)Role and binding in the default install. Not
"devserver-operator": that is the TeamAccess preset role of the same name."""
DEFAULT_NAMESPACE = "devserver-system"
RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"

TEAM_ROLE_NAMES = tuple(sorted(CLUSTER_ROLE_FOR.values()))
"""The ClusterRoles a TeamAccess may bind (shipped by the chart). The operator holds `bind`
on exactly these, so it cannot hand out anything else (no privilege laundering)."""

ADMISSION_WEBHOOK_CONFIGURATION = "devserver-operator-admission"
"""The ValidatingWebhookConfiguration whose caBundle the operator keeps current. In the
default install also the name of the webhook's Service and of its (Cluster)Role."""
ADMISSION_SERVICE = ADMISSION_WEBHOOK_CONFIGURATION
ADMISSION_TLS_SECRET = f"{ADMISSION_WEBHOOK_CONFIGURATION}-tls"
"""The Secret with the webhook's CA and serving certificate, which the operator manages."""

PEERING_GROUP = "kopf.dev"
PEERING_VERSION = "v1"

WRITE_CHILDREN = ["get", "list", "watch", "create", "patch", "update", "delete"]
"""Children the operator owns and applies with server-side apply (patch), repairs (update,
when a child must be reset), and prunes (delete). Watched through kopf indexes."""


class InstallMode(StrEnum):
    CLUSTER_WIDE = "cluster-wide"
    SINGLE_NAMESPACE = "single-namespace"


def _rule(
    group: str, resources: Sequence[str], verbs: Sequence[str], **extra: Any
) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), **extra, "verbs": list(verbs)}


def operator_rules(mode: InstallMode, *, peering: bool = False) -> list[dict[str, Any]]:
    """The PolicyRules of the operator's (Cluster)Role in ``mode``."""
    plurals = [info.plural for info in ALL_KINDS]
    rules = [
        # Our custom resources: kopf watches them and patches its finalizer and annotations.
        _rule(GROUP, plurals, ["get", "list", "watch", "patch"]),
        _rule(GROUP, [f"{p}/status" for p in plurals], ["get", "patch"]),
        # Children carry blockOwnerDeletion ownerReferences, which the
        # OwnerReferencesPermissionEnforcement admission plugin allows only to those who
        # may update the owner's finalizers.
        _rule(GROUP, [f"{p}/finalizers" for p in plurals], ["update"]),
        # MCPServer workloads; a stdio server image runs in a StatefulSet.
        _rule("apps", ["deployments", "statefulsets"], WRITE_CHILDREN),
        _rule("", ["services", "serviceaccounts"], WRITE_CHILDREN),
        _rule("networking.k8s.io", ["networkpolicies"], WRITE_CHILDREN),
        _rule("policy", ["poddisruptionbudgets"], WRITE_CHILDREN),
        _rule("autoscaling", ["horizontalpodautoscalers"], WRITE_CHILDREN),
        # The OpenHands MCP configuration (written) and workflow sources (read).
        _rule("", ["configmaps"], ["get", "list", "watch", "create", "patch", "delete"]),
        # Referenced Secrets are read by name, for the pod hash, headers and API keys. No list
        # and no watch: the operator never sees Secrets nobody referenced. create, patch and
        # delete: the OpenHands Secret of a WorkflowIntegration (mcp.json with the headers of
        # its MCPServers), written only while the operator controls it, deleted only then.
        _rule("", ["secrets"], ["get", "create", "patch", "delete"]),
        # TeamAccess: RoleBindings to the team roles, and only to them.
        _rule(
            "rbac.authorization.k8s.io",
            ["rolebindings"],
            ["get", "list", "watch", "create", "patch", "delete"],
        ),
        _rule(
            "rbac.authorization.k8s.io",
            ["clusterroles"],
            ["bind"],
            resourceNames=list(TEAM_ROLE_NAMES),
        ),
        # The proxy of a stdio server image: a Role that lets it attach to (and restart) its
        # own server pod, by name. The API server lets nobody grant rights they do not hold,
        # so the operator holds these two on pods itself (it already creates Deployments,
        # i.e. runs any pod, which is more).
        _rule("rbac.authorization.k8s.io", ["roles"], WRITE_CHILDREN),
        _rule("", ["pods/attach"], ["create", "get"]),
        _rule("", ["pods"], ["delete"]),
        # AlertRule renders PrometheusRules where Prometheus Operator runs.
        _rule(
            "monitoring.coreos.com",
            ["prometheusrules"],
            ["get", "list", "watch", "create", "patch", "delete"],
        ),
        # The admission webhook asks whether the author of a spec may do what the spec makes
        # the operator do (read a Secret, run pods): no confused deputy.
        _rule("authorization.k8s.io", ["localsubjectaccessreviews"], ["create"]),
        # Events on our resources (kopf posts core Events; events.k8s.io for newer clients).
        _rule("", ["events"], ["create", "patch"]),
        _rule("events.k8s.io", ["events"], ["create", "patch"]),
    ]
    if mode is InstallMode.CLUSTER_WIDE:
        rules += [
            # kopf notices CRDs that appear later (optional APIs such as PrometheusRule) and
            # namespaces that come and go.
            _rule("apiextensions.k8s.io", ["customresourcedefinitions"], ["get", "list", "watch"]),
            _rule("", ["namespaces"], ["list", "watch"]),
            # The admission webhook's caBundle, kept equal to the CA of its serving certificate.
            _rule(
                "admissionregistration.k8s.io",
                ["validatingwebhookconfigurations"],
                ["get", "patch"],
                resourceNames=[ADMISSION_WEBHOOK_CONFIGURATION],
            ),
        ]
    if peering:
        plural = "clusterkopfpeerings" if mode is InstallMode.CLUSTER_WIDE else "kopfpeerings"
        # Keep-alives of the replicas: one is active, the others wait.
        rules.append(_rule(PEERING_GROUP, [plural], ["get", "list", "watch", "patch"]))
    return rules


def operator_rbac(
    mode: InstallMode,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    watched_namespaces: Sequence[str] = (),
    service_account: str = SERVICE_ACCOUNT,
    name: str = ROLE_NAME,
    labels: Mapping[str, str] | None = None,
    peering: bool = False,
) -> list[dict[str, Any]]:
    """The RBAC objects that let ServiceAccount ``namespace/service_account`` run the operator.

    Single-namespace mode needs ``watched_namespaces``: one Role and RoleBinding in each."""
    rules = operator_rules(mode, peering=peering)
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    meta_labels = dict(labels or {})
    if mode is InstallMode.CLUSTER_WIDE:
        return [
            {
                "apiVersion": RBAC_API_VERSION,
                "kind": "ClusterRole",
                "metadata": {"name": name, "labels": meta_labels},
                "rules": rules,
            },
            {
                "apiVersion": RBAC_API_VERSION,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name, "labels": meta_labels},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [subject],
            },
        ]
    if not watched_namespaces:
        raise ValueError("single-namespace mode needs at least one watched namespace")
    objects: list[dict[str, Any]] = []
    for watched in watched_namespaces:
        metadata = {"name": name, "namespace": watched, "labels": meta_labels}
        objects += [
            {"apiVersion": RBAC_API_VERSION, "kind": "Role", "metadata": metadata, "rules": rules},
            {
                "apiVersion": RBAC_API_VERSION,
                "kind": "RoleBinding",
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [subject],
            },
        ]
    return objects


def kopf_peering_crds() -> list[dict[str, Any]]:
    """kopf's peering CRDs, for more than one replica (one active, the others on standby).

    kopf does not install them itself. Their status holds one entry per running operator
    (identity -> priority, lifetime, last seen), hence the open status schema."""
    return [
        _peering_crd("ClusterKopfPeering", "Cluster"),
        _peering_crd("KopfPeering", "Namespaced"),
    ]


def _peering_crd(kind: str, scope: str) -> dict[str, Any]:
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{PEERING_GROUP}"},
        "spec": {
            "group": PEERING_GROUP,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": PEERING_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "kopf's keep-alives of the operator replicas.",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def admission_tls_rules(secret: str = ADMISSION_TLS_SECRET) -> list[dict[str, Any]]:
    """Rules of the Role in the operator's own namespace: its webhook's serving certificate."""
    return [
        # Read at start and on a timer; renewed 30 days before it expires.
        _rule("", ["secrets"], ["get", "update"], resourceNames=[secret]),
        # Created when missing. RBAC cannot limit create by name: in this namespace only.
        _rule("", ["secrets"], ["create"]),
    ]


def admission_webhook_rules(
    configuration: str = ADMISSION_WEBHOOK_CONFIGURATION,
) -> list[dict[str, Any]]:
    """The one cluster-scoped right of single-namespace mode: the caBundle of the operator's
    own webhook (in cluster-wide mode the ClusterRole carries the same rule)."""
    return [
        _rule(
            "admissionregistration.k8s.io",
            ["validatingwebhookconfigurations"],
            ["get", "patch"],
            resourceNames=[configuration],
        )
    ]


def _bound(
    kind: str,
    name: str,
    namespace: str | None,
    rules: list[dict[str, Any]],
    subject: Mapping[str, str],
    labels: Mapping[str, str],
) -> list[dict[str, Any]]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = dict(labels)
    return [
        {"apiVersion": RBAC_API_VERSION, "kind": kind, "metadata": metadata, "rules": rules},
        {
            "apiVersion": RBAC_API_VERSION,
            "kind": f"{kind}Binding",
            "metadata": dict(metadata),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
            "subjects": [dict(subject)],
        },
    ]


def admission_rbac(
    mode: InstallMode,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    service_account: str = SERVICE_ACCOUNT,
    name: str = ADMISSION_WEBHOOK_CONFIGURATION,
    secret: str = ADMISSION_TLS_SECRET,
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """What the admission webhook needs beyond ``operator_rbac``: a Role on its serving
    certificate's Secret in ``namespace`` and, in single-namespace mode (whose Roles cannot
    reach the cluster-scoped ValidatingWebhookConfiguration), a ClusterRole on that one
    object's caBundle."""
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    objects = _bound("Role", name, namespace, admission_tls_rules(secret), subject, labels or {})
    if mode is InstallMode.SINGLE_NAMESPACE:
        objects += _bound(
            "ClusterRole", name, None, admission_webhook_rules(name), subject, labels or {}
        )
    return objects
