"""Writing kubeconfig files for the local control plane, and reading the simple kinds back.

Written kubeconfigs embed the certificates (``*-data`` fields), so they keep working when
copied elsewhere or when the files next to them are gone.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devserver_operator.localcluster.certs import write_private


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def write_kubeconfig(
    path: Path,
    *,
    server_url: str,
    ca_pem: bytes,
    client_cert_pem: bytes,
    client_key_pem: bytes,
    user: str,
    cluster_name: str = "devserver-local",
) -> Path:
    context = f"{user}@{cluster_name}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": _b64(ca_pem),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client_cert_pem),
                    "client-key-data": _b64(client_key_pem),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    # The file holds a private key.
    write_private(path, yaml.safe_dump(document, sort_keys=False).encode("utf-8"))
    return path


class UnsupportedKubeconfigError(ValueError):
    """The kubeconfig authenticates in a way this small reader does not implement."""


@dataclass(frozen=True)
class KubeconfigCredentials:
    """What an HTTP client needs to talk to the current context's cluster."""

    server_url: str
    ssl_context: ssl.SSLContext
    bearer_token: str | None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else {}


def _named(entries: list[dict[str, Any]], name: str, kind: str) -> dict[str, Any]:
    for entry in entries:
        if entry.get("name") == name:
            value: dict[str, Any] = entry.get(kind) or {}
            return value
    raise UnsupportedKubeconfigError(f"kubeconfig has no {kind} named {name!r}")


def _pem(section: dict[str, Any], field: str, base: Path) -> bytes | None:
    if section.get(f"{field}-data"):
        return base64.b64decode(section[f"{field}-data"])
    if section.get(field):
        return (base / str(section[field])).read_bytes()
    return None


def read_kubeconfig_credentials(path: Path) -> KubeconfigCredentials:
    """Server URL and TLS/token credentials of the current context.

    Handles certificate and static-token users, which covers kubeconfigs written here,
    by kind, and by most test clusters. Exec and auth-provider plugins are refused
    with a clear error rather than half-supported.
    """
    config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    context_name = config.get("current-context")
    if not context_name:
        raise UnsupportedKubeconfigError(f"{path} has no current-context")
    context = _named(config.get("contexts") or [], context_name, "context")
    cluster = _named(config.get("clusters") or [], context["cluster"], "cluster")
    user = _named(config.get("users") or [], context["user"], "user") if context.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise UnsupportedKubeconfigError(
            f"user {context['user']!r} in {path} authenticates through a plugin; "
            "use a client-certificate or token user"
        )
    base = path.parent

    ssl_context = ssl.create_default_context()
    ca_pem = _pem(cluster, "certificate-authority", base)
    if cluster.get("insecure-skip-tls-verify"):
        ssl_context.check_hostname = False
        ssl_context.verify_mode = ssl.CERT_NONE
    elif ca_pem is not None:
        ssl_context.load_verify_locations(cadata=ca_pem.decode("ascii"))

    cert_pem = _pem(user, "client-certificate", base)
    key_pem = _pem(user, "client-key", base)
    if cert_pem is not None and key_pem is not None:
        # ssl only loads certificate chains from files.
        with tempfile.TemporaryDirectory(prefix="kubeconfig-") as scratch:
            cert_file, key_file = Path(scratch) / "client.crt", Path(scratch) / "client.key"
            cert_file.write_bytes(cert_pem)
            write_private(key_file, key_pem)
            ssl_context.load_cert_chain(cert_file, key_file)

    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text(encoding="utf-8").strip()
    return KubeconfigCredentials(
        server_url=str(cluster["server"]).rstrip("/"),
        ssl_context=ssl_context,
        bearer_token=token or None,
    )
