"""Server-side login sessions behind a signed, HttpOnly cookie.

The browser holds only a random session id with an HMAC signature; the user, the CSRF token
and the bearer token (kept to review it again, so a revoked token ends the session) stay in
this process's memory and are gone when it restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from .identity import User

SESSION_COOKIE = "devserver_console_session"
CSRF_COOKIE = "devserver_console_csrf"
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class Session:
    id: str
    user: User
    token: str | None
    csrf: str
    expires: float
    reviewed: float


class SessionStore:
    def __init__(self, ttl: float, *, secret: bytes | None = None, limit: int = 10_000) -> None:
        self._ttl = ttl
        self._secret = secret or secrets.token_bytes(32)
        self._limit = limit
        self._sessions: dict[str, Session] = {}

    def _sign(self, session_id: str) -> str:
        digest = hmac.new(self._secret, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def create(self, user: User, token: str | None) -> tuple[Session, str]:
        """A new session and the cookie value that names it."""
        now = time.monotonic()
        if len(self._sessions) >= self._limit:
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            if len(self._sessions) >= self._limit:
                # Oldest first: the store must stay bounded even under a login flood.
                oldest = min(self._sessions.values(), key=lambda s: s.expires)
                del self._sessions[oldest.id]
        session_id = secrets.token_urlsafe(32)
        session = Session(
            id=session_id,
            user=user,
            token=token,
            csrf=secrets.token_urlsafe(32),
            expires=now + self._ttl,
            reviewed=now,
        )
        self._sessions[session_id] = session
        return session, f"{session_id}.{self._sign(session_id)}"

    def lookup(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        session_id, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(session_id)):
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires <= time.monotonic():
            del self._sessions[session_id]
            return None
        return session

    def drop(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def __len__(self) -> int:
        return len(self._sessions)
