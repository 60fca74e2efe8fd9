"""Settings of the console process, from ``DEVSERVER_CONSOLE_<NAME>`` or the command line."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .links import SidebarLink, is_https_or_loopback

_REPOSITORY = Path(__file__).resolve().parents[3]


def _default_examples_dir() -> str | None:
    examples = _REPOSITORY / "examples"
    return str(examples) if examples.is_dir() else None


def _default_ui_dir() -> str | None:
    built = Path(__file__).resolve().parent / "ui"
    return str(built) if (built / "index.html").is_file() else None


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEVSERVER_CONSOLE_", extra="forbid")

    kubeconfig: str | None = None
    """Kubeconfig of the console's own identity; in a pod, its ServiceAccount. That identity
    needs only what docs/security.md lists (TokenReview, impersonation, watching the four
    kinds); everything a person does runs as that person."""
    context: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    local_admin: bool = False
    """Local dev mode: no login, every request runs as the console's own identity (the local
    admin of `devserver-operator dev`), and the UI shows a banner saying so. Refused unless
    ``host`` is a loopback address."""
    session_ttl_seconds: float = Field(default=8 * 3600, gt=0)
    token_recheck_seconds: float = Field(default=300, gt=0)
    """A session's token is reviewed again this often, so a revoked or expired token ends the
    session within that time."""
    rate_limit_per_second: float = Field(default=20.0, gt=0)
    rate_limit_burst: int = Field(default=60, ge=1)
    permission_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a "may this user list this kind in this namespace" answer is reused when live
    updates and cross-namespace lists are filtered."""
    public_origin: str | None = None
    """The origin browsers use (e.g. https://console.example.com) when a proxy changes the
    Host header; writes whose Origin differs are refused."""
    ui_dir: str | None = Field(default_factory=_default_ui_dir)
    examples_dir: str | None = Field(default_factory=_default_examples_dir)
    links: list[SidebarLink] = Field(default_factory=list, max_length=50)
    """Sidebar links (n8n, OpenHands, GitHub, GitLab, ...), as JSON:
    ``[{"title": "n8n", "url": "https://n8n.example.com"}]``; http(s) only."""
    # OIDC login (authorization code + PKCE); off unless an issuer is set. See oidc.py.
    oidc_issuer_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)
    """Only for a confidential client; from a Secret (the chart's oidc.clientSecret)."""
    oidc_scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    oidc_username_claim: str = "sub"
    oidc_username_prefix: str | None = None
    """As the API server's --oidc-username-prefix: unset prefixes claims other than
    ``email`` with ``<issuer>#``; ``-`` means no prefix."""
    oidc_groups_claim: str | None = None
    oidc_groups_prefix: str = ""
    oidc_ca_file: str | None = None
    """CA bundle the issuer's certificate is checked against (default: the system's)."""

    @model_validator(mode="after")
    def _oidc_complete(self) -> ConsoleSettings:
        if self.oidc_issuer_url is None:
            return self
        if not is_https_or_loopback(self.oidc_issuer_url):
            raise ValueError("oidc_issuer_url must be https (http only to a loopback address)")
        if not self.oidc_client_id:
            raise ValueError("oidc_client_id is required with oidc_issuer_url")
        if "openid" not in self.oidc_scopes:
            raise ValueError("oidc_scopes must include openid")
        return self
