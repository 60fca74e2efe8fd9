"""The dev-server stack on a kind cluster: the chart with the locally built operator image, and
the services the examples point at (n8n, Prometheus), for the e2e suite and
``devserver-operator dev``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Final

from devserver_operator.localcluster import binaries
from devserver_operator.localcluster.kind import KindCluster

REPO_ROOT: Final = binaries.HACK_DIR.parents[1]
CHART: Final = REPO_ROOT / "charts" / "devserver-operator"
OPERATOR_NAMESPACE: Final = "devserver-system"
RELEASE: Final = "devserver-operator"
PROMETHEUS_NAMESPACE: Final = "monitoring"
# The PrometheusRule CRD of Prometheus Operator, vendored for the tests (schema only).
PROMETHEUS_RULE_CRD: Final = REPO_ROOT / "tests" / "support" / "crds" / "prometheusrule-crd.yaml"


def operator_image(images: tuple[str, ...]) -> str:
    return next(image for image in images if "/devserver-operator:" in image)


def install_chart(
    cluster: KindCluster,
    image: str,
    *,
    resync_seconds: int = 15,
    allowed_images: tuple[str, ...] = ("localhost/devserver/",),
) -> str:
    """``helm install`` of the chart into a namespace that enforces Pod Security "restricted".

    ``allowed_images``: what team members without pod rights may run (the locally built MCP
    server images by default)."""
    helm = binaries.ensure_binaries((binaries.HELM,))[binaries.HELM]
    repository, _, tag = image.rpartition(":")
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE)
    cluster.kubectl(
        "label", "namespace", OPERATOR_NAMESPACE, "pod-security.kubernetes.io/enforce=restricted"
    )
    subprocess.run(
        [
            str(helm), "install", RELEASE, str(CHART),
            "--namespace", OPERATOR_NAMESPACE,
            "--set", f"image.repository={repository}",
            "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=Never",
            "--set", "logFormat=text",
            "--set", f"resyncInterval={resync_seconds}",
            "--set-json", f"allowedImages={json.dumps(list(allowed_images))}",
            "--wait", "--timeout", "5m",
            "--kubeconfig", str(cluster.kubeconfig_path),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )  # fmt: skip
    wait_for_admission(cluster)
    return RELEASE


ADMISSION_PROBE: Final = f"""\
apiVersion: devserver.ecosphere.network/v1alpha1
kind: MCPServer
metadata: {{name: admission-probe, namespace: {OPERATOR_NAMESPACE}}}
spec: {{url: "http://admission-probe.invalid/mcp"}}
"""


def wait_for_admission(cluster: KindCluster, seconds: float = 180.0) -> None:
    """Until the webhook answers: a ready pod has not always published its certificate's
    caBundle yet, and until then every spec write of the three kinds is refused (fail closed)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            cluster.kubectl(
                "apply", "--dry-run=server", "-f", "-", input_text=ADMISSION_PROBE, timeout=30
            )
            return
        except subprocess.CalledProcessError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the admission webhook did not answer: {error.stderr}"
                ) from None
        time.sleep(2)


def prometheus_image(images: tuple[str, ...]) -> str:
    return next(image for image in images if "prometheus" in image)


def deploy_prometheus(cluster: KindCluster, image: str) -> str:
    """Prometheus scraping the operator, at the URL the AlertRule example names; and the
    PrometheusRule CRD, so the operator renders the example's rule as it would next to
    Prometheus Operator. Returns the in-cluster URL."""
    cluster.kubectl("apply", "--server-side", "-f", str(PROMETHEUS_RULE_CRD))
    config = (
        "global: {scrape_interval: 15s, evaluation_interval: 15s}\n"
        "scrape_configs:\n"
        "  - job_name: devserver-operator\n"
        "    static_configs:\n"
        f"      - targets: ['{RELEASE}-metrics.{OPERATOR_NAMESPACE}.svc:8080']\n"
    )
    indented = "".join(f"    {line}\n" for line in config.splitlines())
    cluster.kubectl("apply", "-f", "-", input_text=_PROMETHEUS.format(image=image, config=indented))
    cluster.kubectl(
        "rollout", "status", "-n", PROMETHEUS_NAMESPACE, "deployment/prometheus",
        "--timeout=180s", timeout=200,
    )  # fmt: skip
    return f"http://prometheus-operated.{PROMETHEUS_NAMESPACE}.svc:9090"


_PROMETHEUS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
  labels:
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: prometheus
  namespace: monitoring
data:
  prometheus.yml: |
{config}---
apiVersion: v1
kind: Service
metadata:
  name: prometheus-operated
  namespace: monitoring
spec:
  selector: {{app: prometheus}}
  ports: [{{name: web, port: 9090, targetPort: 9090}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: prometheus
  namespace: monitoring
spec:
  replicas: 1
  selector:
    matchLabels: {{app: prometheus}}
  template:
    metadata:
      labels: {{app: prometheus}}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: prometheus
          image: {image}
          imagePullPolicy: IfNotPresent
          args:
            - --config.file=/etc/prometheus/prometheus.yml
            - --storage.tsdb.path=/prometheus
            - --web.listen-address=:9090
          ports: [{{containerPort: 9090}}]
          readinessProbe:
            httpGet: {{path: /-/ready, port: 9090}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          volumeMounts:
            - {{name: config, mountPath: /etc/prometheus}}
            - {{name: data, mountPath: /prometheus}}
      volumes:
        - name: config
          configMap: {{name: prometheus}}
        - name: data
          emptyDir: {{}}
"""


def paths_in_node() -> dict[Path, str]:
    """Host folders the stack's cluster shares with its node: the n8n install."""
    from devserver_operator.localcluster import kind_n8n

    return {kind_n8n.install_dir(): kind_n8n.INSTALL_IN_NODE}
