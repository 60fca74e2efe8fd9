"""`devserver-operator dev` on a kind cluster: the whole stack with real pods.

The chart runs the operator image built from this checkout; n8n (namespace automation) and
Prometheus (namespace monitoring) run where the examples expect them; examples/ is applied
with n8n's real API key in place of the placeholder. The table is printed when every object is
Ready except those that need the internet (remote MCP servers), or after SETTLE_SECONDS. The
cluster is deleted on exit (Ctrl-C, or after one table with --once).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

from devserver_operator.api import ALL_KINDS, API_VERSION
from devserver_operator.devmode import apply_documents, say, show_status
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.localcluster import kind_n8n, kind_stack
from devserver_operator.localcluster.binaries import cache_root
from devserver_operator.localcluster.kind import KindCluster, KindToolchain
from devserver_operator.render import load_documents

CLUSTER_PREFIX: Final = "devserver-dev"
SETTLE_SECONDS: Final = 300.0
POLL_SECONDS: Final = 5.0
N8N_API_KEY_SECRET: Final = "n8n-api"  # noqa: S105 - the name of a Secret, no secret


def run_dev_on_kind(examples: Path, *, once: bool) -> int:
    say("kind toolchain and images (hack/kind/build.sh; cached after the first run)")
    toolchain = KindToolchain.prepare()
    work_dir = cache_root() / "kind"
    say("creating a kind cluster (one node, real kubelet)")
    with KindCluster(
        toolchain, CLUSTER_PREFIX, work_dir, mounts=kind_stack.paths_in_node()
    ) as cluster:
        say(f"kind cluster {cluster.name}; KUBECONFIG={cluster.kubeconfig_path}")
        cluster.load_images(toolchain.images)
        say("installing the chart with the operator image built from this checkout")
        kind_stack.install_chart(cluster, kind_stack.operator_image(toolchain.images))
        say("starting n8n (automation/n8n) and Prometheus (monitoring/prometheus-operated)")
        n8n = kind_n8n.deploy(cluster, kind_n8n.node_image(toolchain.images))
        kind_stack.deploy_prometheus(cluster, kind_stack.prometheus_image(toolchain.images))
        documents = with_n8n_api_key(
            [doc for _, doc in load_documents([examples])], n8n.access.api_key
        )
        try:
            asyncio.run(_apply_and_watch(cluster, documents, once=once))
        except KeyboardInterrupt:
            print()
        say(f"deleting the kind cluster {cluster.name}")
    return 0


def with_n8n_api_key(documents: list[dict[str, Any]], api_key: str) -> list[dict[str, Any]]:
    """The examples, with the placeholder n8n API key replaced by the key of the running n8n."""
    for document in documents:
        metadata = document.get("metadata") or {}
        if document.get("kind") == "Secret" and metadata.get("name") == N8N_API_KEY_SECRET:
            document.setdefault("stringData", {})["apiKey"] = api_key
    return documents


async def _apply_and_watch(
    cluster: KindCluster, documents: list[dict[str, Any]], *, once: bool
) -> None:
    credentials = Credentials.from_kubeconfig(str(cluster.kubeconfig_path))
    async with KubeClient(credentials, field_manager="devserver-dev") as kube:
        await apply_documents(kube, documents)
        needs_internet = internet_bound(documents)
        say(f"waiting up to {SETTLE_SECONDS:.0f} s for the examples to become Ready")
        for _ in range(int(SETTLE_SECONDS // POLL_SECONDS)):
            if not await _not_ready(kube) - needs_internet:
                break
            await asyncio.sleep(POLL_SECONDS)
        for name in sorted(needs_internet):
            say(f"{name} is a remote MCP server on the internet, which this machine cannot reach")
        await show_status(
            kube,
            once=once,
            running=f"The cluster is deleted then. KUBECONFIG={cluster.kubeconfig_path}",
        )


def internet_bound(documents: list[dict[str, Any]]) -> set[str]:
    """MCPServers of the examples that register a server outside the cluster by URL."""
    return {
        f"MCPServer/{doc['metadata']['name']}"
        for doc in documents
        if doc.get("kind") == "MCPServer"
        and str((doc.get("spec") or {}).get("url", "")).startswith("https://")
    }


async def _not_ready(kube: KubeClient) -> set[str]:
    waiting = set()
    for info in ALL_KINDS:
        for item in await kube.list(API_VERSION, info.kind, None):
            conditions = (item.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                waiting.add(f"{info.kind}/{item['metadata']['name']}")
    return waiting
