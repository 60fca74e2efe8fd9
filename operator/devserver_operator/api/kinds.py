"""The four kinds: names, models and printer columns in one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .alertrule import AlertRuleSpec, AlertRuleStatus
from .base import ApiModel
from .mcpserver import MCPServerSpec, MCPServerStatus
from .teamaccess import TeamAccessSpec, TeamAccessStatus
from .workflowintegration import WorkflowIntegrationSpec, WorkflowIntegrationStatus

GROUP = "devserver.ecosphere.network"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "devserver"


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec_model: type[ApiModel]
    status_model: type[ApiModel]
    description: str
    summary_columns: tuple[dict[str, Any], ...]
    root_validations: tuple[dict[str, str], ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _column(
    name: str, json_path: str, type_: str = "string", priority: int = 0, **extra: str
) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        column["priority"] = priority
    column.update(extra)
    return column


READY_COLUMN = _column("Ready", '.status.conditions[?(@.type=="Ready")].status')
REASON_COLUMN = _column("Reason", '.status.conditions[?(@.type=="Ready")].reason', priority=1)
AGE_COLUMN = _column("Age", ".metadata.creationTimestamp", "date")

MCPSERVER = KindInfo(
    kind="MCPServer",
    plural="mcpservers",
    # mcp, mcps and mcpserver belong to other MCP operators.
    short_names=("mcpsrv", "dsmcp"),
    spec_model=MCPServerSpec,
    status_model=MCPServerStatus,
    description="MCPServer runs (image) or registers (url) an MCP server and proves it speaks MCP.",
    summary_columns=(
        _column("Transport", ".spec.transport"),
        _column("URL", ".status.url"),
        _column("Tools", ".status.toolCount", "integer"),
        _column("Replicas", ".status.readyReplicas", "integer", priority=1),
        _column("Protocol", ".status.serverInfo.protocolVersion", priority=1),
    ),
    # The Service shares the name, and Service names are DNS-1035 labels.
    root_validations=(
        {
            "rule": "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && "
            "self.metadata.name.size() <= 63",
            "message": "metadata.name must be a DNS-1035 label (a-z, 0-9, '-', starting with a "
            "letter, at most 63 characters): the Service is named after the MCPServer",
        },
    ),
)
WORKFLOWINTEGRATION = KindInfo(
    kind="WorkflowIntegration",
    plural="workflowintegrations",
    short_names=("wfi", "dswfi"),
    spec_model=WorkflowIntegrationSpec,
    status_model=WorkflowIntegrationStatus,
    description="WorkflowIntegration keeps n8n workflows and credentials, and the OpenHands MCP "
    "configuration, in line with the MCPServers it selects.",
    summary_columns=(
        _column("Workflows", ".status.workflowCount", "integer"),
        _column("Last-Sync", ".status.lastSyncTime", "date"),
    ),
)
ALERTRULE = KindInfo(
    kind="AlertRule",
    plural="alertrules",
    short_names=("dsalert",),
    spec_model=AlertRuleSpec,
    status_model=AlertRuleStatus,
    description="AlertRule renders a PrometheusRule and/or evaluates alerts in the operator and "
    "notifies Slack, Microsoft Teams, webhooks and e-mail.",
    summary_columns=(
        _column("Firing", ".status.firing", "integer"),
        _column("PrometheusRule", ".status.prometheusRuleName", priority=1),
    ),
)
TEAMACCESS = KindInfo(
    kind="TeamAccess",
    plural="teamaccesses",
    short_names=("dsteam",),
    spec_model=TeamAccessSpec,
    status_model=TeamAccessStatus,
    description="TeamAccess grants users, groups and service accounts a preset role over this "
    "project's resources through RoleBindings in its namespace.",
    summary_columns=(
        _column("Role", ".spec.role"),
        _column("Members", ".status.memberCount", "integer"),
        # "date" would print an age, which reads "<invalid>" for a time still ahead.
        _column("Expires", ".spec.expiresAt"),
    ),
)

ALL_KINDS: tuple[KindInfo, ...] = (MCPSERVER, WORKFLOWINTEGRATION, ALERTRULE, TEAMACCESS)
KINDS_BY_NAME = {info.kind: info for info in ALL_KINDS}
