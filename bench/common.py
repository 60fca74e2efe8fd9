"""Shared pieces of the benchmarks: a local control plane, an in-process operator, watches,
and a summary of samples. Benchmarks are scripts, never timed tests."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from devserver_operator.api.crd import build_all_crds
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.localcluster import ControlPlaneBinaries, LocalControlPlane
from devserver_operator.runner import operate
from devserver_operator.settings import OperatorSettings

OPERATOR_USER = "devserver-operator-bench"


def machine() -> str:
    cpus = os.cpu_count()
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split()[1])
        memory = f", {total_kib / 1024 / 1024:.0f} GiB"
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    python = platform.python_version()
    return (
        f"{platform.system()} {platform.machine()}, {cpus} cores{memory}, {model}, Python {python}"
    )


def load() -> str:
    """The 1, 5 and 15 minute load averages: other work on a shared machine skews timings."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def spread(samples: list[float], unit: str = "s", digits: int = 2) -> str:
    """Median and range of a few samples (too few for percentiles)."""
    return (
        f"median {statistics.median(samples):.{digits}f} {unit} "
        f"(min {min(samples):.{digits}f}, max {max(samples):.{digits}f}, n={len(samples)})"
    )


def summary(name: str, samples: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * scale

    return (
        f"{name}: n={len(samples)} median={statistics.median(samples) * scale:.1f}{unit} "
        f"p90={pct(90):.1f}{unit} p99={pct(99):.1f}{unit} min={ordered[0] * scale:.1f}{unit} "
        f"max={ordered[-1] * scale:.1f}{unit}"
    )


@contextmanager
def control_plane(audit: bool = True) -> Iterator[LocalControlPlane]:
    with LocalControlPlane(
        ControlPlaneBinaries.locate(build_if_missing=True), audit=audit
    ) as cluster:
        yield cluster


def install_crds(kubeconfig: Path) -> None:
    async def run() -> None:
        async with KubeClient(
            Credentials.from_kubeconfig(str(kubeconfig)), field_manager="bench"
        ) as kube:
            for crd in build_all_crds():
                await kube.apply(crd)
            await asyncio.sleep(2)  # Established

    asyncio.run(run())


@contextmanager
def running_operator(kubeconfig: Path, **overrides: Any) -> Iterator[OperatorSettings]:
    settings = OperatorSettings(
        kubeconfig=str(kubeconfig), metrics_port=0, health_port=0, **overrides
    )
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(operate(settings, stop_flag=stop, ready_flag=ready)), daemon=True
    )
    thread.start()
    ready.wait(60)
    try:
        yield settings
    finally:
        stop.set()
        thread.join(60)


async def watch_events(
    client: httpx.AsyncClient, path: str, *, resource_version: str
) -> AsyncIterator[tuple[float, dict[str, Any]]]:
    """(monotonic arrival time, event) for every watch event on ``path``."""
    params = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "false"}
    async with client.stream("GET", path, params=params, timeout=None) as response:
        async for line in response.aiter_lines():
            if line:
                yield time.monotonic(), json.loads(line)


def http_client(kubeconfig: Path) -> httpx.AsyncClient:
    from devserver_operator.localcluster import read_kubeconfig_credentials

    credentials = read_kubeconfig_credentials(kubeconfig)
    return httpx.AsyncClient(
        base_url=credentials.server_url,
        verify=credentials.ssl_context,
        headers=credentials.headers(),
    )


# -- the operator as a process, its memory, and its requests --------------------------------


def start_operator_process(
    kubeconfig: Path,
    log_path: Path,
    *,
    extra_args: list[str] | None = None,
    venv: Path | None = None,
    **env: str,
) -> subprocess.Popen[bytes]:
    """``devserver-operator run`` as users run it: its RSS is the operator's alone.

    ``venv``: run the one installed there, e.g. a venv with only the runtime dependencies
    (``UV_PROJECT_ENVIRONMENT=DIR uv sync --frozen --no-dev``), as in the container image:
    kopf imports optional libraries it finds among the test tools, which the
    image does not have."""
    executable = (venv / "bin" if venv else Path(sys.executable).parent) / "devserver-operator"
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "DEVSERVER_OPERATOR_METRICS_PORT": "0",
        "DEVSERVER_OPERATOR_HEALTH_PORT": "0",
        **{f"DEVSERVER_OPERATOR_{key.upper()}": value for key, value in env.items()},
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(executable), "run", *(extra_args or [])],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)


def memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc/<pid>/status."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def request_kind(event: dict[str, Any]) -> str:
    """``verb resource[/subresource]``, e.g. ``patch mcpservers/status``."""
    ref = event.get("objectRef") or {}
    sub = ref.get("subresource")
    return f"{event['verb']} {ref.get('resource', '?')}{'/' + sub if sub else ''}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
