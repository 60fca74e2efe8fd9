"""Argo CD delivers MCPServers from Git on kind, and judges them with the project's health Lua.

Argo CD's application controller and repo server run as built from the argo-cd module
(``hack/kind/argocd/build.sh``), with ``argocd-cm`` exactly as the project generates it
(``gitops/argocd/argocd-cm.yaml``). Git is a second repository on the Flux scenario's Git
server, pushed to from the host through a port-forward:

- every MCPServer of an Application is Progressing in Argo CD until the operator reports it
  Ready, then Healthy. One server (``gamma``) points at the URL of another (``delta``) that
  is only pushed to Git after Argo CD was seen reporting ``gamma`` Progressing, so that the
  transition is observed every time, not by chance;
- an MCPServer whose URL answers plain HTML is Degraded, with the operator's own message;
- both Applications are Synced after a hard refresh: neither the operator's writes nor the
  CRD's defaults make Argo CD see a difference to Git. Automated sync without ``selfHeal``,
  so that a difference would stay visible instead of being synced away.

The manifests are the ones docs/gitops.md shows under "Argo CD on kind (tested)". The tests
run as part of ``test_kind.py``, which imports them. Alone: ``pytest tests/e2e/test_kind.py
-k argocd``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from devserver_operator.localcluster import kind_argocd
from devserver_operator.localcluster.kind import KindCluster, KindToolchain
from tests.e2e import flux
from tests.e2e.helpers import GitWorkTree, apply, condition, get, get_or_none, is_ready, wait_until

ARGOCD = kind_argocd.NAMESPACE
DEMO = "argocd-demo"
BROKEN = "argocd-broken"
MCP_APP = "argocd-mcp"
BROKEN_APP = "argocd-broken"
# Cold pods of the everything server on a loaded 2-core machine, plus the operator's retries
# of a URL that refused connections.
READY_SECONDS = 480.0
FAIL_SECONDS = 240.0
REFRESH_SECONDS = 120.0


def application(name: str, path: str, destination: str) -> str:
    return f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: {ARGOCD}
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: default
  source:
    repoURL: {kind_argocd.GIT_URL}
    targetRevision: main
    path: {path}
  destination:
    server: https://kubernetes.default.svc
    namespace: {destination}
  syncPolicy:
    automated:
      prune: true
"""


def everything(name: str) -> str:
    """The Flux scenario's everything server, in this scenario's namespace."""
    return flux.everything(name).replace(f"namespace: {flux.NAMESPACE}", f"namespace: {DEMO}")


# gamma is not a workload of its own: it is verified at the URL of delta's Service, which the
# operator creates only once delta is in Git.
GAMMA = f"""\
apiVersion: devserver.ecosphere.network/v1alpha1
kind: MCPServer
metadata:
  name: gamma
  namespace: {DEMO}
spec:
  url: http://delta.{DEMO}.svc.cluster.local:3001/mcp
"""

FIRST_COMMIT = {
    "mcp/kustomization.yaml": flux.kustomize("namespace.yaml", "alpha.yaml", "gamma.yaml"),
    "mcp/namespace.yaml": flux.namespace(DEMO),
    "mcp/alpha.yaml": everything("alpha"),
    "mcp/gamma.yaml": GAMMA,
    "broken/kustomization.yaml": flux.kustomize("namespace.yaml", "not-mcp.yaml"),
    "broken/namespace.yaml": flux.namespace(BROKEN),
    "broken/not-mcp.yaml": flux.PLAIN_HTTP.replace(flux.BROKEN_NAMESPACE, BROKEN),
}
SECOND_COMMIT = {
    "mcp/kustomization.yaml": flux.kustomize(
        "namespace.yaml", "alpha.yaml", "gamma.yaml", "delta.yaml"
    ),
    "mcp/delta.yaml": everything("delta"),
}


@pytest.fixture(scope="session")
def argocd_repository(
    e2e_cluster: KindCluster,
    kind_toolchain: KindToolchain,
    installed_chart: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GitWorkTree]:
    """Argo CD installed, the first commit pushed; the Applications are deleted at the end
    (with their resources: the finalizer), so the rest of the suite sees no broken server."""
    started = time.monotonic()
    argocd = kind_argocd.install(e2e_cluster, kind_toolchain.images)
    print(f"Argo CD installed and rolled out in {time.monotonic() - started:.0f} s")
    argocd.init_repository()
    repository = GitWorkTree(tmp_path_factory.mktemp("argocd-repository"), argocd.git_remote)
    repository.init()
    repository.push(FIRST_COMMIT, "MCP servers, and one that is a web page")
    try:
        yield repository
    finally:
        e2e_cluster.kubectl(
            "delete", "-n", ARGOCD, "applications", "--all", "--wait", "--timeout=180s",
            check=False, timeout=210,
        )  # fmt: skip


def app(cluster: KindCluster, name: str) -> dict[str, Any]:
    return dict(get_or_none(cluster, "application", name, "-n", ARGOCD) or {})


def resource_health(body: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """Argo CD's health of one resource of the Application: {"status", "message"}, or {}."""
    for resource in (body.get("status") or {}).get("resources") or []:
        if resource.get("kind") == kind and resource.get("name") == name:
            return dict(resource.get("health") or {})
    return {}


@dataclass
class HealthTrail:
    """The health Argo CD reported for each MCPServer, in order (repeats folded), and every
    sample where it said Healthy while the operator had not (yet) reported the server Ready."""

    seen: dict[str, list[str]] = field(default_factory=dict)
    healthy_too_early: list[str] = field(default_factory=list)

    def since_created(self) -> dict[str, list[str]]:
        """The trail of each server from its creation: Argo CD says Missing for an object of
        Git that is not in the cluster yet, which is how every trail starts."""
        return {
            server: list(itertools.dropwhile(lambda status: status == "Missing", trail))
            for server, trail in self.seen.items()
        }

    def sample(self, cluster: KindCluster, servers: list[str]) -> dict[str, str]:
        body = app(cluster, MCP_APP)
        now: dict[str, str] = {}
        for server in servers:
            # Argo CD first, then the object: Argo CD's verdict lags the object, so Healthy
            # next to a not-Ready object read afterwards is a real violation.
            status = resource_health(body, "MCPServer", server).get("status", "")
            now[server] = status
            trail = self.seen.setdefault(server, [])
            if status and (not trail or trail[-1] != status):
                trail.append(status)
            if status == "Healthy" and not is_ready(
                get_or_none(cluster, "mcpserver", server, "-n", DEMO)
            ):
                health = resource_health(body, "MCPServer", server)
                self.healthy_too_early.append(f"{server}: {health}")
        return now


@pytest.fixture(scope="session")
def argocd_delivery(e2e_cluster: KindCluster, argocd_repository: GitWorkTree) -> HealthTrail:
    """The Application of mcp/, followed until Argo CD reports every MCPServer Healthy."""
    trail = HealthTrail()
    started = time.monotonic()
    apply(e2e_cluster, application(MCP_APP, "mcp", DEMO))
    wait_until(
        lambda: trail.sample(e2e_cluster, ["alpha", "gamma"]) == {
            "alpha": "Healthy", "gamma": "Progressing"
        },
        seconds=READY_SECONDS,
        what="Argo CD: alpha Healthy, gamma Progressing (delta not in Git yet)",
    )  # fmt: skip
    argocd_repository.push(SECOND_COMMIT, "delta, the server at gamma's URL")
    # Argo CD polls Git every 3 minutes; a refresh asks at once.
    e2e_cluster.kubectl(
        "annotate", "--overwrite", "-n", ARGOCD, f"application/{MCP_APP}",
        "argocd.argoproj.io/refresh=normal",
    )  # fmt: skip
    servers = ["alpha", "gamma", "delta"]
    wait_until(
        lambda: set(trail.sample(e2e_cluster, servers).values()) == {"Healthy"},
        seconds=READY_SECONDS,
        what="Argo CD: alpha, gamma and delta Healthy",
    )
    print(
        f"Argo CD: every MCPServer Healthy {time.monotonic() - started:.0f} s after the "
        f"Application was created; the health of each, in order: {trail.seen}"
    )
    return trail


def test_argocd_health_of_each_mcpserver_follows_the_operator(
    e2e_cluster: KindCluster, argocd_delivery: HealthTrail
) -> None:
    assert not argocd_delivery.healthy_too_early, argocd_delivery.healthy_too_early
    created = argocd_delivery.since_created()
    # gamma was Progressing while its URL refused connections (waited for above), and
    # Healthy once delta answered at it; nothing else in between.
    assert created["gamma"] == ["Progressing", "Healthy"], argocd_delivery.seen
    # alpha and delta start as fast as the machine lets them: their Progressing may fall
    # between two samples, so only the order is checked.
    for server in ("alpha", "delta"):
        assert created[server] in (["Progressing", "Healthy"], ["Healthy"]), argocd_delivery.seen
    body = app(e2e_cluster, MCP_APP)
    assert body["status"]["health"]["status"] == "Healthy", body["status"]["health"]
    for server in ("alpha", "gamma", "delta"):
        live = get(e2e_cluster, "mcpserver", server, "-n", DEMO)
        assert is_ready(live), live["status"]
        assert condition(live, "Verified").get("status") == "True", live["status"]
        # Argo CD 3 tracks what it applied by annotation (application.resourceTrackingMethod).
        tracking = live["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"]
        assert tracking.startswith(f"{MCP_APP}:"), tracking
        # The Lua's message for Ready=True is the operator's Ready message.
        health = resource_health(body, "MCPServer", server)
        assert health["message"] == condition(live, "Ready")["message"], (health, live["status"])


@pytest.fixture(scope="session")
def argocd_broken(e2e_cluster: KindCluster, argocd_repository: GitWorkTree) -> float:
    """The Application of broken/, created; returns when it was created (monotonic)."""
    started = time.monotonic()
    apply(e2e_cluster, application(BROKEN_APP, "broken", BROKEN))
    return started


def test_argocd_shows_the_operators_message_for_a_url_that_is_not_mcp(
    e2e_cluster: KindCluster, argocd_broken: float
) -> None:
    def degraded() -> dict[str, Any] | None:
        health = resource_health(app(e2e_cluster, BROKEN_APP), "MCPServer", "not-mcp")
        return health if health.get("status") == "Degraded" else None

    health = wait_until(degraded, seconds=FAIL_SECONDS, what="Argo CD: not-mcp Degraded")
    elapsed = time.monotonic() - argocd_broken
    live = get(e2e_cluster, "mcpserver", "not-mcp", "-n", BROKEN)
    stalled = condition(live, "Stalled")
    assert (stalled.get("status"), stalled.get("reason")) == ("True", "NotMCP"), stalled
    # Argo CD shows the operator's words: the Lua's message for Stalled=True.
    assert health["message"] == stalled["message"], (health, stalled)
    body = app(e2e_cluster, BROKEN_APP)
    assert body["status"]["health"]["status"] == "Degraded", body["status"]["health"]
    print(f"Argo CD: not-mcp Degraded after {elapsed:.0f} s: {health['message']}")


def hard_refresh(cluster: KindCluster, name: str) -> dict[str, Any]:
    """The Application after Argo CD compared it with Git anew, ignoring its caches."""
    before = app(cluster, name)["status"].get("reconciledAt", "")
    time.sleep(1.0)  # reconciledAt has whole seconds: the next one must differ
    cluster.kubectl(
        "annotate", "--overwrite", "-n", ARGOCD, f"application/{name}",
        "argocd.argoproj.io/refresh=hard",
    )  # fmt: skip

    def refreshed() -> dict[str, Any] | None:
        body = app(cluster, name)
        pending = "argocd.argoproj.io/refresh" in (body["metadata"].get("annotations") or {})
        done = not pending and body["status"].get("reconciledAt", "") != before
        return body if done else None

    return wait_until(refreshed, seconds=REFRESH_SECONDS, what=f"a hard refresh of {name}")


@pytest.mark.parametrize("name", [MCP_APP, BROKEN_APP])
def test_argocd_sees_no_difference_between_git_and_the_cluster(
    e2e_cluster: KindCluster,
    argocd_delivery: HealthTrail,
    argocd_broken: float,
    name: str,
) -> None:
    wait_until(
        lambda: app(e2e_cluster, name).get("status", {}).get("sync", {}).get("revision"),
        seconds=REFRESH_SECONDS,
        what=f"{name} compared with Git",
    )
    body = hard_refresh(e2e_cluster, name)
    out_of_sync = [
        f"{r['kind']}/{r['name']}: {r.get('status')}"
        for r in body["status"].get("resources") or []
        if r.get("status") != "Synced"
    ]
    assert not out_of_sync, out_of_sync
    assert body["status"]["sync"]["status"] == "Synced", body["status"]["sync"]
    operation = body["status"]["operationState"]
    assert operation["phase"] == "Succeeded", operation
