"""N MCPServers converging from a cold operator start, on the local control plane.

    .venv/bin/python bench/converge.py [--sizes 1 100 1000] [--resync 15] [--operator-venv DIR]

For each N, on a fresh control plane: N workload MCPServers (3 children each: Deployment,
Service, NetworkPolicy; verification off, since no pod runs here) are created while no
operator runs; then ``devserver-operator run`` starts as a process and the clock runs until
every child exists and every MCPServer's status is written for its generation (seen in
the API server's audit log as they land; one listing confirms it afterwards). Reported per N:

- time from process start to the first child, to all children, to all statuses;
- CPU seconds of the operator and of the control plane (kube-apiserver, etcd, controller
  manager) until then: with 2 cores, their sum over 2 is a floor for the time;
- the operator's RSS (current and peak, /proc/<pid>/status) when converged and after idling;
- its API requests during convergence, from the audit log: per object, by verb and resource,
  apart from the constant cost of starting (listing and watching each kind);
- its writes during two idle resync rounds after convergence (target: zero).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    OPERATOR_USER,
    audit_requests,
    control_plane,
    cpu_seconds,
    install_crds,
    machine,
    memory_mib,
    request_kind,
    start_operator_process,
    stop_process,
)
from devserver_operator.kube.client import Credentials, KubeClient

NAMESPACE = "bench"
API_VERSION = "devserver.ecosphere.network/v1alpha1"
CHILD_KINDS = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
]
CHILD_RESOURCES = ("deployments", "services", "networkpolicies")
CONVERGE_TIMEOUT_SECONDS = 600.0
CREATE_CONCURRENCY = 16
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass
class Progress:
    """The operator's successful writes, read from the audit log as they land: no watch of
    the benchmark's own adds load to the API server it measures."""

    names: set[str]
    started: float  # wall clock (the audit log's timestamps are wall clock)
    offset: int
    children: dict[str, set[str]] = field(default_factory=dict)
    statused: set[str] = field(default_factory=set)
    first_child: float | None = None
    all_children: float | None = None
    all_statuses: float | None = None

    def poll(self, audit_log: Path) -> None:
        with audit_log.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            self._seen(json.loads(line))

    def _seen(self, event: dict[str, Any]) -> None:
        ref = event.get("objectRef") or {}
        if (
            event.get("stage") != "ResponseComplete"
            or event["user"]["username"] != OPERATOR_USER
            or event["verb"] != "patch"
            or ref.get("namespace") != NAMESPACE
            or event["responseStatus"]["code"] >= 300
        ):
            return
        at = datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00")).timestamp()
        elapsed = at - self.started
        resource, name = ref.get("resource"), ref.get("name", "")
        if ref.get("subresource") == "status" and resource == "mcpservers":
            self.statused.add(name)
            if self.all_statuses is None and self.names <= self.statused:
                self.all_statuses = elapsed
        elif resource in CHILD_RESOURCES and not ref.get("subresource"):
            self.children.setdefault(resource, set()).add(name)
            if self.first_child is None:
                self.first_child = elapsed
            if self.all_children is None and all(
                self.names <= self.children.get(r, set()) for r in CHILD_RESOURCES
            ):
                self.all_children = elapsed

    @property
    def done(self) -> bool:
        return self.all_children is not None and self.all_statuses is not None


@dataclass
class Result:
    size: int
    first_child: float
    all_children: float
    all_statuses: float
    rss_converged: float
    cpu_operator: float
    cpu_control_plane: float
    peak_converged: float
    rss_idle: float
    peak_idle: float
    requests: Counter[str]
    startup_requests: Counter[str]
    idle_writes: Counter[str]


def server(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "MCPServer",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"image": "ghcr.io/example/server:1.0.0", "verification": {"enabled": False}},
    }


async def create_servers(kube: KubeClient, size: int) -> set[str]:
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    names = [f"s{index:04d}" for index in range(size)]
    slots = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create(name: str) -> None:
        async with slots:
            await kube.create(server(name))

    await asyncio.gather(*(create(name) for name in names))
    return set(names)


async def check_converged(kube: KubeClient, names: set[str]) -> None:
    """One listing after the fact: every status is for its generation, every child exists."""
    servers = await kube.list(API_VERSION, "MCPServer", NAMESPACE)
    behind = [
        s["metadata"]["name"]
        for s in servers
        if (s.get("status") or {}).get("observedGeneration") != s["metadata"]["generation"]
        or not any(c["type"] == "Ready" for c in s["status"].get("conditions", []))
    ]
    if behind:
        raise RuntimeError(f"{len(behind)} MCPServers not converged, e.g. {behind[:5]}")
    for api_version, kind in CHILD_KINDS:
        found = {c["metadata"]["name"] for c in await kube.list(api_version, kind, NAMESPACE)}
        if not names <= found:
            raise RuntimeError(f"{len(names - found)} {kind}s missing")


async def converge(
    kubeconfig: Path,
    operator_kubeconfig: Path,
    audit_log: Path,
    size: int,
    resync: float,
    work: Path,
    control_plane_pids: list[int],
    venv: Path | None,
) -> Result:
    async with KubeClient(
        Credentials.from_kubeconfig(str(kubeconfig)), field_manager="bench"
    ) as kube:
        names = await create_servers(kube, size)
        audit_start = audit_log.stat().st_size  # noqa: ASYNC240 - a local file
        plane_cpu_before = sum(cpu_seconds(pid) for pid in control_plane_pids)
        progress = Progress(names=names, started=time.time(), offset=audit_start)
        process = start_operator_process(
            operator_kubeconfig,
            work / f"operator-{size}.log",
            resync_interval=str(resync),
            log_level="WARNING",
            venv=venv,
        )
        try:
            deadline = time.monotonic() + CONVERGE_TIMEOUT_SECONDS
            while not progress.done:
                if process.poll() is not None:
                    raise RuntimeError(f"the operator exited: see {work}/operator-{size}.log")
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"N={size}: not converged after {CONVERGE_TIMEOUT_SECONDS:.0f} s: "
                        f"children { ({k: len(v) for k, v in progress.children.items()}) }, "
                        f"statuses {len(progress.statused)}"
                    )
                await asyncio.sleep(0.1)
                progress.poll(audit_log)
            rss_converged, peak_converged = memory_mib(process.pid)
            cpu_operator = cpu_seconds(process.pid)
            cpu_plane = sum(cpu_seconds(pid) for pid in control_plane_pids) - plane_cpu_before
            # Let the last writes of the convergence land before the idle window opens.
            await asyncio.sleep(min(resync, 5.0))
            await check_converged(kube, names)
            converged_events = audit_requests(audit_log, audit_start, OPERATOR_USER)
            idle_start = audit_log.stat().st_size  # noqa: ASYNC240
            await asyncio.sleep(resync * 2 + 2)  # two full resync rounds of every object
            idle = audit_requests(audit_log, idle_start, OPERATOR_USER)
            rss_idle, peak_idle = memory_mib(process.pid)
        finally:
            stop_process(process)
    requests: Counter[str] = Counter()
    startup: Counter[str] = Counter()
    for event in converged_events:
        # Per-object requests name an object in the bench namespace; the rest (listings,
        # watches, kopf's peering and CRD discovery) is the constant price of a start.
        target = requests if _names_an_object(event) else startup
        target[request_kind(event)] += 1
    # kopf posts Events in the background (POST to the collection, no object name): they are
    # per object, but not writes to the object or its children.
    requests["create events"] = startup.pop("create events", 0)
    idle_writes = Counter(request_kind(e) for e in idle if e["verb"] in WRITE_VERBS)
    return Result(
        size=size,
        first_child=progress.first_child or 0.0,
        all_children=progress.all_children or 0.0,
        all_statuses=progress.all_statuses or 0.0,
        rss_converged=rss_converged,
        cpu_operator=cpu_operator,
        cpu_control_plane=cpu_plane,
        peak_converged=peak_converged,
        rss_idle=rss_idle,
        peak_idle=peak_idle,
        requests=requests,
        startup_requests=startup,
        idle_writes=idle_writes,
    )


def _names_an_object(event: dict[str, Any]) -> bool:
    ref = event.get("objectRef") or {}
    return ref.get("namespace") == NAMESPACE and bool(ref.get("name"))


def report(result: Result) -> None:
    size = result.size
    events = result.requests.get("create events", 0)
    per_object = (sum(result.requests.values()) - events) / size
    writes = sum(v for k, v in result.requests.items() if k.split()[0] in WRITE_VERBS) - events
    print(f"\nN={size}")
    print(
        f"  converge from process start: first child {result.first_child:.2f} s, "
        f"all children {result.all_children:.2f} s, all statuses {result.all_statuses:.2f} s"
    )
    print(
        f"  CPU until converged: operator {result.cpu_operator:.1f} s, "
        f"kube-apiserver + etcd + controller-manager {result.cpu_control_plane:.1f} s"
    )
    print(
        f"  RSS converged {result.rss_converged:.1f} MiB (peak {result.peak_converged:.1f}), "
        f"after idling {result.rss_idle:.1f} MiB (peak {result.peak_idle:.1f})"
    )
    print(
        f"  requests on an object or its children: {per_object:.2f} per MCPServer "
        f"({writes / size:.2f} writes; 3 children, target <= 5), "
        f"plus {events / size:.2f} Events"
    )
    for key, count in sorted(result.requests.items()):
        print(f"    {key}: {count} ({count / size:.2f} per object)")
    print(f"  start-up requests (constant): {sum(result.startup_requests.values())}")
    for key, count in sorted(result.startup_requests.items()):
        print(f"    {key}: {count}")
    print(f"  writes during two idle resync rounds: {sum(result.idle_writes.values())}")
    for key, count in sorted(result.idle_writes.items()):
        print(f"    {key}: {count}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--resync", type=float, default=15.0, help="resync interval, seconds")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--operator-venv",
        type=Path,
        help="run the operator from this venv (runtime dependencies only, as in the image)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-converge-") as scratch:
        for size in args.sizes:
            with control_plane(audit=True) as cluster:
                assert cluster.audit_log_path is not None
                install_crds(cluster.kubeconfig_path)
                operator_kubeconfig = cluster.write_user_kubeconfig(
                    OPERATOR_USER, ["system:masters"]
                )
                result = asyncio.run(
                    converge(
                        cluster.kubeconfig_path,
                        operator_kubeconfig,
                        cluster.audit_log_path,
                        size,
                        args.resync,
                        Path(scratch),
                        list(cluster.pids.values()),
                        args.operator_venv,
                    )
                )
            report(result)
            results.append(result)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        **{k: v for k, v in vars(r).items() if not isinstance(v, Counter)},
                        "requests": dict(r.requests),
                        "startup_requests": dict(r.startup_requests),
                        "idle_writes": dict(r.idle_writes),
                    }
                    for r in results
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
