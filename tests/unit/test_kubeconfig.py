"""Reading kubeconfigs (merged as kubectl merges them), the in-cluster service account, and
login plugins (run for real: small scripts)."""

from __future__ import annotations

import base64
import datetime
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devserver_operator.kube import kubeconfig
from devserver_operator.kube.client import Credentials
from devserver_operator.kube.credentials import load_credentials
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


# -- several files, as kubectl merges $KUBECONFIG ------------------------------------------


def _config(
    current: str | None,
    clusters: dict[str, dict[str, Any]],
    users: dict[str, Any],
    contexts: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [
            {"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()
        ],
    }
    if current:
        config["current-context"] = current
    return config


def _file(directory: Path, config: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_kubeconfig_files_merge_first_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _file(
        tmp_path / "first",
        _config(
            None,  # no current-context here: the next file that sets one decides
            {"shared": {"server": "https://first"}},
            {"shared-user": {"token": "from-first"}},
            {"shared-ctx": ("shared", "shared-user")},
        ),
    )
    second = _file(
        tmp_path / "second",
        _config(
            "own-ctx",
            {
                "shared": {"server": "https://second"},
                "own": {"server": "https://own", "certificate-authority": "ca.crt"},
            },
            {"shared-user": {"token": "from-second"}, "own-user": {"tokenFile": "token"}},
            {"shared-ctx": ("own", "own-user"), "own-ctx": ("own", "own-user")},
        ),
    )
    (tmp_path / "second" / "token").write_text("second-token\n", encoding="utf-8")
    third = _file(tmp_path / "third", _config("shared-ctx", {}, {}, {}))
    missing = tmp_path / "missing" / "config"
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(map(str, [missing, first, second, third])))

    assert kubeconfig.kubeconfig_paths(None) == [first, second, third]
    merged = kubeconfig.merge_kubeconfigs(kubeconfig.kubeconfig_paths(None))
    assert merged["current-context"] == "own-ctx"  # the first file that sets one
    assert [c["cluster"]["server"] for c in merged["clusters"]] == ["https://first", "https://own"]

    current = load_credentials()
    assert current.server == "https://own"
    # Relative paths mean what they meant in their own file.
    assert current.ca_path == str(tmp_path / "second" / "ca.crt")
    assert current.token == "second-token"
    assert current.token_file == str(tmp_path / "second" / "token")

    # --context: the first file's definition of the context, cluster and user wins.
    shared = load_credentials(None, "shared-ctx")
    assert (shared.server, shared.token) == ("https://first", "from-first")

    # --kubeconfig: that file alone, like kubectl.
    with pytest.raises(KubeconfigError, match="names no current-context"):
        load_credentials(str(first))
    assert load_credentials(str(first), "shared-ctx").token == "from-first"
    with pytest.raises(KubeconfigError, match="no context named 'own-ctx'"):
        load_credentials(str(first), "own-ctx")


def test_a_context_without_a_kubeconfig_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubeconfigError, match="--context 'x' needs a kubeconfig"):
        load_credentials(None, "x")


def test_a_rotated_token_file_is_noticed(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("one\n", encoding="utf-8")
    path = _file(
        tmp_path,
        _config(
            "c", {"k": {"server": "https://k"}}, {"u": {"tokenFile": "token"}}, {"c": ("k", "u")}
        ),
    )
    credentials = load_credentials(str(path))
    assert credentials.token == "one" and not credentials.token_file_changed()
    token.write_text("two\n", encoding="utf-8")
    assert credentials.token_file_changed()
    assert load_credentials(str(path)).token == "two"


EXEC_PLUGIN = """
import datetime, json, os, sys
now = datetime.datetime.now(datetime.timezone.utc)
expires = now + datetime.timedelta(seconds=int(sys.argv[1]))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
status = {"token": "plugin-token", "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}))
"""


@pytest.mark.parametrize("lifetime", [600, 30, 0])
def test_an_exec_plugin_token_is_replaced_before_it_expires(tmp_path: Path, lifetime: int) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(EXEC_PLUGIN, encoding="utf-8")
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin), str(lifetime)],
        }
    }
    path = _file(
        tmp_path, _config("c", {"k": {"server": "https://k"}}, {"u": user}, {"c": ("k", "u")})
    )
    before = datetime.datetime.now(datetime.UTC)
    credentials = load_credentials(str(path))
    assert credentials.token == "plugin-token"
    assert credentials.refresh_at is not None
    expires = before + datetime.timedelta(seconds=lifetime)
    # Up to a minute (a fifth of a short lifetime) early, but never within 5 s of the login:
    # a plugin that hands out expired tokens is not run in a loop.
    earliest = expires - min(
        datetime.timedelta(seconds=60), datetime.timedelta(seconds=lifetime) / 5
    )
    assert credentials.refresh_at >= max(
        earliest, before + datetime.timedelta(seconds=5)
    ) - datetime.timedelta(seconds=2)
    assert credentials.refresh_at <= max(expires, before + datetime.timedelta(seconds=7))
    assert credentials.as_connection_info().expiration == credentials.refresh_at


def test_a_failing_exec_plugin_is_named(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "false"}}
    path = _file(
        tmp_path, _config("c", {"k": {"server": "https://k"}}, {"u": user}, {"c": ("k", "u")})
    )
    with pytest.raises(KubeconfigError, match="plugin"):
        load_credentials(str(path))
