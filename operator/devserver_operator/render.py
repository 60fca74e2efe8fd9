"""Offline rendering: the child manifests the operator would apply for given custom resources."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devserver_operator.api import API_VERSION, KINDS_BY_NAME
from devserver_operator.api.alertrule import AlertRuleSpec
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.api.teamaccess import TeamAccessSpec
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import Owner
from devserver_operator.builders.mcpserver import (
    McpServerInputs,
    build_children,
    served_transport,
    server_url,
)
from devserver_operator.builders.openhands import OpenHandsServer, build_openhands_config_map
from devserver_operator.builders.prometheusrule import build_prometheus_rule
from devserver_operator.builders.teamaccess import build_role_binding
from devserver_operator.builders.workflowintegration import select_mcp_servers
from devserver_operator.settings import OperatorSettings

# ownerReferences need a uid; offline there is none yet, so a recognisable placeholder is used.
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


class RenderError(ValueError):
    """A document could not be rendered; the message names the document and the field."""


@dataclass(frozen=True)
class Rendered:
    source: str
    kind: str
    name: str
    children: list[dict[str, Any]]
    note: str | None = None


def load_documents(paths: Iterable[Path]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every YAML document in the files, and in the .yaml/.yml files of directories."""
    for path in paths:
        files = (
            sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            for index, document in enumerate(yaml.safe_load_all(file.read_text())):
                if isinstance(document, dict):
                    yield f"{file}#{index}", document


def render_document(
    source: str,
    document: dict[str, Any],
    settings: OperatorSettings,
    *,
    neighbours: Sequence[dict[str, Any]] = (),
) -> Rendered | None:
    """Children of one custom resource; None for documents that are not ours.

    ``neighbours`` are the other documents rendered with it: a WorkflowIntegration's
    OpenHands ConfigMap lists the MCPServers among them, as if they were Ready."""
    if document.get("apiVersion") != API_VERSION or document.get("kind") not in KINDS_BY_NAME:
        return None
    kind = document["kind"]
    metadata = document.get("metadata") or {}
    name = metadata.get("name", "")
    namespace = metadata.get("namespace") or "default"
    info = KINDS_BY_NAME[kind]
    try:
        spec = info.spec_model.model_validate(document.get("spec") or {})
    except ValueError as error:
        raise RenderError(f"{source}: {kind}/{name}: {error}") from error
    owner = Owner(
        kind=kind, name=name, namespace=namespace, uid=metadata.get("uid", PLACEHOLDER_UID)
    )
    if isinstance(spec, MCPServerSpec):
        inputs = McpServerInputs(
            owner=owner,
            spec=spec,
            bridge_image=settings.bridge_image,
            proxy_image=settings.stdio_proxy_image,
            operator_namespace=settings.operator_namespace,
            cluster_domain=settings.cluster_domain,
        )
        children = build_children(inputs)
        note = "remote server: no workload, verified only" if not children else None
        return Rendered(source, kind, name, children, note)
    if isinstance(spec, TeamAccessSpec):
        return Rendered(source, kind, name, [build_role_binding(owner, spec)])
    if isinstance(spec, WorkflowIntegrationSpec):
        return _render_workflow_integration(source, owner, spec, settings, neighbours)
    if isinstance(spec, AlertRuleSpec):
        rule = build_prometheus_rule(owner, spec)
        note = None if rule else "no PrometheusRule (not requested, or no expr rules)"
        return Rendered(source, kind, name, [rule] if rule else [], note)
    return Rendered(source, kind, name, [], f"{kind} has no offline builder yet")


def _render_workflow_integration(
    source: str,
    owner: Owner,
    spec: WorkflowIntegrationSpec,
    settings: OperatorSettings,
    neighbours: Sequence[dict[str, Any]],
) -> Rendered:
    note = "workflows and credentials live in n8n, not in the cluster" if spec.n8n else None
    if spec.open_hands is None:
        return Rendered(source, owner.kind, owner.name, [], note)
    servers = [
        _as_if_ready(doc, owner.namespace, settings)
        for doc in neighbours
        if doc.get("kind") == "MCPServer"
        and (doc.get("metadata") or {}).get("namespace", "default") == owner.namespace
    ]
    wired = select_mcp_servers(spec.mcp_servers, servers)
    config_map = build_openhands_config_map(
        owner,
        spec.open_hands.config_map_name,
        [OpenHandsServer(s.name, s.url or "", s.transport or "streamable-http") for s in wired],
    )
    return Rendered(source, owner.kind, owner.name, [config_map], note)


def _as_if_ready(
    document: dict[str, Any], namespace: str, settings: OperatorSettings
) -> dict[str, Any]:
    metadata = document.get("metadata") or {}
    spec = MCPServerSpec.model_validate(document.get("spec") or {})
    owner = Owner("MCPServer", metadata.get("name", ""), namespace, PLACEHOLDER_UID)
    status = {
        "url": server_url(owner, spec, settings.cluster_domain),
        "transport": served_transport(spec),
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    return {**document, "status": status}
