"""Sidebar links (n8n, OpenHands, GitHub, GitLab, ...) and the URL checks they share.

A link is a title and an http(s) URL, set by whoever deploys the console; the UI opens it in
a new tab with ``rel="noopener noreferrer"``. Anything else (``javascript:``, ``data:``) is
refused when the settings load, so a link can never run script in the console's origin.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_https_or_loopback(url: str) -> bool:
    """An https URL, or http to this machine (a provider on loopback, in tests and dev)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))


class SidebarLink(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=2048)

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"a sidebar link must be an http(s) URL, not {url!r}")
        return url
