"""Desired n8n workflows of a WorkflowIntegration. Pure: spec and gathered inputs in, JSON out.

Placeholders
------------
Workflows (inline, from a ConfigMap, or a built-in template) may contain placeholders in any
string value. They are replaced before the workflow is sent to n8n:

- ``{{ param.NAME }}``: a value from ``parameters`` (template defaults, then
  ``template.parameters``, then the workflow's ``parameters``);
- ``{{ mcp.SERVER.url }}``, ``{{ mcp.SERVER.transport }}``: a selected MCPServer's URL and
  transport (``streamable-http`` or ``sse``), from its status;
- ``{{ mcp.servers }}``: every selected MCPServer with a URL, as a JSON array of
  ``{"name", "url", "transport", "ready"}`` (for Code nodes);
- ``{{ credential.NAME }}`` or ``{{ credential.NAME.id }}``: the n8n id of the credential
  ``NAME`` of ``spec.credentials``; ``{{ credential.NAME.name }}``: its name in n8n;
- ``{{ integration.name }}``, ``{{ integration.namespace }}``: this resource.

Anything else between double braces (``{{ $json.body }}``, ...) is an n8n expression and is
left alone. Spaces inside the braces are optional.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devserver_operator.api.workflowintegration import (
    Credential,
    McpServerSelector,
    Workflow,
)

from .common import Owner, stable_hash
from .workflow_templates import TEMPLATES

MANAGED_TAG = "devserver-operator"
"""n8n tag on every workflow this operator manages (n8n tag names have at most 24 chars)."""
WORKFLOW_TAG_PREFIX = "devserver-"

PLACEHOLDER = re.compile(
    r"\{\{\s*(?P<scope>param|mcp|credential|integration)\.(?P<path>[A-Za-z0-9_.\-]+)\s*\}\}"
)


class WorkflowBuildError(ValueError):
    """The workflow cannot be built from the spec: a permanent problem until the spec (or a
    referenced object) changes. The message names the workflow and the field."""


class WorkflowPendingError(WorkflowBuildError):
    """The workflow cannot be built YET: something it refers to is still coming (an
    MCPServer without a URL, a credential not created yet)."""


@dataclass(frozen=True)
class WiredMcpServer:
    """What a WorkflowIntegration needs of one selected MCPServer, from its status."""

    name: str
    url: str | None
    transport: str | None
    ready: bool
    headers: tuple[HeaderRef, ...] = ()
    """The headers the MCPServer sends, from Secrets (spec.headers), for OpenHands."""


@dataclass(frozen=True)
class HeaderRef:
    """One header of an MCPServer, its value in a Secret of the MCPServer's namespace."""

    header: str
    secret: str
    key: str


@dataclass(frozen=True)
class CredentialRef:
    """A credential as it exists in n8n."""

    id: str
    name: str


@dataclass(frozen=True)
class PlaceholderValues:
    params: Mapping[str, str]
    servers: Sequence[WiredMcpServer]
    credentials: Mapping[str, CredentialRef | None]
    """Every credential of the spec; None while it is not created yet."""
    owner: Owner


@dataclass(frozen=True)
class DesiredWorkflow:
    key: str
    """The workflow's name in the spec."""
    workflow: dict[str, Any]
    """name, nodes, connections, settings: placeholders substituted."""
    active: bool
    tag: str
    webhook_key: str
    """Seed of the stable webhook ids of this workflow's webhook nodes."""


# ------------------------------------------------------------------------------ MCPServers


def label_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics: matchLabels AND every matchExpression.

    An empty selector matches everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator")
        values = set(expression.get("values") or [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def wired_server_from(body: Mapping[str, Any]) -> WiredMcpServer:
    """An MCPServer's name, URL, transport and readiness from its status."""
    status = body.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return WiredMcpServer(
        name=body["metadata"]["name"],
        url=status.get("url") or None,
        transport=status.get("transport") or None,
        ready=ready,
        headers=tuple(_header_refs(body)),
    )


def _header_refs(body: Mapping[str, Any]) -> list[HeaderRef]:
    # Read from the raw body: the MCPServer's own handler stalls a malformed spec, and a
    # header without a Secret reference is simply not one to deliver.
    refs: list[HeaderRef] = []
    for header in (body.get("spec") or {}).get("headers") or []:
        ref = ((header or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if header.get("name") and ref.get("name") and ref.get("key"):
            refs.append(HeaderRef(str(header["name"]), str(ref["name"]), str(ref["key"])))
    return refs


def select_mcp_servers(
    selector: McpServerSelector | None, servers: Iterable[Mapping[str, Any]]
) -> list[WiredMcpServer]:
    """The MCPServers (bodies from one namespace) that ``selector`` picks, sorted by name:
    those named in ``names`` plus those matching ``selector`` (a union). Deleted ones
    (deletionTimestamp set) are no longer wired."""
    if selector is None:
        return []
    names = set(selector.names or [])
    picked = [
        wired_server_from(body)
        for body in servers
        if not body.get("metadata", {}).get("deletionTimestamp")
        and (
            body["metadata"]["name"] in names
            or (
                selector.selector is not None
                and label_selector_matches(selector.selector, body["metadata"].get("labels") or {})
            )
        )
    ]
    return sorted(picked, key=lambda server: server.name)


# ------------------------------------------------------------------------------ placeholders


def substitute(value: Any, values: PlaceholderValues, *, where: str) -> Any:
    """``value`` (any JSON) with every placeholder in its strings replaced (keys untouched)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda match: _resolve(match, values, where), value)
    if isinstance(value, Mapping):
        return {key: substitute(item, values, where=where) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, values, where=where) for item in value]
    return value


def placeholders_in(value: Any) -> set[str]:
    """Every placeholder in ``value``, as ``scope.path`` (for tests and diagnostics)."""
    if isinstance(value, str):
        return {f"{m['scope']}.{m['path']}" for m in PLACEHOLDER.finditer(value)}
    if isinstance(value, Mapping):
        return set().union(*(placeholders_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(placeholders_in(item) for item in value))
    return set()


def _resolve(match: re.Match[str], values: PlaceholderValues, where: str) -> str:
    scope, path = match["scope"], match["path"]
    text = match.group(0)
    if scope == "param":
        if path not in values.params:
            raise WorkflowBuildError(f"{where}: {text} has no value: set parameters.{path}")
        return values.params[path]
    if scope == "integration":
        if path == "name":
            return values.owner.name
        if path == "namespace":
            return values.owner.namespace
        raise WorkflowBuildError(f"{where}: {text}: integration has only name and namespace")
    if scope == "credential":
        return _credential(text, path, values, where)
    return _mcp(text, path, values, where)


def _credential(text: str, path: str, values: PlaceholderValues, where: str) -> str:
    name, _, attribute = path.partition(".")
    if attribute not in ("", "id", "name"):
        raise WorkflowBuildError(f"{where}: {text}: a credential has only id and name")
    if name not in values.credentials:
        raise WorkflowBuildError(f"{where}: {text}: there is no credential {name} in credentials")
    created = values.credentials[name]
    if created is None:
        raise WorkflowPendingError(f"{where}: waits for credential {name} to exist in n8n")
    return created.name if attribute == "name" else created.id


def _mcp(text: str, path: str, values: PlaceholderValues, where: str) -> str:
    if path == "servers":
        wired = [
            {"name": s.name, "url": s.url, "transport": s.transport, "ready": s.ready}
            for s in values.servers
            if s.url
        ]
        return json.dumps(wired, separators=(",", ":"))
    name, _, attribute = path.rpartition(".")
    if not name or attribute not in ("url", "transport"):
        raise WorkflowBuildError(
            f"{where}: {text}: use mcp.SERVER.url, mcp.SERVER.transport or mcp.servers"
        )
    server = next((s for s in values.servers if s.name == name), None)
    if server is None:
        raise WorkflowBuildError(f"{where}: {text}: MCPServer {name} is not selected by mcpServers")
    found = server.url if attribute == "url" else server.transport
    if not found:
        raise WorkflowPendingError(f"{where}: waits for MCPServer {name} to report its URL")
    return found


# ------------------------------------------------------------------------------ workflows


def workflow_tag(owner: Owner, key: str) -> str:
    """The n8n tag that finds this workflow again after a lost status: it depends only on
    namespace, resource name and workflow key (24 characters at most, n8n's limit)."""
    digest = hashlib.sha256(f"{owner.namespace}/{owner.name}/{key}".encode()).hexdigest()
    return WORKFLOW_TAG_PREFIX + digest[:12]


def parse_workflow_json(text: str, where: str) -> dict[str, Any]:
    """A workflow from JSON text (as n8n exports it)."""
    try:
        loaded = json.loads(text)
    except ValueError as error:
        raise WorkflowBuildError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("nodes"), list):
        raise WorkflowBuildError(f"{where} must be an n8n workflow object with a nodes list")
    return loaded


def build_workflow(
    owner: Owner,
    spec: Workflow,
    *,
    servers: Sequence[WiredMcpServer],
    credentials: Mapping[str, CredentialRef | None],
    source: Mapping[str, Any] | None = None,
) -> DesiredWorkflow:
    """The workflow to keep in n8n for ``spec``. ``source`` is the parsed ConfigMap JSON of a
    configMapRef workflow. Raises :class:`WorkflowBuildError` (or its pending kind)."""
    where = f"spec.workflows[{spec.name}]"
    params: dict[str, str]
    if spec.template is not None:
        template = TEMPLATES[spec.template.name]
        try:
            params = template.resolve_parameters(
                {**(spec.template.parameters or {}), **(spec.parameters or {})}
            )
        except ValueError as error:
            raise WorkflowBuildError(f"{where}: {error}") from None
        base = template.finish(template.load(), params)
    elif spec.inline is not None:
        base = copy.deepcopy(spec.inline)
        params = dict(spec.parameters or {})
    elif source is not None:
        base = copy.deepcopy(dict(source))
        params = dict(spec.parameters or {})
    else:
        raise WorkflowBuildError(f"{where}: the ConfigMap's workflow was not read")
    named = {
        "name": spec.display_name or base.get("name") or spec.name,
        "nodes": base.get("nodes") or [],
        "connections": base.get("connections") or {},
        "settings": base.get("settings") or {},
    }
    values = PlaceholderValues(params, servers, credentials, owner)
    workflow = substitute(named, values, where=where)
    check_workflow(workflow, where)
    return DesiredWorkflow(
        key=spec.name,
        workflow=workflow,
        active=spec.active,
        tag=workflow_tag(owner, spec.name),
        webhook_key=f"{owner.namespace}/{owner.name}/{spec.name}",
    )


def check_workflow(workflow: Mapping[str, Any], where: str) -> None:
    """What n8n itself does not check but needs for a workflow that runs: every node is an
    object with a unique name and a type, and every connection names existing nodes."""
    if not isinstance(workflow.get("name"), str) or not workflow["name"]:
        raise WorkflowBuildError(f"{where}: the workflow needs a name")
    names: set[str] = set()
    for index, node in enumerate(workflow.get("nodes") or []):
        if not isinstance(node, Mapping):
            raise WorkflowBuildError(f"{where}: nodes[{index}] is not an object")
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise WorkflowBuildError(f"{where}: nodes[{index}] has no name")
        if name in names:
            raise WorkflowBuildError(f"{where}: two nodes are named {name!r}")
        if not isinstance(node.get("type"), str) or not node["type"]:
            raise WorkflowBuildError(f"{where}: node {name!r} has no type")
        names.add(name)
    connections = workflow.get("connections") or {}
    if not isinstance(connections, Mapping):
        raise WorkflowBuildError(f"{where}: connections must be an object")
    for source, outputs in connections.items():
        if source not in names:
            raise WorkflowBuildError(f"{where}: connections name a missing node {source!r}")
        for target in _connection_targets(outputs):
            if target not in names:
                raise WorkflowBuildError(
                    f"{where}: node {source!r} connects to a missing node {target!r}"
                )


def _connection_targets(outputs: Any) -> Iterable[str]:
    # {"main": [[{"node": "B", "type": "main", "index": 0}], ...], "ai_tool": [...]}
    if not isinstance(outputs, Mapping):
        return
    for branches in outputs.values():
        for branch in branches or []:
            for link in branch or []:
                if isinstance(link, Mapping):
                    yield str(link.get("node"))


def workflow_hash(workflow: Mapping[str, Any], active: bool) -> str:
    """Hash of what the operator sends to n8n for one workflow (content and activation)."""
    return stable_hash({"workflow": workflow, "active": active}, length=20)


# ------------------------------------------------------------------------------ credentials


def credential_name(owner: Owner, key: str) -> str:
    """The credential's name in n8n: where it comes from."""
    return f"{owner.namespace}/{owner.name}/{key}"


def credential_data(credential: Credential, secret_data: Mapping[str, str]) -> dict[str, str]:
    """The credential's data for n8n from the (decoded) Secret. KeyError-free: a missing key
    is a WorkflowBuildError that names the Secret and key, never a value."""
    data: dict[str, str] = {}
    for field in credential.fields:
        if field.value is not None:
            data[field.field] = field.value
            continue
        assert field.secret_key is not None  # the model guarantees one of the two
        if field.secret_key not in secret_data:
            raise WorkflowBuildError(
                f"spec.credentials[{credential.name}]: Secret {credential.secret_ref.name} "
                f"has no key {field.secret_key}"
            )
        data[field.field] = secret_data[field.secret_key]
    return data


def credential_hash(owner: Owner, credential: Credential, data: Mapping[str, str]) -> str:
    """A hash that changes when the credential's values change. Salted with the owner's uid,
    so the status does not give away a hash of a guessable secret."""
    return stable_hash({"uid": owner.uid, "type": credential.type, "data": dict(data)}, length=20)
