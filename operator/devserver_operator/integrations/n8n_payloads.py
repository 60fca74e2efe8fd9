"""The shape of n8n workflows, without I/O: what create/update accept, stable webhook ids,
production webhook URLs, and what a saved workflow has to match for "no drift".

Facts about n8n 1.123.x encoded here:

- Create/update accept only ``name``, ``nodes``, ``connections`` and ``settings``.
- A Webhook node without ``webhookId`` registers under ``/webhook/<workflowId>/webhook/<path>``;
  :func:`assign_webhook_ids` gives such nodes a stable UUID so the URL is ``/webhook/<path>``.
- On save n8n gives every node without one an ``id`` (a random UUID) and adds the settings
  ``callerPolicy: workflowsFromSameOwner`` and ``availableInMCP: false``;
  :func:`with_save_defaults` pre-sets them, and :func:`workflow_differences` ignores them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict
from urllib.parse import quote

__all__ = [
    "N8N_SAVE_DEFAULT_SETTINGS",
    "WEBHOOK_ID_NAMESPACE",
    "WEBHOOK_NODE_TYPES",
    "WRITABLE_WORKFLOW_FIELDS",
    "WorkflowPayload",
    "assign_node_ids",
    "assign_webhook_ids",
    "node_id_for",
    "production_webhook_urls",
    "webhook_id_for",
    "with_save_defaults",
    "workflow_differences",
    "writable_workflow",
]

WRITABLE_WORKFLOW_FIELDS = ("name", "nodes", "connections", "settings")

# Node types whose webhook URL depends on ``webhookId``.
WEBHOOK_NODE_TYPES = frozenset(
    {
        "n8n-nodes-base.webhook",
        "n8n-nodes-base.formTrigger",
        "@n8n/n8n-nodes-langchain.chatTrigger",
        "@n8n/n8n-nodes-langchain.mcpTrigger",
    }
)

# Namespace of the uuid5 webhook ids this project assigns. Never change it: the ids, and so
# the URLs of webhooks with an empty or dynamic path, would change with it.
WEBHOOK_ID_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://devserver.ecosphere.network/n8n/webhook"
)


class WorkflowPayload(TypedDict):
    """The writable shape of a workflow: what n8n's create/update accept."""

    name: str
    nodes: list[dict[str, Any]]
    connections: dict[str, Any]
    settings: dict[str, Any]


def writable_workflow(workflow: Mapping[str, Any]) -> WorkflowPayload:
    """Strip a workflow (fetched, exported or hand-written) to what create/update accept.

    Drops read-only and rejected fields (``id``, ``active``, ``tags``, ``createdAt``,
    ``updatedAt``, ``versionId``, ``pinData``, ``meta``, ``staticData``, ...). Returns deep
    copies, so the result can be changed without touching the input. ``settings`` defaults
    to ``{}`` (n8n requires it on create).
    """
    if "name" not in workflow or not isinstance(workflow["name"], str):
        raise ValueError("a workflow needs a string 'name'")
    nodes = _or_default(workflow.get("nodes"), [])
    connections = _or_default(workflow.get("connections"), {})
    settings = _or_default(workflow.get("settings"), {})
    if not isinstance(nodes, list):
        raise ValueError("a workflow's 'nodes' must be a list")
    if not isinstance(connections, Mapping) or not isinstance(settings, Mapping):
        raise ValueError("a workflow's 'connections' and 'settings' must be objects")
    return WorkflowPayload(
        name=workflow["name"],
        nodes=copy.deepcopy([dict(node) for node in nodes]),
        connections=copy.deepcopy(dict(connections)),
        settings=copy.deepcopy(dict(settings)),
    )


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def webhook_id_for(
    workflow_key: str, node_name: str, namespace: uuid.UUID = WEBHOOK_ID_NAMESPACE
) -> str:
    """The stable webhook id of one node: uuid5(namespace, "<workflow_key>/<node_name>")."""
    return str(uuid.uuid5(namespace, f"{workflow_key}/{node_name}"))


def assign_webhook_ids(
    nodes: Iterable[Mapping[str, Any]],
    workflow_key: str,
    *,
    namespace: uuid.UUID = WEBHOOK_ID_NAMESPACE,
    node_types: Iterable[str] = WEBHOOK_NODE_TYPES,
) -> list[dict[str, Any]]:
    """Copies of ``nodes`` where every webhook-type node lacking a ``webhookId`` has one.

    The id is derived from ``workflow_key`` (e.g. "<namespace>/<resource>/<workflow>") and the
    node name, so re-applying the same workflow gives the same ids (and the same URLs).
    Nodes that already carry a non-empty ``webhookId`` keep it.
    """
    types = frozenset(node_types)
    result: list[dict[str, Any]] = []
    for node in nodes:
        copied = copy.deepcopy(dict(node))
        if copied.get("type") in types and not copied.get("webhookId"):
            copied["webhookId"] = webhook_id_for(
                workflow_key, str(copied.get("name", "")), namespace
            )
        result.append(copied)
    return result


def production_webhook_urls(
    base_url: str,
    nodes: Iterable[Mapping[str, Any]],
    *,
    workflow_id: str | None = None,
    webhook_prefix: str = "webhook",
) -> dict[str, str]:
    """Production URLs of the enabled Webhook nodes, by node name.

    Mirrors how n8n registers them: with a ``webhookId``, a static path is served at
    ``/webhook/<path>``, an empty path at ``/webhook/<webhookId>`` and a dynamic path
    (with ``:param`` segments) at ``/webhook/<webhookId>/<path>``. Without a ``webhookId``
    the URL is ``/webhook/<workflowId>/<lowercased node name>/<path>`` (only listed when
    ``workflow_id`` is given). ``webhook_prefix`` is n8n's ``N8N_ENDPOINT_WEBHOOK``.
    """
    root = f"{base_url.rstrip('/')}/{webhook_prefix.strip('/')}"
    urls: dict[str, str] = {}
    for node in nodes:
        if node.get("type") != "n8n-nodes-base.webhook" or node.get("disabled"):
            continue
        name = str(node.get("name", ""))
        params = node.get("parameters") or {}
        path = str(params.get("path", "") if isinstance(params, Mapping) else "").strip("/")
        webhook_id = node.get("webhookId")
        if webhook_id:
            if not path:
                urls[name] = f"{root}/{webhook_id}"
            elif any(segment.startswith(":") for segment in path.split("/")):
                urls[name] = f"{root}/{webhook_id}/{path}"
            else:
                urls[name] = f"{root}/{path}"
        elif workflow_id is not None:
            urls[name] = f"{root}/{workflow_id}/{quote(name.lower(), safe='')}/{path}"
    return urls


# Settings n8n adds on save when they are missing, with the values it adds.
N8N_SAVE_DEFAULT_SETTINGS: dict[str, Any] = {
    "callerPolicy": "workflowsFromSameOwner",
    "availableInMCP": False,
}


def node_id_for(
    workflow_key: str, node_name: str, namespace: uuid.UUID = WEBHOOK_ID_NAMESPACE
) -> str:
    """The stable node id of one node: uuid5(namespace, "node/<workflow_key>/<node_name>")."""
    return str(uuid.uuid5(namespace, f"node/{workflow_key}/{node_name}"))


def assign_node_ids(nodes: Iterable[Mapping[str, Any]], workflow_key: str) -> list[dict[str, Any]]:
    """Copies of ``nodes`` where every node lacking an ``id`` has a stable one.

    n8n gives such nodes a random id on save; a stable one keeps the stored workflow equal
    to the desired one (no false drift) and identical between re-creations."""
    result: list[dict[str, Any]] = []
    for node in nodes:
        copied = copy.deepcopy(dict(node))
        if not copied.get("id"):
            copied["id"] = node_id_for(workflow_key, str(copied.get("name", "")))
        result.append(copied)
    return result


def with_save_defaults(workflow: Mapping[str, Any]) -> WorkflowPayload:
    """The writable workflow with the settings n8n would add on save already set."""
    payload = writable_workflow(workflow)
    payload["settings"] = {**N8N_SAVE_DEFAULT_SETTINGS, **payload["settings"]}
    return payload


def workflow_differences(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Where n8n's copy ``live`` differs from ``desired`` (both any workflow shape), as paths.

    Only the writable fields count. What n8n adds on save is not a difference: a node ``id``
    where ``desired`` has none, and the settings of :data:`N8N_SAVE_DEFAULT_SETTINGS` at
    their default values. Nodes are matched by name (n8n's own key for them). Empty when
    they match.
    """
    want, have = writable_workflow(desired), writable_workflow(live)
    found: list[str] = []
    if want["name"] != have["name"]:
        found.append("name")
    found += _node_differences(want["nodes"], have["nodes"])
    found += [
        f"connections[{key!r}]"
        for key in sorted(set(want["connections"]) | set(have["connections"]))
        if want["connections"].get(key) != have["connections"].get(key)
    ]
    for key in sorted(set(want["settings"]) | set(have["settings"])):
        if key in want["settings"]:
            if want["settings"][key] != have["settings"].get(key, _MISSING):
                found.append(f"settings.{key}")
        elif have["settings"][key] != N8N_SAVE_DEFAULT_SETTINGS.get(key, _MISSING):
            found.append(f"settings.{key}")
    return found


_MISSING = object()


def _node_differences(desired: list[dict[str, Any]], live: list[dict[str, Any]]) -> list[str]:
    want = {str(node.get("name")): node for node in desired}
    have = {str(node.get("name")): node for node in live}
    found = [f"nodes[{name!r}] is missing" for name in want if name not in have]
    found += [f"nodes[{name!r}] was added" for name in have if name not in want]
    for name, node in want.items():
        other = have.get(name)
        if other is None:
            continue
        for key in sorted(set(node) | set(other)):
            if key == "id" and "id" not in node:
                continue
            if node.get(key, _MISSING) != other.get(key, _MISSING):
                found.append(f"nodes[{name!r}].{key}")
    if not found and list(want) != list(have):
        found.append("nodes (order)")
    return found
