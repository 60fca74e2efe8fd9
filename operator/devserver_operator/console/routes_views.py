"""Derived views: servers with their tools, workflows with n8n ids, grants with time left, the
children and Events of an object, a dry-run preview, and the templates to create from."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Body, HTTPException, Request, status

from devserver_operator.api import API_VERSION
from devserver_operator.builders.common import Owner, owner_selector
from devserver_operator.kube.errors import ForbiddenError, KubeApiError, NotFoundError
from devserver_operator.render import RenderError, render_document

from .alerts import alert_rule_view
from .auth import Caller
from .catalog import BUILTIN_TEMPLATES
from .identity import User
from .objects import (
    CHILD_KINDS,
    KINDS_BY_PLURAL,
    Plural,
    grant_view,
    mcp_server_view,
    slim,
    workflow_view,
)
from .state import ConsoleState, console_state

router = APIRouter(prefix="/api/v1", tags=["views"])


async def _visible(state: ConsoleState, user: User, plural: str) -> list[dict[str, Any]]:
    objects = list(state.hub.watches[plural].objects.items())
    namespaces = {ns for (ns, _), _ in objects}
    visible = await state.permissions.visible_namespaces(user, plural, namespaces)
    return [item for (ns, _), item in sorted(objects, key=lambda o: o[0]) if ns in visible]


async def _view(
    request: Request, user: User, plural: str, shape: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    state = console_state(request)
    if not state.hub.watches[plural].synced.is_set():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="the console is still reading the cluster",
            headers={"Retry-After": "1"},
        )
    return {"items": [shape(item) for item in await _visible(state, user, plural)]}


@router.get("/views/mcpservers", summary="MCP servers with their tools and negotiated protocol")
async def mcp_servers(request: Request, user: Caller) -> dict[str, Any]:
    return await _view(request, user, "mcpservers", mcp_server_view)


@router.get("/views/workflows", summary="Workflow integrations with their n8n ids and links")
async def workflows(request: Request, user: Caller) -> dict[str, Any]:
    return await _view(request, user, "workflowintegrations", workflow_view)


@router.get("/views/alerts", summary="Alert rules with their firing and pending alerts")
async def alerts(request: Request, user: Caller) -> dict[str, Any]:
    return await _view(request, user, "alertrules", alert_rule_view)


@router.get("/views/grants", summary="Team grants: who, which role, and the time left")
async def grants(request: Request, user: Caller) -> dict[str, Any]:
    return await _view(request, user, "teamaccesses", grant_view)


async def _owner(request: Request, user: User, plural: str, namespace: str, name: str) -> Owner:
    kind = KINDS_BY_PLURAL[plural].kind
    kube = console_state(request).connection.for_user(user)
    found = await kube.get(API_VERSION, kind, name, namespace)
    if found is None:
        raise KubeApiError(404, "NotFound", f'{plural} "{name}" not found')
    return Owner(kind, name, namespace, str(found["metadata"]["uid"]))


@router.get(
    "/namespaces/{namespace}/{plural}/{name}/children",
    summary="The objects the operator made for this one (never Secrets)",
)
async def children(
    namespace: str, plural: Plural, name: str, request: Request, user: Caller
) -> dict[str, Any]:
    owner = await _owner(request, user, plural.value, namespace, name)
    kube = console_state(request).connection.for_user(user)

    async def of_kind(api_version: str, kind: str) -> dict[str, Any]:
        try:
            items = await kube.list(api_version, kind, namespace, owner_selector(owner))
        except ForbiddenError as error:
            return {"kind": kind, "forbidden": True, "message": error.message, "items": []}
        except NotFoundError:
            return {"kind": kind, "items": []}  # the API (e.g. PrometheusRule) is not installed
        owned = [
            slim(item)
            for item in items
            if any(
                ref.get("uid") == owner.uid for ref in item["metadata"].get("ownerReferences") or ()
            )
        ]
        return {"kind": kind, "items": owned}

    groups = await asyncio.gather(
        *(of_kind(child.api_version, child.kind) for child in CHILD_KINDS[owner.kind])
    )
    return {"groups": list(groups)}


@router.get("/namespaces/{namespace}/{plural}/{name}/events", summary="Events of an object")
async def events(
    namespace: str, plural: Plural, name: str, request: Request, user: Caller
) -> dict[str, Any]:
    owner = await _owner(request, user, plural.value, namespace, name)
    kube = console_state(request).connection.for_user(user)
    selector = urlencode({"fieldSelector": f"involvedObject.uid={owner.uid}"})
    answer = await kube.raw("GET", f"/api/v1/namespaces/{namespace}/events?{selector}")
    rows = [
        {
            "type": event.get("type"),
            "reason": event.get("reason"),
            "message": event.get("message"),
            "count": event.get("count"),
            "lastTimestamp": event.get("lastTimestamp") or event.get("eventTime"),
        }
        for event in answer.get("items") or ()
    ]
    rows.sort(key=lambda row: str(row["lastTimestamp"] or ""))
    return {"items": rows}


@router.post("/preview", summary="The children the operator would create for a manifest")
async def preview(
    request: Request,
    user: Caller,
    body: dict[str, Any] = Body(...),  # noqa: B008 - FastAPI's way of declaring a body
) -> dict[str, Any]:
    """Rendered by the operator's own pure builders; nothing is sent to Kubernetes."""
    state = console_state(request)
    try:
        rendered = render_document("request", body, state.render_settings)
    except RenderError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=str(error)) from error
    if rendered is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail=f"not one of the four kinds of {API_VERSION}",
        )
    return {"children": rendered.children, "note": rendered.note}


def load_templates(directory: str | None) -> list[dict[str, Any]]:
    """The MCPServers of examples/mcpserver-*.yaml, with the file's leading comment."""
    found: list[dict[str, Any]] = list(BUILTIN_TEMPLATES)
    for path in sorted(Path(directory).glob("mcpserver-*.yaml")) if directory else ():
        text = path.read_text(encoding="utf-8")
        comment = " ".join(
            line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")
        )
        for document in yaml.safe_load_all(text):
            # Only the MCPServer itself: an example's Secret would carry a placeholder value.
            if isinstance(document, dict) and document.get("kind") == "MCPServer":
                name = path.stem.removeprefix("mcpserver-")
                found.append({"name": name, "description": comment, "manifest": document})
    return found


@router.get("/templates", summary="Example MCPServers to create from")
async def templates(request: Request, user: Caller) -> dict[str, Any]:
    directory = console_state(request).settings.examples_dir
    return {"items": await asyncio.to_thread(load_templates, directory)}
