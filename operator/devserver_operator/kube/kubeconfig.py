"""Where the API server is and how to log in: kubeconfig files, else the in-cluster account.

Plain users (client certificates, a token, a token file) are read here, without the
``kubernetes`` library: importing it loads all of its generated models (about 9 MiB of RSS)
and a service account in a cluster needs none of them. Users that log in through a plugin
(``exec``, ``auth-provider``: EKS, GKE, OIDC) are handed to that library (``plugins.py``).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_SECTIONS = ("clusters", "users", "contexts")


class KubeconfigError(Exception):
    """No usable kubeconfig and no in-cluster service account; the message says why."""


class PluginUserError(KubeconfigError):
    """The user logs in through an exec or auth-provider plugin."""


def kubeconfig_paths(path: str | None) -> list[Path]:
    """The files to read, as kubectl picks them: ``path`` (--kubeconfig) alone, else every
    existing file of $KUBECONFIG, else ~/.kube/config; none means in-cluster."""
    if path:
        return [Path(path).expanduser()]
    listed = [
        Path(part).expanduser()
        for part in (os.environ.get("KUBECONFIG") or "").split(os.pathsep)
        if part
    ]
    existing = [candidate for candidate in listed if candidate.is_file()]
    if existing or listed:
        return list(dict.fromkeys(existing))  # a file listed twice counts once
    default = Path.home() / ".kube" / "config"
    return [default] if default.is_file() else []


def kubeconfig_path(path: str | None) -> Path | None:
    """The first file :func:`kubeconfig_paths` reads (the one whose context counts first)."""
    paths = kubeconfig_paths(path)
    return paths[0] if paths else None


def merge_kubeconfigs(paths: list[Path]) -> dict[str, Any]:
    """One config from several files, merged as kubectl merges $KUBECONFIG.

    The first file that names a cluster, user or context wins it; ``current-context`` comes
    from the first file that sets one. Relative paths are resolved against the file they
    stand in before merging, so each keeps meaning what it meant there."""
    merged: dict[str, Any] = {section: [] for section in _SECTIONS}
    seen: dict[str, set[str]] = {section: set() for section in _SECTIONS}
    for path in paths:
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise KubeconfigError(f"{path}: {error}") from error
        if not isinstance(config, dict):
            raise KubeconfigError(f"{path}: not a kubeconfig (a YAML mapping)")
        if not merged.get("current-context") and config.get("current-context"):
            merged["current-context"] = config["current-context"]
        for section in _SECTIONS:
            for entry in config.get(section) or []:
                name = entry.get("name") if isinstance(entry, dict) else None
                if not isinstance(name, str) or name in seen[section]:
                    continue
                seen[section].add(name)
                merged[section].append(_resolved(section, entry, path.parent))
    return merged


def select_context(config: dict[str, Any], context_name: str | None, where: str) -> dict[str, Any]:
    """The cluster and user of ``context_name`` (default: the current context)."""
    context_name = context_name or config.get("current-context")
    if not context_name:
        raise KubeconfigError(f"{where} names no current-context (give --context)")
    context = _named(config, "contexts", context_name, where)
    cluster = _named(config, "clusters", context.get("cluster"), where)
    user = _named(config, "users", context["user"], where) if context.get("user") else {}
    return {
        "name": context_name,
        "cluster": cluster,
        "user": user,
        "user_name": context.get("user"),
    }


def read_kubeconfig(
    path: Path | dict[str, Any], context_name: str | None = None, *, where: str | None = None
) -> dict[str, Any]:
    """The fields of Credentials for ``context_name`` of one file or a merged config."""
    config = merge_kubeconfigs([path]) if isinstance(path, Path) else path
    where = where or str(path if isinstance(path, Path) else "kubeconfig")
    selected = select_context(config, context_name, where)
    cluster, user = selected["cluster"], selected["user"]
    if "exec" in user or "auth-provider" in user:
        raise PluginUserError(f"user {selected['user_name']!r} in {where} logs in through a plugin")
    token = user.get("token")
    token_file = user.get("tokenFile") if not token else None
    if token_file:
        token = read_token(Path(token_file))
    return {
        "server": cluster["server"],
        "ca_path": cluster.get("certificate-authority"),
        "ca_data": _data(cluster.get("certificate-authority-data")),
        "insecure": bool(cluster.get("insecure-skip-tls-verify")),
        "token": token or None,
        "token_file": token_file,
        "certificate_path": user.get("client-certificate"),
        "certificate_data": _data(user.get("client-certificate-data")),
        "private_key_path": user.get("client-key"),
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
        # The kubelet rotates this projected token: whoever logs in re-reads the file.
        "token": read_token(token_file),
        "token_file": str(token_file),
    }


def read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise KubeconfigError(f"cannot read the token file {path}: {error}") from error


# Fields that hold paths, per section; kubectl resolves these against their file's folder.
_PATH_FIELDS = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}


def _resolved(section: str, entry: dict[str, Any], base: Path) -> dict[str, Any]:
    body = dict(entry.get(section[:-1]) or {})
    for key in _PATH_FIELDS.get(section, ()):
        if isinstance(body.get(key), str) and body[key]:
            body[key] = str(_relative(base, body[key]))
    plugin = body.get("exec")
    if isinstance(plugin, dict) and os.sep in str(plugin.get("command") or ""):
        # A command with a path is relative to the kubeconfig; a bare name is found on PATH.
        body["exec"] = {**plugin, "command": str(_relative(base, plugin["command"]))}
    return {**entry, section[:-1]: body}


def _named(config: dict[str, Any], section: str, name: Any, where: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            found: dict[str, Any] = entry.get(section[:-1]) or {}
            return found
    raise KubeconfigError(f"{where}: no {section[:-1]} named {name!r}")


def _relative(base: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _data(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None
