"""Built-in n8n workflow templates: real, importable n8n workflow JSON in ``n8n_templates/``.

A template is an n8n export with placeholders (``{{ param.NAME }}``, ``{{ mcp.servers }}``,
...; see :mod:`.workflowintegration`). Each one declares its parameters here, with defaults
for the optional ones, so a misspelt parameter is refused instead of silently ignored.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from devserver_operator.api.workflowintegration import BUILTIN_TEMPLATES

OPENHANDS_SESSION_HEADER = "X-Session-API-Key"


@dataclass(frozen=True)
class TemplateParameter:
    name: str
    description: str
    default: str | None = None
    """None: the parameter is required."""
    kind: Literal["text", "url"] = "text"
    """url: a trailing slash is dropped, so ``{{ param.x }}/path`` never doubles it."""


@dataclass(frozen=True)
class WorkflowTemplate:
    name: str
    description: str
    parameters: tuple[TemplateParameter, ...]
    finish: Callable[[dict[str, Any], Mapping[str, str]], dict[str, Any]] = field(
        default=lambda workflow, _: workflow
    )
    """Shapes the workflow by parameter values beyond plain substitution."""

    def load(self) -> dict[str, Any]:
        """A fresh copy of the template's workflow JSON, placeholders unresolved."""
        return copy.deepcopy(_load_json(self.name))

    def resolve_parameters(self, given: Mapping[str, str]) -> dict[str, str]:
        """Defaults overlaid with ``given``; ValueError names unknown and missing ones."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(
                f"template {self.name} has no parameter {', '.join(unknown)} "
                f"(it has: {', '.join(known)})"
            )
        values: dict[str, str] = {}
        for parameter in self.parameters:
            value = given.get(parameter.name, parameter.default)
            if value is None:
                raise ValueError(
                    f"template {self.name} needs parameter {parameter.name}: "
                    f"{parameter.description}"
                )
            values[parameter.name] = value.rstrip("/") if parameter.kind == "url" else value
        return values


@cache
def _load_json(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath("n8n_templates", f"{name}.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _openhands_session_key(workflow: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    # The session API key is a Secret: it reaches n8n only as a credential, which the request
    # node uses when a credential is named.
    credential = values.get("sessionApiKeyCredential", "")
    if not credential:
        return workflow
    for node in workflow["nodes"]:
        if node["name"] == "Start conversation":
            node["parameters"]["authentication"] = "genericCredentialType"
            node["parameters"]["genericAuthType"] = "httpHeaderAuth"
            node["credentials"] = {
                "httpHeaderAuth": {
                    "id": f"{{{{ credential.{credential}.id }}}}",
                    "name": f"{{{{ credential.{credential}.name }}}}",
                }
            }
    return workflow


TEMPLATES: dict[str, WorkflowTemplate] = {
    template.name: template
    for template in (
        WorkflowTemplate(
            name="mcp-health-monitor",
            description="Checks every wired MCP server with an MCP initialize request on a "
            "schedule (and on a POST to its webhook) and POSTs a JSON report to a URL.",
            parameters=(
                TemplateParameter("reportUrl", "URL that receives the JSON report (POST)"),
                TemplateParameter(
                    "schedule", "cron expression of the checks", default="*/5 * * * *"
                ),
                TemplateParameter("path", "webhook path that runs a check now", "mcp-health"),
                TemplateParameter("timeoutSeconds", "timeout of one server check", "10"),
            ),
        ),
        WorkflowTemplate(
            name="openhands-task-webhook",
            description="A webhook that starts a conversation on an OpenHands agent-server "
            "(POST /api/conversations, openhands-agent-server 1.58) from a JSON body "
            "{task, repository?, branch?}.",
            parameters=(
                TemplateParameter(
                    "openhandsUrl", "base URL of the OpenHands agent-server", kind="url"
                ),
                TemplateParameter(
                    "llmModel",
                    "the agent's model in LiteLLM form (openai/gpt-4o, anthropic/...); its API "
                    "key comes from the agent-server's environment, never from n8n",
                ),
                TemplateParameter(
                    "llmBaseUrl", "the model's OpenAI-compatible endpoint; none when empty", ""
                ),
                TemplateParameter(
                    "workingDir", "the agent's working directory on the server", "workspace/project"
                ),
                TemplateParameter(
                    "run", "true: the agent starts on the task at once; false: it waits", "true"
                ),
                TemplateParameter("path", "webhook path", "openhands-task"),
                TemplateParameter(
                    "sessionApiKeyCredential",
                    "name of a spec credential (type httpHeaderAuth, header "
                    f"{OPENHANDS_SESSION_HEADER}) sent to OpenHands; none when empty",
                    default="",
                ),
            ),
            finish=_openhands_session_key,
        ),
    )
}

if tuple(TEMPLATES) != BUILTIN_TEMPLATES:  # the API enum and the templates must agree
    raise RuntimeError(f"templates {tuple(TEMPLATES)} != API enum {BUILTIN_TEMPLATES}")
