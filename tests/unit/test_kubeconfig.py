"""Reading kubeconfigs and the in-cluster service account without the kubernetes library."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from devserver_operator.kube import kubeconfig
from devserver_operator.kube.client import Credentials
from devserver_operator.kube.kubeconfig import KubeconfigError, PluginUserError, read_kubeconfig


def _write(tmp_path: Path, users: list[dict[str, Any]], current: str = "a") -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "one",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": base64.b64encode(b"CA").decode(),
                },
            },
            {
                "name": "two",
                "cluster": {"server": "https://10.0.0.1", "certificate-authority": "ca.crt"},
            },
            {"name": "lax", "cluster": {"server": "https://x", "insecure-skip-tls-verify": True}},
        ],
        "users": users,
        "contexts": [
            {"name": "a", "context": {"cluster": "one", "user": "cert"}},
            {"name": "b", "context": {"cluster": "two", "user": "files"}},
            {"name": "c", "context": {"cluster": "lax", "user": "token-file"}},
            {"name": "d", "context": {"cluster": "one", "user": "plugin"}},
            {"name": "e", "context": {"cluster": "one", "user": "nobody"}},
        ],
        "current-context": current,
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


USERS = [
    {
        "name": "cert",
        "user": {
            "client-certificate-data": base64.b64encode(b"CERT").decode(),
            "client-key-data": base64.b64encode(b"KEY").decode(),
        },
    },
    {"name": "files", "user": {"client-certificate": "tls.crt", "client-key": "/abs/tls.key"}},
    {"name": "token-file", "user": {"tokenFile": "token"}},
    {"name": "plugin", "user": {"exec": {"command": "aws"}}},
]


def test_certificate_data_of_the_current_context(tmp_path: Path) -> None:
    found = read_kubeconfig(_write(tmp_path, USERS))
    assert found["server"] == "https://127.0.0.1:6443"
    assert found["ca_data"] == b"CA"
    assert (found["certificate_data"], found["private_key_data"]) == (b"CERT", b"KEY")
    assert found["token"] is None and not found["insecure"]


def test_files_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    found = read_kubeconfig(_write(tmp_path, USERS), "b")
    assert found["ca_path"] == str(tmp_path / "ca.crt")
    assert found["certificate_path"] == str(tmp_path / "tls.crt")
    assert found["private_key_path"] == "/abs/tls.key"


def test_token_file_and_insecure_cluster(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sekret\n", encoding="utf-8")
    found = read_kubeconfig(_write(tmp_path, USERS), "c")
    assert found["token"] == "sekret"
    assert found["insecure"] is True


def test_plugin_users_and_broken_files_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path, USERS)
    with pytest.raises(PluginUserError, match="plugin"):
        read_kubeconfig(path, "d")
    with pytest.raises(KubeconfigError, match="no user named 'nobody'"):
        read_kubeconfig(path, "e")
    with pytest.raises(KubeconfigError, match="no context named 'zzz'"):
        read_kubeconfig(path, "zzz")


def test_credentials_use_kubeconfig_env_then_the_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_write(tmp_path, USERS)))
    assert Credentials.from_kubeconfig().server == "https://127.0.0.1:6443"

    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("pod-token", encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    credentials = Credentials.from_kubeconfig()
    assert credentials.server == "https://[fd00::1]:443"
    assert credentials.token == "pod-token"
    assert credentials.ca_path == str(account / "ca.crt")

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(KubeconfigError, match="not in a cluster"):
        Credentials.from_kubeconfig()
