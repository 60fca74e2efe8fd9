"""Argo CD on a kind cluster: the application controller and the repo server from the image
that ``hack/kind/argocd/build.sh`` builds from the argo-cd module, Redis (Debian's) for their
cache, the Application and AppProject CRDs from the same module, and ``argocd-cm`` exactly as
the project generates it (``gitops/argocd/argocd-cm.yaml``: the health Lua of the four kinds).

    argocd = kind_argocd.install(cluster, toolchain.images)
    argocd.init_repository()                  # a bare repository on the Flux scenario's Git server
    with argocd.git_remote() as remote:       # a port-forward to it
        ...git push remote main...

Left out, as the scenario needs none of them: the API server and UI, Dex, notifications, the
ApplicationSet controller. Without the API server nothing creates the ``default`` AppProject
or ``argocd-secret``, so both are applied here. The repo server speaks plain gRPC inside the
namespace (``--disable-tls``/``--repo-server-plaintext``) and Redis has no password: nothing
outside the cluster reaches them. The controller persists each resource's health in the
Application (``--persist-resource-health``; Argo CD 3 otherwise keeps it in Redis, for the API
server), so that the tests read Argo CD's verdict and message from the Application itself.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from devserver_operator.localcluster import binaries, kind_flux, podsecurity
from devserver_operator.localcluster.kind import KindCluster

NAMESPACE: Final = "argocd"
ARGOCD_DIR: Final = binaries.HACK_DIR.parent / "kind" / "argocd"
ARGOCD_CM: Final = binaries.HACK_DIR.parents[1] / "gitops" / "argocd" / "argocd-cm.yaml"
# A second repository on the Git server of the Flux scenario: the Flux tests follow the
# commits of theirs, so pushes for Argo CD must not move it.
GIT_REPOSITORY_PATH: Final = "/git/argocd.git"
GIT_URL: Final = (
    f"http://{kind_flux.GIT_SERVICE}.{kind_flux.GIT_NAMESPACE}.svc.cluster.local"
    f"{GIT_REPOSITORY_PATH}"
)
CRDS: Final = ("application-crd.yaml", "appproject-crd.yaml")
ROLLOUT_SECONDS: Final = 300


def image_of(images: tuple[str, ...], name: str) -> str:
    """The image of ``name`` (``argocd``, ``redis``) among the toolchain's images."""
    prefix = f"localhost/devserver/{name}:"
    return next(image for image in images if image.startswith(prefix))


def crd_dir(versions: binaries.PinnedVersions | None = None) -> Path:
    """The module's CRDs (manifests/crds), cached by build.sh next to the binary, under the
    same key as the project's GitOps programs: the pin and a digest of the program's source."""
    pins = versions if versions is not None else binaries.read_pinned_versions()
    key = binaries._source_key(pins.argocd, ARGOCD_DIR)
    return binaries.cache_root() / "bin" / f"argocd-{key}" / "crds"


@dataclass(frozen=True)
class KindArgoCD:
    cluster: KindCluster

    def init_repository(self) -> None:
        """An empty bare repository (branch main) beside the Flux scenario's one."""
        self.cluster.kubectl(
            "exec", "-n", kind_flux.GIT_NAMESPACE, f"deployment/{kind_flux.GIT_SERVICE}", "--",
            "sh", "-c", f"test -d /srv{GIT_REPOSITORY_PATH} || "
            f"git init -q --bare -b main /srv{GIT_REPOSITORY_PATH}",
        )  # fmt: skip

    def git_remote(self) -> contextlib.AbstractContextManager[str]:
        """The repository's URL from the host, while a port-forward lasts."""
        return kind_flux.KindFlux(self.cluster).git_remote(GIT_REPOSITORY_PATH)


def install(cluster: KindCluster, images: tuple[str, ...]) -> KindArgoCD:
    """The Git server (the Flux scenario's), Argo CD's CRDs, configuration and components in
    ``argocd``; returns when every Deployment and the controller are rolled out."""
    kind_flux.install(cluster, images)
    for name in CRDS:
        cluster.kubectl("apply", "--server-side", "-f", str(crd_dir() / name))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/applications.argoproj.io", "crd/appprojects.argoproj.io", timeout=90,
    )  # fmt: skip
    manifest = (
        _ARGOCD.replace("@argocd@", image_of(images, "argocd"))
        .replace("@redis@", image_of(images, "redis"))
        # Argo CD signs nothing the scenario uses with it, but reads it with every setting.
        .replace("@secretkey@", secrets.token_urlsafe(32))
    )
    apply = ("apply", "--server-side", "--field-manager=e2e", "-f", "-")
    cluster.kubectl(*apply, input_text=manifest)
    cluster.kubectl(*apply, input_text=ARGOCD_CM.read_text(encoding="utf-8"))
    for workload in (
        "deployment/argocd-redis",
        "deployment/argocd-repo-server",
        "statefulset/argocd-application-controller",
    ):
        cluster.kubectl(
            "rollout", "status", "-n", NAMESPACE, workload, f"--timeout={ROLLOUT_SECONDS}s",
            timeout=ROLLOUT_SECONDS + 20,
        )  # fmt: skip
    return KindArgoCD(cluster)


_ARGOCD = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels: {{pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {{name: default, namespace: {NAMESPACE}}}
spec:
  sourceRepos: ["*"]
  destinations: [{{server: "*", namespace: "*"}}]
  clusterResourceWhitelist: [{{group: "*", kind: "*"}}]
---
apiVersion: v1
kind: Secret
metadata:
  name: argocd-secret
  namespace: {NAMESPACE}
  labels: {{app.kubernetes.io/name: argocd-secret, app.kubernetes.io/part-of: argocd}}
stringData: {{server.secretkey: "@secretkey@"}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: argocd-application-controller, namespace: {NAMESPACE}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: argocd-repo-server, namespace: {NAMESPACE}}}
automountServiceAccountToken: false
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: argocd-redis, namespace: {NAMESPACE}}}
automountServiceAccountToken: false
---
# Upstream's cluster-wide install gives the controller every verb on every resource
# (manifests/cluster-rbac/application-controller); the same here.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: argocd-e2e-application-controller}}
rules:
  - {{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}}
  - {{nonResourceURLs: ["*"], verbs: ["*"]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: argocd-e2e-application-controller}}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: argocd-e2e-application-controller
subjects:
  - {{kind: ServiceAccount, name: argocd-application-controller, namespace: {NAMESPACE}}}
---
apiVersion: v1
kind: Service
metadata: {{name: argocd-redis, namespace: {NAMESPACE}}}
spec:
  selector: {{app: argocd-redis}}
  ports: [{{name: redis, port: 6379, targetPort: 6379}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: argocd-redis, namespace: {NAMESPACE}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: argocd-redis}}}}
  template:
    metadata: {{labels: {{app: argocd-redis}}}}
    spec:
      serviceAccountName: argocd-redis
{podsecurity.pod(999)}
      containers:
        - name: redis
          image: "@redis@"
          imagePullPolicy: Never
          ports: [{{containerPort: 6379}}]
          readinessProbe:
            tcpSocket: {{port: 6379}}
{podsecurity.CONTAINER}
---
apiVersion: v1
kind: Service
metadata: {{name: argocd-repo-server, namespace: {NAMESPACE}}}
spec:
  selector: {{app: argocd-repo-server}}
  ports: [{{name: server, port: 8081, targetPort: 8081}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: argocd-repo-server, namespace: {NAMESPACE}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: argocd-repo-server}}}}
  template:
    metadata: {{labels: {{app: argocd-repo-server}}}}
    spec:
      serviceAccountName: argocd-repo-server
      automountServiceAccountToken: false
{podsecurity.pod(999)}
      containers:
        - name: repo-server
          image: "@argocd@"
          imagePullPolicy: Never
          command: [argocd-repo-server]
          # --disable-tls refuses the default --client-ca-path (a mounted Secret's path in
          # upstream's manifests), even when that file does not exist: emptied here.
          args: [--disable-tls, --client-ca-path=, --redis, "argocd-redis:6379", --loglevel, info]
          env:
            # No GnuPG in the image, and no signed commits to verify.
            - {{name: ARGOCD_GPG_ENABLED, value: "false"}}
          ports:
            - {{containerPort: 8081}}
            - {{containerPort: 8084, name: metrics}}
          readinessProbe:
            httpGet: {{port: metrics, path: "/healthz?full=true"}}
            periodSeconds: 5
{podsecurity.CONTAINER}
          volumeMounts:
            - {{name: tmp, mountPath: /tmp}}
            - {{name: home, mountPath: /home/argocd}}
            - {{name: config, mountPath: /app/config}}
      volumes:
        - {{name: tmp, emptyDir: {{}}}}
        - {{name: home, emptyDir: {{}}}}
        - {{name: config, emptyDir: {{}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: argocd-application-controller, namespace: {NAMESPACE}}}
spec:
  clusterIP: None
  selector: {{app: argocd-application-controller}}
  ports: [{{name: metrics, port: 8082, targetPort: 8082}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: argocd-application-controller, namespace: {NAMESPACE}}}
spec:
  replicas: 1
  serviceName: argocd-application-controller
  selector: {{matchLabels: {{app: argocd-application-controller}}}}
  template:
    metadata: {{labels: {{app: argocd-application-controller}}}}
    spec:
      serviceAccountName: argocd-application-controller
{podsecurity.pod(999)}
      containers:
        - name: application-controller
          image: "@argocd@"
          imagePullPolicy: Never
          command: [argocd-application-controller]
          args:
            - --repo-server
            - argocd-repo-server:8081
            - --repo-server-plaintext
            - --redis
            - argocd-redis:6379
            - --persist-resource-health
            - --loglevel
            - info
          env:
            - {{name: ARGOCD_CONTROLLER_REPLICAS, value: "1"}}
          ports: [{{containerPort: 8082, name: metrics}}]
          readinessProbe:
            httpGet: {{port: metrics, path: /healthz}}
            periodSeconds: 5
{podsecurity.CONTAINER}
          volumeMounts:
            - {{name: tmp, mountPath: /tmp}}
            - {{name: home, mountPath: /home/argocd}}
      volumes:
        - {{name: tmp, emptyDir: {{}}}}
        - {{name: home, emptyDir: {{}}}}
"""
