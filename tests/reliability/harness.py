"""Operators as processes (`devserver-operator run`, as users run them), identities for the
audit log, the API server behind a fault proxy, and bounded waits on many objects at once.

Every operator here gets its own user name, so the audit log tells its requests apart from
the tests' and from other operators'. Metrics and the liveness endpoint are off unless a
test gives them a port (it then reads them on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devserver_operator.api import API_VERSION
from devserver_operator.kube.client import KubeClient
from devserver_operator.localcluster import LocalControlPlane, read_kubeconfig_credentials
from tests.support.fault_proxy import FaultProxy
from tests.support.operator_harness import condition, wait_for

OPERATOR_EXECUTABLE = Path(sys.executable).parent / "devserver-operator"
STOP_TIMEOUT_SECONDS = 20.0
IMAGE = "ghcr.io/example/mcp-server:1.0.0"
WORKLOAD_CHILDREN = ("Deployment", "Service", "NetworkPolicy")
CHILD_API_VERSIONS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "ServiceAccount": "v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}


@dataclass
class OperatorProcess:
    """One `devserver-operator run` process; start, SIGKILL and start again at will."""

    kubeconfig: Path
    log_path: Path
    namespaces: Sequence[str] = ()
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> OperatorProcess:
        assert not self.alive, "already running"
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "DEVSERVER_OPERATOR_METRICS_PORT": "0",
            "DEVSERVER_OPERATOR_HEALTH_PORT": "0",
            "DEVSERVER_OPERATOR_RESYNC_INTERVAL": "5",
            **{f"DEVSERVER_OPERATOR_{k.upper()}": v for k, v in self.settings.items()},
        }
        argv = [str(OPERATOR_EXECUTABLE), "run"]
        for namespace in self.namespaces:
            argv += ["--namespace", namespace]
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts + 1} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup handler, no finished request, no goodbye to the peers."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within a bound."""
        if not self.alive:
            return
        self._signal(signal.SIGTERM)
        assert self.process is not None
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT_SECONDS)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@contextlib.contextmanager
def operator_process(
    kubeconfig: Path,
    log_path: Path,
    namespaces: Sequence[str] = (),
    **settings: str,
) -> Iterator[OperatorProcess]:
    running = OperatorProcess(kubeconfig, log_path, namespaces, dict(settings)).start()
    try:
        yield running
    finally:
        running.stop()


def identity(local: LocalControlPlane, user: str) -> Path:
    """A kubeconfig for an operator identity of its own (all rights, like the chart's)."""
    return local.write_user_kubeconfig(user, ["system:masters"])


@contextlib.contextmanager
def proxied_api(
    local: LocalControlPlane, user: str, work: Path
) -> Iterator[tuple[FaultProxy, Path]]:
    """The API server behind a fault proxy, and a kubeconfig that goes through it.

    Clients speak plain HTTP to the proxy on loopback; the proxy speaks TLS upstream with the
    client certificate of ``user``, so the audit log still names the operator."""
    credentials = read_kubeconfig_credentials(identity(local, user))
    with FaultProxy(local.server_url, verify=credentials.ssl_context) as proxy:
        kubeconfig = work / f"{user}-via-proxy.kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "proxy", "cluster": {"server": proxy.url}}],
                    "users": [{"name": user, "user": {}}],
                    "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": user}}],
                    "current-context": "proxy",
                }
            ),
            encoding="utf-8",
        )
        yield proxy, kubeconfig


def mcpserver(name: str, namespace: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """A workload MCPServer with verification off (no pod ever runs here)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "MCPServer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or {"image": IMAGE, "verification": {"enabled": False}},
    }


def converged(body: dict[str, Any] | None) -> bool:
    """Status written for the current generation, with a Ready condition."""
    if not body:
        return False
    status = body.get("status") or {}
    return (
        status.get("observedGeneration") == body["metadata"].get("generation")
        and condition(body, "Ready") is not None
    )


async def list_by_name(
    kube: KubeClient, api_version: str, kind: str, namespace: str
) -> dict[str, dict[str, Any]]:
    return {
        item["metadata"]["name"]: item for item in await kube.list(api_version, kind, namespace)
    }


async def wait_all_converged(
    kube: KubeClient, namespace: str, names: Sequence[str], *, seconds: float, what: str = ""
) -> dict[str, dict[str, Any]]:
    """Every named MCPServer converged (and, for workloads, all three children exist)."""

    async def probe() -> dict[str, dict[str, Any]] | None:
        servers = await list_by_name(kube, API_VERSION, "MCPServer", namespace)
        if not all(converged(servers.get(name)) for name in names):
            return None
        for kind in WORKLOAD_CHILDREN:
            children = await list_by_name(kube, CHILD_API_VERSIONS[kind], kind, namespace)
            wanted = [n for n in names if "image" in servers[n]["spec"]]
            if not all(n in children for n in wanted):
                return None
        return servers

    async def dump() -> Any:
        servers = await list_by_name(kube, API_VERSION, "MCPServer", namespace)
        return {
            name: (servers.get(name) or {}).get("status")
            for name in names
            if not converged(servers.get(name))
        }

    return await wait_for(
        probe,
        seconds=seconds,
        what=what or f"{len(names)} MCPServers in {namespace} to converge",
        dump=dump,
        interval=0.5,
    )


def deadline_after(seconds: float) -> float:
    return time.monotonic() + seconds


def restart_apiserver(local: LocalControlPlane, *, downtime: float) -> None:
    """Stop kube-apiserver, wait ``downtime`` seconds, start it again (same port, same etcd)
    and wait until it is ready. Call it from the main thread (see
    LocalControlPlane.restart_apiserver)."""
    local.restart_apiserver(downtime)
