"""Where the API server is and how to log in: a kubeconfig, else the in-cluster service account.

Read here rather than through the `kubernetes` client library: once that library is
installed, kopf imports it (all of its generated models) at start-up, about 9 MiB of RSS the
operator never uses. Users that authenticate through a plugin (``exec``, ``auth-provider``:
EKS, GKE, OIDC logins) install the extra ``devserver-workflow-operator[kubeconfig-plugins]``
and the library reads their kubeconfig; in a cluster, the service account needs neither.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeconfigError(Exception):
    """No usable kubeconfig and no in-cluster service account; the message says why."""


def kubeconfig_path(path: str | None) -> Path | None:
    """The file to read: ``path``, else the first file of $KUBECONFIG, else ~/.kube/config."""
    if path:
        return Path(path)
    for candidate in (os.environ.get("KUBECONFIG") or "").split(os.pathsep):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    default = Path.home() / ".kube" / "config"
    return default if default.is_file() else None


def read_kubeconfig(path: Path, context_name: str | None = None) -> dict[str, Any]:
    """The fields of Credentials for ``context_name`` (default: the current context)."""
    config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    context_name = context_name or config.get("current-context")
    if not context_name:
        raise KubeconfigError(f"{path} names no current-context")
    context = _named(config, "contexts", context_name, path)
    cluster = _named(config, "clusters", context.get("cluster"), path)
    user = _named(config, "users", context["user"], path) if context.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise PluginUserError(f"user {context['user']!r} in {path} logs in through a plugin")
    base = path.parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _relative(base, user["tokenFile"]).read_text(encoding="utf-8").strip()
    return {
        "server": cluster["server"],
        "ca_path": _file(base, cluster.get("certificate-authority")),
        "ca_data": _data(cluster.get("certificate-authority-data")),
        "insecure": bool(cluster.get("insecure-skip-tls-verify")),
        "token": token or None,
        "certificate_path": _file(base, user.get("client-certificate")),
        "certificate_data": _data(user.get("client-certificate-data")),
        "private_key_path": _file(base, user.get("client-key")),
        "private_key_data": _data(user.get("client-key-data")),
    }


def in_cluster() -> dict[str, Any]:
    """The pod's service account, as every in-cluster client finds it."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    token_file = SERVICE_ACCOUNT_DIR / "token"
    if not host or not port or not token_file.is_file():
        raise KubeconfigError(
            "no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not in a cluster"
        )
    server_host = f"[{host}]" if ":" in host else host  # an IPv6 service address
    return {
        "server": f"https://{server_host}:{port}",
        "ca_path": str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        "token": token_file.read_text(encoding="utf-8").strip(),
    }


class PluginUserError(KubeconfigError):
    """The user logs in through an exec or auth-provider plugin."""


def _named(config: dict[str, Any], section: str, name: Any, path: Path) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            found: dict[str, Any] = entry.get(section[:-1]) or {}
            return found
    raise KubeconfigError(f"{path}: no {section[:-1]} named {name!r}")


def _relative(base: Path, value: str) -> Path:
    # kubeconfig paths are relative to the file they stand in, as kubectl reads them.
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _file(base: Path, value: str | None) -> str | None:
    return str(_relative(base, value)) if value else None


def _data(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None
