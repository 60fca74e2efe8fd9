"""Invalid custom resources, shared by the offline tests (JSON schema + models) and the tests
against the real API server (schema + CEL). Each names the field or the message to expect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from devserver_operator.api.alertrule import (
    BUILTIN_NEEDS_EVALUATION_MESSAGE,
    EXPR_NEEDS_PROMETHEUS_MESSAGE,
    INTERVAL_TOO_SHORT_MESSAGE,
    ONE_CHANNEL_MESSAGE,
    ONE_CONDITION_MESSAGE,
    SMTP_LOGIN_NEEDS_TLS_MESSAGE,
    WEBHOOK_ONE_TARGET_MESSAGE,
)
from devserver_operator.api.mcpserver import (
    AUTOSCALING_RANGE_MESSAGE,
    EXACTLY_ONE_TARGET_MESSAGE,
    IMAGE_PINNED_MESSAGE,
    REMOTE_NO_WORKLOAD_MESSAGE,
    STDIO_IMAGE_ONE_PROCESS_MESSAGE,
    STDIO_NEEDS_IMAGE_OR_COMMAND_MESSAGE,
    STDIO_REMOTE_MESSAGE,
)
from devserver_operator.api.teamaccess import (
    ANONYMOUS_MEMBER_MESSAGE,
    SA_NAME_MESSAGE,
    SA_NAMESPACE_ONLY_MESSAGE,
    UNIQUE_MEMBERS_MESSAGE,
)
from devserver_operator.api.workflowintegration import (
    FIELD_SOURCE_MESSAGE,
    NEEDS_TARGET_MESSAGE,
    ONE_SOURCE_MESSAGE,
    WORKFLOWS_NEED_N8N_MESSAGE,
)

# "schema": the OpenAPI part of the CRD rejects it (offline: jsonschema); "cel": only a CEL rule
# can (offline: the model, with the same message; online: the API server).
Layer = Literal["schema", "cel"]


@dataclass(frozen=True)
class InvalidCase:
    kind: str
    description: str
    spec: dict[str, Any]
    layer: Layer
    expect: str  # a field path (schema) or the rule's message (cel)
    name: str = "invalid"

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.description}".replace(" ", "-")


_IMAGE = "ghcr.io/example/server:1.0.0"
_N8N = {"url": "http://n8n:5678", "apiKeySecretRef": {"name": "n8n", "key": "apiKey"}}
_RULE = {"name": "Down", "builtin": {"condition": "MCPServerNotReady"}}
_SECRET_KEY = {"name": "alert-channels", "key": "k"}
_EMAIL = {"smtpHost": "smtp.example.com", "from": "alerts@example.com", "to": ["a@example.com"]}

INVALID_CASES: list[InvalidCase] = [
    # MCPServer
    InvalidCase(
        "MCPServer", "wrong type port", {"image": _IMAGE, "port": "http"}, "schema", "port"
    ),
    InvalidCase(
        "MCPServer",
        "bad enum transport",
        {"image": _IMAGE, "transport": "websocket"},
        "schema",
        "transport",
    ),
    InvalidCase(
        "MCPServer",
        "out of range replicas",
        {"image": _IMAGE, "replicas": -1},
        "schema",
        "replicas",
    ),
    InvalidCase(
        "MCPServer", "out of range port", {"image": _IMAGE, "port": 70000}, "schema", "port"
    ),
    InvalidCase(
        "MCPServer",
        "missing required volume source field",
        {"image": _IMAGE, "volumes": [{"name": "data"}]},
        "schema",
        "mountPath",
    ),
    InvalidCase(
        "MCPServer",
        "bad duration",
        {"image": _IMAGE, "verification": {"timeout": "soon"}},
        "schema",
        "timeout",
    ),
    InvalidCase(
        "MCPServer",
        "both image and url",
        {"image": _IMAGE, "url": "https://mcp.example.com/mcp"},
        "cel",
        EXACTLY_ONE_TARGET_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "neither image nor url",
        {"transport": "sse"},
        "cel",
        EXACTLY_ONE_TARGET_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "stdio remote",
        {
            "url": "https://mcp.example.com/mcp",
            "transport": "stdio",
        },
        "cel",
        STDIO_REMOTE_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "stdio without image or command",
        {"transport": "stdio"},
        "cel",
        STDIO_NEEDS_IMAGE_OR_COMMAND_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "stdio image with two replicas",
        {"transport": "stdio", "image": _IMAGE, "replicas": 2},
        "cel",
        STDIO_IMAGE_ONE_PROCESS_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "stdio image with autoscaling",
        {"transport": "stdio", "image": _IMAGE, "autoscaling": {"maxReplicas": 1}},
        "cel",
        STDIO_IMAGE_ONE_PROCESS_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "remote with replicas",
        {"url": "https://mcp.example.com/mcp", "replicas": 2},
        "cel",
        REMOTE_NO_WORKLOAD_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "image without tag",
        {"image": "ghcr.io/example/server"},
        "cel",
        IMAGE_PINNED_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "registry port is no tag",
        {"image": "localhost:5000/server"},
        "cel",
        IMAGE_PINNED_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "autoscaling range",
        {"image": _IMAGE, "autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        "cel",
        AUTOSCALING_RANGE_MESSAGE,
    ),
    InvalidCase(
        "MCPServer",
        "two volume sources",
        {
            "image": _IMAGE,
            "volumes": [
                {"name": "v", "mountPath": "/v", "emptyDir": {}, "configMap": {"name": "c"}}
            ],
        },
        "cel",
        "a volume needs exactly one of configMap, secret, emptyDir, persistentVolumeClaim",
    ),
    # WorkflowIntegration
    InvalidCase(
        "WorkflowIntegration",
        "wrong type workflows",
        {"n8n": _N8N, "workflows": "all"},
        "schema",
        "workflows",
    ),
    InvalidCase(
        "WorkflowIntegration",
        "missing api key ref",
        {"n8n": {"url": "http://n8n:5678"}},
        "schema",
        "apiKeySecretRef",
    ),
    InvalidCase(
        "WorkflowIntegration",
        "bad enum drift policy",
        {"n8n": _N8N, "driftPolicy": "Ignore"},
        "schema",
        "driftPolicy",
    ),
    InvalidCase(
        "WorkflowIntegration",
        "bad template",
        {"n8n": _N8N, "workflows": [{"name": "w", "template": {"name": "nope"}}]},
        "schema",
        "name",
    ),
    InvalidCase(
        "WorkflowIntegration",
        "bad workflow key",
        {
            "n8n": _N8N,
            "workflows": [{"name": "Not_A_Label", "template": {"name": "mcp-health-monitor"}}],
        },
        "schema",
        "name",
    ),
    InvalidCase(
        "WorkflowIntegration",
        "nothing to integrate",
        {"driftPolicy": "Report"},
        "cel",
        NEEDS_TARGET_MESSAGE,
    ),
    InvalidCase(
        "WorkflowIntegration",
        "workflows without n8n",
        {
            "openHands": {"configMapName": "oh"},
            "workflows": [{"name": "w", "template": {"name": "mcp-health-monitor"}}],
        },
        "cel",
        WORKFLOWS_NEED_N8N_MESSAGE,
    ),
    InvalidCase(
        "WorkflowIntegration",
        "two workflow sources",
        {
            "n8n": _N8N,
            "workflows": [
                {
                    "name": "w",
                    "template": {"name": "mcp-health-monitor"},
                    "configMapRef": {"name": "c", "key": "k"},
                }
            ],
        },
        "cel",
        ONE_SOURCE_MESSAGE,
    ),
    InvalidCase(
        "WorkflowIntegration",
        "credential field with secretKey and value",
        {
            "n8n": _N8N,
            "credentials": [
                {
                    "name": "c",
                    "type": "httpHeaderAuth",
                    "secretRef": {"name": "s"},
                    "fields": [{"field": "value", "secretKey": "k", "value": "v"}],
                }
            ],
        },
        "cel",
        FIELD_SOURCE_MESSAGE,
    ),
    # AlertRule
    InvalidCase("AlertRule", "missing rules", {"repeatInterval": "1h"}, "schema", "rules"),
    InvalidCase("AlertRule", "empty rules", {"rules": []}, "schema", "rules"),
    InvalidCase(
        "AlertRule",
        "bad severity",
        {"rules": [{**_RULE, "severity": "panic"}]},
        "schema",
        "severity",
    ),
    InvalidCase(
        "AlertRule", "bad duration", {"rules": [{**_RULE, "for": "5 minutes"}]}, "schema", "for"
    ),
    InvalidCase(
        "AlertRule", "bad alert name", {"rules": [{**_RULE, "name": "mcp-down"}]}, "schema", "name"
    ),
    InvalidCase(
        "AlertRule",
        "out of range rate limit",
        {
            "rules": [_RULE],
            "channels": [{"name": "c", "maxPerHour": 0, "webhook": {"url": "http://x"}}],
        },
        "schema",
        "maxPerHour",
    ),
    InvalidCase(
        "AlertRule",
        "expr and builtin",
        {"rules": [{**_RULE, "expr": "up == 0"}], "prometheusRule": {"enabled": True}},
        "cel",
        ONE_CONDITION_MESSAGE,
    ),
    InvalidCase(
        "AlertRule",
        "two channel kinds",
        {
            "rules": [_RULE],
            "channels": [
                {
                    "name": "c",
                    "webhook": {"url": "http://x"},
                    "teams": {"webhookUrlSecretRef": {"name": "s", "key": "k"}},
                }
            ],
        },
        "cel",
        ONE_CHANNEL_MESSAGE,
    ),
    InvalidCase(
        "AlertRule",
        "expr without prometheus",
        {"rules": [{"name": "Up", "expr": "up == 0"}], "prometheusRule": {"enabled": False}},
        "cel",
        EXPR_NEEDS_PROMETHEUS_MESSAGE,
    ),
    InvalidCase(
        "AlertRule",
        "builtin without evaluation",
        {"rules": [_RULE], "evaluation": {"enabled": False}},
        "cel",
        BUILTIN_NEEDS_EVALUATION_MESSAGE,
    ),
    InvalidCase(
        # PrometheusRule's Duration has no fractions; Prometheus would refuse the rule file.
        "AlertRule",
        "fractional prometheus duration",
        {"rules": [{**_RULE, "keepFiringFor": "1.5m"}]},
        "schema",
        "keepFiringFor",
    ),
    InvalidCase(
        "AlertRule",
        "recipient without domain",
        {"rules": [_RULE], "channels": [{"name": "mail", "email": {**_EMAIL, "to": ["oncall"]}}]},
        "schema",
        "to",
    ),
    InvalidCase(
        "AlertRule",
        "webhook with url and urlSecretRef",
        {
            "rules": [_RULE],
            "channels": [
                {"name": "n8n", "webhook": {"url": "http://x", "urlSecretRef": _SECRET_KEY}}
            ],
        },
        "cel",
        WEBHOOK_ONE_TARGET_MESSAGE,
    ),
    InvalidCase(
        "AlertRule",
        "webhook without target",
        {"rules": [_RULE], "channels": [{"name": "n8n", "webhook": {}}]},
        "cel",
        WEBHOOK_ONE_TARGET_MESSAGE,
    ),
    InvalidCase(
        "AlertRule",
        "smtp login without tls",
        {
            "rules": [_RULE],
            "channels": [
                {
                    "name": "mail",
                    "email": {
                        **_EMAIL,
                        "tls": "none",
                        "usernameSecretRef": _SECRET_KEY,
                        "passwordSecretRef": _SECRET_KEY,
                    },
                }
            ],
        },
        "cel",
        SMTP_LOGIN_NEEDS_TLS_MESSAGE,
    ),
    InvalidCase(
        "AlertRule",
        "evaluation interval below a second",
        {"rules": [_RULE], "evaluation": {"interval": "100ms"}},
        "cel",
        INTERVAL_TOO_SHORT_MESSAGE,
    ),
    # TeamAccess
    InvalidCase(
        "TeamAccess",
        "unknown role",
        {"role": "root", "members": [{"kind": "User", "name": "a"}]},
        "schema",
        "role",
    ),
    InvalidCase(
        "TeamAccess", "empty members", {"role": "viewer", "members": []}, "schema", "members"
    ),
    InvalidCase(
        "TeamAccess", "missing role", {"members": [{"kind": "User", "name": "a"}]}, "schema", "role"
    ),
    InvalidCase(
        "TeamAccess",
        "bad member kind",
        {"role": "viewer", "members": [{"kind": "Robot", "name": "a"}]},
        "schema",
        "kind",
    ),
    InvalidCase(
        "TeamAccess",
        "wrong type expiry",
        {"role": "viewer", "members": [{"kind": "User", "name": "a"}], "expiresAt": 5},
        "schema",
        "expiresAt",
    ),
    InvalidCase(
        "TeamAccess",
        "namespace on a user",
        {"role": "viewer", "members": [{"kind": "User", "name": "a", "namespace": "x"}]},
        "cel",
        SA_NAMESPACE_ONLY_MESSAGE,
    ),
    InvalidCase(
        "TeamAccess",
        "duplicate members",
        {
            "role": "viewer",
            "members": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "a"}],
        },
        "cel",
        UNIQUE_MEMBERS_MESSAGE,
    ),
    InvalidCase(
        "TeamAccess",
        "service account name not a DNS subdomain",
        {"role": "viewer", "members": [{"kind": "ServiceAccount", "name": "CI_Deployer"}]},
        "cel",
        SA_NAME_MESSAGE,
    ),
    InvalidCase(
        "TeamAccess",
        "anonymous user",
        {"role": "viewer", "members": [{"kind": "User", "name": "system:anonymous"}]},
        "cel",
        ANONYMOUS_MEMBER_MESSAGE,
    ),
    InvalidCase(
        "TeamAccess",
        "unauthenticated group",
        {"role": "viewer", "members": [{"kind": "Group", "name": "system:unauthenticated"}]},
        "cel",
        ANONYMOUS_MEMBER_MESSAGE,
    ),
    InvalidCase(
        "TeamAccess",
        "too many members",
        {"role": "viewer", "members": [{"kind": "User", "name": f"u{i}"} for i in range(101)]},
        "schema",
        "members",
    ),
]


def custom_resource(case: InvalidCase, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "devserver.ecosphere.network/v1alpha1",
        "kind": case.kind,
        "metadata": {"name": case.name, "namespace": namespace},
        "spec": case.spec,
    }
