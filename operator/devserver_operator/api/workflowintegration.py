"""WorkflowIntegration: n8n workflows and credentials, and the MCP config OpenHands reads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from . import k8s_types as k8s
from .base import ApiModel, DnsLabel, Duration, ObjectName, list_map
from .conditions import Condition
from .refs import ConfigMapKeyRef, LocalObjectRef, SecretKeyRef

BUILTIN_TEMPLATES = ("mcp-health-monitor", "openhands-task-webhook")
BuiltinTemplate = Literal["mcp-health-monitor", "openhands-task-webhook"]

NEEDS_TARGET_MESSAGE = "set n8n, openHands or both: there is nothing to integrate otherwise"
WORKFLOWS_NEED_N8N_MESSAGE = "workflows and credentials need n8n"
ONE_SOURCE_MESSAGE = "a workflow needs exactly one of inline, configMapRef, template"
INLINE_SHAPE_MESSAGE = "inline must be an n8n workflow object with a nodes list"
FIELD_SOURCE_MESSAGE = "a credential field needs exactly one of secretKey, value"

WorkflowJson = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""A workflow as n8n exports it (name, nodes, connections, settings)."""


class N8nConnection(ApiModel):
    """How the operator reaches n8n's public REST API."""

    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2048)
    """Base URL of n8n, e.g. http://n8n.automation.svc:5678 (the /api/v1 is added)."""
    api_key_secret_ref: SecretKeyRef
    """Secret key holding an n8n API key (Settings > n8n API)."""
    webhook_base_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s]+$", max_length=2048
    )
    """Public base URL of webhooks as callers see them; url when empty."""
    timeout: Duration = "30s"
    """Timeout of one API call."""


class McpServerSelector(ApiModel):
    """Which MCPServers in this namespace are wired in."""

    names: list[ObjectName] | None = Field(default=None, max_length=128)
    """MCPServers by name."""
    selector: k8s.LabelSelector | None = None
    """MCPServers by label; combined with names (union)."""


class TemplateSource(ApiModel):
    """A built-in workflow template."""

    name: BuiltinTemplate
    """Template name."""
    parameters: dict[str, str] | None = None
    """Values for the template's placeholders."""


class Workflow(ApiModel):
    """One n8n workflow managed by the operator."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.inline), has(self.configMapRef), has(self.template)]"
                    ".filter(x, x).size() == 1",
                    "message": ONE_SOURCE_MESSAGE,
                }
            ]
        }
    }

    name: DnsLabel
    """Key of the workflow in this resource."""
    display_name: str | None = Field(default=None, max_length=128)
    """Name shown in n8n; else the workflow JSON's name, else the key."""
    inline: WorkflowJson | None = None
    """The workflow JSON itself."""
    config_map_ref: ConfigMapKeyRef | None = None
    """A ConfigMap key that holds the workflow JSON."""
    template: TemplateSource | None = None
    """A built-in template."""
    active: bool = True
    """Activate the workflow (its triggers and webhooks run) or keep it inactive."""
    parameters: dict[str, str] | None = None
    """Values substituted for {{ param.NAME }} placeholders (over the template's parameters)."""

    @model_validator(mode="after")
    def _one_source(self) -> Workflow:
        if sum(s is not None for s in (self.inline, self.config_map_ref, self.template)) != 1:
            raise ValueError(ONE_SOURCE_MESSAGE)
        return self

    @field_validator("inline")
    @classmethod
    def _inline_is_workflow(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not isinstance(value.get("nodes"), list):
            raise ValueError(INLINE_SHAPE_MESSAGE)
        return value


class CredentialField(ApiModel):
    """One field of an n8n credential: from a Secret key, or a plain value that is no secret
    (such as the header name of an httpHeaderAuth credential)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.secretKey) != has(self.value)",
                    "message": FIELD_SOURCE_MESSAGE,
                }
            ]
        }
    }

    field: str = Field(min_length=1, max_length=128)
    """Field name in the n8n credential type, e.g. value or token."""
    secret_key: str | None = Field(default=None, pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)
    """Key of the Secret (secretRef) that holds the value."""
    value: str | None = Field(default=None, max_length=1024)
    """The value itself, for fields that are not secret (never put a secret here)."""

    @model_validator(mode="after")
    def _one_source(self) -> CredentialField:
        if (self.secret_key is None) == (self.value is None):
            raise ValueError(FIELD_SOURCE_MESSAGE)
        return self


class Credential(ApiModel):
    """An n8n credential created from a Secret, recreated when the Secret changes."""

    name: DnsLabel
    """Key of the credential; workflows refer to it as {{ credential.NAME }}."""
    type: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$", max_length=128)
    """n8n credential type, e.g. httpHeaderAuth or githubApi."""
    secret_ref: LocalObjectRef
    """Secret that holds the values; a change of them creates a new credential (rotation)."""
    fields: list[CredentialField] = Field(min_length=1, max_length=64)
    """Credential fields and the Secret keys they come from."""


class OpenHandsConfig(ApiModel):
    """A ConfigMap with the MCP configuration OpenHands reads."""

    config_map_name: ObjectName
    """ConfigMap to write (keys config.toml and mcp.json); owned by this resource."""
    include_not_ready: bool = False
    """Also list MCPServers that are not Ready."""


class WorkflowIntegrationSpec(ApiModel):
    """Desired n8n workflows, credentials and OpenHands MCP configuration."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "has(self.n8n) || has(self.openHands)", "message": NEEDS_TARGET_MESSAGE},
                {
                    "rule": "has(self.n8n) || (!has(self.workflows) && !has(self.credentials))",
                    "message": WORKFLOWS_NEED_N8N_MESSAGE,
                },
            ]
        }
    }

    n8n: N8nConnection | None = Field(default=None, alias="n8n")
    """The n8n instance to configure."""
    mcp_servers: McpServerSelector | None = None
    """MCPServers whose URLs are substituted into workflows and written for OpenHands."""
    workflows: list[Workflow] | None = Field(
        default=None, max_length=100, json_schema_extra=list_map("name")
    )
    """Workflows to keep in n8n."""
    credentials: list[Credential] | None = Field(
        default=None, max_length=50, json_schema_extra=list_map("name")
    )
    """Credentials to create in n8n."""
    drift_policy: Literal["Correct", "Report"] = "Correct"
    """What to do when n8n's copy differs: put it back, or only report it."""
    deletion_policy: Literal["Delete", "Orphan"] = "Delete"
    """Delete the workflows and credentials from n8n with this resource, or leave them."""
    sync_interval: Duration = "5m"
    """How often n8n is compared with the desired state."""
    open_hands: OpenHandsConfig | None = None
    """Where to write the OpenHands MCP configuration."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> WorkflowIntegrationSpec:
        if self.n8n is None and self.open_hands is None:
            raise ValueError(NEEDS_TARGET_MESSAGE)
        if self.n8n is None and (self.workflows is not None or self.credentials is not None):
            raise ValueError(WORKFLOWS_NEED_N8N_MESSAGE)
        return self


def workflow_json_text(workflow: dict[str, Any]) -> str:
    """Stable text form of a workflow, for hashing and comparison."""
    return json.dumps(workflow, sort_keys=True, separators=(",", ":"))


class WorkflowStatus(ApiModel):
    """n8n's side of one workflow."""

    name: str
    """Key of the workflow in the spec."""
    id: str | None = None
    """n8n's workflow id."""
    active: bool | None = None
    """Whether n8n has the workflow active."""
    webhook_urls: list[str] | None = None
    """Production webhook URLs of the workflow."""
    tag: str | None = None
    """The n8n tag that marks this workflow as managed by this resource."""
    hash: str | None = None
    """Hash of the workflow as last sent to n8n."""
    last_sync_time: datetime | None = None
    """When the operator last brought n8n's copy in line with the desired workflow."""
    drifted: bool | None = None
    """n8n's copy differs from the desired one (driftPolicy Report)."""
    message: str | None = None
    """Why the workflow is not in sync, in n8n's words where n8n said it."""
    creating: bool | None = None
    """A create of this workflow was sent and its id is not recorded yet: should the operator
    stop right then, it finds that copy by its name (n8nName) instead of leaving it behind."""
    n8n_name: str | None = Field(default=None, alias="n8nName")
    """The workflow's name in n8n, recorded with a create."""


class CredentialStatus(ApiModel):
    """n8n's side of one credential."""

    name: str
    """Key of the credential in the spec."""
    id: str | None = None
    """n8n's credential id."""
    n8n_name: str | None = Field(default=None, alias="n8nName")
    """The credential's name in n8n."""
    secret_hash: str | None = None
    """Hash of the Secret values the credential was created from (not the values)."""
    retired_ids: list[str] | None = None
    """Credentials replaced by a rotation, deleted once no workflow uses them."""
    creating: bool | None = None
    """A create of this credential was sent and its id is not recorded yet: should the
    operator stop right then, it looks for that copy in n8n before creating another."""


class WiredServer(ApiModel):
    """An MCPServer that was wired in."""

    name: str
    """MCPServer name."""
    url: str | None = None
    """Its URL."""
    transport: str | None = None
    """Its transport."""
    ready: bool | None = None
    """Whether it was Ready."""


class WorkflowIntegrationStatus(ApiModel):
    """Observed state of the integration."""

    observed_generation: int | None = None
    """The .metadata.generation last reconciled."""
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra=list_map("type"),
    )
    """Ready, Reconciling, Stalled, Synced and Drifted."""
    workflows: list[WorkflowStatus] | None = Field(default=None, json_schema_extra=list_map("name"))
    """Per workflow: n8n id, active flag, webhook URLs, last sync."""
    credentials: list[CredentialStatus] | None = Field(
        default=None, json_schema_extra=list_map("name")
    )
    """Per credential: n8n id."""
    wired_servers: list[WiredServer] | None = None
    """MCPServers substituted into workflows and written for OpenHands."""
    workflow_count: int | None = None
    """Number of workflows in sync."""
    last_sync_time: datetime | None = None
    """When n8n last matched the desired state."""
