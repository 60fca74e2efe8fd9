"""Actions: "Verify now" (MCPServer) and "Sync now" (WorkflowIntegration).

Both set the annotation ``devserver.ecosphere.network/requested-at`` to the current time, as
the person asking (a merge patch: whoever may change the object may ask; a viewer gets the
API server's 403), audited like every write. The operator hands each new value to one
reconcile, which runs the MCP handshake or compares every workflow with n8n at once
(reconcile/requests.py); the result arrives as a status change over the live stream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from devserver_operator.api import API_VERSION
from devserver_operator.builders.common import REQUEST_ANNOTATION

from .auth import Caller
from .identity import User
from .objects import slim
from .routes_kinds import audited
from .state import console_state

router = APIRouter(prefix="/api/v1", tags=["actions"])


async def _request_reconcile(
    request: Request, user: User, action: str, plural: str, namespace: str, name: str
) -> dict[str, Any]:
    kind = {"mcpservers": "MCPServer", "workflowintegrations": "WorkflowIntegration"}[plural]
    moment = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    patch = {"metadata": {"annotations": {REQUEST_ANNOTATION: moment}}}
    kube = console_state(request).connection.for_user(user)
    changed = await audited(
        user,
        action,
        plural,
        namespace,
        name,
        kube.merge_patch(API_VERSION, kind, name, namespace, patch),
    )
    return {"requestedAt": moment, "object": slim(changed)}


@router.post(
    "/namespaces/{namespace}/mcpservers/{name}/verify",
    summary="Run the MCP handshake of an MCPServer now",
)
async def verify_now(namespace: str, name: str, request: Request, user: Caller) -> dict[str, Any]:
    return await _request_reconcile(request, user, "verify", "mcpservers", namespace, name)


@router.post(
    "/namespaces/{namespace}/workflowintegrations/{name}/sync",
    summary="Compare every workflow of a WorkflowIntegration with n8n now",
)
async def sync_now(namespace: str, name: str, request: Request, user: Caller) -> dict[str, Any]:
    return await _request_reconcile(request, user, "sync", "workflowintegrations", namespace, name)
