"""The OpenHands Secret of a WorkflowIntegration: ``mcp.json`` with the headers the selected
MCPServers need, copied from their Secrets, so that OpenHands can authenticate while the
ConfigMap stays free of secret values.

It has the ConfigMap's name and exists while a selected MCPServer declares headers. Header
values are read on every reconcile (the resync loop), so a rotated source Secret reaches it
within one resync interval. Like the ConfigMap, a Secret of that name that this
WorkflowIntegration does not control is never taken over (SecretConflict), and only a Secret
it controls is ever deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from devserver_operator.builders.common import Owner, held_by_another
from devserver_operator.builders.openhands import OpenHandsServer, build_openhands_secret
from devserver_operator.builders.workflowintegration import WiredMcpServer
from devserver_operator.kube.children import apply_children
from devserver_operator.observe.workflowintegration import Problem
from devserver_operator.reconcile.context import OperatorContext
from devserver_operator.reconcile.kind import Request

from .inputs import decode_secret_data

SECRET_CONFLICT = "SecretConflict"  # noqa: S105 - a condition reason
MISSING_SECRET = "MissingSecret"  # noqa: S105 - a condition reason


def needs_secret(selected: Sequence[WiredMcpServer]) -> bool:
    """Whether any selected MCPServer sends headers (ready or not: the Secret's existence
    follows the specs, not the servers' ups and downs)."""
    return any(server.headers for server in selected)


async def apply_openhands_secret(
    request: Request,
    name: str | None,
    selected: Sequence[WiredMcpServer],
    listed: Sequence[OpenHandsServer],
    retired: Iterable[str],
    problems: list[Problem],
) -> None:
    """Write (or delete) the Secret ``name``; ``retired``: names of ConfigMaps just pruned,
    whose same-named Secrets go with them."""
    context, owner = request.context, request.owner
    for old in retired:
        if old != name:
            await _delete_if_ours(context, owner, old)
    if name is None:
        return
    if not needs_secret(selected):
        await _delete_if_ours(context, owner, name)
        return
    live = await context.kube.get("v1", "Secret", name, owner.namespace)
    holder = held_by_another(live, owner) if live is not None else None
    if holder is not None:
        problems.append(
            Problem(
                "stalled",
                SECRET_CONFLICT,
                f"spec.openHands.configMapName: Secret {name} {holder}; the MCP configuration "
                "with headers goes to a Secret of the ConfigMap's name: choose another name, "
                "or delete that Secret",
            )
        )
        return
    servers = await _with_headers(context, owner, selected, listed, problems)
    if servers is None:
        return
    wanted = build_openhands_secret(owner, name, servers)

    def lookup(*_: str) -> Mapping[str, Any] | None:
        return live

    await apply_children(context.kube, [wanted], lookup=lookup, observe=context.writes.remember)


async def _with_headers(
    context: OperatorContext,
    owner: Owner,
    selected: Sequence[WiredMcpServer],
    listed: Sequence[OpenHandsServer],
    problems: list[Problem],
) -> list[OpenHandsServer] | None:
    """The listed servers with their header values; None (and a problem) when one is missing."""
    refs = {server.name: server.headers for server in selected}
    cache: dict[str, dict[str, str] | None] = {}
    complete: list[OpenHandsServer] = []
    for server in listed:
        headers: list[tuple[str, str]] = []
        for ref in refs.get(server.name, ()):
            if ref.secret not in cache:
                secret = await context.kube.get("v1", "Secret", ref.secret, owner.namespace)
                cache[ref.secret] = decode_secret_data(secret) if secret is not None else None
            values = cache[ref.secret]
            value = (values or {}).get(ref.key)
            if value is None:
                problems.append(
                    Problem(
                        "stalled",
                        MISSING_SECRET,
                        f"spec.openHands: header {ref.header} of MCPServer {server.name}: "
                        f"Secret {owner.namespace}/{ref.secret} has no (text) key {ref.key}"
                        if values is not None
                        else f"spec.openHands: header {ref.header} of MCPServer {server.name}: "
                        f"Secret {owner.namespace}/{ref.secret} does not exist",
                    )
                )
                return None
            headers.append((ref.header, value.strip()))
        complete.append(OpenHandsServer(server.name, server.url, server.transport, tuple(headers)))
    return complete


async def _delete_if_ours(context: OperatorContext, owner: Owner, name: str) -> None:
    live = await context.kube.get("v1", "Secret", name, owner.namespace)
    if live is None or held_by_another(live, owner) is not None:
        return  # absent, or someone else's: never deleted
    uid = live["metadata"].get("uid")
    await context.kube.delete("v1", "Secret", name, owner.namespace, uid=uid)
    context.writes.remember(("v1", "Secret", owner.namespace, name), None)
