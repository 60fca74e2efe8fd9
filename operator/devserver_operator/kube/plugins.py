"""Users that log in through a plugin (``exec``: EKS, GKE, OIDC helpers; ``auth-provider``).

The official ``kubernetes`` library runs the plugin, as kopf's own ``login_via_client`` does.
It is imported here, on first use: importing it loads every generated API model (about
9 MiB of RSS), which certificate, token and in-cluster users never need.
"""

from __future__ import annotations

import datetime
from typing import Any

from .kubeconfig import KubeconfigError


def plugin_login(config: dict[str, Any], context: str | None, where: str) -> dict[str, Any]:
    """The fields of Credentials after running the plugin of ``context``'s user once.

    ``expires_at`` is the ExecCredential's ``status.expirationTimestamp`` (or the
    auth-provider's ``expiry``): the plugin must run again before then."""
    from kubernetes import client as k8s_client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    configuration = k8s_client.Configuration()
    try:
        # Paths in the merged config are absolute already (see merge_kubeconfigs).
        loader = KubeConfigLoader(  # type: ignore[no-untyped-call]
            config_dict=config, active_context=context, config_base_path=""
        )
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, KeyError, ValueError, OSError) as error:
        raise KubeconfigError(f"{where}: the login plugin failed: {error}") from error
    header = (configuration.api_key or {}).get("BearerToken") or (configuration.api_key or {}).get(
        "authorization"
    )
    token = header.split(" ", 1)[1] if header and " " in header else header
    if not token and not configuration.cert_file:
        # The library logs a failing exec plugin and carries on without credentials.
        raise KubeconfigError(f"{where}: the login plugin gave no token or certificate")
    expiry = getattr(loader, "expiry", None)
    if isinstance(expiry, datetime.datetime) and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=datetime.UTC)
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "token": token or None,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
        "expires_at": expiry if isinstance(expiry, datetime.datetime) else None,
        "refreshable": True,
    }
