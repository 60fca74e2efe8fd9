"""What the e2e tests share: reading objects through kubectl, conditions, bounded waits."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
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
