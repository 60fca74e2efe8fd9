"""Dex, a real OpenID Connect provider, on loopback for the console's OIDC login tests.

The binary is built from Dex's Go module by ``hack/controlplane/build.sh dex`` into the
cache, keyed by DEX_VERSION (versions.env), and built on first use. Each Dex here runs with
memory storage, one static password user and one static client whose only redirect URI is
the console's callback; its log goes to a file the test can show when it fails.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devserver_operator.localcluster import binaries

START_TIMEOUT = 30.0
PASSWORD = "console-test-password"
# bcrypt of PASSWORD (cost 10), made with golang.org/x/crypto/bcrypt; Dex stores only hashes.
PASSWORD_HASH = "$2a$10$3h./lFTmrEJZSX0KDfqgBu3c.yruCqZsZx2se.A7qeMos4kYH/Lui"


@dataclass(frozen=True)
class DexUser:
    email: str
    username: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class RunningDex:
    issuer: str
    client_id: str
    client_secret: str
    log: Path


def dex_binary() -> Path:
    versions = dict(
        line.split("=", 1)
        for line in binaries.VERSIONS_FILE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    path = binaries.cache_root() / "bin" / f"dex-{versions['DEX_VERSION']}" / "dex"
    if not path.is_file():
        subprocess.run(["bash", str(binaries.BUILD_SCRIPT), "dex"], check=True)
    return path


def _config(port: int, redirect_uri: str, secret: str, users: list[DexUser]) -> dict[str, Any]:
    return {
        "issuer": f"http://127.0.0.1:{port}/dex",
        "storage": {"type": "memory"},
        "web": {"http": f"127.0.0.1:{port}"},
        "logger": {"level": "info"},
        "oauth2": {"skipApprovalScreen": True},
        "enablePasswordDB": True,
        "staticPasswords": [
            {
                "email": user.email,
                "username": user.username,
                "userID": f"id-{user.username}",
                "hash": PASSWORD_HASH,
                "groups": list(user.groups),
            }
            for user in users
        ],
        "staticClients": [
            {
                "id": "devserver-console",
                "name": "devserver console",
                "secret": secret,
                "redirectURIs": [redirect_uri],
            }
        ],
    }


@contextmanager
def running_dex(
    port: int, redirect_uri: str, users: list[DexUser], workdir: Path, *, secret: str
) -> Iterator[RunningDex]:
    config = workdir / "dex.json"  # JSON is YAML: Dex reads it as its config file
    config.write_text(json.dumps(_config(port, redirect_uri, secret, users)))
    log = workdir / "dex.log"
    issuer = f"http://127.0.0.1:{port}/dex"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(dex_binary()), "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Dex did not start:\n{log.read_text()[-4000:]}")
                time.sleep(0.1)
            yield RunningDex(issuer, "devserver-console", secret, log)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
