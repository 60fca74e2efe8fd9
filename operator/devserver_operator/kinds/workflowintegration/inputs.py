"""Read what a WorkflowIntegration refers to: the n8n API key, credential Secrets, workflow
ConfigMaps and the MCPServers of its namespace. Secret values never leave this module except
to be sent to n8n (the caller's business) or as a hash."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from devserver_operator.api import API_VERSION
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.workflowintegration import WorkflowBuildError, parse_workflow_json
from devserver_operator.integrations.n8n_sync import WorkflowSources
from devserver_operator.kube.client import KubeClient
from devserver_operator.observe.workflowintegration import Problem


class MissingInputError(Exception):
    """A referenced Secret, ConfigMap or key is missing; the message names it, never a value."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def decode_secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(value).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue  # binary data cannot be an n8n credential field or API key
    return values


async def read_api_key(kube: KubeClient, namespace: str, spec: WorkflowIntegrationSpec) -> str:
    assert spec.n8n is not None
    ref = spec.n8n.api_key_secret_ref
    secret = await kube.get("v1", "Secret", ref.name, namespace)
    if secret is None:
        raise MissingInputError(
            "MissingSecret",
            f"spec.n8n.apiKeySecretRef: Secret {namespace}/{ref.name} does not exist",
        )
    value = decode_secret_data(secret).get(ref.key, "").strip()
    if not value:
        raise MissingInputError(
            "MissingSecret",
            f"spec.n8n.apiKeySecretRef: Secret {namespace}/{ref.name} has no (text) key {ref.key}",
        )
    return value


async def read_credential_secrets(
    kube: KubeClient, namespace: str, spec: WorkflowIntegrationSpec
) -> dict[str, dict[str, str] | None]:
    """Decoded data of every Secret a credential refers to; None for a missing Secret."""
    found: dict[str, dict[str, str] | None] = {}
    for credential in spec.credentials or []:
        name = credential.secret_ref.name
        if name not in found:
            secret = await kube.get("v1", "Secret", name, namespace)
            found[name] = decode_secret_data(secret) if secret is not None else None
    return found


async def read_workflow_sources(
    kube: KubeClient, namespace: str, spec: WorkflowIntegrationSpec
) -> WorkflowSources:
    parsed: dict[str, dict[str, Any]] = {}
    problems: dict[str, Problem] = {}
    config_maps: dict[str, Mapping[str, Any] | None] = {}
    for workflow in spec.workflows or []:
        ref = workflow.config_map_ref
        if ref is None:
            continue
        if ref.name not in config_maps:
            config_maps[ref.name] = await kube.get("v1", "ConfigMap", ref.name, namespace)
        config_map = config_maps[ref.name]
        where = f"spec.workflows[{workflow.name}].configMapRef"
        if config_map is None:
            problems[workflow.name] = Problem(
                "stalled",
                "MissingConfigMap",
                f"{where}: ConfigMap {namespace}/{ref.name} does not exist",
            )
            continue
        text = (config_map.get("data") or {}).get(ref.key)
        if text is None:
            problems[workflow.name] = Problem(
                "stalled",
                "MissingConfigMap",
                f"{where}: ConfigMap {namespace}/{ref.name} has no key {ref.key}",
            )
            continue
        try:
            parsed[workflow.name] = parse_workflow_json(
                text, f"{where} (ConfigMap {ref.name}, key {ref.key})"
            )
        except WorkflowBuildError as error:
            problems[workflow.name] = Problem("stalled", "InvalidWorkflow", str(error))
    return WorkflowSources(parsed, problems)


async def mcp_servers_in(
    kube: KubeClient, namespace: str, index: Mapping[Any, Any] | None
) -> list[dict[str, Any]]:
    """MCPServer bodies of one namespace: from the operator's watch cache when there is one
    (no request at all), else one LIST."""
    if index is None:
        return await kube.list(API_VERSION, "MCPServer", namespace)
    return [dict(body) for body in index.get((namespace,), [])]
