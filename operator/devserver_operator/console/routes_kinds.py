"""The four kinds: list, get, create, patch, delete, scale — each as the calling user.

Refusals are the API server's own: its status code (403, 404, 409, 422) and its message are
passed through unchanged (see app.py), so a person sees exactly what kubectl would show.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Body, Query, Request, status
from pydantic import BaseModel, Field

from devserver_operator.api import API_VERSION
from devserver_operator.kube.errors import KubeApiError

from .audit import audit_write
from .auth import Caller
from .identity import User
from .objects import KINDS_BY_PLURAL, Plural, manifest_for, slim, summary
from .state import console_state

router = APIRouter(prefix="/api/v1", tags=["kinds"])
T = TypeVar("T")


async def audited(
    user: User, action: str, plural: str, namespace: str, name: str, call: Awaitable[T]
) -> T:
    kind = KINDS_BY_PLURAL[plural].kind
    try:
        result = await call
    except KubeApiError as error:
        audit_write(user, action, kind, namespace, name, status=error.status, reason=error.reason)
        raise
    audit_write(user, action, kind, namespace, name, status=200)
    return result


@router.get("/{plural}", summary="List one kind in every namespace the user may list it in")
async def list_all(plural: Plural, request: Request, user: Caller) -> dict[str, Any]:
    """Served from the console's shared watch, filtered by a SelfSubjectAccessReview per
    namespace (as the user): a namespace the user may not list contributes nothing."""
    state = console_state(request)
    watch = state.hub.watches[plural.value]
    if not watch.synced.is_set():
        items = await state.connection.for_user(user).list(
            API_VERSION, KINDS_BY_PLURAL[plural.value].kind, None
        )
        return {"items": [summary(plural.value, slim(i)) for i in items]}
    objects = list(watch.objects.items())
    visible = await state.permissions.visible_namespaces(
        user, plural.value, {ns for (ns, _), _ in objects}
    )
    rows = [summary(plural.value, item) for (ns, _), item in objects if ns in visible]
    rows.sort(key=lambda row: (row["namespace"], row["name"]))
    return {"items": rows}


@router.get("/namespaces/{namespace}/{plural}", summary="List one kind in a namespace")
async def list_namespaced(
    namespace: str, plural: Plural, request: Request, user: Caller
) -> dict[str, Any]:
    kube = console_state(request).connection.for_user(user)
    items = await kube.list(API_VERSION, KINDS_BY_PLURAL[plural.value].kind, namespace)
    return {"items": [slim(item) for item in items]}


@router.get("/namespaces/{namespace}/{plural}/{name}", summary="Get one object")
async def get_one(
    namespace: str, plural: Plural, name: str, request: Request, user: Caller
) -> dict[str, Any]:
    kube = console_state(request).connection.for_user(user)
    kind = KINDS_BY_PLURAL[plural.value].kind
    found = await kube.get(API_VERSION, kind, name, namespace)
    if found is None:
        raise KubeApiError(404, "NotFound", f'{plural.value} "{name}" not found')
    return slim(found)


@router.post(
    "/namespaces/{namespace}/{plural}",
    status_code=status.HTTP_201_CREATED,
    summary="Create an object (apiVersion, kind and namespace come from the path)",
)
async def create(
    namespace: str,
    plural: Plural,
    request: Request,
    user: Caller,
    body: dict[str, Any] = Body(...),  # noqa: B008 - FastAPI's way of declaring a body
    dry_run: bool = Query(default=False, alias="dryRun"),
) -> dict[str, Any]:
    manifest = manifest_for(plural.value, namespace, body)
    name = str(manifest["metadata"].get("name") or "")
    kube = console_state(request).connection.for_user(user)
    if dry_run:
        return slim(await kube.create(manifest, dry_run=True))
    created = await audited(user, "create", plural.value, namespace, name, kube.create(manifest))
    return slim(created)


@router.patch("/namespaces/{namespace}/{plural}/{name}", summary="Change an object (merge patch)")
async def patch(
    namespace: str,
    plural: Plural,
    name: str,
    request: Request,
    user: Caller,
    body: dict[str, Any] = Body(...),  # noqa: B008
) -> dict[str, Any]:
    kube = console_state(request).connection.for_user(user)
    kind = KINDS_BY_PLURAL[plural.value].kind
    changed = await audited(
        user,
        "patch",
        plural.value,
        namespace,
        name,
        kube.merge_patch(API_VERSION, kind, name, namespace, body),
    )
    return slim(changed)


class Scale(BaseModel):
    replicas: int = Field(ge=0, le=1000)
    """0 stops the server; its Deployment stays."""


@router.post(
    "/namespaces/{namespace}/mcpservers/{name}/scale", summary="Scale or stop an MCPServer"
)
async def scale(
    namespace: str, name: str, scale: Scale, request: Request, user: Caller
) -> dict[str, Any]:
    kube = console_state(request).connection.for_user(user)
    patch_body = {"spec": {"replicas": scale.replicas}}
    changed = await audited(
        user,
        "scale",
        "mcpservers",
        namespace,
        name,
        kube.merge_patch(API_VERSION, "MCPServer", name, namespace, patch_body),
    )
    return slim(changed)


@router.delete(
    "/namespaces/{namespace}/{plural}/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an object",
)
async def delete(namespace: str, plural: Plural, name: str, request: Request, user: Caller) -> None:
    kube = console_state(request).connection.for_user(user)
    kind = KINDS_BY_PLURAL[plural.value].kind
    try:
        gone = await kube.delete(API_VERSION, kind, name, namespace)
    except KubeApiError as error:
        audit_write(user, "delete", kind, namespace, name, status=error.status, reason=error.reason)
        raise
    audit_write(user, "delete", kind, namespace, name, status=200 if gone else 404)
    if not gone:
        raise KubeApiError(404, "NotFound", f'{plural.value} "{name}" not found')
