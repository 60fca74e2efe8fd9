"""Settings of the console process, from ``DEVSERVER_CONSOLE_<NAME>`` or the command line."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
