"""The OpenHands ConfigMap of a WorkflowIntegration: applied when it differs from the watch
cache, pruned when the spec names another one or none.

A ConfigMap of that name that this WorkflowIntegration does not control (another
WorkflowIntegration's, or one a user made) is never taken over: server-side apply with force
would hand it back and forth between two owners on every change, so the second one ends
Stalled with ConfigMapConflict instead."""

from __future__ import annotations

from typing import Any

from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import held_by_another
from devserver_operator.builders.openhands import OpenHandsServer, build_openhands_config_map
from devserver_operator.builders.workflowintegration import WiredMcpServer
from devserver_operator.kube.errors import ForbiddenError, InvalidError
from devserver_operator.observe.workflowintegration import (
    CONFIG_MAP_CONFLICT,
    CONFIG_MAP_REJECTED,
    Problem,
)
from devserver_operator.reconcile.kind import Request

from .openhands_secret import apply_openhands_secret


async def apply_openhands_config(
    request: Request,
    spec: WorkflowIntegrationSpec,
    servers: list[WiredMcpServer],
    problems: list[Problem],
) -> int | None:
    """Apply the OpenHands ConfigMap (and prune an old one); the number of servers listed."""
    wanted: list[dict[str, Any]] = []
    listed: list[OpenHandsServer] = []
    if spec.open_hands is not None:
        include_all = spec.open_hands.include_not_ready
        listed = [
            OpenHandsServer(s.name, s.url, s.transport)
            for s in servers
            if s.url and s.transport and (s.ready or include_all)
        ]
        wanted = [
            build_openhands_config_map(request.owner, spec.open_hands.config_map_name, listed)
        ]
    try:
        if spec.open_hands is not None:
            conflict = await _conflict(request, spec.open_hands.config_map_name)
            if conflict is not None:
                problems.append(Problem("stalled", CONFIG_MAP_CONFLICT, conflict))
                wanted = []  # an older ConfigMap of ours is still pruned
        applied = await request.apply(wanted)
        await apply_openhands_secret(
            request,
            spec.open_hands.config_map_name if spec.open_hands is not None and wanted else None,
            servers,
            listed,
            [key.removeprefix("ConfigMap/") for key in applied.pruned],
            problems,
        )
    except (InvalidError, ForbiddenError) as error:
        problems.append(
            Problem(
                "stalled",
                CONFIG_MAP_REJECTED,
                f"spec.openHands: the API server refused the ConfigMap or Secret "
                f"{spec.open_hands.config_map_name if spec.open_hands else ''}: {error.message}",
            )
        )
        return None
    return len(listed) if spec.open_hands is not None and wanted else None


async def _conflict(request: Request, name: str) -> str | None:
    """Why the ConfigMap ``name`` is not ours to write, or None when it is ours or absent."""
    owner = request.owner
    live = request.lookup("v1", "ConfigMap", owner.namespace, name)
    if live is None:
        # The watch cache holds only ConfigMaps labelled as ours: one made by someone else
        # can only be seen by asking (a read, and only while it is not ours).
        live = await request.context.kube.get("v1", "ConfigMap", name, owner.namespace)
        if live is None:
            return None
    holder = held_by_another(live, owner)
    if holder is None:
        return None
    return (
        f"spec.openHands.configMapName: ConfigMap {name} {holder}; choose another name, "
        "or delete that ConfigMap"
    )
