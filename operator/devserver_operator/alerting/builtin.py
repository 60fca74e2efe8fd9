"""Built-in conditions on this project's own resources, from the operator's own view of them
(its watch caches). No Prometheus needed. Pure: resource views in, observations out.

- ``MCPServerNotReady``: an MCPServer whose Ready condition is not True. The alert counts from
  the condition's lastTransitionTime, so ``for: 5m`` means five minutes of not being Ready, even
  across operator restarts.
- ``MCPServerNoTools``: an MCPServer whose last successful handshake listed no tools (its tool
  count is 0, including a server whose tools dropped to zero). Value: the tool count.
- ``WorkflowSyncFailing``: a WorkflowIntegration whose Ready condition is False.

A resource being deleted, or one without a Ready condition yet (the operator has not looked at
it), never alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devserver_operator.api.alertrule import BuiltinCondition

from .state import Observation

MCPSERVER = "MCPServer"
WORKFLOWINTEGRATION = "WorkflowIntegration"

DEFAULT_SUMMARIES: dict[str, str] = {
    "MCPServerNotReady": "MCPServer {{ $labels.namespace }}/{{ $labels.name }} is not Ready",
    "MCPServerNoTools": "MCPServer {{ $labels.namespace }}/{{ $labels.name }} lists no tools",
    "WorkflowSyncFailing": (
        "WorkflowIntegration {{ $labels.namespace }}/{{ $labels.name }} fails to sync"
    ),
}


@dataclass(frozen=True)
class ResourceView:
    """What the built-in conditions read from an MCPServer or a WorkflowIntegration."""

    kind: str
    namespace: str
    name: str
    ready: str | None = None
    ready_since: datetime | None = None
    tool_count: int | None = None
    deleting: bool = False


def resource_view(kind: str, body: Mapping[str, Any]) -> ResourceView:
    """The view of one object body (from a kopf index)."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    ready = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"),
        None,
    )
    tool_count = status.get("toolCount")
    return ResourceView(
        kind=kind,
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        ready=str(ready["status"]) if ready and ready.get("status") else None,
        ready_since=_timestamp(ready.get("lastTransitionTime")) if ready else None,
        tool_count=tool_count if isinstance(tool_count, int) else None,
        deleting=bool(metadata.get("deletionTimestamp")),
    )


def builtin_observations(
    condition: BuiltinCondition,
    views: Iterable[ResourceView],
    *,
    names: Iterable[str] | None = None,
) -> list[Observation]:
    wanted = set(names) if names else None
    found: list[Observation] = []
    for view in sorted(views, key=lambda v: v.name):
        if view.deleting or (wanted is not None and view.name not in wanted):
            continue
        observation = _observe(condition, view)
        if observation is not None:
            found.append(observation)
    return found


def _observe(condition: BuiltinCondition, view: ResourceView) -> Observation | None:
    labels = {"kind": view.kind, "namespace": view.namespace, "name": view.name}
    if view.kind != kind_of(condition):
        return None
    if condition == "MCPServerNotReady" and view.ready is not None and view.ready != "True":
        return Observation(labels, 1.0, since=view.ready_since)
    if condition == "MCPServerNoTools" and view.tool_count == 0:
        return Observation(labels, 0.0)
    if condition == "WorkflowSyncFailing" and view.ready == "False":
        return Observation(labels, 1.0, since=view.ready_since)
    return None


def kind_of(condition: BuiltinCondition) -> str:
    return WORKFLOWINTEGRATION if condition == "WorkflowSyncFailing" else MCPSERVER


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
