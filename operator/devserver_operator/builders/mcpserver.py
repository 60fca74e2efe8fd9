"""Children of an MCPServer: Deployment, Service, ServiceAccount, NetworkPolicy, PDB, HPA.

Remote servers (``url``) get no children at all: the operator only verifies them.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devserver_operator.api.mcpserver import MCPServerSpec, McpVolume
from devserver_operator.settings import DEFAULT_STDIO_PROXY_IMAGE

from .common import CONFIG_HASH_ANNOTATION, Owner, child_labels, child_metadata, stable_hash

APP_NAME = "mcp-server"
SERVER_CONTAINER = "server"
PORT_NAME = "mcp"
TMP_VOLUME = "devserver-tmp"

DEFAULT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
# npx/uvx servers download their package on first start; 5 s timeouts were a reported bug in
# other operators, so the startup probe allows up to 5 minutes before liveness takes over.
DEFAULT_STARTUP_PROBE: dict[str, Any] = {
    "periodSeconds": 5,
    "failureThreshold": 60,
    "timeoutSeconds": 3,
}
DEFAULT_READINESS_PROBE: dict[str, Any] = {
    "periodSeconds": 10,
    "failureThreshold": 3,
    "timeoutSeconds": 3,
}
DEFAULT_LIVENESS_PROBE: dict[str, Any] = {
    "periodSeconds": 20,
    "failureThreshold": 3,
    "timeoutSeconds": 5,
}

RESTRICTED_POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass(frozen=True)
class McpServerInputs:
    """Everything a build needs besides the spec; the handler gathers it, the builder trusts it."""

    owner: Owner
    spec: MCPServerSpec
    bridge_image: str
    operator_namespace: str
    cluster_domain: str = "cluster.local"
    config_hash: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    proxy_image: str = DEFAULT_STDIO_PROXY_IMAGE


def selector_labels(owner: Owner) -> dict[str, str]:
    labels = child_labels(owner, APP_NAME, "server")
    return {key: labels[key] for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def server_url(owner: Owner, spec: MCPServerSpec, cluster_domain: str) -> str:
    """Where clients reach the server: the remote URL, or the Service's cluster DNS name."""
    if spec.url is not None:
        return spec.url
    host = f"{owner.name}.{owner.namespace}.svc.{cluster_domain}"
    return f"http://{host}:{spec.port}{spec.mcp_path}"


def served_transport(spec: MCPServerSpec) -> str:
    """The transport clients use: the bridge or the proxy serves stdio servers over
    streamable HTTP."""
    return "streamable-http" if spec.transport == "stdio" else spec.transport


def referenced_objects(spec: MCPServerSpec) -> tuple[set[str], set[str]]:
    """Names of the Secrets and ConfigMaps the pods read (their change rolls the pods)."""
    secrets: set[str] = set()
    config_maps: set[str] = set()
    # The Kubernetes schemas leave ``name`` optional in these references (the API server
    # refuses the Deployment without it): a reference without one reads nothing.
    for env in spec.env or []:
        source = env.get("valueFrom") or {}
        secrets.update(_referenced_name(source, "secretKeyRef"))
        config_maps.update(_referenced_name(source, "configMapKeyRef"))
    for env_from in spec.env_from or []:
        secrets.update(_referenced_name(env_from, "secretRef"))
        config_maps.update(_referenced_name(env_from, "configMapRef"))
    for volume in spec.volumes or []:
        if volume.secret is not None:
            secrets.add(volume.secret.secret_name)
        if volume.config_map is not None:
            config_maps.add(volume.config_map.name)
    return secrets, config_maps


def _referenced_name(source: Mapping[str, Any], field: str) -> list[str]:
    name = (source.get(field) or {}).get("name")
    return [name] if name else []


def config_hash(contents: Mapping[str, Mapping[str, str] | None]) -> str:
    """Hash of the referenced objects' data, keyed like ``secret/NAME`` and ``configmap/NAME``.

    A missing optional object hashes as None, so creating it later also rolls the pods."""
    return stable_hash(
        {key: dict(value) if value is not None else None for key, value in contents.items()}
    )


def build_children(inputs: McpServerInputs) -> list[dict[str, Any]]:
    """Every child the MCPServer needs, in apply order (identities first, workload last)."""
    spec = inputs.spec
    if spec.url is not None:
        return []
    if spec.attached:
        # Imported here: that module builds on this one's pod pieces.
        from .mcpserver_stdio import build_attached_children

        return build_attached_children(inputs)
    children: list[dict[str, Any]] = []
    if spec.service_account is not None and spec.service_account.create:
        children.append(build_service_account(inputs))
    children.append(build_service(inputs))
    policy = spec.network_policy
    if policy is None or policy.enabled:
        children.append(build_network_policy(inputs))
    if _max_replicas(spec) > 1:
        children.append(build_pod_disruption_budget(inputs))
    if spec.autoscaling is not None:
        children.append(build_horizontal_pod_autoscaler(inputs))
    children.append(build_deployment(inputs))
    return children


def _max_replicas(spec: MCPServerSpec) -> int:
    if spec.autoscaling is not None:
        return spec.autoscaling.max_replicas
    return 1 if spec.replicas is None else spec.replicas


def _labels(inputs: McpServerInputs, component: str = "server") -> dict[str, str]:
    return child_labels(inputs.owner, APP_NAME, component)


def service_account_name(inputs: McpServerInputs) -> str | None:
    account = inputs.spec.service_account
    if account is None:
        return None
    if account.name is not None:
        return account.name
    return inputs.owner.name if account.create else None


def build_service_account(inputs: McpServerInputs) -> dict[str, Any]:
    account = inputs.spec.service_account
    annotations = account.annotations if account is not None else None
    name = service_account_name(inputs) or inputs.owner.name
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": child_metadata(inputs.owner, name, _labels(inputs), annotations),
        # MCP servers rarely talk to the Kubernetes API; a pod that needs it opts in.
        "automountServiceAccountToken": False,
    }


def build_service(inputs: McpServerInputs) -> dict[str, Any]:
    spec = inputs.spec
    service_spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector_labels(inputs.owner),
        "ports": [
            {
                "name": PORT_NAME,
                "port": spec.port,
                "targetPort": PORT_NAME,
                "protocol": "TCP",
                "appProtocol": "http",
            }
        ],
    }
    if spec.session_affinity is not None:
        service_spec["sessionAffinity"] = spec.session_affinity
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(inputs.owner, inputs.owner.name, _labels(inputs)),
        "spec": service_spec,
    }


def build_network_policy(inputs: McpServerInputs) -> dict[str, Any]:
    spec = inputs.spec
    policy = spec.network_policy
    operator_peer = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": inputs.operator_namespace}
        }
    }
    peers = list(policy.ingress_from) if policy and policy.ingress_from else [{"podSelector": {}}]
    policy_spec: dict[str, Any] = {
        "podSelector": {"matchLabels": selector_labels(inputs.owner)},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [*peers, operator_peer],
                "ports": [{"protocol": "TCP", "port": spec.port}],
            }
        ],
    }
    if policy is not None and policy.egress is not None:
        dns = {
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
        policy_spec["policyTypes"] = ["Ingress", "Egress"]
        policy_spec["egress"] = [dns, *policy.egress]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(inputs.owner, inputs.owner.name, _labels(inputs)),
        "spec": policy_spec,
    }


def build_pod_disruption_budget(inputs: McpServerInputs) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(inputs.owner, inputs.owner.name, _labels(inputs)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(inputs.owner)},
        },
    }


def build_horizontal_pod_autoscaler(inputs: McpServerInputs) -> dict[str, Any]:
    scaling = inputs.spec.autoscaling
    assert scaling is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(inputs.owner, inputs.owner.name, _labels(inputs)),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": inputs.owner.name,
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def build_deployment(inputs: McpServerInputs) -> dict[str, Any]:
    spec = inputs.spec
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(inputs.owner)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "revisionHistoryLimit": 3,
        "template": build_pod_template(inputs),
    }
    # With an HPA the replica count is left out, so server-side apply never takes ownership of
    # it and never resets what the autoscaler chose.
    if spec.autoscaling is None:
        deployment_spec["replicas"] = 1 if spec.replicas is None else spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(inputs.owner, inputs.owner.name, _labels(inputs)),
        "spec": deployment_spec,
    }


def build_pod_template(
    inputs: McpServerInputs,
    container: dict[str, Any] | None = None,
    own_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The pod of the server: ``container`` (the server's own, by default) with the spec's
    volumes, account, overrides and scheduling. An attached stdio server's pod is the same
    pod with another container and labels (mcpserver_stdio)."""
    spec = inputs.spec
    overrides = spec.pod_overrides
    labels = {
        **(overrides.labels if overrides and overrides.labels else {}),
        **(own_labels if own_labels is not None else _labels(inputs)),
    }
    annotations = dict(overrides.annotations) if overrides and overrides.annotations else {}
    if inputs.config_hash is not None:
        annotations[CONFIG_HASH_ANNOTATION] = inputs.config_hash
    pod_spec: dict[str, Any] = {
        "securityContext": (
            overrides.security_context
            if overrides and overrides.security_context is not None
            else RESTRICTED_POD_SECURITY_CONTEXT
        ),
        "containers": [container if container is not None else build_server_container(inputs)],
        "volumes": pod_volumes(spec.volumes or []),
        "enableServiceLinks": False,
    }
    account = service_account_name(inputs)
    if account is not None:
        pod_spec["serviceAccountName"] = account
    else:
        pod_spec["automountServiceAccountToken"] = False
    if overrides is not None:
        if overrides.image_pull_secrets:
            pod_spec["imagePullSecrets"] = list(overrides.image_pull_secrets)
        if overrides.termination_grace_period_seconds is not None:
            pod_spec["terminationGracePeriodSeconds"] = overrides.termination_grace_period_seconds
    pod_spec.update(scheduling(spec))
    metadata: dict[str, Any] = {"labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": pod_spec}


def scheduling(spec: MCPServerSpec) -> dict[str, Any]:
    scheduling = spec.scheduling
    if scheduling is None:
        return {}
    fields: dict[str, Any] = {
        "nodeSelector": scheduling.node_selector,
        "tolerations": scheduling.tolerations,
        "affinity": scheduling.affinity,
        "topologySpreadConstraints": scheduling.topology_spread_constraints,
        "priorityClassName": scheduling.priority_class_name,
    }
    return {key: value for key, value in fields.items() if value}


def build_server_container(inputs: McpServerInputs) -> dict[str, Any]:
    spec = inputs.spec
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": spec.image or inputs.bridge_image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        **server_runtime_fields(spec),
        **_probes(spec),
    }
    if spec.transport == "stdio":
        container["command"] = ["supergateway"]
        container["args"] = bridge_arguments(spec)
    else:
        if spec.command:
            container["command"] = list(spec.command)
        if spec.args:
            container["args"] = list(spec.args)
    if spec.env_from:
        container["envFrom"] = list(spec.env_from)
    return container


def bridge_arguments(spec: MCPServerSpec) -> list[str]:
    """supergateway's arguments: run the stdio command, serve it over streamable HTTP.

    Stateful mode keeps one child process per client session; stateless mode would start the
    server (often an npx download) for every request."""
    command_line = shlex.join([*(spec.command or []), *(spec.args or [])])
    return [
        "--stdio",
        command_line,
        "--outputTransport",
        "streamableHttp",
        "--stateful",
        "--port",
        str(spec.port),
        "--streamableHttpPath",
        spec.mcp_path,
    ]


def server_runtime_fields(spec: MCPServerSpec) -> dict[str, Any]:
    """What the server container gets from the spec whichever way it runs (bridged or attached):
    its environment, resources, security context and mounts."""
    overrides = spec.pod_overrides
    return {
        "env": environment(spec),
        "resources": spec.resources or DEFAULT_RESOURCES,
        "securityContext": (
            overrides.container_security_context
            if overrides and overrides.container_security_context is not None
            else RESTRICTED_CONTAINER_SECURITY_CONTEXT
        ),
        "volumeMounts": mounts(spec.volumes or []),
    }


def environment(spec: MCPServerSpec) -> list[dict[str, Any]]:
    env = list(spec.env or [])
    names = {item["name"] for item in env}
    # The root filesystem is read-only; tools such as npm, uv and pip write below HOME.
    if "HOME" not in names:
        env.append({"name": "HOME", "value": "/tmp"})
    return env


def _probes(spec: MCPServerSpec) -> dict[str, Any]:
    tcp = {"tcpSocket": {"port": PORT_NAME}}
    probes = spec.probes
    return {
        "startupProbe": (
            probes.startup if probes and probes.startup else {**tcp, **DEFAULT_STARTUP_PROBE}
        ),
        "readinessProbe": (
            probes.readiness if probes and probes.readiness else {**tcp, **DEFAULT_READINESS_PROBE}
        ),
        "livenessProbe": (
            probes.liveness if probes and probes.liveness else {**tcp, **DEFAULT_LIVENESS_PROBE}
        ),
    }


def pod_volumes(volumes: list[McpVolume]) -> list[dict[str, Any]]:
    pod_volumes = [] if _user_mounts_tmp(volumes) else [{"name": TMP_VOLUME, "emptyDir": {}}]
    for volume in volumes:
        pod_volumes.append({"name": volume.name, **_volume_source(volume)})
    return pod_volumes


def _volume_source(volume: McpVolume) -> dict[str, Any]:
    if volume.config_map is not None:
        return {"configMap": volume.config_map.to_wire()}
    if volume.secret is not None:
        return {"secret": volume.secret.to_wire()}
    if volume.empty_dir is not None:
        return {"emptyDir": volume.empty_dir.to_wire()}
    assert volume.persistent_volume_claim is not None
    claim: dict[str, Any] = volume.persistent_volume_claim.to_wire()
    if volume.read_only:
        claim["readOnly"] = True
    return {"persistentVolumeClaim": claim}


def mounts(volumes: list[McpVolume]) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = (
        [] if _user_mounts_tmp(volumes) else [{"name": TMP_VOLUME, "mountPath": "/tmp"}]
    )
    for volume in volumes:
        mount: dict[str, Any] = {"name": volume.name, "mountPath": volume.mount_path}
        if volume.sub_path:
            mount["subPath"] = volume.sub_path
        read_only = volume.read_only
        if volume.config_map is not None or volume.secret is not None:
            read_only = True
        if read_only:
            mount["readOnly"] = True
        mounts.append(mount)
    return mounts


def _user_mounts_tmp(volumes: list[McpVolume]) -> bool:
    return any(volume.mount_path.rstrip("/") == "/tmp" for volume in volumes)
