"""What the console serves of the four kinds, their children and their Events.

Only these kinds pass through the console. Secrets are none of them: the four kinds refer to
Secrets by name, and the console has no route that reads one, so no Secret value can reach a
browser through it (a test plants a canary to hold this).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from devserver_operator.api import ALL_KINDS, API_VERSION, KindInfo

KINDS_BY_PLURAL: dict[str, KindInfo] = {info.plural: info for info in ALL_KINDS}


class Plural(StrEnum):
    """The kinds the API serves, by their plural as in Kubernetes' own paths."""

    mcpservers = "mcpservers"
    workflowintegrations = "workflowintegrations"
    alertrules = "alertrules"
    teamaccesses = "teamaccesses"


@dataclass(frozen=True)
class ChildKind:
    api_version: str
    kind: str


# What the operator creates for each kind (builders/); never Secret.
CHILD_KINDS: dict[str, tuple[ChildKind, ...]] = {
    "MCPServer": (
        ChildKind("apps/v1", "Deployment"),
        ChildKind("v1", "Service"),
        ChildKind("v1", "ServiceAccount"),
        ChildKind("networking.k8s.io/v1", "NetworkPolicy"),
        ChildKind("policy/v1", "PodDisruptionBudget"),
        ChildKind("autoscaling/v2", "HorizontalPodAutoscaler"),
    ),
    "WorkflowIntegration": (ChildKind("v1", "ConfigMap"),),
    "AlertRule": (ChildKind("monitoring.coreos.com/v1", "PrometheusRule"),),
    "TeamAccess": (ChildKind("rbac.authorization.k8s.io/v1", "RoleBinding"),),
}
assert not any(c.kind == "Secret" for kinds in CHILD_KINDS.values() for c in kinds)


def slim(item: dict[str, Any]) -> dict[str, Any]:
    """The object without managedFields (bookkeeping that doubles its size)."""
    metadata = item.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        item = {**item, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    return item


def condition(item: dict[str, Any], condition_type: str) -> dict[str, Any] | None:
    for found in (item.get("status") or {}).get("conditions") or ():
        if isinstance(found, dict) and found.get("type") == condition_type:
            return found
    return None


def health(item: dict[str, Any]) -> str:
    """Ready, Reconciling, Stalled, NotReady or Unknown: the kstatus reading of an object."""
    if (stalled := condition(item, "Stalled")) and stalled.get("status") == "True":
        return "Stalled"
    if (reconciling := condition(item, "Reconciling")) and reconciling.get("status") == "True":
        return "Reconciling"
    ready = condition(item, "Ready")
    if ready is None:
        return "Unknown"
    return {"True": "Ready", "False": "NotReady"}.get(str(ready.get("status")), "Unknown")


def _meta(item: dict[str, Any]) -> dict[str, Any]:
    metadata = item.get("metadata") or {}
    return {"namespace": metadata.get("namespace", ""), "name": metadata.get("name", "")}


def mcp_server_view(item: dict[str, Any]) -> dict[str, Any]:
    status = item.get("status") or {}
    info = status.get("serverInfo") or {}
    spec = item.get("spec") or {}
    return {
        **_meta(item),
        "health": health(item),
        "mode": "remote" if spec.get("url") else "workload",
        "url": status.get("url"),
        "transport": status.get("transport"),
        "replicas": spec.get("replicas"),
        "readyReplicas": status.get("readyReplicas"),
        "server": {"name": info.get("name"), "version": info.get("version")},
        "protocolVersion": info.get("protocolVersion"),
        "toolCount": status.get("toolCount"),
        "tools": status.get("tools") or [],
        "lastVerifiedTime": status.get("lastVerifiedTime"),
    }


def workflow_view(item: dict[str, Any]) -> dict[str, Any]:
    status = item.get("status") or {}
    n8n = (item.get("spec") or {}).get("n8n") or {}
    base = str(n8n.get("url") or "").rstrip("/")
    workflows = [
        {
            "name": wf.get("name"),
            "n8nId": wf.get("id"),
            "active": wf.get("active"),
            "webhookUrls": wf.get("webhookUrls") or [],
            "link": f"{base}/workflow/{wf['id']}" if base and wf.get("id") else None,
            "lastSyncTime": wf.get("lastSyncTime"),
        }
        for wf in status.get("workflows") or ()
    ]
    return {**_meta(item), "health": health(item), "n8nUrl": base or None, "workflows": workflows}


def grant_view(item: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    spec, status = item.get("spec") or {}, item.get("status") or {}
    expires = spec.get("expiresAt")
    seconds_left: float | None = None
    if expires:
        moment = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        seconds_left = max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
    return {
        **_meta(item),
        "health": health(item),
        "role": spec.get("role"),
        "members": spec.get("members") or [],
        "expiresAt": expires,
        "secondsLeft": seconds_left,
        "expired": bool(status.get("expired")),
    }


def summary(plural: str, item: dict[str, Any]) -> dict[str, Any]:
    """A list row: enough for the dashboard and lists, small enough for 1,000 objects."""
    ready = condition(item, "Ready") or {}
    row = {
        **_meta(item),
        "kind": KINDS_BY_PLURAL[plural].kind,
        "health": health(item),
        "reason": ready.get("reason"),
        "message": ready.get("message"),
        "created": (item.get("metadata") or {}).get("creationTimestamp"),
    }
    if plural == "mcpservers":
        status = item.get("status") or {}
        row["toolCount"] = status.get("toolCount")
        row["replicas"] = (item.get("spec") or {}).get("replicas")
        row["url"] = status.get("url")
    return row


def manifest_for(plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """The object to create: apiVersion, kind and namespace come from the path."""
    metadata = dict(body.get("metadata") or {})
    metadata["namespace"] = namespace
    return {
        **body,
        "apiVersion": API_VERSION,
        "kind": KINDS_BY_PLURAL[plural].kind,
        "metadata": metadata,
    }
