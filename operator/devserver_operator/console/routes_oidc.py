"""OIDC login routes: start at the issuer, come back with a code, leave with a session.

``GET /api/v1/oidc/login`` starts a login (oidc.py) and sends the browser to the issuer; the
state of that login is also put in a short-lived cookie, so that only the browser that
started it can finish it (no login CSRF). ``GET /api/v1/oidc/callback`` checks the state
against that cookie, exchanges the code, and turns the ID token's user into an ordinary
console session (the same Secure, HttpOnly, SameSite=Strict cookie a token login gets).

The flow cookie is SameSite=Lax because the issuer sends the browser back with a top-level
cross-site navigation, which Strict cookies do not follow; it is ``__Host-`` prefixed (Secure,
Path=/, no Domain), so no sibling domain can plant one.
"""

from __future__ import annotations

import hmac
import html
import logging

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from .auth import expected_origin, rate_limit
from .oidc import PENDING_SECONDS, OidcError, OidcProvider
from .routes_session import set_session_cookies
from .state import ConsoleState, console_state

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/oidc", tags=["session"])

FLOW_COOKIE = "__Host-devserver_console_oidc"
CALLBACK_PATH = "/api/v1/oidc/callback"
ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Login failed - devserver console</title></head><body><main>
<h1>Login failed</h1><p>{message}</p><p><a href="/">Back to the console</a></p>
</main></body></html>"""


def _provider(state: ConsoleState) -> OidcProvider:
    if state.oidc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="OIDC login is not configured")
    return state.oidc


def _refused(message: str, code: int = status.HTTP_401_UNAUTHORIZED) -> HTMLResponse:
    log.warning("OIDC login refused: %s", message)
    response = HTMLResponse(ERROR_PAGE.format(message=html.escape(message)), code)
    response.delete_cookie(FLOW_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


def _client_key(request: Request) -> str:
    return f"login:{request.client.host if request.client else ''}"


@router.get("/login", summary="Log in with the configured OpenID Connect issuer")
async def oidc_login(request: Request) -> Response:
    state = console_state(request)
    provider = _provider(state)
    rate_limit(state, _client_key(request))
    pending = provider.pending.start()
    redirect_uri = expected_origin(request, state) + CALLBACK_PATH
    try:
        target = await provider.authorization_url(pending, redirect_uri)
    except OidcError as error:
        return _refused(str(error), status.HTTP_502_BAD_GATEWAY)
    response = RedirectResponse(target, status.HTTP_302_FOUND)
    response.set_cookie(
        FLOW_COOKIE,
        pending.state,
        max_age=int(PENDING_SECONDS),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/callback", summary="Where the issuer sends the browser back", response_model=None)
async def oidc_callback(request: Request) -> Response:
    state = console_state(request)
    provider = _provider(state)
    rate_limit(state, _client_key(request))
    query = request.query_params
    if "error" in query:
        # The issuer's error code only: its description is free text from elsewhere.
        code = query.get("error", "")[:64]
        return _refused(f"the identity provider did not log you in: {code}")
    sent_state, code = query.get("state", ""), query.get("code", "")
    cookie_state = request.cookies.get(FLOW_COOKIE, "")
    if not sent_state or not code:
        return _refused("the callback carries no code or state", status.HTTP_400_BAD_REQUEST)
    if not cookie_state or not hmac.compare_digest(sent_state.encode(), cookie_state.encode()):
        return _refused("this login was not started by this browser (state)", 400)
    pending = provider.pending.take(sent_state)
    if pending is None:
        return _refused("this login has expired or was already used; start again", 400)
    redirect_uri = expected_origin(request, state) + CALLBACK_PATH
    try:
        user = await provider.exchange(code, pending, redirect_uri)
    except OidcError as error:
        return _refused(str(error))
    session, cookie = state.sessions.create(user, None)
    log.info("OIDC login of %s", user.username)
    # 303: the browser fetches "/" with GET, and the code leaves its address bar.
    response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    set_session_cookies(response, cookie, session, state)
    response.delete_cookie(FLOW_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response
