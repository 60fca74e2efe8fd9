"""Everything one console process shares between requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from devserver_operator.settings import OperatorSettings

from .connection import Connection
from .identity import TokenCache
from .oidc import OidcConfig, OidcProvider
from .permissions import Permissions
from .ratelimit import RateLimiter
from .sessions import SessionStore
from .settings import ConsoleSettings
from .watch import WatchHub

TOKEN_CACHE_SECONDS = 30.0


@dataclass
class ConsoleState:
    settings: ConsoleSettings
    connection: Connection
    sessions: SessionStore
    limiter: RateLimiter
    permissions: Permissions
    hub: WatchHub
    tokens: TokenCache = field(default_factory=lambda: TokenCache(TOKEN_CACHE_SECONDS))
    render_settings: OperatorSettings = field(default_factory=OperatorSettings)
    """What the dry-run preview renders children with (bridge image, cluster domain)."""
    oidc: OidcProvider | None = None
    """The OIDC login's issuer, when one is configured (routes_oidc.py)."""

    @classmethod
    def create(cls, settings: ConsoleSettings, connection: Connection) -> ConsoleState:
        return cls(
            settings=settings,
            connection=connection,
            sessions=SessionStore(settings.session_ttl_seconds),
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            permissions=Permissions(connection, settings.permission_cache_seconds),
            hub=WatchHub(),
            oidc=_oidc(settings),
        )


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def _oidc(settings: ConsoleSettings) -> OidcProvider | None:
    if not settings.oidc_issuer_url or not settings.oidc_client_id:
        return None
    return OidcProvider(
        OidcConfig(
            issuer=settings.oidc_issuer_url,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret or None,
            scopes=tuple(settings.oidc_scopes),
            username_claim=settings.oidc_username_claim,
            username_prefix=settings.oidc_username_prefix,
            groups_claim=settings.oidc_groups_claim,
            groups_prefix=settings.oidc_groups_prefix,
            ca_file=settings.oidc_ca_file,
        )
    )
