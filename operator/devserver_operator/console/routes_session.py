"""Logging in and out: a Kubernetes bearer token becomes a server-side session."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from .auth import LOCAL_ADMIN, check_origin, rate_limit, session_of, unauthenticated
from .identity import review_token
from .sessions import CSRF_COOKIE, SESSION_COOKIE, Session
from .state import ConsoleState, console_state

router = APIRouter(prefix="/api/v1/session", tags=["session"])


class Login(BaseModel):
    token: str = Field(min_length=1, max_length=16_384)
    """A Kubernetes bearer token (e.g. `kubectl create token NAME`)."""


def _session_body(session: Session, state: ConsoleState) -> dict[str, Any]:
    return {
        "user": session.user.public(),
        "csrfToken": session.csrf,
        "localAdmin": state.settings.local_admin,
    }


def set_session_cookies(
    response: Response, cookie: str, session: Session, state: ConsoleState
) -> None:
    age = int(state.settings.session_ttl_seconds)
    # Secure: browsers still accept it on http://localhost and 127.0.0.1 (dev mode).
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=age, path="/", secure=True, httponly=True, samesite="strict"
    )
    # Readable by the page's own script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(
        CSRF_COOKIE,
        session.csrf,
        max_age=age,
        path="/",
        secure=True,
        httponly=False,
        samesite="strict",
    )


@router.get("", summary="The logged-in user and the CSRF token")
async def current_session(request: Request, response: Response) -> dict[str, Any]:
    state = console_state(request)
    session = await session_of(request, state)
    if session is None and state.settings.local_admin:
        session, cookie = state.sessions.create(LOCAL_ADMIN, None)
        set_session_cookies(response, cookie, session, state)
    if session is None:
        raise unauthenticated()
    return _session_body(session, state)


@router.post("", summary="Log in with a Kubernetes bearer token")
async def login(login: Login, request: Request, response: Response) -> dict[str, Any]:
    state = console_state(request)
    check_origin(request, state)
    rate_limit(state, f"login:{request.client.host if request.client else ''}")
    user = await review_token(state.connection.console, login.token)
    if user is None:
        raise unauthenticated("the API server did not accept this token")
    session, cookie = state.sessions.create(user, login.token)
    set_session_cookies(response, cookie, session, state)
    return _session_body(session, state)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, summary="Log out")
async def logout(request: Request, response: Response) -> None:
    state = console_state(request)
    check_origin(request, state)
    session = await session_of(request, state)
    if session is not None:
        if request.headers.get("x-csrf-token") != session.csrf:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong CSRF token")
        state.sessions.drop(session)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=True, samesite="strict")
