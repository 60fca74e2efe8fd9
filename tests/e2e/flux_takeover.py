"""Flux takes the operator over from ``helm install``, as a user who moves to GitOps would.

The tests run last in the e2e session (marker ``after_all``, which tests/e2e/conftest.py moves
to the end): they replace the chart-installed operator that every other test relies on.

1. helm-controller adopts the release that ``kind_stack.install_chart`` installed: a HelmRelease
   in Git (the chart from the same in-cluster repository, the same values) upgrades it in place
   without restarting the operator; a values change pushed to Git rolls the operator.
2. The HelmRelease is removed from Git: helm-controller uninstalls the release; the CRDs stay
   (templates with ``helm.sh/resource-policy: keep``), and with them every custom resource.
   Then the project's kustomize overlay (cluster-wide), delivered by a Flux Kustomization with
   ``wait: true``, runs the operator again; the MCPServers come back Ready under it, and a
   server pushed to Git is served.

The manifests are the ones docs/gitops.md shows under "Flux takes over the operator (tested)".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator.localcluster import kind_stack
from devserver_operator.localcluster.kind import KindCluster, KindToolchain
from tests.e2e.flux import (
    FLUX,
    NAMESPACE,
    READY_SECONDS,
    FluxRepository,
    Observation,
    await_ready_delivery,
    everything,
    kustomization,
)
from tests.e2e.helpers import apply, condition, get, get_or_none, is_ready, wait_until

OPERATOR_NAMESPACE = kind_stack.OPERATOR_NAMESPACE
RELEASE = kind_stack.RELEASE
HELM_PATH = "operator-helm"
OVERLAY_PATH = "operator-kustomize"
# A Helm upgrade waits for the operator to roll out; cold pods on a loaded 2-core machine.
HELM_SECONDS = 600.0
ROLLED_BY = "e2e.devserver.ecosphere.network/rolled-by"


def helm_release(image: str, pod_annotations: str = "{}") -> str:
    """The chart from the Git repository, with the values ``kind_stack.install_chart`` sets.

    reconcileStrategy stays ChartVersion (the default): with Revision every commit would give
    the chart a new version, and the pod template's helm.sh/chart label would roll the operator
    on each push."""
    repository, _, tag = image.rpartition(":")
    return f"""\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {RELEASE}
  namespace: {FLUX}
spec:
  interval: 10m
  releaseName: {RELEASE}
  targetNamespace: {OPERATOR_NAMESPACE}
  storageNamespace: {OPERATOR_NAMESPACE}
  chart:
    spec:
      chart: ./charts/devserver-operator
      sourceRef:
        kind: GitRepository
        name: devserver-e2e
  values:
    image:
      repository: {repository}
      tag: "{tag}"
      pullPolicy: Never
    logFormat: text
    resyncInterval: 15
    allowedImages: ["localhost/devserver/"]
    podAnnotations: {pod_annotations}
"""


def overlay(image: str) -> str:
    """The project's cluster-wide overlay with the locally built image. kustomize ``images:``
    changes only image fields: the stdio proxy (the operator's own image) is set beside it."""
    repository, _, tag = image.rpartition(":")
    return f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../manifests/overlays/cluster-wide
images:
  - name: ghcr.io/ecospherenetwork/devserver-operator
    newName: {repository}
    newTag: "{tag}"
patches:
  - target: {{kind: Deployment, name: devserver-operator}}
    patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: devserver-operator, namespace: {OPERATOR_NAMESPACE}}}
      spec:
        template:
          spec:
            containers:
              - name: operator
                imagePullPolicy: Never
                env:
                  - {{name: DEVSERVER_OPERATOR_STDIO_PROXY_IMAGE, value: "{image}"}}
                  - {{name: DEVSERVER_OPERATOR_LOG_FORMAT, value: text}}
                  - {{name: DEVSERVER_OPERATOR_RESYNC_INTERVAL, value: "15"}}
                  - {{name: DEVSERVER_OPERATOR_ALLOWED_IMAGES, value: '["localhost/devserver/"]'}}
"""


def operator_kustomization(name: str, path: str) -> str:
    """Orphan: deleting the Kustomization (the session's teardown does) leaves the operator and
    its CRDs; prune would delete the CRDs, and with them every custom resource."""
    return kustomization(name, path) + "  deletionPolicy: Orphan\n"


def tree(source: Path, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}/{path.relative_to(source)}": path.read_text(encoding="utf-8")
        for path in sorted(source.rglob("*"))
        if path.is_file()
    }


def kustomize_list(*resources: str) -> str:
    listed = "".join(f"  - {resource}\n" for resource in resources) or "  []\n"
    return f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{listed}"


@dataclass
class Takeover:
    """What the takeover starts from, and what each step leaves for the next."""

    repository: FluxRepository
    image: str
    servers: dict[str, str]  # "namespace/name" -> uid of every MCPServer Ready at the start
    revision: int  # the Helm release's revision before helm-controller touched it
    pod_uid: str  # the chart-installed operator's pod
    seconds: dict[str, float] = field(default_factory=dict)


def ready_servers(cluster: KindCluster) -> dict[str, str]:
    return {
        f"{item['metadata']['namespace']}/{item['metadata']['name']}": item["metadata"]["uid"]
        for item in get(cluster, "mcpservers", "-A")["items"]
        if is_ready(item) and not item["metadata"].get("deletionTimestamp")
    }


def server_problems(cluster: KindCluster, expected: dict[str, str], *, ready: bool) -> list[str]:
    """Servers of ``expected`` that are gone or replaced (another uid), and with ``ready`` those
    not Ready at their current generation."""
    items = {
        f"{item['metadata']['namespace']}/{item['metadata']['name']}": item
        for item in get(cluster, "mcpservers", "-A")["items"]
    }
    problems = []
    for key, uid in expected.items():
        item = items.get(key)
        if item is None or item["metadata"]["uid"] != uid:
            problems.append(f"{key}: gone or replaced")
        elif ready and not (
            is_ready(item)
            and item["status"].get("observedGeneration") == item["metadata"]["generation"]
        ):
            problems.append(f"{key}: not Ready: {condition(item, 'Ready').get('message')}")
    return problems


def release_revisions(cluster: KindCluster) -> dict[int, str]:
    """Helm's storage (Secrets in the release namespace): revision -> status."""
    secrets = get(cluster, "secrets", "-n", OPERATOR_NAMESPACE, "-l", f"owner=helm,name={RELEASE}")
    return {
        int(item["metadata"]["labels"]["version"]): item["metadata"]["labels"]["status"]
        for item in secrets["items"]
    }


def operator_deployment(cluster: KindCluster) -> dict[str, Any] | None:
    body = get_or_none(cluster, "deployment", RELEASE, "-n", OPERATOR_NAMESPACE)
    return dict(body) if body else None


def rolled_out(deployment: dict[str, Any]) -> bool:
    status = deployment.get("status") or {}
    replicas = deployment["spec"]["replicas"]
    return bool(
        status.get("observedGeneration") == deployment["metadata"]["generation"]
        and status.get("replicas") == replicas
        and status.get("updatedReplicas") == replicas
        and status.get("readyReplicas") == replicas
        and status.get("availableReplicas") == replicas
    )


def operator_pods(cluster: KindCluster) -> list[dict[str, Any]]:
    """The operator's pods that are not terminating."""
    pods = get(
        cluster, "pods", "-n", OPERATOR_NAMESPACE,
        "-l", f"app.kubernetes.io/name={RELEASE},app.kubernetes.io/instance={RELEASE}",
    )["items"]  # fmt: skip
    return [dict(pod) for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def the_ready_operator_pod(cluster: KindCluster) -> dict[str, Any]:
    """The one operator pod, once it is Ready (a rollout may still be finishing)."""

    def probe() -> dict[str, Any] | None:
        pods = operator_pods(cluster)
        ready = len(pods) == 1 and condition(pods[0], "Ready").get("status") == "True"
        return pods[0] if ready else None

    return wait_until(probe, seconds=180, what="one Ready operator pod")


READY_METRIC = re.compile(r"^devserver_mcp_server_ready\{(.*)\} 1\.0$", re.MULTILINE)
LABEL = re.compile(r'(\w+)="([^"]*)"')


def reported_ready(cluster: KindCluster, pod: str) -> set[str]:
    """The MCPServers an operator pod's metrics report Ready ("namespace/name")."""
    with cluster.port_forward(OPERATOR_NAMESPACE, f"pod/{pod}", 8080) as port:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    ready = set()
    for labels in READY_METRIC.findall(text):
        values = dict(LABEL.findall(labels))
        ready.add(f"{values['namespace']}/{values['name']}")
    return ready


def timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def await_helm_release(cluster: KindCluster, above: int) -> dict[str, Any]:
    """Until the HelmRelease is Ready at its generation with a release revision above
    ``above``; fails at once when helm-controller gives up (Stalled)."""

    def probe() -> dict[str, Any] | None:
        body = get_or_none(cluster, "helmrelease", RELEASE, "-n", FLUX)
        if body is None:
            return None
        stalled = condition(body, "Stalled")
        assert stalled.get("status") != "True", stalled
        status = body.get("status") or {}
        history = status.get("history") or [{}]
        done = (
            is_ready(body)
            and status.get("observedGeneration") == body["metadata"]["generation"]
            and int(history[0].get("version", 0)) > above
        )
        return dict(body) if done else None

    return wait_until(probe, seconds=HELM_SECONDS, what=f"HelmRelease Ready above {above}")


def await_kustomization(cluster: KindCluster, name: str, commit: str) -> dict[str, Any]:
    """Until the Kustomization is Ready at ``commit``; fails at once when the build fails."""

    def probe() -> dict[str, Any] | None:
        body = get_or_none(cluster, "kustomization", name, "-n", FLUX)
        ready = condition(body, "Ready")
        assert ready.get("reason") != "BuildFailed", ready
        return body if ready.get("status") == "True" and commit in ready["message"] else None

    return dict(wait_until(probe, seconds=READY_SECONDS, what=f"Kustomization {name} at {commit}"))


def timed(takeover_state: Takeover, step: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = action()
    takeover_state.seconds[step] = time.monotonic() - started
    print(f"{step}: {takeover_state.seconds[step]:.0f} s")
    return result


@pytest.fixture(scope="session")
def flux_takeover(
    e2e_cluster: KindCluster,
    kind_toolchain: KindToolchain,
    installed_chart: str,
    flux_repository: FluxRepository,
    flux_delivery: Observation,
) -> Takeover:
    """The chart and the HelmRelease pushed to Git; what the chart-installed operator runs."""
    revisions = release_revisions(e2e_cluster)
    assert revisions and revisions[max(revisions)] == "deployed", revisions
    servers = ready_servers(e2e_cluster)
    # Flux's alpha at least (flux_delivery waited for it).
    assert f"{NAMESPACE}/alpha" in servers, servers
    image = kind_stack.operator_image(kind_toolchain.images)
    flux_repository.push(
        {
            **tree(kind_stack.CHART, "charts/devserver-operator"),
            f"{HELM_PATH}/kustomization.yaml": kustomize_list("helmrelease.yaml"),
            f"{HELM_PATH}/helmrelease.yaml": helm_release(image),
        },
        "the operator's chart, released by Flux with the values of helm install",
    )
    return Takeover(
        flux_repository,
        image,
        servers,
        max(revisions),
        the_ready_operator_pod(e2e_cluster)["metadata"]["uid"],
    )


@pytest.mark.after_all
@pytest.mark.timeout(1800)
def test_flux_helm_controller_adopts_the_release_of_helm_install(
    e2e_cluster: KindCluster, flux_takeover: Takeover
) -> None:
    apply(e2e_cluster, operator_kustomization(HELM_PATH, f"./{HELM_PATH}"))
    release = timed(
        flux_takeover, "adoption", lambda: await_helm_release(e2e_cluster, flux_takeover.revision)
    )
    revisions = release_revisions(e2e_cluster)
    adopted = release["status"]["history"][0]["version"]
    # helm-controller found a release it did not install (no history in the HelmRelease's
    # status), called it Unmanaged and upgraded it: internal/reconcile/state.go and
    # atomic_release.go of v1.6.4.
    assert adopted == max(revisions) > flux_takeover.revision, revisions
    log = e2e_cluster.kubectl("logs", "-n", FLUX, "deployment/helm-controller", "--tail=-1")
    assert "release not managed by controller: found existing release in storage" in log
    assert revisions[adopted] == "deployed", revisions
    deployment = operator_deployment(e2e_cluster)
    assert deployment is not None
    labels = deployment["metadata"]["labels"]
    assert labels.get("helm.toolkit.fluxcd.io/name") == RELEASE, labels
    assert labels.get("helm.toolkit.fluxcd.io/namespace") == FLUX, labels
    # Same chart version, same values: the upgrade left the pod template alone, so the
    # operator kept running through the adoption.
    assert rolled_out(deployment), deployment["status"]
    pod = the_ready_operator_pod(e2e_cluster)
    assert pod["metadata"]["uid"] == flux_takeover.pod_uid
    assert not server_problems(e2e_cluster, flux_takeover.servers, ready=True)
    print(f"HelmRelease: {condition(release, 'Ready')['message']}")


@pytest.mark.after_all
@pytest.mark.timeout(1800)
def test_flux_a_values_change_pushed_to_git_rolls_the_operator(
    e2e_cluster: KindCluster, flux_takeover: Takeover
) -> None:
    before = operator_deployment(e2e_cluster)
    assert before is not None
    current = get(e2e_cluster, "helmrelease", RELEASE, "-n", FLUX)["status"]["history"][0]
    flux_takeover.repository.push(
        {
            f"{HELM_PATH}/helmrelease.yaml": helm_release(
                flux_takeover.image, f'{{"{ROLLED_BY}": "a values change in git"}}'
            )
        },
        "a pod annotation in the HelmRelease's values",
    )

    # First the new values in the HelmRelease (kustomize-controller applied the commit), then a
    # release of them: an upgrade for another reason (a new chart version) would not count.
    def values_applied() -> bool:
        body = get(e2e_cluster, "helmrelease", RELEASE, "-n", FLUX)
        return ROLLED_BY in (body["spec"]["values"].get("podAnnotations") or {})

    def released() -> dict[str, Any]:
        wait_until(values_applied, seconds=READY_SECONDS, what="the new values applied")
        return await_helm_release(e2e_cluster, int(current["version"]))

    release = timed(flux_takeover, "values change", released)
    # Helm waited for the rollout before it called the release deployed.
    deployment = operator_deployment(e2e_cluster)
    assert deployment is not None
    assert deployment["metadata"]["generation"] > before["metadata"]["generation"]
    assert rolled_out(deployment), deployment["status"]
    template = deployment["spec"]["template"]["metadata"]["annotations"]
    assert template.get(ROLLED_BY) == "a values change in git", template
    pod = the_ready_operator_pod(e2e_cluster)
    assert pod["metadata"]["uid"] != flux_takeover.pod_uid
    assert pod["metadata"]["annotations"].get(ROLLED_BY) == "a values change in git"
    kind_stack.wait_for_admission(e2e_cluster)
    wait_until(
        lambda: not server_problems(e2e_cluster, flux_takeover.servers, ready=True),
        seconds=READY_SECONDS,
        what="the MCPServers Ready under the rolled operator",
    )
    print(f"HelmRelease: {condition(release, 'Ready')['message']}")


@pytest.mark.after_all
@pytest.mark.timeout(1800)
def test_flux_the_kustomize_overlay_takes_over_when_the_helm_release_is_removed(
    e2e_cluster: KindCluster, flux_takeover: Takeover
) -> None:
    repository = flux_takeover.repository
    (repository.work_tree / HELM_PATH / "helmrelease.yaml").unlink()
    commit = repository.push(
        {
            f"{HELM_PATH}/kustomization.yaml": kustomize_list(),
            **tree(kind_stack.REPO_ROOT / "manifests" / "base", "manifests/base"),
            **tree(
                kind_stack.REPO_ROOT / "manifests" / "overlays" / "cluster-wide",
                "manifests/overlays/cluster-wide",
            ),
            f"{OVERLAY_PATH}/kustomization.yaml": overlay(flux_takeover.image),
        },
        "the operator from the kustomize overlay instead of the HelmRelease",
    )

    # kustomize-controller prunes the HelmRelease; its finalizer is helm uninstall.
    # Until the chart's operator pod has stopped too, so that two operators never overlap.
    def uninstalled() -> bool:
        gone = get_or_none(e2e_cluster, "helmrelease", RELEASE, "-n", FLUX) is None
        pods = get(
            e2e_cluster, "pods", "-n", OPERATOR_NAMESPACE, "-l", f"app.kubernetes.io/name={RELEASE}"
        )
        return gone and operator_deployment(e2e_cluster) is None and not pods["items"]

    timed(
        flux_takeover,
        "uninstall",
        lambda: wait_until(uninstalled, seconds=HELM_SECONDS, what="helm uninstall"),
    )
    assert not release_revisions(e2e_cluster)
    # The CRDs were kept, so no custom resource was lost, even without an operator.
    assert get_or_none(e2e_cluster, "crd", "mcpservers.devserver.ecosphere.network")
    assert not server_problems(e2e_cluster, flux_takeover.servers, ready=False)

    apply(e2e_cluster, operator_kustomization(OVERLAY_PATH, f"./{OVERLAY_PATH}"))
    delivered = timed(
        flux_takeover,
        "overlay delivery",
        lambda: await_kustomization(e2e_cluster, OVERLAY_PATH, commit),
    )
    deployment = operator_deployment(e2e_cluster)
    assert deployment is not None
    # wait: true held the Kustomization back until the operator was rolled out: it turned
    # Ready no earlier than the Deployment turned Available (times the API server recorded).
    assert rolled_out(deployment), deployment["status"]
    available = condition(deployment, "Available")
    assert available.get("status") == "True", available
    ready = condition(delivered, "Ready")
    assert timestamp(ready["lastTransitionTime"]) >= timestamp(available["lastTransitionTime"])
    assert condition(delivered, "Healthy").get("status") == "True", delivered["status"]
    labels = deployment["metadata"]["labels"]
    assert labels.get("kustomize.toolkit.fluxcd.io/name") == OVERLAY_PATH, labels
    assert "helm.toolkit.fluxcd.io/name" not in labels, labels
    fields = get(
        e2e_cluster, "deployment", RELEASE, "-n", OPERATOR_NAMESPACE, "--show-managed-fields"
    )["metadata"]["managedFields"]
    managers = {(entry["manager"], entry["operation"]) for entry in fields}
    assert ("kustomize-controller", "Apply") in managers, managers
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == flux_takeover.image
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["DEVSERVER_OPERATOR_STDIO_PROXY_IMAGE"] == flux_takeover.image
    # The MCPServers outlived the operator's absence, and the new operator has taken each one
    # up: its metrics (a fresh process knows only what it reconciled) report them Ready.
    pod = the_ready_operator_pod(e2e_cluster)["metadata"]["name"]

    def taken_up() -> bool:
        if server_problems(e2e_cluster, flux_takeover.servers, ready=True):
            return False
        return set(flux_takeover.servers) <= reported_ready(e2e_cluster, pod)

    timed(
        flux_takeover,
        "servers taken up",
        lambda: wait_until(
            taken_up,
            seconds=READY_SECONDS,
            what="the MCPServers Ready under the Flux-delivered operator",
            interval=5,
        ),
    )
    print(f"Kustomization {OVERLAY_PATH}: {ready['message']}")


@pytest.mark.after_all
@pytest.mark.timeout(1800)
def test_flux_a_server_pushed_to_git_is_served_by_the_operator_flux_delivered(
    e2e_cluster: KindCluster, flux_takeover: Takeover
) -> None:
    operator = the_ready_operator_pod(e2e_cluster)
    assert operator["metadata"]["labels"].get("app.kubernetes.io/instance") == RELEASE
    kind_stack.wait_for_admission(e2e_cluster)
    work_tree = flux_takeover.repository.work_tree
    listed = (work_tree / "mcp" / "kustomization.yaml").read_text(encoding="utf-8")
    before = get(e2e_cluster, "mcpserver", "alpha", "-n", NAMESPACE)
    commit = flux_takeover.repository.push(
        {
            "mcp/kustomization.yaml": listed + "  - gamma.yaml\n",
            "mcp/gamma.yaml": everything("gamma"),
            "mcp/alpha.yaml": everything("alpha", greeting="hello from the Flux-run operator"),
        },
        "a new server and a changed one, for the operator Flux delivered",
    )
    seen = timed(
        flux_takeover,
        "new server",
        lambda: await_ready_delivery(e2e_cluster, "flux-mcp", commit, ["alpha"]),
    )
    assert not seen.ready_too_early, seen.ready_too_early

    def gamma_verified() -> dict[str, Any] | None:
        body = get_or_none(e2e_cluster, "mcpserver", "gamma", "-n", NAMESPACE)
        verified = condition(body, "Verified").get("status") == "True"
        return body if is_ready(body) and verified else None

    gamma = wait_until(gamma_verified, seconds=READY_SECONDS, what="MCPServer gamma Verified")
    assert gamma["status"]["toolCount"] > 0, gamma["status"]
    alpha = get(e2e_cluster, "mcpserver", "alpha", "-n", NAMESPACE)
    assert alpha["metadata"]["generation"] > before["metadata"]["generation"]
    assert alpha["status"]["observedGeneration"] == alpha["metadata"]["generation"]
    assert is_ready(alpha)
    # Still the one operator pod the overlay started: nothing restarted it meanwhile.
    assert the_ready_operator_pod(e2e_cluster)["metadata"]["uid"] == operator["metadata"]["uid"]
    print(
        "takeover times:", {step: round(seconds) for step, seconds in flux_takeover.seconds.items()}
    )
