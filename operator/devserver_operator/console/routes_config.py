"""What the UI needs to know before and after login: how to log in, and the sidebar links."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .auth import Caller
from .state import console_state

router = APIRouter(prefix="/api/v1", tags=["session"])


@router.get("/config", summary="How to log in (public: the login page reads it)")
async def config(request: Request) -> dict[str, Any]:
    state = console_state(request)
    return {
        "login": {
            "token": True,
            "oidc": "/api/v1/oidc/login" if state.oidc is not None else None,
        },
        "localAdmin": state.settings.local_admin,
    }


@router.get("/links", summary="The sidebar links (n8n, OpenHands, GitHub, GitLab, ...)")
async def links(request: Request, _: Caller) -> dict[str, Any]:
    # Behind login: the links may name internal hosts.
    settings = console_state(request).settings
    return {"items": [link.model_dump() for link in settings.links]}
