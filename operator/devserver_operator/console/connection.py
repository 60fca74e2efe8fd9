"""The console's one connection pool to the API server, and KubeClients on top of it.

Every person's client shares the pool (the console's own TLS identity) and adds that
person's Impersonate-* headers to each request, so a thousand users cost a handful of
connections, and RBAC judges each request as the person who made it.
"""

from __future__ import annotations

import ssl
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import httpx

from devserver_operator.kube.client import Credentials, KubeClient

from .identity import User

FIELD_MANAGER = "devserver-console"
POOL_CONNECTIONS = 16
MAX_USER_CLIENTS = 512


def tls_context(credentials: Credentials) -> ssl.SSLContext | bool:
    """The console's TLS identity (CA and, for certificate users, the client certificate)."""
    if credentials.insecure:
        return False
    context = ssl.create_default_context(
        cafile=credentials.ca_path,
        cadata=credentials.ca_data.decode() if credentials.ca_data else None,
    )
    if credentials.certificate_data and credentials.private_key_data:
        # ssl loads client certificates only from files; they live just long enough.
        with tempfile.TemporaryDirectory() as directory:
            certificate, key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
            certificate.write_bytes(credentials.certificate_data)
            key.touch(mode=0o600)
            key.write_bytes(credentials.private_key_data)
            context.load_cert_chain(certificate, key)
    elif credentials.certificate_path and credentials.private_key_path:
        context.load_cert_chain(credentials.certificate_path, credentials.private_key_path)
    return context


class _WithHeaders(httpx.AsyncBaseTransport):
    """Adds fixed headers to every request and leaves the shared pool open on close."""

    def __init__(self, pool: httpx.AsyncBaseTransport, headers: Sequence[tuple[str, str]]):
        self._pool = pool
        self._headers = list(headers)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers = httpx.Headers([*request.headers.multi_items(), *self._headers])
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        """The pool belongs to the Connection."""


class Connection:
    def __init__(self, credentials: Credentials) -> None:
        self.server = credentials.server
        self._identity: list[tuple[str, str]] = (
            [("Authorization", f"Bearer {credentials.token}")] if credentials.token else []
        )
        self._pool = httpx.AsyncHTTPTransport(
            verify=tls_context(credentials),
            limits=httpx.Limits(
                max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS
            ),
        )
        self.console = self._client(self._identity)
        """The console's own identity: TokenReview and the shared watches only."""
        self._users: OrderedDict[User, KubeClient] = OrderedDict()

    def _client(self, headers: Sequence[tuple[str, str]]) -> KubeClient:
        # TLS is the pool's business; the KubeClient itself only speaks HTTP through it.
        return KubeClient(
            Credentials(server=self.server, insecure=True),
            transport=_WithHeaders(self._pool, headers),
            field_manager=FIELD_MANAGER,
        )

    def for_user(self, user: User) -> KubeClient:
        """A client that acts as ``user`` (the console itself for the dev-mode admin)."""
        if not user.impersonated:
            return self.console
        client = self._users.get(user)
        if client is None:
            client = self._client([*self._identity, *user.impersonation_headers()])
            self._users[user] = client
            if len(self._users) > MAX_USER_CLIENTS:
                # Dropped, not closed: its only resource is the shared pool, which stays.
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(user)
        return client

    def streaming(self) -> httpx.AsyncClient:
        """An httpx client as the console itself, for watches (read timeout left to the
        watch, which asks the server to end each stream well before)."""
        return httpx.AsyncClient(
            base_url=self.server,
            transport=_WithHeaders(self._pool, self._identity),
            timeout=httpx.Timeout(30.0, read=330.0),
        )

    async def close(self) -> None:
        for client in [*self._users.values(), self.console]:
            await client.close()
        self._users.clear()
        await self._pool.aclose()
