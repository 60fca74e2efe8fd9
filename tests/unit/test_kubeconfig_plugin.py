"""Kubeconfig users that log in through an exec plugin (EKS, GKE, OIDC): the kubernetes
library (the extra `kubeconfig-plugins`) runs the real plugin program and the operator uses
the token it prints."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from devserver_operator.kube.client import Credentials

PLUGIN = """
import json, os, sys
# What kubectl hands an exec plugin, and the answer it expects (client.authentication.k8s.io).
assert json.loads(os.environ["KUBERNETES_EXEC_INFO"])["kind"] == "ExecCredential"
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": {"token": "token-from-" + sys.argv[1]},
}))
"""


def test_the_plugin_program_runs_and_its_token_is_used(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443",
                                                "insecure-skip-tls-verify": True}}],
        "users": [{"name": "sso", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin), "the-plugin"],
            "interactiveMode": "Never",
        }}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "sso"}}],
        "current-context": "c",
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    credentials = Credentials.from_kubeconfig(str(path))
    assert credentials.token == "token-from-the-plugin"
    assert credentials.server == "https://127.0.0.1:6443"
    assert credentials.insecure is True
