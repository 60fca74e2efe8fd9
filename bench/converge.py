"""N MCPServers converging from a cold operator start, on the local control plane.

    .venv/bin/python bench/converge.py [--sizes 1 100 1000] [--repeat 3] [--resync 15]
        [--operator-venv DIR] [--py-spy PATH --profile-dir DIR]

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

Each N runs ``--repeat`` times (a fresh control plane each time); the summary gives the median
and range of every number, and each run notes the load average, since other work on a shared
machine takes CPU from both the operator and the API server. ``--py-spy`` records the
operator from its start until it converged (raw collapsed stacks in ``--profile-dir``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
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
    control_plane,
    cpu_seconds,
    install_crds,
    load,
    machine,
    memory_mib,
    request_kind,
    spread,
    start_operator_process,
    stop_process,
)
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.localcluster.audit import WRITE_VERBS, answered_requests, read_audit_events

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
        events, self.offset = read_audit_events(audit_log, self.offset)
        for event in events:
            self._seen(event)

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
    cpu_components: dict[str, float]
    peak_converged: float
    rss_idle: float
    peak_idle: float
    requests: Counter[str]
    startup_requests: Counter[str]
    idle_writes: Counter[str]
    cpu_idle: float
    load_before: str
    load_after: str


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
    control_plane_pids: dict[str, int],
    venv: Path | None,
    profiler: Path | None,
) -> Result:
    async with KubeClient(
        Credentials.from_kubeconfig(str(kubeconfig)), field_manager="bench"
    ) as kube:
        names = await create_servers(kube, size)
        load_before = load()
        audit_start = audit_log.stat().st_size  # noqa: ASYNC240 - a local file
        plane_cpu_before = {name: cpu_seconds(pid) for name, pid in control_plane_pids.items()}
        progress = Progress(names=names, started=time.time(), offset=audit_start)
        log_path = work / f"operator-{size}-{int(progress.started)}.log"
        process = start_operator_process(
            operator_kubeconfig,
            log_path,
            resync_interval=str(resync),
            log_level="WARNING",
            venv=venv,
        )
        recorder = start_profiler(profiler, process.pid, work, size)
        try:
            deadline = time.monotonic() + CONVERGE_TIMEOUT_SECONDS
            while not progress.done:
                if process.poll() is not None:
                    raise RuntimeError(f"the operator exited: see {log_path}")
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
            cpu_components = {
                name: cpu_seconds(pid) - plane_cpu_before[name]
                for name, pid in control_plane_pids.items()
            }
            load_after = load()
            stop_profiler(recorder)
            # Let the last writes of the convergence land before the idle window opens.
            await asyncio.sleep(min(resync, 5.0))
            await check_converged(kube, names)
            converged_events = answered_requests(audit_log, audit_start, OPERATOR_USER)
            idle_start = audit_log.stat().st_size  # noqa: ASYNC240
            cpu_idle_start = cpu_seconds(process.pid)
            await asyncio.sleep(resync * 2 + 2)  # two full resync rounds of every object
            cpu_idle = cpu_seconds(process.pid) - cpu_idle_start
            idle = answered_requests(audit_log, idle_start, OPERATOR_USER)
            rss_idle, peak_idle = memory_mib(process.pid)
        finally:
            stop_profiler(recorder)
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
        cpu_control_plane=sum(cpu_components.values()),
        cpu_components=cpu_components,
        peak_converged=peak_converged,
        rss_idle=rss_idle,
        peak_idle=peak_idle,
        requests=requests,
        startup_requests=startup,
        idle_writes=idle_writes,
        cpu_idle=cpu_idle,
        load_before=load_before,
        load_after=load_after,
    )


def start_profiler(
    py_spy: Path | None, pid: int, work: Path, size: int
) -> subprocess.Popen[bytes] | None:
    """py-spy attached to the operator (sampling, so the operator runs at nearly full speed)."""
    if py_spy is None:
        return None
    output = work / f"profile-{size}-{pid}.txt"
    print(f"  py-spy: {output}")
    return subprocess.Popen(
        [
            *(str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "50"),
            *("--nonblocking", "--output", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(recorder: subprocess.Popen[bytes] | None) -> None:
    if recorder is not None and recorder.poll() is None:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait(10)


def _names_an_object(event: dict[str, Any]) -> bool:
    ref = event.get("objectRef") or {}
    return ref.get("namespace") == NAMESPACE and bool(ref.get("name"))


def report(result: Result) -> None:
    size = result.size
    events = result.requests.get("create events", 0)
    per_object = (sum(result.requests.values()) - events) / size
    writes = sum(v for k, v in result.requests.items() if k.split()[0] in WRITE_VERBS) - events
    print(f"\nN={size} ({result.load_before} before the start, {result.load_after} when converged)")
    print(
        f"  converge from process start: first child {result.first_child:.2f} s, "
        f"all children {result.all_children:.2f} s, all statuses {result.all_statuses:.2f} s"
    )
    print(
        f"  CPU until converged: operator {result.cpu_operator:.1f} s, "
        f"control plane {result.cpu_control_plane:.1f} s ("
        + ", ".join(f"{name} {cpu:.1f} s" for name, cpu in result.cpu_components.items())
        + ")"
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
    print(
        f"  writes during two idle resync rounds: {sum(result.idle_writes.values())}; "
        f"operator CPU {result.cpu_idle:.1f} s"
    )
    for key, count in sorted(result.idle_writes.items()):
        print(f"    {key}: {count}")


def summarize(size: int, runs: list[Result]) -> None:
    def of(attribute: str) -> list[float]:
        return [float(getattr(r, attribute)) for r in runs]

    per_object = [
        (sum(r.requests.values()) - r.requests.get("create events", 0)) / size for r in runs
    ]
    print(f"\nsummary N={size}:")
    print(f"  first child     {spread(of('first_child'))}")
    print(f"  all children    {spread(of('all_children'))}")
    print(f"  all statuses    {spread(of('all_statuses'))}")
    print(f"  operator CPU    {spread(of('cpu_operator'), digits=1)}")
    print(f"  API server CPU  {spread(of('cpu_control_plane'), digits=1)}")
    print(f"  RSS converged   {spread(of('rss_converged'), 'MiB', 1)}")
    peaks = [max(r.peak_converged, r.peak_idle) for r in runs]
    print(f"  RSS peak        {spread(peaks, 'MiB', 1)}")
    print(f"  RSS idle        {spread(of('rss_idle'), 'MiB', 1)}")
    print(f"  requests/object {spread(per_object, '', 2)}")
    print(f"  idle writes     {spread([sum(r.idle_writes.values()) for r in runs], '', 0)}")
    print(f"  idle CPU/round  {spread([r.cpu_idle / 2 for r in runs], 's', 2)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per N")
    parser.add_argument("--resync", type=float, default=15.0, help="resync interval, seconds")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--operator-venv",
        type=Path,
        help="run the operator from this venv (runtime dependencies only, as in the image)",
    )
    parser.add_argument("--py-spy", type=Path, help="profile the operator with this py-spy")
    parser.add_argument("--profile-dir", type=Path, help="where py-spy's profiles go")
    args = parser.parse_args()
    if args.py_spy and not args.profile_dir:
        parser.error("--py-spy needs --profile-dir")
    print(f"machine: {machine()}")
    print(f"operator: {args.operator_venv or Path(sys.executable).parent.parent} ({load()})")
    results: dict[int, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-converge-") as scratch:
        work = args.profile_dir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            for _ in range(args.repeat):
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
                            work,
                            cluster.pids,
                            args.operator_venv,
                            args.py_spy,
                        )
                    )
                report(result)
                results.setdefault(size, []).append(result)
    for size, runs in results.items():
        summarize(size, runs)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        **{k: v for k, v in vars(r).items() if not isinstance(v, Counter | dict)},
                        "cpu_components": r.cpu_components,
                        "requests": dict(r.requests),
                        "startup_requests": dict(r.startup_requests),
                        "idle_writes": dict(r.idle_writes),
                    }
                    for runs in results.values()
                    for r in runs
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
