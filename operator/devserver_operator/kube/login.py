"""Where KubeClient gets its login, and how a refused or stale login is replaced.

A request takes the current :class:`Session` (a transport that carries one login's headers
and TLS identity), and reports it back when the server answered 401 or the session was
closed under it; the request is then sent once more with the login that replaced it.

- :class:`VaultLogin`: inside the operator, the login is kopf's. kopf keeps its credentials
  in a vault, filled by our ``@kopf.on.login`` handler; this client caches one transport per
  vault entry, and a 401 here invalidates the entry in the vault, so kopf logs in again for
  both clients (and a 401 seen by kopf's watches replaces this client's login too).
- :class:`KubeconfigLogin`: standalone (admission webhook, dev mode, tests), the same
  rules without kopf.
- :class:`FixedLogin`: one login that is never replaced (tests that bring a transport).

Both refreshing sources also log in again when the token file holds another token
(projected service-account tokens rotate) and, for plugins, before the token expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .credentials import Credentials
from .transport import Transport

logger = logging.getLogger(__name__)

TOKEN_FILE_CHECK_SECONDS = 10.0
"""How often a token file is compared with the token in use (client-go: every minute)."""
VAULT_PURPOSE = "devserver-operator-kube-client"


class LoginUnavailableError(Exception):
    """No login could be had (the login handler or plugin failed); transient."""


@dataclass(frozen=True, eq=False)
class Session:
    transport: Transport
    key: Any = None
    """What the source needs to recognise this login when it is reported back."""


class LoginSource(Protocol):
    async def session(self) -> Session: ...

    async def refused(self, session: Session, error: Exception) -> None:
        """The server refused ``session`` (401) or it was closed: replace it unless another
        request did already. Raises LoginUnavailableError when no new login can be had."""

    async def close(self) -> None: ...


BuildTransport = Callable[[Credentials], Transport]


class FixedLogin:
    def __init__(self, transport: Transport) -> None:
        self._session = Session(transport)

    async def session(self) -> Session:
        return self._session

    async def refused(self, session: Session, error: Exception) -> None:
        raise LoginUnavailableError("this client's login is fixed") from error

    async def close(self) -> None:
        await self._session.transport.close()


class _TokenFileWatch:
    """Throttled comparison of a token file with the token in use."""

    def __init__(self) -> None:
        self._checked = 0.0

    def changed(self, credentials: Credentials | None) -> bool:
        if credentials is None or not credentials.token_file:
            return False
        now = time.monotonic()
        if now - self._checked < TOKEN_FILE_CHECK_SECONDS:
            return False
        self._checked = now
        return credentials.token_file_changed()


def _due(credentials: Credentials) -> bool:
    return (
        credentials.refresh_at is not None
        and datetime.datetime.now(datetime.UTC) >= credentials.refresh_at
    )


class KubeconfigLogin:
    """Logs in from kubeconfig files (or in-cluster) and again whenever the login is
    refused, stale or due. Logging in may run a plugin: it runs in a thread."""

    def __init__(self, load: Callable[[], Credentials], build: BuildTransport) -> None:
        self._load = load
        self._build = build
        self._current: tuple[Credentials, Session] | None = None
        self._lock = asyncio.Lock()
        self._token_file = _TokenFileWatch()

    async def session(self) -> Session:
        current = self._current
        if current is None or _due(current[0]) or self._token_file.changed(current[0]):
            return await self._login(stale=current[1] if current else None)
        return current[1]

    async def refused(self, session: Session, error: Exception) -> None:
        await self._login(stale=session)

    async def _login(self, stale: Session | None) -> Session:
        async with self._lock:
            current = self._current
            if current is not None and current[1] is not stale:
                return current[1]  # another request logged in meanwhile
            try:
                credentials = await asyncio.to_thread(self._load)
            except Exception as error:
                raise LoginUnavailableError(f"logging in failed: {error}") from error
            session = Session(self._build(credentials))
            self._current = (credentials, session)
        if current is not None:
            # Requests still in flight on the old login fail as stale and are sent again.
            await current[1].transport.close()
            logger.info("logged in to the API server again")
        return session

    async def close(self) -> None:
        if self._current is not None:
            await self._current[1].transport.close()
            self._current = None


class VaultLogin:
    """The login kopf holds in its vault (see the module's docstring)."""

    def __init__(
        self, vault: Any, build: BuildTransport, token_file: Callable[[], str | None]
    ) -> None:
        self._vault = vault
        self._build = build
        self._token_file = _TokenFileWatch()
        self._token_file_path = token_file
        """The file the login handler last read its token from, if any."""

    def _transport(self, info: Any) -> Transport:
        return self._build(Credentials.from_kopf(info))

    async def session(self) -> Session:
        session, info = await self._entry()
        watched = Credentials(server="", token=info.token, token_file=self._token_file_path())
        if self._token_file.changed(watched):
            # The kubelet rotated the token: kopf logs in again, for its watches too.
            logger.info("the token file %s changed: logging in again", watched.token_file)
            await self.refused(session, LoginUnavailableError("the token file changed"))
            session, _ = await self._entry()
        return session

    async def _entry(self) -> tuple[Session, Any]:
        # kopf waits here for its first login and for a running re-login, and drops the
        # entries whose ConnectionInfo.expiration passed (a plugin's token), logging in again.
        try:
            entries = self._vault.extended(self._transport, VAULT_PURPOSE)
            async with contextlib.aclosing(entries):
                async for key, info, transport in entries:
                    return Session(transport, (key, info)), info
        except Exception as error:  # kopf.LoginError: the login handler failed
            raise LoginUnavailableError(f"no login: {error}") from error
        raise LoginUnavailableError("kopf's vault holds no login")

    async def refused(self, session: Session, error: Exception) -> None:
        key, info = session.key
        try:
            # Several requests may report the same login: kopf logs in once for all of them.
            await self._vault.invalidate(key, info, exc=error)
        except Exception as failure:
            raise LoginUnavailableError(f"logging in again failed: {failure}") from failure

    async def close(self) -> None:
        """Nothing: kopf's vault closes the transports it cached when the operator ends."""
