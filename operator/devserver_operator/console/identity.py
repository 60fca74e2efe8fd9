"""Who a request comes from: a Kubernetes bearer token, authenticated by TokenReview.

The console never decides what someone may do; it forwards their identity to the API server
as impersonation headers and RBAC decides. The token itself is never logged and never sent
anywhere but the TokenReview.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from devserver_operator.kube.client import KubeClient

TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"  # noqa: S105 - a path


@dataclass(frozen=True)
class User:
    """An authenticated identity, as TokenReview reported it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    impersonated: bool = True
    """False only for the local admin of dev mode, who is the console's own identity."""

    @property
    def key(self) -> str:
        """Stable key for per-user caches and limits."""
        return self.username

    def impersonation_headers(self) -> list[tuple[str, str]]:
        """Impersonate-* headers: the API server then judges the request as this user."""
        if not self.impersonated:
            return []
        headers = [("Impersonate-User", self.username)]
        if self.uid:
            headers.append(("Impersonate-Uid", self.uid))
        headers += [("Impersonate-Group", group) for group in self.groups]
        for key, values in self.extra:
            # Header names cannot carry every character an extra key may; Kubernetes
            # percent-decodes the part after the prefix.
            name = "Impersonate-Extra-" + quote(key, safe="")
            headers += [(name, value) for value in values]
        return headers

    def public(self) -> dict[str, Any]:
        return {"username": self.username, "groups": list(self.groups)}


def user_from_review(status: dict[str, Any]) -> User | None:
    if not status.get("authenticated"):
        return None
    info = status.get("user") or {}
    username = str(info.get("username") or "")
    if not username:
        return None
    extra = tuple(
        sorted(
            (str(k), tuple(str(v) for v in values))
            for k, values in (info.get("extra") or {}).items()
        )
    )
    return User(
        username=username,
        uid=str(info.get("uid") or ""),
        groups=tuple(str(g) for g in info.get("groups") or ()),
        extra=extra,
    )


async def review_token(kube: KubeClient, token: str) -> User | None:
    """The token's user, or None when the API server does not accept the token."""
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }
    answer = await kube.raw("POST", TOKEN_REVIEW_PATH, review)
    return user_from_review(answer.get("status") or {})


@dataclass
class TokenCache:
    """Recent TokenReview answers, so API clients that send a bearer token with every
    request cost one review per ``ttl``. Keyed by the token's hash, never the token."""

    ttl: float
    max_entries: int = 10_000
    _entries: dict[str, tuple[float, User | None]] = field(default_factory=dict)

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> tuple[bool, User | None]:
        found = self._entries.get(self.digest(token))
        if found is None or found[0] < time.monotonic():
            return False, None
        return True, found[1]

    def put(self, token: str, user: User | None) -> None:
        if len(self._entries) >= self.max_entries:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[self.digest(token)] = (time.monotonic() + self.ttl, user)
