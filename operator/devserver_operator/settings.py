"""Operator settings, from the command line or DEVSERVER_OPERATOR_* environment variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from devserver_operator.admission.references import check_allow_list_entry

# supergateway runs a stdio MCP server as a child process and serves it over streamable HTTP
# or SSE. Its image ships Node.js, so npx-based servers run in it unchanged; Python servers use
# its uvx variant (set bridgeImage per cluster, or image per server).
DEFAULT_BRIDGE_IMAGE = "supercorp/supergateway:4.0.0"
# The proxy in front of stdio server images is the operator's own image (``devserver-operator
# stdio-proxy``); the chart and the kustomize base set the exact image the operator runs.
DEFAULT_STDIO_PROXY_IMAGE = "ghcr.io/ecospherenetwork/devserver-operator:0.1.0"


class OperatorSettings(BaseSettings):
    """Every setting of the operator, documented where it is declared."""

    model_config = SettingsConfigDict(
        env_prefix="DEVSERVER_OPERATOR_", extra="ignore", use_attribute_docstrings=True
    )

    namespaces: list[str] = Field(default_factory=list)
    """Namespaces to watch; every namespace when empty (cluster-wide mode)."""
    operator_namespace: str = "devserver-system"
    """Namespace the operator runs in; MCP server NetworkPolicies let it in for verification."""
    bridge_image: str = DEFAULT_BRIDGE_IMAGE
    """Default image of stdio servers: it must contain supergateway."""
    stdio_proxy_image: str = DEFAULT_STDIO_PROXY_IMAGE
    """Image of the proxy that attaches to stdio server images (the operator's own image)."""
    metrics_port: int = Field(default=8080, ge=0, le=65535)
    """Port of the Prometheus metrics endpoint; 0 disables it."""
    health_port: int = Field(default=8081, ge=0, le=65535)
    """Port of the liveness endpoint (/healthz); 0 disables it."""
    log_format: Literal["text", "json"] = "text"
    """Log line format."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Log level."""
    peering: str | None = None
    """kopf peering name for running several replicas with one active; none when empty."""
    peering_lifetime: int = Field(default=60, ge=12, le=3600)
    """Seconds a replica's keep-alive counts: a standby takes over at most this long after
    the active replica died. Replicas refresh theirs 5-10 s before it runs out."""
    verification_concurrency: int = Field(default=10, ge=1, le=200)
    """MCP handshakes that may run at the same time."""
    kubeconfig: str | None = None
    """Path of a kubeconfig; when empty, the files of KUBECONFIG merged as kubectl merges
    them, else ~/.kube/config, else the in-cluster service account."""
    context: str | None = None
    """Kubeconfig context to use; the current context when empty."""
    resync_interval: float = Field(default=60.0, ge=5.0)
    """Seconds between periodic checks of every object (drift, secret rotation, verification)."""
    cluster_domain: str = "cluster.local"
    """DNS domain of the cluster, for the URLs of MCP servers."""
    watch_server_timeout: int = Field(default=300, ge=1, le=3600)
    """Seconds the API server keeps one watch request open before ending it (the operator
    then resumes from where it was)."""
    watch_client_timeout: int = Field(default=330, ge=2, le=3900)
    """Seconds after which the operator ends a watch request itself, even if the server did
    not: this catches connections that died without a word (a vanished load balancer or
    NAT entry). Longer than ``watch_server_timeout``."""
    admission_port: int = Field(default=0, ge=0, le=65535)
    """HTTPS port of the admission webhook that checks MCPServers, WorkflowIntegrations and
    AlertRules against their author's own rights; 0 disables it."""
    admission_address: str = "0.0.0.0"  # noqa: S104 - the API server calls in from outside the pod
    """Address the admission webhook listens on."""
    admission_tls_secret: str | None = None
    """Secret in ``operator_namespace`` with the admission webhook's CA and serving
    certificate, which the operator creates when missing and renews 30 days before expiry
    (the chart: ``<release>-admission-tls``). Unused when ``admission_cert_file`` is set."""
    admission_service: str | None = None
    """Service through which the API server calls the admission webhook: the managed
    certificate is issued for ``<service>.<operator_namespace>.svc`` and
    ``<service>.<operator_namespace>.svc.<cluster_domain>``."""
    admission_dns_names: list[str] = Field(default_factory=list)
    """More DNS names of the managed certificate (a webhook called by URL, such as localhost)."""
    admission_cert_file: str | None = None
    """PEM serving certificate (chain) of the admission webhook, issued by someone else
    (cert-manager); re-read when it changes. Set, it wins over ``admission_tls_secret``."""
    admission_key_file: str | None = None
    """PEM private key of the serving certificate."""
    admission_ca_file: str | None = None
    """PEM CA that signed the serving certificate; written into the caBundle of
    ``admission_webhook_configuration`` at start and whenever the file changes."""
    admission_webhook_configuration: str | None = None
    """Name of the ValidatingWebhookConfiguration whose caBundle the operator keeps current;
    none when empty (then whoever installs it sets the caBundle)."""
    allowed_images: list[Annotated[str, AfterValidator(check_allow_list_entry)]] = Field(
        default_factory=list
    )
    """Images that authors without the right to create pods may run as MCPServers: prefixes
    ending in '/' (ghcr.io/org/), digests (sha256:...) or references with a digest."""
