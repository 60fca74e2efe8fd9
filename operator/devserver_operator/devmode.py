"""`devserver-operator dev`: the whole thing on this machine, no cluster needed.

Where a Docker engine runs (or can be started), the stack runs on a kind cluster with real pods
(devmode_kind.py). Elsewhere, the fallback: it builds (once) and starts a local control plane,
installs the CRDs, runs the operator, applies examples/ and prints what the operator made of
them. There is no kubelet there, so no pod runs: workload MCPServers stay "waiting for the
server to become available", while remote ones are verified for real (a local MCP server is
started for that when the repository's test servers are available).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devserver_operator.api import ALL_KINDS, API_VERSION
from devserver_operator.api.crd import build_all_crds
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.render import load_documents
from devserver_operator.runner import operate
from devserver_operator.settings import OperatorSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_NAMESPACE = "devserver-demo"
MANAGER = "devserver-dev"
SETTLE_SECONDS = 20.0


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run_dev(examples: Path, *, once: bool, control_plane_only: bool = False) -> int:
    if not control_plane_only:
        reason = docker_unavailable()
        if reason is None:
            from devserver_operator.devmode_kind import run_dev_on_kind

            say("mode: kind cluster with real pods (Docker is available)")
            return run_dev_on_kind(examples, once=once)
        say(f"mode: local control plane without pods ({reason})")
    else:
        say("mode: local control plane without pods (--control-plane)")
    return _run_dev_on_control_plane(examples, once=once)


def docker_unavailable() -> str | None:
    """Why kind cannot run here, or None when a Docker engine answers (started if needed)."""
    from devserver_operator.localcluster.kind import KIND_DIR

    started = subprocess.run(
        ["bash", str(KIND_DIR / "dockerd.sh")], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        return f"no Docker engine: {started.stderr.strip()[-300:] or 'dockerd.sh failed'}"
    return None


def _run_dev_on_control_plane(examples: Path, *, once: bool) -> int:
    from devserver_operator.localcluster import ControlPlaneBinaries, LocalControlPlane

    say("local control plane binaries (built from Go modules on first use; minutes the first time)")
    binaries = ControlPlaneBinaries.locate(build_if_missing=True)
    say("starting etcd and kube-apiserver on 127.0.0.1")
    with LocalControlPlane(binaries) as cluster, _demo_mcp_server() as demo_url:
        say(f"API server {cluster.server_url}; kubeconfig {cluster.kubeconfig_path}")
        stop = threading.Event()
        operator = _start_operator(cluster.kubeconfig_path, stop)
        console_url = _start_console(cluster.kubeconfig_path)
        if console_url:
            say(f"console (local admin, no login): {console_url}")
        try:
            asyncio.run(_apply_and_watch(cluster.kubeconfig_path, examples, demo_url, once=once))
        except KeyboardInterrupt:
            print()
        finally:
            say("stopping the operator and the control plane")
            stop.set()
            operator.join(30)
    return 0


def _start_console(kubeconfig: Path) -> str | None:
    """The web console in local admin mode, when the extra [console] is installed. It runs
    as the local admin (the kubeconfig's identity) and says so in a banner."""
    try:
        import uvicorn

        from devserver_operator.console.app import create_app
        from devserver_operator.console.settings import ConsoleSettings
    except ImportError:
        return None
    from devserver_operator.localcluster.processes import free_loopback_port

    port = free_loopback_port()
    settings = ConsoleSettings(kubeconfig=str(kubeconfig), local_admin=True, port=port)
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    # A daemon thread: it ends with the process, after the control plane is gone.
    threading.Thread(target=uvicorn.Server(config).run, name="console", daemon=True).start()
    return f"http://127.0.0.1:{port}/"


def _start_operator(kubeconfig: Path, stop: threading.Event) -> threading.Thread:
    settings = OperatorSettings(
        kubeconfig=str(kubeconfig), metrics_port=0, health_port=0, resync_interval=15.0
    )
    ready = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(operate(settings, stop_flag=stop, ready_flag=ready)),
        name="operator",
        daemon=True,
    )
    thread.start()
    ready.wait(60)
    say("operator running (in this process)")
    return thread


@contextlib.contextmanager
def _demo_mcp_server() -> Iterator[str | None]:
    """A real MCP server on loopback, so that one MCPServer can be verified end to end."""
    app = REPO_ROOT / "tests/support/mcp_server_app.py"
    if not app.exists():
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [
        sys.executable,
        "-m",
        "tests.support.mcp_server_app",
        "--transport",
        "streamable-http",
        "--port",
        str(port),
        "--parent-pid",
        str(os.getpid()),
    ]
    process = subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            time.sleep(0.2)
        say(f"a local MCP server (official Python SDK) serves http://127.0.0.1:{port}/mcp")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


async def _apply_and_watch(
    kubeconfig: Path, examples: Path, demo_url: str | None, *, once: bool
) -> None:
    async with KubeClient(
        Credentials.from_kubeconfig(str(kubeconfig)), field_manager=MANAGER
    ) as kube:
        say("installing the CRDs")
        for crd in build_all_crds():
            await kube.apply(crd)
        await _wait_established(kube)
        say(f"applying {examples}")
        await apply_documents(kube, [doc for _, doc in load_documents([examples])])
        if demo_url is not None:
            await kube.apply(
                {
                    "apiVersion": API_VERSION,
                    "kind": "MCPServer",
                    "metadata": {"name": "local-demo", "namespace": DEMO_NAMESPACE},
                    "spec": {"url": demo_url, "verification": {"interval": "1m"}},
                }
            )
        say(f"letting the operator work for {SETTLE_SECONDS:.0f} s")
        await asyncio.sleep(SETTLE_SECONDS)
        await show_status(kube, once=once, running=f"kubectl works with KUBECONFIG={kubeconfig}")


async def show_status(kube: KubeClient, *, once: bool, running: str) -> None:
    """The status table now, and (unless ``once``) every 15 s until Ctrl-C."""
    print(await status_table(kube), flush=True)
    if once:
        return
    say(f"running; Ctrl-C stops. {running}")
    while True:
        await asyncio.sleep(15)
        print(await status_table(kube), flush=True)


async def apply_documents(kube: KubeClient, documents: list[dict[str, Any]]) -> None:
    """Apply the examples, namespaces first (the demo namespace too if none is among them)."""
    documents = sorted(documents, key=lambda d: d.get("kind") != "Namespace")
    if not any(d.get("kind") == "Namespace" for d in documents):
        await kube.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}}
        )
    for document in documents:
        await kube.apply(document)


async def _wait_established(kube: KubeClient) -> None:
    deadline = time.monotonic() + 30
    for crd in build_all_crds():
        while time.monotonic() < deadline:
            live = await kube.get(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"], None
            )
            conditions = {
                c["type"]: c["status"]
                for c in ((live or {}).get("status") or {}).get("conditions") or []
            }
            if conditions.get("Established") == "True":
                break
            await asyncio.sleep(0.2)


async def status_table(kube: KubeClient) -> str:
    """Every custom resource with its Ready condition, like `kubectl get devserver -A`."""
    rows: list[tuple[str, ...]] = [
        ("NAMESPACE", "KIND", "NAME", "READY", "REASON", "SUMMARY", "AGE")
    ]
    for info in ALL_KINDS:
        for item in await kube.list(API_VERSION, info.kind, None):
            rows.append(_row(info.kind, item))
    widths = [min(max(len(row[i]) for row in rows), 60) for i in range(len(rows[0]))]
    return (
        "\n"
        + "\n".join(
            "  ".join(
                cell[:60].ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
            for row in rows
        )
        + "\n"
    )


def _row(kind: str, item: dict[str, Any]) -> tuple[str, ...]:
    metadata, status = item["metadata"], item.get("status") or {}
    conditions: list[dict[str, Any]] = status.get("conditions") or []
    ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    summary = {
        "MCPServer": lambda: f"{status.get('toolCount', '-')} tools  {status.get('url', '')}",
        "WorkflowIntegration": lambda: f"{status.get('workflowCount', '-')} workflows",
        "AlertRule": lambda: f"{status.get('firing', 0)} firing",
        "TeamAccess": lambda: f"{item['spec'].get('role')} x{len(item['spec'].get('members', []))}",
    }[kind]()
    created = datetime.fromisoformat(metadata["creationTimestamp"].replace("Z", "+00:00"))
    age = f"{int((datetime.now(UTC) - created).total_seconds())}s"
    return (
        metadata["namespace"],
        kind,
        metadata["name"],
        ready.get("status", "-"),
        ready.get("reason", "-"),
        summary,
        age,
    )
