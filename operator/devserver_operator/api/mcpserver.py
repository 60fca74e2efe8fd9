"""MCPServer: run (image) or register (url) one MCP server, verified by a real handshake."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from . import k8s_types as k8s
from .base import (
    AnnotationMap,
    ApiModel,
    DnsLabel,
    Duration,
    LabelMap,
    ObjectName,
    list_map,
    parse_duration,
)
from .conditions import Condition
from .refs import SecretKeyRef

Transport = Literal["streamable-http", "sse", "stdio"]

# A tag or a digest must close the reference. The tag part may not contain '/', which keeps a
# registry port (localhost:5000/img) from passing for a tag.
IMAGE_PINNED_PATTERN = r"^[^\s]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$"
IMAGE_PINNED_MESSAGE = (
    "image must pin a tag or digest (e.g. ghcr.io/org/server:1.2.3); "
    "an untagged image silently means :latest"
)
EXACTLY_ONE_TARGET_MESSAGE = (
    "set exactly one of image (run a workload) or url (remote server); "
    "only stdio servers may leave both empty, to run in the bridge image"
)
STDIO_REMOTE_MESSAGE = "transport stdio cannot be remote: a url must speak streamable-http or sse"
STDIO_NEEDS_IMAGE_OR_COMMAND_MESSAGE = (
    "transport stdio needs an image (run as it is, its entrypoint being the server) or a "
    "command (run by the bridge in the bridge image)"
)
STDIO_IMAGE_ONE_PROCESS_MESSAGE = (
    "a stdio server image runs one server process behind one proxy: replicas may be 0 or 1, "
    "and autoscaling is not available"
)
REMOTE_NO_WORKLOAD_MESSAGE = (
    "command, args, env, envFrom, volumes, replicas and autoscaling apply only to a workload, "
    "not to a remote url"
)
AUTOSCALING_RANGE_MESSAGE = "autoscaling.maxReplicas must be at least autoscaling.minReplicas"
URL_PATTERN = r"^https?://[^\s/?#]+([/?#][^\s]*)?$"


class ConfigMapVolumeSource(ApiModel):
    """Files from a ConfigMap."""

    name: ObjectName
    """Name of the ConfigMap."""
    items: list[k8s.KeyToPath] | None = Field(default=None, max_length=256)
    """Keys to project; all keys when empty."""
    optional: bool | None = None
    """Start the pod even if the ConfigMap is missing."""


class SecretVolumeSource(ApiModel):
    """Files from a Secret, for servers that read credentials from disk."""

    secret_name: ObjectName
    """Name of the Secret."""
    items: list[k8s.KeyToPath] | None = Field(default=None, max_length=256)
    """Keys to project; all keys when empty."""
    optional: bool | None = None
    """Start the pod even if the Secret is missing."""


class EmptyDirVolumeSource(ApiModel):
    """Scratch space that lives as long as the pod."""

    medium: Literal["", "Memory"] | None = None
    """Memory for a tmpfs; empty for the node's disk."""
    size_limit: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?)?$")
    """Upper bound of the volume's size, e.g. 1Gi."""


class PvcVolumeSource(ApiModel):
    """A PersistentVolumeClaim that already exists in the namespace."""

    claim_name: ObjectName
    """Name of the PersistentVolumeClaim."""


class McpVolume(ApiModel):
    """A volume together with where it is mounted, so no volume is accepted but never mounted."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.configMap), has(self.secret), has(self.emptyDir), "
                    "has(self.persistentVolumeClaim)].filter(x, x).size() == 1",
                    "message": "a volume needs exactly one of configMap, secret, emptyDir, "
                    "persistentVolumeClaim",
                }
            ]
        }
    }

    name: DnsLabel
    """Name of the volume, unique within the server."""
    mount_path: str = Field(pattern=r"^/", max_length=4096)
    """Absolute path in the server container."""
    sub_path: str | None = Field(default=None, max_length=4096)
    """Mount only this path inside the volume."""
    read_only: bool | None = None
    """Mount read-only (Secrets and ConfigMaps always are)."""
    config_map: ConfigMapVolumeSource | None = None
    """Files from a ConfigMap."""
    secret: SecretVolumeSource | None = None
    """Files from a Secret."""
    empty_dir: EmptyDirVolumeSource | None = None
    """Scratch space for the pod's lifetime."""
    persistent_volume_claim: PvcVolumeSource | None = None
    """An existing PersistentVolumeClaim."""

    @model_validator(mode="after")
    def _exactly_one_source(self) -> McpVolume:
        sources = [self.config_map, self.secret, self.empty_dir, self.persistent_volume_claim]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "a volume needs exactly one of configMap, secret, emptyDir, persistentVolumeClaim"
            )
        return self


class Autoscaling(ApiModel):
    """A HorizontalPodAutoscaler; replicas is then left to it and never reset."""

    min_replicas: int = Field(default=1, ge=1, le=100)
    """Lower bound of replicas."""
    max_replicas: int = Field(ge=1, le=100)
    """Upper bound of replicas."""
    target_cpu_utilization_percentage: int = Field(default=80, ge=1, le=100)
    """Average CPU utilisation to aim for, in percent of the request."""


class ServiceAccountSpec(ApiModel):
    """The identity the server's pods run as."""

    create: bool = False
    """Create a ServiceAccount owned by this MCPServer (named after it unless name is set).
    An existing account of that name that this MCPServer does not own is never taken over:
    the server stalls with ServiceAccountConflict."""
    name: ObjectName | None = None
    """Name of the ServiceAccount to use or create; the namespace's default when empty."""
    annotations: AnnotationMap | None = None
    """Annotations on a created ServiceAccount, e.g. for cloud workload identity."""


class Scheduling(ApiModel):
    """Where the server's pods may run."""

    node_selector: dict[str, str] | None = None
    """Node labels the pods require."""
    tolerations: list[k8s.Toleration] | None = Field(default=None, max_length=64)
    """Taints the pods tolerate."""
    affinity: k8s.Affinity | None = None
    """Node and pod (anti-)affinity."""
    topology_spread_constraints: list[k8s.TopologySpreadConstraint] | None = Field(
        default=None, max_length=16
    )
    """How replicas spread across zones or nodes."""
    priority_class_name: ObjectName | None = None
    """PriorityClass of the pods."""


class PodOverrides(ApiModel):
    """Additions to the generated pod. Security settings default to Pod Security "restricted"."""

    labels: LabelMap | None = None
    """Extra pod labels (the operator's app.kubernetes.io labels win on conflict)."""
    annotations: AnnotationMap | None = None
    """Extra pod annotations."""
    image_pull_secrets: list[k8s.LocalObjectReference] | None = Field(default=None, max_length=16)
    """Secrets for pulling from private registries."""
    security_context: k8s.PodSecurityContext | None = None
    """Replaces the restricted pod security context."""
    container_security_context: k8s.SecurityContext | None = None
    """Replaces the restricted security context of every container."""
    termination_grace_period_seconds: int | None = Field(default=None, ge=0, le=3600)
    """Time given to the server to shut down."""


class Probes(ApiModel):
    """Container probes; a TCP check on the port is used when a probe is not given."""

    startup: k8s.Probe | None = None
    """Startup probe; the default waits up to 5 minutes, for npx/uvx servers that download first."""
    readiness: k8s.Probe | None = None
    """Readiness probe."""
    liveness: k8s.Probe | None = None
    """Liveness probe."""


class NetworkPolicySpec(ApiModel):
    """A NetworkPolicy around the server's pods."""

    enabled: bool = True
    """Create the NetworkPolicy."""
    ingress_from: list[k8s.NetworkPolicyPeer] | None = Field(default=None, max_length=32)
    """Who may connect, besides the operator; pods in the same namespace when empty."""
    egress: list[k8s.NetworkPolicyEgressRule] | None = Field(default=None, max_length=32)
    """Allowed egress (DNS is always allowed); unrestricted when not set."""


class Verification(ApiModel):
    """The MCP handshake the operator performs to prove the server speaks MCP."""

    enabled: bool = True
    """Perform initialize and tools/list; when false, Ready follows availability alone."""
    timeout: Duration = "30s"
    """Deadline for the whole handshake."""
    interval: Duration = "5m"
    """How often to verify again once verified."""


class HeaderValueSource(ApiModel):
    """Where a header's value comes from."""

    secret_key_ref: SecretKeyRef
    """A key of a Secret in the same namespace."""


class HttpHeader(ApiModel):
    """A header the operator (and the generated client configuration) sends to the server."""

    name: str = Field(pattern=r"^[A-Za-z0-9-]+$", max_length=256)
    """Header name, e.g. Authorization."""
    value_from: HeaderValueSource
    """Value taken from a Secret, never inline."""


class MCPServerSpec(ApiModel):
    """Desired state of an MCP server."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.image) && has(self.url)) && (has(self.image) || "
                    "has(self.url) || (has(self.transport) && self.transport == 'stdio'))",
                    "message": EXACTLY_ONE_TARGET_MESSAGE,
                },
                {
                    "rule": "!has(self.url) || !has(self.transport) || self.transport != 'stdio'",
                    "message": STDIO_REMOTE_MESSAGE,
                },
                {
                    # An empty list is present to has(): the model refuses it, so must this.
                    "rule": "!has(self.transport) || self.transport != 'stdio' || "
                    "has(self.image) || (has(self.command) && size(self.command) > 0)",
                    "message": STDIO_NEEDS_IMAGE_OR_COMMAND_MESSAGE,
                },
                {
                    "rule": "!has(self.transport) || self.transport != 'stdio' || "
                    "!has(self.image) || (!has(self.autoscaling) && "
                    "(!has(self.replicas) || self.replicas <= 1))",
                    "message": STDIO_IMAGE_ONE_PROCESS_MESSAGE,
                },
                {
                    "rule": "!has(self.url) || (!has(self.command) && !has(self.args) && "
                    "!has(self.env) && !has(self.envFrom) && !has(self.volumes) && "
                    "!has(self.replicas) && !has(self.autoscaling))",
                    "message": REMOTE_NO_WORKLOAD_MESSAGE,
                },
                {
                    # minReplicas may be left out (it defaults to 1): CEL has no defaults.
                    "rule": "!has(self.autoscaling) || self.autoscaling.maxReplicas >= "
                    "(has(self.autoscaling.minReplicas) ? self.autoscaling.minReplicas : 1)",
                    "message": AUTOSCALING_RANGE_MESSAGE,
                },
                {
                    "rule": "!has(self.image) || self.image.matches('"
                    + IMAGE_PINNED_PATTERN.replace("\\", "\\\\")
                    + "')",
                    "message": IMAGE_PINNED_MESSAGE,
                },
            ]
        }
    }

    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Container image of the server, pinned by tag or digest (workload mode). With transport
    stdio the image runs as it is (its entrypoint is the server; any base, scratch included)
    and a proxy attaches to its stdin and stdout; when empty, stdio servers run their command
    in the operator's bridge image (Node.js)."""
    url: str | None = Field(default=None, pattern=URL_PATTERN, max_length=2048)
    """URL of a server that already runs elsewhere (remote mode), including the MCP path."""
    transport: Transport = "streamable-http"
    """How the server speaks MCP; stdio servers are served as streamable HTTP by the operator's
    proxy (an image) or the bridge (a command without an image)."""
    port: int = Field(default=8080, ge=1, le=65535)
    """Port the server (or the bridge) listens on."""
    path: str | None = Field(default=None, pattern=r"^/[^\s?#]*$", max_length=1024)
    """HTTP path of the MCP endpoint; /mcp for streamable-http and /sse for sse when empty."""
    command: list[str] | None = Field(default=None, max_length=64)
    """Replaces the image's entrypoint, as in Kubernetes; for stdio without an image, the
    server command the bridge starts."""
    args: list[str] | None = Field(default=None, max_length=256)
    """Arguments; replace the image's CMD, as in Kubernetes (the entrypoint stays)."""
    env: list[k8s.EnvVar] | None = Field(default=None, max_length=256)
    """Environment variables; use valueFrom.secretKeyRef for secrets."""
    env_from: list[k8s.EnvFromSource] | None = Field(default=None, max_length=32)
    """Whole ConfigMaps or Secrets as environment variables."""
    volumes: list[McpVolume] | None = Field(
        default=None,
        max_length=32,
        json_schema_extra=list_map("name"),
    )
    """Volumes and where each one is mounted."""
    resources: k8s.ResourceRequirements | None = None
    """CPU and memory of the server container; modest defaults when empty."""
    replicas: int | None = Field(default=None, ge=0, le=100)
    """Number of pods; 0 stops the server. Ignored when autoscaling is set."""
    autoscaling: Autoscaling | None = None
    """Scale with a HorizontalPodAutoscaler instead of a fixed replica count."""
    session_affinity: Literal["None", "ClientIP"] | None = None
    """ClientIP keeps a client on one pod, for servers that keep session state."""
    service_account: ServiceAccountSpec | None = None
    """ServiceAccount to use or create."""
    scheduling: Scheduling | None = None
    """Node selection, tolerations, affinity and spread."""
    pod_overrides: PodOverrides | None = None
    """Labels, annotations, pull secrets and security context of the pod."""
    probes: Probes | None = None
    """Container probes."""
    network_policy: NetworkPolicySpec | None = None
    """Ingress and egress rules for the server's pods."""
    verification: Verification | None = None
    """The MCP handshake that proves the server works."""
    connection_timeout: Duration | None = None
    """Timeout for clients connecting to this server (written into generated client configs)."""
    headers: list[HttpHeader] | None = Field(
        default=None,
        max_length=16,
        json_schema_extra=list_map("name"),
    )
    """Headers sent to the server, e.g. Authorization for a remote server, from Secrets."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> MCPServerSpec:
        stdio = self.transport == "stdio"
        if (self.image is not None and self.url is not None) or (
            self.image is None and self.url is None and not stdio
        ):
            raise ValueError(EXACTLY_ONE_TARGET_MESSAGE)
        if self.url is not None and stdio:
            raise ValueError(STDIO_REMOTE_MESSAGE)
        if stdio and self.image is None and not self.command:
            raise ValueError(STDIO_NEEDS_IMAGE_OR_COMMAND_MESSAGE)
        if (
            stdio
            and self.image is not None
            and (self.autoscaling is not None or (self.replicas or 0) > 1)
        ):
            raise ValueError(STDIO_IMAGE_ONE_PROCESS_MESSAGE)
        workload_only = [
            self.command,
            self.args,
            self.env,
            self.env_from,
            self.volumes,
            self.replicas,
            self.autoscaling,
        ]
        if self.url is not None and any(field is not None for field in workload_only):
            raise ValueError(REMOTE_NO_WORKLOAD_MESSAGE)
        if self.autoscaling and self.autoscaling.max_replicas < self.autoscaling.min_replicas:
            raise ValueError(AUTOSCALING_RANGE_MESSAGE)
        if self.image is not None and not re.fullmatch(IMAGE_PINNED_PATTERN, self.image):
            raise ValueError(IMAGE_PINNED_MESSAGE)
        return self

    @property
    def remote(self) -> bool:
        return self.url is not None

    @property
    def attached(self) -> bool:
        """A stdio server image, run as it is, whose stdio the operator's proxy attaches to."""
        return self.transport == "stdio" and self.image is not None

    @property
    def mcp_path(self) -> str:
        if self.path is not None:
            return self.path
        return "/sse" if self.transport == "sse" else "/mcp"

    @property
    def verification_settings(self) -> Verification:
        return self.verification or Verification()

    @property
    def verification_timeout_seconds(self) -> float:
        return parse_duration(self.verification_settings.timeout)

    @property
    def verification_interval_seconds(self) -> float:
        return parse_duration(self.verification_settings.interval)


class ServerInfo(ApiModel):
    """What the server said about itself in its initialize answer."""

    name: str | None = None
    """serverInfo.name."""
    version: str | None = None
    """serverInfo.version."""
    protocol_version: str | None = None
    """Negotiated MCP protocol version."""
    capabilities: list[str] | None = None
    """Capabilities the server offers (tools, prompts, resources, logging, ...)."""


class ToolSummary(ApiModel):
    """One tool the server lists."""

    name: str
    """Tool name."""
    description: str | None = None
    """Tool description, shortened."""


MAX_TOOLS_IN_STATUS = 100


class MCPServerStatus(ApiModel):
    """Observed state of an MCP server."""

    observed_generation: int | None = None
    """The .metadata.generation last reconciled."""
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra=list_map("type"),
    )
    """Ready, Reconciling, Stalled, Available and Verified."""
    url: str | None = None
    """Where clients reach the server (cluster DNS of the Service, or the remote URL)."""
    transport: Transport | None = None
    """Transport clients use at url."""
    replicas: int | None = None
    """Pods that exist."""
    ready_replicas: int | None = None
    """Pods that are ready."""
    server_info: ServerInfo | None = None
    """Identity and capabilities from the last successful handshake."""
    tools: list[ToolSummary] | None = Field(default=None, max_length=MAX_TOOLS_IN_STATUS)
    """Tools from the last successful handshake (first 100)."""
    tool_count: int | None = None
    """Number of tools the server lists (all of them)."""
    last_verified_time: datetime | None = None
    """When the last successful handshake finished."""
    config_hash: str | None = None
    """Hash of the referenced ConfigMaps and Secrets the pods were rolled for."""
