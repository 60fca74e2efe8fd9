"""n8n inside a kind cluster, from the install ``hack/n8n/install.sh`` made on the host.

The install (1.7 GB of node_modules) is shared with the node as a read-only folder instead of
being copied into an image, and runs on the host's Node.js version (its native modules are
built for it), in the namespace and under the name the WorkflowIntegration example uses:
``http://n8n.automation.svc.cluster.local:5678``. The owner account and the operator's API key
are created through a port-forward, the way a person would in n8n's UI.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from devserver_operator.localcluster import binaries
from devserver_operator.localcluster.kind import KindCluster
from devserver_operator.localcluster.n8n_account import (
    N8nAccess,
    create_owner_and_api_key,
    wait_for_routes,
)

NAMESPACE: Final = "automation"
INSTALL_IN_NODE: Final = "/opt/devserver/n8n"
URL: Final = f"http://n8n.{NAMESPACE}.svc.cluster.local:5678"
INSTALL_SCRIPT: Final = binaries.HACK_DIR.parent / "n8n" / "install.sh"
START_SECONDS: Final = 300.0


def install_dir() -> Path:
    """The host's n8n install (installed first when missing): the folder with node_modules/."""
    found = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True, timeout=2400
    )
    n8n_bin = Path(found.stdout.strip().splitlines()[-1])
    return n8n_bin.parents[2]


def node_image(images: tuple[str, ...]) -> str:
    """The Node.js image hack/kind/images.sh built for the host's version (the last one)."""
    return [image for image in images if image.startswith("localhost/devserver/node:")][-1]


def manifest(image: str, encryption_key: str) -> str:
    return f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
---
apiVersion: v1
kind: Service
metadata:
  name: n8n
  namespace: {NAMESPACE}
spec:
  selector: {{app: n8n}}
  ports: [{{name: http, port: 5678, targetPort: 5678}}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: n8n
  namespace: {NAMESPACE}
spec:
  replicas: 1
  strategy: {{type: Recreate}}
  selector:
    matchLabels: {{app: n8n}}
  template:
    metadata:
      labels: {{app: n8n}}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: n8n
          image: {image}
          imagePullPolicy: Never
          command: [node, {INSTALL_IN_NODE}/node_modules/n8n/bin/n8n, start]
          env:
            - {{name: HOME, value: /data}}
            - {{name: TMPDIR, value: /data/tmp}}
            - {{name: N8N_USER_FOLDER, value: /data}}
            - {{name: N8N_ENCRYPTION_KEY, value: "{encryption_key}"}}
            - {{name: N8N_PORT, value: "5678"}}
            - {{name: N8N_PROTOCOL, value: http}}
            - {{name: WEBHOOK_URL, value: "{URL}/"}}
            - {{name: N8N_SECURE_COOKIE, value: "false"}}
            - {{name: DB_TYPE, value: sqlite}}
            - {{name: N8N_DIAGNOSTICS_ENABLED, value: "false"}}
            - {{name: N8N_VERSION_NOTIFICATIONS_ENABLED, value: "false"}}
            - {{name: N8N_PERSONALIZATION_ENABLED, value: "false"}}
            - {{name: N8N_TEMPLATES_ENABLED, value: "false"}}
            - {{name: N8N_RUNNERS_ENABLED, value: "true"}}
            - {{name: N8N_RUNNERS_BROKER_LISTEN_ADDRESS, value: 127.0.0.1}}
            - {{name: N8N_LOG_OUTPUT, value: console}}
            - {{name: GENERIC_TIMEZONE, value: UTC}}
            - {{name: NODE_ENV, value: production}}
          ports: [{{containerPort: 5678}}]
          readinessProbe:
            httpGet: {{path: /healthz/readiness, port: 5678}}
            periodSeconds: 2
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {{drop: [ALL]}}
          volumeMounts:
            - {{name: install, mountPath: {INSTALL_IN_NODE}, readOnly: true}}
            - {{name: data, mountPath: /data}}
      volumes:
        - name: install
          hostPath: {{path: {INSTALL_IN_NODE}, type: Directory}}
        - name: data
          emptyDir: {{}}
"""


@dataclass(frozen=True)
class KindN8n:
    url: str
    """The in-cluster URL, as the WorkflowIntegration example names it."""
    access: N8nAccess


def deploy(cluster: KindCluster, image: str) -> KindN8n:
    """Run n8n in ``cluster`` (which mounts ``install_dir()`` at INSTALL_IN_NODE) and set it up."""
    cluster.kubectl("apply", "-f", "-", input_text=manifest(image, secrets.token_hex(24)))
    cluster.kubectl(
        "rollout", "status", "-n", NAMESPACE, "deployment/n8n", f"--timeout={START_SECONDS:.0f}s",
        timeout=START_SECONDS + 30,
    )  # fmt: skip
    with cluster.port_forward(NAMESPACE, "service/n8n", 5678) as port:
        base_url = f"http://127.0.0.1:{port}"
        wait_for_routes(base_url, START_SECONDS)
        access = create_owner_and_api_key(base_url)
    return KindN8n(url=URL, access=access)
