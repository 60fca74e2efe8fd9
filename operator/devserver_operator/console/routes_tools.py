"""Try a tool: call one tool of a Ready MCPServer, as the person asking, and show the answer.

Who may: whoever the API server allows ``create`` on ``mcpservers/tools`` in the server's
namespace (a SelfSubjectAccessReview as that person, asked on every call, never cached), which
the TeamAccess role ``admin`` grants and ``viewer`` and ``operator`` do not.

Header Secrets: a server whose ``spec.headers`` come from Secrets is called with those
headers only if the person may read the Secrets themselves. The console reads them with the
person's own impersonating client, so the API server decides; the console's ServiceAccount
cannot read Secrets at all. The values go into the request headers and nowhere else (the MCP
client redacts them from its error messages; they are never logged or returned).

The call uses the operator's own MCP client (:mod:`devserver_operator.integrations.mcp_call`,
the verification's session), bounded in time and answer size. Every call is audited: who,
which server and tool, when, the outcome; never the arguments (a person may paste anything).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Final

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from pydantic import ValidationError as ModelError

from devserver_operator.api import API_VERSION
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.builders.common import Owner
from devserver_operator.builders.mcpserver import served_transport, server_url
from devserver_operator.integrations.mcp_call import call_mcp_tool
from devserver_operator.integrations.mcp_errors import McpProbeError
from devserver_operator.kinds.mcpserver.inputs import MissingReferenceError, read_headers
from devserver_operator.kube.errors import ForbiddenError, KubeApiError

from .audit import audit_write
from .auth import Caller
from .identity import User
from .objects import condition, health
from .permissions import self_review
from .state import console_state

router = APIRouter(prefix="/api/v1", tags=["tools"])

CALL_TIMEOUT_SECONDS: Final = 30.0
MAX_RESULT_BYTES: Final = 1024 * 1024
MAX_ARGUMENT_BYTES: Final = 64 * 1024
MAX_CALLS_AT_ONCE: Final = 8
"""Per console process: slow tools must not tie up the console's connections."""
CALL_PERMISSION: Final = ("create", "mcpservers", "tools")


class ToolCall(BaseModel):
    tool: str = Field(min_length=1, max_length=256)
    arguments: dict[str, Any] = Field(default_factory=dict)


def _refused(status: int, reason: str, message: str) -> KubeApiError:
    """A refusal in the shape of the API server's own (see app.py)."""
    return KubeApiError(status, reason, message)


def _slots(request: Request) -> asyncio.Semaphore:
    state = request.app.state
    slots: asyncio.Semaphore | None = getattr(state, "tool_call_slots", None)
    if slots is None:
        slots = state.tool_call_slots = asyncio.Semaphore(MAX_CALLS_AT_ONCE)
    return slots


async def _prepare(
    request: Request, user: User, namespace: str, name: str
) -> tuple[str, str, dict[str, str]]:
    """The server's URL, transport and headers, or the refusal that applies first."""
    kube = console_state(request).connection.for_user(user)
    found = await kube.get(API_VERSION, "MCPServer", name, namespace)
    if found is None:
        raise _refused(404, "NotFound", f'mcpservers "{name}" not found')
    verb, plural, subresource = CALL_PERMISSION
    if not await self_review(kube, verb, plural, namespace, subresource):
        raise _refused(
            403,
            "Forbidden",
            f"{user.username} may not call tools of MCPServers in namespace {namespace}: that "
            f"needs {verb} on {plural}/{subresource} (TeamAccess role admin).",
        )
    if health(found) != "Ready":
        ready = condition(found, "Ready") or {}
        raise _refused(
            409,
            "NotReady",
            f"MCPServer {namespace}/{name} is not Ready ({ready.get('reason') or 'no status'}): "
            f"tools are called on Ready servers only.",
        )
    try:
        spec = MCPServerSpec.model_validate(found.get("spec") or {})
    except ModelError:
        raise _refused(409, "InvalidSpec", "the MCPServer's spec is not valid") from None
    try:
        headers = await read_headers(kube, namespace, spec)
    except ForbiddenError:
        raise _refused(
            403,
            "Forbidden",
            f"MCPServer {namespace}/{name} is called with headers from Secrets, and "
            f"{user.username} may not read them; the console calls it only for those who may.",
        ) from None
    except MissingReferenceError as error:
        raise _refused(409, "MissingReference", str(error)) from None
    owner = Owner("MCPServer", name, namespace, str(found["metadata"].get("uid", "")))
    cluster_domain = console_state(request).render_settings.cluster_domain
    return server_url(owner, spec, cluster_domain), served_transport(spec), headers


@router.get(
    "/namespaces/{namespace}/mcpservers/{name}/tools",
    summary="Whether you may call tools of this MCPServer (the UI shows the form only then)",
)
async def may_call(namespace: str, name: str, request: Request, user: Caller) -> dict[str, Any]:
    kube = console_state(request).connection.for_user(user)
    verb, plural, subresource = CALL_PERMISSION
    return {"mayCall": await self_review(kube, verb, plural, namespace, subresource)}


@router.post(
    "/namespaces/{namespace}/mcpservers/{name}/tools/call",
    summary="Call one tool of a Ready MCPServer (needs create on mcpservers/tools)",
)
async def call_tool(
    namespace: str, name: str, call: ToolCall, request: Request, user: Caller
) -> dict[str, Any]:
    def audit(status: int, reason: str = "", **extra: str) -> None:
        audit_write(
            user, "call-tool", "MCPServer", namespace, name, status=status, reason=reason,
            tool=call.tool, **extra,
        )  # fmt: skip

    if len(json.dumps(call.arguments)) > MAX_ARGUMENT_BYTES:
        audit(413, "ArgumentsTooLarge")
        raise _refused(413, "ArgumentsTooLarge", f"arguments over {MAX_ARGUMENT_BYTES} bytes")
    try:
        url, transport, headers = await _prepare(request, user, namespace, name)
    except KubeApiError as error:
        audit(error.status, error.reason)
        raise
    started = time.monotonic()
    try:
        async with _slots(request):
            result = await call_mcp_tool(
                url,
                "sse" if transport == "sse" else "streamable-http",
                call.tool,
                call.arguments,
                timeout=CALL_TIMEOUT_SECONDS,
                headers=headers or None,
                max_response_bytes=MAX_RESULT_BYTES,
            )
    except McpProbeError as error:
        audit(502, error.reason)
        raise _refused(502, error.reason, error.message) from None
    seconds = round(time.monotonic() - started, 3)
    audit(200, "ToolError" if result.is_error else "", seconds=str(seconds))
    return {
        "namespace": namespace,
        "name": name,
        "tool": result.tool,
        "isError": result.is_error,
        "content": result.content,
        "structuredContent": result.structured_content,
        "protocolVersion": result.protocol_version,
        "durationSeconds": seconds,
    }
