"""The latency the admission webhook (no confused deputy) adds to each create.

    .venv/bin/python bench/admission_latency.py [--samples 300]

On the local control plane, creates MCPServers one after the other, first without the
ValidatingWebhookConfiguration and then with it, and reports the create latency of both
(median, p99) and the difference. The created MCPServer references two Secrets and runs an
image that is not allow-listed, so every admitted create costs three LocalSubjectAccessReviews
(the worst common case); an allow-listed image without references costs none. Only the
webhook runs (no kopf), so the numbers are the admission path alone.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import control_plane, install_crds, load, machine, summary
from devserver_operator.admission import WEBHOOK_PATH
from devserver_operator.admission.server import admission_webhook
from devserver_operator.localcluster import read_kubeconfig_credentials
from devserver_operator.localcluster.certs import generate_ca, issue_serving_certificate
from devserver_operator.manifests.operator_rbac import ADMISSION_WEBHOOK_CONFIGURATION
from devserver_operator.manifests.webhook import admission_webhook_configuration
from devserver_operator.settings import OperatorSettings

API = "/apis/devserver.ecosphere.network/v1alpha1"
WEBHOOKS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
SPEC = {
    "image": "ghcr.io/foreign/mcp-server:1.0",
    "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "one", "key": "k"}}}],
    "envFrom": [{"secretRef": {"name": "two"}}],
}


def create_latencies(client: httpx.Client, namespace: str, samples: int) -> list[float]:
    latencies = []
    for _ in range(samples):
        body = {
            "apiVersion": "devserver.ecosphere.network/v1alpha1",
            "kind": "MCPServer",
            "metadata": {"name": f"m-{uuid.uuid4().hex[:12]}", "namespace": namespace},
            "spec": SPEC,
        }
        started = time.perf_counter()
        response = client.post(f"{API}/namespaces/{namespace}/mcpservers", json=body)
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    return latencies


def serve_webhook(settings: OperatorSettings, stop: threading.Event) -> threading.Thread:
    async def run() -> None:
        async with admission_webhook(settings):
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    with control_plane(audit=False) as cluster, tempfile.TemporaryDirectory() as scratch:
        install_crds(cluster.kubeconfig_path)
        directory = Path(scratch)
        ca = generate_ca("bench-admission-ca")
        ca.write(directory / "ca.crt", directory / "ca.key")
        issue_serving_certificate(ca).write(directory / "tls.crt", directory / "tls.key")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        credentials = read_kubeconfig_credentials(cluster.kubeconfig_path)
        client = httpx.Client(
            base_url=credentials.server_url,
            verify=credentials.ssl_context,
            headers=credentials.headers(),
            timeout=30.0,
        )
        namespace = "bench-admission"
        client.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
        warmup = max(10, args.samples // 10)
        create_latencies(client, namespace, warmup)
        without = create_latencies(client, namespace, args.samples)

        settings = OperatorSettings(
            kubeconfig=str(cluster.kubeconfig_path),
            admission_port=port,
            admission_address="127.0.0.1",
            admission_cert_file=str(directory / "tls.crt"),
            admission_key_file=str(directory / "tls.key"),
            admission_ca_file=str(directory / "ca.crt"),
            admission_webhook_configuration=ADMISSION_WEBHOOK_CONFIGURATION,
        )
        stop = threading.Event()
        thread = serve_webhook(settings, stop)
        configuration: dict[str, Any] = admission_webhook_configuration(
            {"url": f"https://127.0.0.1:{port}{WEBHOOK_PATH}"}
        )
        client.post(WEBHOOKS, json=configuration).raise_for_status()
        deadline = time.monotonic() + 60
        while True:  # until the operator published the caBundle and the server uses it
            try:
                create_latencies(client, namespace, 1)
                break
            except httpx.HTTPStatusError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        create_latencies(client, namespace, warmup)
        with_webhook = create_latencies(client, namespace, args.samples)
        stop.set()
        thread.join(30)

    print(f"machine: {machine()}; {load()}")
    print(summary("create without webhook", without))
    print(summary("create with webhook   ", with_webhook))
    added = statistics.median(with_webhook) - statistics.median(without)
    p99 = sorted(with_webhook)[round(0.99 * (len(with_webhook) - 1))]
    p99_without = sorted(without)[round(0.99 * (len(without) - 1))]
    print(
        f"added by admission: median {added * 1000:.1f} ms, p99 {(p99 - p99_without) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
