"""Who is asking, and may they ask now: bearer token or session cookie, CSRF, rate limit.

- ``Authorization: Bearer <token>`` (scripts, curl): reviewed by the API server, cached 30 s
  by the token's hash. No cookie is involved, so no CSRF check is needed.
- The session cookie (browsers): every unsafe request must also carry the session's CSRF
  token in ``X-CSRF-Token`` (double submit: the token is in a cookie only same-origin script
  can read) and, when the browser sends one, an ``Origin`` equal to the console's own.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from .identity import User, review_token
from .ratelimit import retry_after_header
from .sessions import CSRF_HEADER, SESSION_COOKIE, Session
from .state import ConsoleState, console_state

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL_ADMIN = User(username="local-admin", groups=("system:masters",), impersonated=False)
"""Dev mode's user: the console's own identity, which `devserver-operator dev` makes admin."""


def unauthenticated(detail: str = "log in with a Kubernetes bearer token") -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def expected_origin(request: Request, state: ConsoleState) -> str:
    if state.settings.public_origin:
        return state.settings.public_origin.rstrip("/")
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def check_origin(request: Request, state: ConsoleState) -> None:
    """Browsers send Origin with every cross-site write; one that is not ours is refused."""
    origin = request.headers.get("origin")
    if origin is not None and origin != expected_origin(request, state):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"cross-origin request from {origin}")


def rate_limit(state: ConsoleState, key: str) -> None:
    wait = state.limiter.acquire(key)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many requests; slow down",
            headers={"Retry-After": retry_after_header(wait)},
        )


async def bearer_user(state: ConsoleState, token: str) -> User | None:
    known, user = state.tokens.get(token)
    if not known:
        user = await review_token(state.connection.console, token)
        state.tokens.put(token, user)
    return user


async def session_of(request: Request, state: ConsoleState) -> Session | None:
    session = state.sessions.lookup(request.cookies.get(SESSION_COOKIE))
    if session is None or session.token is None:
        return session
    if time.monotonic() - session.reviewed > state.settings.token_recheck_seconds:
        # A revoked or expired token ends the session at the next request.
        if await review_token(state.connection.console, session.token) != session.user:
            state.sessions.drop(session)
            return None
        session.reviewed = time.monotonic()
    return session


async def caller(request: Request) -> User:
    """The authenticated user of an API request (a FastAPI dependency)."""
    state = console_state(request)
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        user = await bearer_user(state, authorization[7:].strip())
        if user is None:
            raise unauthenticated("the API server did not accept the bearer token")
    else:
        session = await session_of(request, state)
        if session is None:
            raise unauthenticated()
        if request.method not in SAFE_METHODS:
            check_origin(request, state)
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong CSRF token")
        user = session.user
    rate_limit(state, user.key)
    return user


Caller = Annotated[User, Depends(caller)]
