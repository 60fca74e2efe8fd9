"""Flux on a kind cluster: source-controller, kustomize-controller and helm-controller from the
images that ``hack/kind/flux/build.sh`` builds from their Go modules, their CRDs from the same
modules, and a Git server inside the cluster (git http-backend) that tests push to.

    flux = kind_flux.install(cluster, toolchain.images)
    with flux.git_remote() as remote:       # a port-forward to the Git server
        ...git push remote main...

The controllers run with upstream's flags, minus leader election and the event address (no
notification-controller), under a ServiceAccount bound to cluster-admin, as flux2 binds
kustomize-controller and helm-controller (its cluster-reconciler binding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from devserver_operator.localcluster import binaries, podsecurity
from devserver_operator.localcluster.kind import KindCluster

FLUX_NAMESPACE: Final = "flux-system"
GIT_NAMESPACE: Final = "flux-git"
GIT_SERVICE: Final = "git-server"
GIT_REPOSITORY_PATH: Final = "/git/devserver.git"
GIT_URL: Final = f"http://{GIT_SERVICE}.{GIT_NAMESPACE}.svc.cluster.local{GIT_REPOSITORY_PATH}"
CONTROLLERS: Final = ("source-controller", "kustomize-controller", "helm-controller")
ROLLOUT_SECONDS: Final = 300


def image_of(images: tuple[str, ...], name: str) -> str:
    """The image of ``name`` (``source-controller``, ``git-http``) among the toolchain's images."""
    prefix = f"localhost/devserver/{'' if name == 'git-http' else 'flux-'}{name}:"
    return next(image for image in images if image.startswith(prefix))


def crd_dirs(versions_file: Path = binaries.VERSIONS_FILE) -> list[Path]:
    """The controllers' CRDs (config/crd/bases of their modules), cached by build.sh."""
    values = dict(
        line.split("=", 1)
        for line in versions_file.read_text(encoding="utf-8").splitlines()
        if line.startswith("FLUX_") and "=" in line
    )
    cache_bin = binaries.cache_root() / "bin"
    keys = {
        "source-controller": "SOURCE",
        "kustomize-controller": "KUSTOMIZE",
        "helm-controller": "HELM",
    }
    return [
        cache_bin / f"{name}-{values[f'FLUX_{key}_CONTROLLER_VERSION']}" / "crds"
        for name, key in keys.items()
    ]


@dataclass(frozen=True)
class KindFlux:
    cluster: KindCluster

    @contextlib.contextmanager
    def git_remote(self, repository_path: str = GIT_REPOSITORY_PATH) -> Iterator[str]:
        """The URL of a repository on the in-cluster Git server (by default Flux's) from the
        host, while a port-forward lasts."""
        with self.cluster.port_forward(GIT_NAMESPACE, f"service/{GIT_SERVICE}", 80) as port:
            yield f"http://127.0.0.1:{port}{repository_path}"


def install(cluster: KindCluster, images: tuple[str, ...]) -> KindFlux:
    """Flux's CRDs and controllers in flux-system, and the Git server in flux-git; returns when
    their Deployments are rolled out."""
    for directory in crd_dirs():
        cluster.kubectl("apply", "--server-side", "-f", str(directory))
    manifest = _FLUX
    for name in (*CONTROLLERS, "git-http"):
        manifest = manifest.replace(f"@{name}@", image_of(images, name))
    cluster.kubectl("apply", "--server-side", "--field-manager=e2e", "-f", "-", input_text=manifest)
    for namespace, deployment in [
        *((FLUX_NAMESPACE, name) for name in CONTROLLERS),
        (GIT_NAMESPACE, GIT_SERVICE),
    ]:
        cluster.kubectl(
            "rollout", "status", "-n", namespace, f"deployment/{deployment}",
            f"--timeout={ROLLOUT_SECONDS}s", timeout=ROLLOUT_SECONDS + 20,
        )  # fmt: skip
    return KindFlux(cluster)


def _reconciler(name: str) -> str:
    """kustomize-controller and helm-controller: the same flags, probes and mounts upstream."""
    return f"""\
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {FLUX_NAMESPACE}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      serviceAccountName: {name}
{podsecurity.pod()}
      containers:
        - name: manager
          image: "@{name}@"
          imagePullPolicy: Never
          args:
            - --watch-all-namespaces
            - --log-level=info
            - --log-encoding=json
            - --enable-leader-election=false
          env:
            - name: RUNTIME_NAMESPACE
              valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}
          ports:
            - {{containerPort: 9440, name: healthz}}
          readinessProbe:
            httpGet: {{port: healthz, path: /readyz}}
          livenessProbe:
            httpGet: {{port: healthz, path: /healthz}}
{podsecurity.CONTAINER}
          volumeMounts:
            - {{name: tmp, mountPath: /tmp}}
      volumes:
        - {{name: tmp, emptyDir: {{}}}}
"""


_FLUX = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {FLUX_NAMESPACE}
  labels: {{pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {GIT_NAMESPACE}
  labels: {{pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: source-controller, namespace: {FLUX_NAMESPACE}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: kustomize-controller, namespace: {FLUX_NAMESPACE}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: helm-controller, namespace: {FLUX_NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: flux-e2e-cluster-reconciler}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects:
  - {{kind: ServiceAccount, name: source-controller, namespace: {FLUX_NAMESPACE}}}
  - {{kind: ServiceAccount, name: kustomize-controller, namespace: {FLUX_NAMESPACE}}}
  - {{kind: ServiceAccount, name: helm-controller, namespace: {FLUX_NAMESPACE}}}
---
apiVersion: v1
kind: Service
metadata: {{name: source-controller, namespace: {FLUX_NAMESPACE}}}
spec:
  selector: {{app: source-controller}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: source-controller, namespace: {FLUX_NAMESPACE}}}
spec:
  replicas: 1
  strategy: {{type: Recreate}}
  selector: {{matchLabels: {{app: source-controller}}}}
  template:
    metadata: {{labels: {{app: source-controller}}}}
    spec:
      serviceAccountName: source-controller
{podsecurity.pod()}
      containers:
        - name: manager
          image: "@source-controller@"
          imagePullPolicy: Never
          args:
            - --watch-all-namespaces
            - --log-level=info
            - --log-encoding=json
            - --enable-leader-election=false
            - --storage-path=/data
            - --storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.
          env:
            - name: RUNTIME_NAMESPACE
              valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}
            - {{name: TUF_ROOT, value: /tmp/.sigstore}}
          ports:
            - {{containerPort: 9090, name: http}}
            - {{containerPort: 9440, name: healthz}}
          readinessProbe:
            httpGet: {{port: http, path: /}}
          livenessProbe:
            httpGet: {{port: healthz, path: /healthz}}
{podsecurity.CONTAINER}
          volumeMounts:
            - {{name: data, mountPath: /data}}
            - {{name: tmp, mountPath: /tmp}}
      volumes:
        - {{name: data, emptyDir: {{}}}}
        - {{name: tmp, emptyDir: {{}}}}
{_reconciler("kustomize-controller")}{_reconciler("helm-controller")}---
apiVersion: v1
kind: Service
metadata: {{name: {GIT_SERVICE}, namespace: {GIT_NAMESPACE}}}
spec:
  selector: {{app: {GIT_SERVICE}}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {GIT_SERVICE}, namespace: {GIT_NAMESPACE}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {GIT_SERVICE}}}}}
  template:
    metadata: {{labels: {{app: {GIT_SERVICE}}}}}
    spec:
{podsecurity.pod()}
      containers:
        - name: git
          image: "@git-http@"
          imagePullPolicy: Never
          ports: [{{containerPort: 8080}}]
          readinessProbe:
            tcpSocket: {{port: 8080}}
{podsecurity.CONTAINER}
          volumeMounts:
            - {{name: repositories, mountPath: /srv/git}}
            - {{name: tmp, mountPath: /tmp}}
      volumes:
        - {{name: repositories, emptyDir: {{}}}}
        - {{name: tmp, emptyDir: {{}}}}
"""
