"""Children of a stdio server image (``transport: stdio`` with ``image``): the image runs as it
is, and the operator's proxy attaches to its stdin and stdout (docs/mcpserver.md).

- a StatefulSet ``<name>-server`` with one pod, ``<name>-server-0``: a known name, so that the
  proxy's Role can name it. The server container keeps stdin open (``stdin: true``,
  ``stdinOnce: false``, ``tty: false``), runs the image's entrypoint (or ``command``) with its
  CMD (or ``args``), and gets every env, Secret and volume the spec names;
- a Deployment ``<name>`` with the proxy (``devserver-operator stdio-proxy``), the pods the
  Service selects: streamable HTTP on the MCP port, ready only once the server process has
  answered ``initialize``. It holds no Secret of the server's;
- the proxy's ServiceAccount, a Role with ``create`` on ``pods/attach`` (and ``get``, which
  API servers before 1.31 check for WebSocket attach) and ``delete`` on ``pods``, both limited
  to the server's pod name, and the RoleBinding;
- the Service and NetworkPolicy of every workload, for the proxy; and a NetworkPolicy that
  lets nothing in to the server pod (it listens on nothing) and applies ``networkPolicy.egress``
  to it.
"""

from __future__ import annotations

from typing import Any

from .common import child_labels, child_metadata, stable_hash
from .mcpserver import (
    APP_NAME,
    PORT_NAME,
    RESTRICTED_CONTAINER_SECURITY_CONTEXT,
    RESTRICTED_POD_SECURITY_CONTEXT,
    SERVER_CONTAINER,
    McpServerInputs,
    build_network_policy,
    build_pod_template,
    build_service,
    build_service_account,
    mounts,
    pod_volumes,
    server_runtime_fields,
)

SERVER_APP_NAME = "mcp-stdio-server"
PROXY_CONTAINER = "proxy"
PROXY_HEALTH_PATH = "/healthz"
PROXY_READY_PATH = "/readyz"
# A StatefulSet's pods carry the label controller-revision-hash=<name>-<10 characters>, a
# label value of at most 63 characters: the StatefulSet's name stays within 52.
MAX_STATEFULSET_NAME = 52
PROXY_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}
RBAC_GROUP = "rbac.authorization.k8s.io"


def statefulset_name(inputs: McpServerInputs) -> str:
    return _bounded(inputs.owner.name, "-server", MAX_STATEFULSET_NAME)


def server_pod_name(inputs: McpServerInputs) -> str:
    """The one pod the proxy attaches to (the StatefulSet's ordinal 0)."""
    return f"{statefulset_name(inputs)}-0"


def proxy_identity_name(inputs: McpServerInputs) -> str:
    """Name of the proxy's ServiceAccount, Role and RoleBinding."""
    return _bounded(inputs.owner.name, "-stdio-proxy", 253)


def _bounded(name: str, suffix: str, limit: int) -> str:
    if len(name) + len(suffix) <= limit:
        return name + suffix
    keep = limit - len(suffix) - 9
    return f"{name[:keep].rstrip('-.')}-{stable_hash(name, 8)}{suffix}"


def server_selector(inputs: McpServerInputs) -> dict[str, str]:
    labels = _server_labels(inputs)
    return {key: labels[key] for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def _server_labels(inputs: McpServerInputs) -> dict[str, str]:
    return child_labels(inputs.owner, SERVER_APP_NAME, "server")


def _proxy_labels(inputs: McpServerInputs) -> dict[str, str]:
    # The app name of every MCP server's Service selector: the Service reaches the proxy.
    return child_labels(inputs.owner, APP_NAME, "stdio-proxy")


def _replicas(inputs: McpServerInputs) -> int:
    return 0 if inputs.spec.replicas == 0 else 1


def build_attached_children(inputs: McpServerInputs) -> list[dict[str, Any]]:
    spec = inputs.spec
    children: list[dict[str, Any]] = []
    if spec.service_account is not None and spec.service_account.create:
        children.append(build_service_account(inputs))
    children += [
        build_proxy_service_account(inputs),
        build_proxy_role(inputs),
        build_proxy_role_binding(inputs),
        build_service(inputs),
    ]
    policy = spec.network_policy
    if policy is None or policy.enabled:
        children += [build_proxy_network_policy(inputs), build_server_network_policy(inputs)]
    children += [build_server_statefulset(inputs), build_proxy_deployment(inputs)]
    return children


def build_proxy_service_account(inputs: McpServerInputs) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": child_metadata(
            inputs.owner, proxy_identity_name(inputs), _proxy_labels(inputs)
        ),
        # Only the proxy pod mounts a token (it asks for one explicitly).
        "automountServiceAccountToken": False,
    }


def build_proxy_role(inputs: McpServerInputs) -> dict[str, Any]:
    pod = server_pod_name(inputs)
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "Role",
        "metadata": child_metadata(
            inputs.owner, proxy_identity_name(inputs), _proxy_labels(inputs)
        ),
        "rules": [
            # Attach to the server container. WebSocket attach is checked as create since
            # Kubernetes 1.31, as get before.
            {
                "apiGroups": [""],
                "resources": ["pods/attach"],
                "resourceNames": [pod],
                "verbs": ["create", "get"],
            },
            # Restart a server process the proxy cannot initialize (one an earlier proxy
            # initialized already): the StatefulSet starts a fresh pod.
            {
                "apiGroups": [""],
                "resources": ["pods"],
                "resourceNames": [pod],
                "verbs": ["delete"],
            },
        ],
    }


def build_proxy_role_binding(inputs: McpServerInputs) -> dict[str, Any]:
    name = proxy_identity_name(inputs)
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": child_metadata(inputs.owner, name, _proxy_labels(inputs)),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": inputs.owner.namespace}],
    }


def build_proxy_network_policy(inputs: McpServerInputs) -> dict[str, Any]:
    """Ingress as for every workload; the egress rules are the server's, not the proxy's
    (it reaches the API server, whose address a NetworkPolicy cannot name portably)."""
    policy = build_network_policy(inputs)
    policy["spec"]["policyTypes"] = ["Ingress"]
    policy["spec"].pop("egress", None)
    return policy


def build_server_network_policy(inputs: McpServerInputs) -> dict[str, Any]:
    spec = inputs.spec
    policy = spec.network_policy
    # Nothing may connect to the server pod: its stdio travels through the kubelet.
    policy_spec: dict[str, Any] = {
        "podSelector": {"matchLabels": server_selector(inputs)},
        "policyTypes": ["Ingress"],
        "ingress": [],
    }
    if policy is not None and policy.egress is not None:
        dns = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
        policy_spec["policyTypes"] = ["Ingress", "Egress"]
        policy_spec["egress"] = [dns, *policy.egress]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(inputs.owner, statefulset_name(inputs), _server_labels(inputs)),
        "spec": policy_spec,
    }


def build_server_statefulset(inputs: McpServerInputs) -> dict[str, Any]:
    template = build_pod_template(
        inputs, build_attached_server_container(inputs), _server_labels(inputs)
    )
    name = statefulset_name(inputs)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": child_metadata(inputs.owner, name, _server_labels(inputs)),
        "spec": {
            "replicas": _replicas(inputs),
            "serviceName": name,
            # Parallel: a pod that never became ready does not hold up its replacement.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": server_selector(inputs)},
            "revisionHistoryLimit": 3,
            "template": template,
        },
    }


def build_attached_server_container(inputs: McpServerInputs) -> dict[str, Any]:
    spec = inputs.spec
    assert spec.image is not None
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        # stdin stays open across attaches (stdinOnce: false); no TTY, so stdout carries only
        # the protocol and stderr the log.
        "stdin": True,
        "stdinOnce": False,
        "tty": False,
        **server_runtime_fields(spec),
    }
    # As Kubernetes has it: command replaces the entrypoint, args the CMD; without either
    # the image runs exactly as built.
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    if spec.env_from:
        container["envFrom"] = list(spec.env_from)
    # No port to probe: the proxy's readiness says whether the process answers. Probes a
    # user gives still apply.
    probes = spec.probes
    if probes is not None:
        for field, value in (
            ("startupProbe", probes.startup),
            ("readinessProbe", probes.readiness),
            ("livenessProbe", probes.liveness),
        ):
            if value:
                container[field] = value
    return container


def build_proxy_deployment(inputs: McpServerInputs) -> dict[str, Any]:
    spec = inputs.spec
    overrides = spec.pod_overrides
    http = {"port": PORT_NAME}
    container: dict[str, Any] = {
        "name": PROXY_CONTAINER,
        "image": inputs.proxy_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["devserver-operator", "stdio-proxy"],
        "args": [
            "--pod",
            server_pod_name(inputs),
            "--container",
            SERVER_CONTAINER,
            "--port",
            str(spec.port),
            "--path",
            spec.mcp_path,
        ],
        "env": [
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            }
        ],
        "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        "resources": PROXY_RESOURCES,
        "securityContext": RESTRICTED_CONTAINER_SECURITY_CONTEXT,
        "volumeMounts": mounts([]),
        "startupProbe": {
            "httpGet": {**http, "path": PROXY_HEALTH_PATH},
            "periodSeconds": 2,
            "failureThreshold": 30,
            "timeoutSeconds": 2,
        },
        # Ready once the server process answered initialize: the Deployment's availability
        # is the server's, and clients are not sent to a proxy with nothing behind it.
        "readinessProbe": {
            "httpGet": {**http, "path": PROXY_READY_PATH},
            "periodSeconds": 5,
            "failureThreshold": 2,
            "timeoutSeconds": 3,
        },
        "livenessProbe": {
            "httpGet": {**http, "path": PROXY_HEALTH_PATH},
            "periodSeconds": 20,
            "failureThreshold": 3,
            "timeoutSeconds": 5,
        },
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": proxy_identity_name(inputs),
        "automountServiceAccountToken": True,
        "securityContext": RESTRICTED_POD_SECURITY_CONTEXT,
        "containers": [container],
        "volumes": pod_volumes([]),
        "enableServiceLinks": False,
    }
    if overrides is not None and overrides.image_pull_secrets:
        # The proxy's image may come from the same private registry as the server's.
        pod_spec["imagePullSecrets"] = list(overrides.image_pull_secrets)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(inputs.owner, inputs.owner.name, _proxy_labels(inputs)),
        "spec": {
            "replicas": _replicas(inputs),
            "selector": {"matchLabels": _selector(_proxy_labels(inputs))},
            # Recreate: two proxies attached at once would both read the server's stdout.
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "template": {"metadata": {"labels": _proxy_labels(inputs)}, "spec": pod_spec},
        },
    }


def _selector(labels: dict[str, str]) -> dict[str, str]:
    return {key: labels[key] for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
