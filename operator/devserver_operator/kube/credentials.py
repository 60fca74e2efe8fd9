"""How to reach and authenticate to one API server, and when to log in again."""

from __future__ import annotations

import datetime
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kubeconfig import (
    KubeconfigError,
    PluginUserError,
    in_cluster,
    kubeconfig_paths,
    merge_kubeconfigs,
    read_kubeconfig,
)

# A plugin's token is replaced this long before it expires (a fifth of a short lifetime),
# so that no request goes out with a token about to lapse. Never sooner than
# MIN_LOGIN_INTERVAL after a login: a plugin that hands out expired tokens must not make
# the operator run it in a loop (requests then fail with 401 and log in again, bounded).
REFRESH_MARGIN = datetime.timedelta(seconds=60)
MIN_LOGIN_INTERVAL = datetime.timedelta(seconds=5)


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to one API server."""

    server: str
    ca_path: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = None
    certificate_path: str | None = None
    certificate_data: bytes | None = None
    private_key_path: str | None = None
    private_key_data: bytes | None = None
    token_file: str | None = None
    """The file the token was read from: a changed file means logging in again."""
    refresh_at: datetime.datetime | None = None
    """When to log in again because the token expires (plugins that say so)."""

    @classmethod
    def from_kopf(cls, info: Any) -> Credentials:
        """From kopf's ConnectionInfo, so both clients share one login."""

        def as_bytes(value: str | bytes | None) -> bytes | None:
            return value.encode() if isinstance(value, str) else value

        def as_path(value: Any) -> str | None:
            return str(value) if value else None

        return cls(
            server=info.server,
            ca_path=as_path(info.ca_path),
            ca_data=as_bytes(info.ca_data),
            insecure=bool(info.insecure),
            token=info.token,
            certificate_path=as_path(info.certificate_path),
            certificate_data=as_bytes(info.certificate_data),
            private_key_path=as_path(info.private_key_path),
            private_key_data=as_bytes(info.private_key_data),
        )

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None) -> Credentials:
        """Logged in once from kubeconfig files, or the in-cluster service account when there
        is none. Long-running users take a ``login.KubeconfigLogin``, which logs in again."""
        return load_credentials(path, context)

    def as_connection_info(self) -> Any:
        """kopf's form of the same login; kopf logs in again at ``refresh_at``."""
        import kopf

        return kopf.ConnectionInfo(
            server=self.server,
            ca_path=self.ca_path,
            insecure=self.insecure,
            scheme="Bearer" if self.token else None,
            token=self.token,
            certificate_path=self.certificate_path,
            private_key_path=self.private_key_path,
            ca_data=self.ca_data,
            certificate_data=self.certificate_data,
            private_key_data=self.private_key_data,
            expiration=self.refresh_at,
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def token_file_changed(self) -> bool:
        """Whether the token file now holds another token (the kubelet rotated it)."""
        if not self.token_file:
            return False
        try:
            current = Path(self.token_file).read_text(encoding="utf-8").strip()
        except OSError:
            return False  # mid-rotation or gone: keep the token until the server refuses it
        return bool(current) and current != self.token


def load_credentials(path: str | None = None, context: str | None = None) -> Credentials:
    """Log in: the ``context`` (default: current) of the kubeconfig files, merged as kubectl
    merges them, running the user's plugin if it has one; in-cluster without any file."""
    paths = kubeconfig_paths(path)
    if not paths:
        if context:
            raise KubeconfigError(f"--context {context!r} needs a kubeconfig; none was found")
        return Credentials(**in_cluster())
    where = ", ".join(str(p) for p in paths)
    merged = merge_kubeconfigs(paths)
    try:
        return Credentials(**read_kubeconfig(merged, context, where=where))
    except PluginUserError:
        from .plugins import plugin_login

        found = plugin_login(merged, context, where)
        expires_at = found.pop("expires_at")
        found.pop("refreshable")
        return Credentials(**found, refresh_at=_refresh_time(expires_at))


def _refresh_time(expires_at: datetime.datetime | None) -> datetime.datetime | None:
    if expires_at is None:
        return None
    now = datetime.datetime.now(datetime.UTC)
    margin = min(REFRESH_MARGIN, max(expires_at - now, datetime.timedelta(0)) / 5)
    return max(expires_at - margin, now + MIN_LOGIN_INTERVAL)


def ssl_context(credentials: Credentials) -> ssl.SSLContext | bool:
    if credentials.insecure:
        return False
    context = ssl.create_default_context(
        cafile=credentials.ca_path,
        cadata=credentials.ca_data.decode() if credentials.ca_data else None,
    )
    certificate, key = credentials.certificate_path, credentials.private_key_path
    if credentials.certificate_data and credentials.private_key_data:
        # ssl only loads client certificates from files; the files live just long enough.
        with tempfile.TemporaryDirectory() as directory:
            certificate_file = Path(directory) / "tls.crt"
            key_file = Path(directory) / "tls.key"
            certificate_file.write_bytes(credentials.certificate_data)
            key_file.touch(mode=0o600)
            key_file.write_bytes(credentials.private_key_data)
            context.load_cert_chain(certificate_file, key_file)
    elif certificate and key:
        context.load_cert_chain(certificate, key)
    return context


__all__ = ["Credentials", "load_credentials", "ssl_context"]
