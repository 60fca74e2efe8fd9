"""What the e2e tests share: reading objects through kubectl, conditions, bounded waits, and
repositories on the host that push to the in-cluster Git server."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from devserver_operator.localcluster.kind import KindCluster

T = TypeVar("T")


def get(cluster: KindCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json"))


def get_or_none(cluster: KindCluster, *args: str) -> Any:
    try:
        return get(cluster, *args)
    except subprocess.CalledProcessError as error:
        if "NotFound" in error.stderr:
            return None
        raise


def condition(body: dict[str, Any] | None, wanted: str) -> dict[str, Any]:
    for item in ((body or {}).get("status") or {}).get("conditions") or []:
        if item["type"] == wanted:
            return dict(item)
    return {}


def is_ready(body: dict[str, Any] | None) -> bool:
    return condition(body, "Ready").get("status") == "True"


def ready_object(cluster: KindCluster, kind: str, name: str, namespace: str) -> Any:
    """The object when its Ready condition is True, else None."""
    body = get_or_none(cluster, kind, name, "-n", namespace)
    return body if is_ready(body) else None


def wait_until(
    probe: Callable[[], T | None], *, seconds: float, what: str, interval: float = 2.0
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {seconds:.0f} s waiting for {what}; last: {last!r}"
            )
        time.sleep(interval)


def apply(cluster: KindCluster, manifest: str) -> None:
    cluster.kubectl("apply", "--server-side", "--field-manager=e2e", "-f", "-", input_text=manifest)


@dataclass
class GitWorkTree:
    """A repository on the host, pushed to one on the in-cluster Git server through the
    port-forward that ``remote`` opens for each push. ``init`` before the first push."""

    work_tree: Path
    remote: Callable[[], AbstractContextManager[str]]

    def init(self) -> None:
        self.git("init", "--quiet", "-b", "main")
        self.git("config", "user.email", "e2e@devserver.invalid")
        self.git("config", "user.name", "devserver e2e")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.work_tree), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        ).stdout.strip()

    def push(self, files: dict[str, str], message: str) -> str:
        """Writes ``files`` (paths relative to the work tree), commits all changes, pushes to
        main; returns the commit."""
        for name, text in files.items():
            (self.work_tree / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work_tree / name).write_text(text, encoding="utf-8")
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        with self.remote() as remote:
            self.git("push", "--quiet", remote, "HEAD:main")
        return self.git("rev-parse", "HEAD")
