"""OpenHands in the kind cluster lists the tools of the MCPServers the operator configured for
it: the worked example of docs/workflowintegration.md, step by step.

A WorkflowIntegration selects three example servers (streamable HTTP, SSE, a stdio server
behind the bridge) and a fourth that needs a header from a Secret (a URL-registered
MCPServer in front of the first); the operator writes the ConfigMap ``openhands-mcp`` and,
for the header, the Secret of that name. The Job of ``hack/openhands/list-tools-job.yaml``
(the image ``localhost/devserver/openhands-sdk``: OpenHands' SDK on Debian trixie) mounts
both in a directory of its own, loads the Secret's ``mcp.json`` with the SDK's own loader and
lists the tools with the SDK's own MCP client, over the cluster's DNS names. What it prints is
exactly the tools the operator found on each server.

Part of ``test_kind.py``, which imports it (one module: one xdist worker owns the cluster).
Alone: ``pytest tests/e2e/test_kind.py -k openhands``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devserver_operator.localcluster.kind import KindCluster
from tests.e2e.helpers import apply, get, get_or_none, ready_object, wait_until

DEMO = "devserver-demo"
JOB = Path(__file__).resolve().parents[2] / "hack" / "openhands" / "list-tools-job.yaml"
JOB_NAME = "openhands-list-tools"
CONFIG = "openhands-mcp"
SERVERS = ("everything", "everything-sse", "memory", "everything-token")
JOB_SECONDS = 300


def integration(everything_url: str) -> str:
    return f"""\
apiVersion: v1
kind: Secret
metadata: {{name: everything-token, namespace: {DEMO}}}
stringData: {{authorization: Bearer e2e-openhands-token}}
---
apiVersion: devserver.ecosphere.network/v1alpha1
kind: MCPServer
metadata: {{name: everything-token, namespace: {DEMO}}}
spec:
  url: {everything_url}
  transport: streamable-http
  headers:
    - name: Authorization
      valueFrom: {{secretKeyRef: {{name: everything-token, key: authorization}}}}
---
apiVersion: devserver.ecosphere.network/v1alpha1
kind: WorkflowIntegration
metadata: {{name: openhands-e2e, namespace: {DEMO}}}
spec:
  mcpServers:
    names: {json.dumps(list(SERVERS))}
  openHands:
    configMapName: {CONFIG}
"""


@pytest.fixture(scope="module")
def openhands_config(e2e_cluster: KindCluster, verified_examples: list[str]) -> dict[str, Any]:
    """The four MCPServers Ready and listed in the ConfigMap and the Secret; their bodies."""
    everything = get(e2e_cluster, "mcpserver", "everything", "-n", DEMO)
    apply(e2e_cluster, integration(everything["status"]["url"]))

    def configured() -> dict[str, Any] | None:
        if ready_object(e2e_cluster, "workflowintegration", "openhands-e2e", DEMO) is None:
            return None
        secret = get_or_none(e2e_cluster, "secret", CONFIG, "-n", DEMO)
        config_map = get_or_none(e2e_cluster, "configmap", CONFIG, "-n", DEMO)
        if secret is None or config_map is None:
            return None
        listed = json.loads(config_map["data"]["mcp.json"])["mcpServers"]
        return config_map if sorted(listed) == sorted(SERVERS) else None

    wait_until(configured, seconds=300, what=f"{SERVERS} in the OpenHands ConfigMap and Secret")
    return {name: get(e2e_cluster, "mcpserver", name, "-n", DEMO) for name in SERVERS}


def test_openhands_in_the_cluster_lists_the_tools_of_the_configured_servers(
    e2e_cluster: KindCluster, openhands_config: dict[str, Any]
) -> None:
    e2e_cluster.kubectl("delete", "job", JOB_NAME, "-n", DEMO, "--ignore-not-found", "--wait")
    e2e_cluster.kubectl("apply", "-f", str(JOB))

    def finished() -> dict[str, Any] | None:
        status = get(e2e_cluster, "job", JOB_NAME, "-n", DEMO).get("status", {})
        return status if status.get("succeeded") or status.get("failed") else None

    try:
        status = wait_until(finished, seconds=JOB_SECONDS, what=f"the Job {JOB_NAME} finished")
    finally:
        logs = e2e_cluster.kubectl("logs", f"job/{JOB_NAME}", "-n", DEMO, check=False)
        print(logs)
    assert status.get("succeeded") == 1, (status, logs[-3000:])
    result = json.loads(logs.strip().splitlines()[-1])
    # The Secret's file: the only one with the header the fourth server needs.
    assert result["config"] == "/etc/openhands-mcp/secret/mcp.json"
    assert result["servers"] == sorted(SERVERS)
    # OpenHands names a tool <server>_<tool>. It lists every tool the operator found on each
    # server; the everything server offers a few more to a client that declares sampling,
    # elicitation and roots, as OpenHands' client does and the operator's verifier does not.
    listed: dict[str, set[str]] = {name: set() for name in SERVERS}
    for tool in result["tools"]:
        owners = [name for name in SERVERS if tool.startswith(f"{name}_")]
        assert owners, f"{tool}: of no configured server"
        server = max(owners, key=len)  # everything-sse_echo is not everything's
        listed[server].add(tool.removeprefix(f"{server}_"))
    for name, body in openhands_config.items():
        found = {tool["name"] for tool in body["status"]["tools"]}
        assert found, (name, body["status"])
        assert found <= listed[name], (name, sorted(found - listed[name]))
    assert listed["everything-token"] == listed["everything"]  # the same server behind it
