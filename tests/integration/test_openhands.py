"""OpenHands for real: what the operator writes for OpenHands is read by OpenHands' own code,
and the ``openhands-task-webhook`` template drives a real OpenHands agent-server.

OpenHands (openhands-sdk and openhands-agent-server, locked in hack/openhands/) runs from its
own Python 3.13 root (``tests.support.openhands``); the operator runs against the local
control plane and writes the ConfigMap and Secret; their ``mcp.json`` is handed to the SDK's
loader (``coerce_mcp_config``) and MCP client (``create_mcp_tools``), which list the tools of
the live MCP servers on loopback. No LLM takes part: tool discovery and creating a
conversation need none.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.kube.client import KubeClient
from tests.integration.test_workflowintegration import (  # noqa: F401 - api_key: a fixture
    KIND,
    SYNC,
    api_key,
    config_map,
    n8n_spec,
    put_secret,
    workflow_status,
)
from tests.support.mcp_servers import REAL_TOOLS, McpServerProcess
from tests.support.n8n_server import N8nServer
from tests.support.openhands import AgentServer, OpenHandsRoot
from tests.support.operator_harness import (
    RunningOperator,
    custom_resource,
    wait_for,
    wait_for_condition,
)

pytestmark = [pytest.mark.integration]


def tools(prefix: str) -> list[str]:
    """OpenHands names an MCP tool ``<server>_<tool>``."""
    return sorted(f"{prefix}_{tool}" for tool in REAL_TOOLS)


async def mcp_server(
    kube: KubeClient,
    namespace: str,
    name: str,
    server: McpServerProcess,
    headers: list[dict[str, Any]] | None = None,
) -> None:
    spec: dict[str, Any] = {
        "url": server.url,
        "transport": server.transport,
        "verification": {"interval": "5s", "timeout": "10s"},
        **({"headers": headers} if headers else {}),
    }
    await kube.apply(custom_resource("MCPServer", name, namespace, spec))
    await wait_for_condition(kube, "MCPServer", name, namespace, "Ready", "True", seconds=60)


async def secret_text(kube: KubeClient, namespace: str, name: str, key: str) -> str | None:
    secret = await kube.get("v1", "Secret", name, namespace)
    if secret is None or key not in (secret.get("data") or {}):
        return None
    return base64.b64decode(secret["data"][key]).decode()


async def test_openhands_lists_the_tools_of_the_servers_in_the_config_map(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    mcp_streamable_server: McpServerProcess,
    mcp_sse_server: McpServerProcess,
    openhands_root: OpenHandsRoot,
) -> None:
    await mcp_server(kube, namespace, "github", mcp_streamable_server)
    await mcp_server(kube, namespace, "legacy", mcp_sse_server)
    spec = {
        "mcpServers": {"names": ["github", "legacy"]},
        "openHands": {"configMapName": "openhands-mcp"},
    }
    await kube.apply(custom_resource(KIND, "agent", namespace, spec))
    await wait_for_condition(kube, KIND, "agent", namespace, "Ready", "True", seconds=SYNC)
    live = await config_map(kube, namespace, "openhands-mcp")
    assert live is not None
    listed = openhands_root.list_mcp_tools(live["data"]["mcp.json"])
    assert listed == sorted([*tools("github"), *tools("legacy")])
    # Nothing needs a header here: no Secret is written.
    assert await kube.get("v1", "Secret", "openhands-mcp", namespace) is None


async def test_openhands_authenticates_with_the_secret_and_follows_its_rotation(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    mcp_streamable_server: McpServerProcess,
    openhands_root: OpenHandsRoot,
    tmp_path: Path,
) -> None:
    """An MCPServer that needs an Authorization header from a Secret: the ConfigMap stays
    secret-free (OpenHands cannot log in with it), the Secret of the same name carries the
    header (OpenHands lists the tools with it), and a rotated token reaches it."""
    token = tmp_path / "token"
    token.write_text("Bearer first-token-111")
    guarded = McpServerProcess("streamable-http", required_header=("Authorization", token))
    guarded.start()
    try:
        await put_secret(kube, namespace, "github-token", {"authorization": token.read_text()})
        header = {
            "name": "Authorization",
            "valueFrom": {"secretKeyRef": {"name": "github-token", "key": "authorization"}},
        }
        await mcp_server(kube, namespace, "github", guarded, headers=[header])
        await mcp_server(kube, namespace, "open", mcp_streamable_server)
        spec = {
            "mcpServers": {"names": ["github", "open"]},
            "openHands": {"configMapName": "openhands-mcp"},
        }
        await kube.apply(custom_resource(KIND, "agent", namespace, spec))
        await wait_for_condition(kube, KIND, "agent", namespace, "Ready", "True", seconds=SYNC)

        live = await config_map(kube, namespace, "openhands-mcp")
        assert live is not None and "first-token" not in json.dumps(live)
        # OpenHands skips a server it cannot log in to: only the open one's tools.
        assert openhands_root.list_mcp_tools(live["data"]["mcp.json"]) == tools("open")

        async def full_config() -> str | None:
            return await secret_text(kube, namespace, "openhands-mcp", "mcp.json")

        text = await wait_for(full_config, seconds=SYNC, what="the OpenHands Secret")
        secret = await kube.get("v1", "Secret", "openhands-mcp", namespace)
        assert secret is not None and secret["metadata"]["ownerReferences"][0]["name"] == "agent"
        assert openhands_root.list_mcp_tools(text) == sorted([*tools("github"), *tools("open")])
        body = await kube.get(API_VERSION, KIND, "agent", namespace)
        assert "first-token" not in json.dumps(body)

        # Rotation: the server takes the new token only; the Secret follows the source.
        token.write_text("Bearer second-token-222")
        await put_secret(kube, namespace, "github-token", {"authorization": token.read_text()})

        async def rotated() -> str | None:
            text = await full_config()
            return text if text and "second-token-222" in text else None

        text = await wait_for(rotated, seconds=SYNC, what="the rotated token in the Secret")
        assert openhands_root.list_mcp_tools(text) == sorted([*tools("github"), *tools("open")])

        # Without the header-bearing server selected, the Secret goes.
        await kube.apply(
            custom_resource(KIND, "agent", namespace, {**spec, "mcpServers": {"names": ["open"]}})
        )

        async def gone() -> bool:
            return await kube.get("v1", "Secret", "openhands-mcp", namespace) is None

        await wait_for(gone, seconds=SYNC, what="the OpenHands Secret deleted")
    finally:
        guarded.close()


async def test_a_foreign_secret_of_that_name_is_never_taken_over(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    token = tmp_path / "token"
    token.write_text("Bearer t")
    guarded = McpServerProcess("streamable-http", required_header=("Authorization", token))
    guarded.start()
    try:
        await put_secret(kube, namespace, "github-token", {"authorization": "Bearer t"})
        await put_secret(kube, namespace, "openhands-mcp", {"mine": "keep me"})
        header = {
            "name": "Authorization",
            "valueFrom": {"secretKeyRef": {"name": "github-token", "key": "authorization"}},
        }
        await mcp_server(kube, namespace, "github", guarded, headers=[header])
        spec = {
            "mcpServers": {"names": ["github"]},
            "openHands": {"configMapName": "openhands-mcp"},
        }
        await kube.apply(custom_resource(KIND, "agent", namespace, spec))
        body = await wait_for_condition(
            kube, KIND, "agent", namespace, "Stalled", "True", seconds=SYNC
        )
        stalled = next(c for c in body["status"]["conditions"] if c["type"] == "Stalled")
        assert stalled["reason"] == "SecretConflict", stalled
        assert await secret_text(kube, namespace, "openhands-mcp", "mine") == "keep me"
        assert await secret_text(kube, namespace, "openhands-mcp", "mcp.json") is None
        await kube.delete(API_VERSION, KIND, "agent", namespace)
        assert await secret_text(kube, namespace, "openhands-mcp", "mine") == "keep me"
    finally:
        guarded.close()


@pytest.mark.n8n
async def test_the_task_template_starts_a_conversation_on_the_agent_server(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    n8n_server: N8nServer,
    api_key: str,  # noqa: F811 - the fixture imported above
    agent_server: AgentServer,
) -> None:
    """n8n's workflow from the template posts to the agent-server's conversation API; the
    session key travels as an n8n credential made of a Secret. ``run: false``: the agent does
    not start, so no model is called (none is reachable: the LLM settings are only stored)."""
    path = f"task-{uuid.uuid4().hex[:8]}"
    await put_secret(kube, namespace, "openhands", {"sessionKey": agent_server.session_key})
    spec = n8n_spec(
        n8n_server.base_url,
        credentials=[
            {
                "name": "openhands",
                "type": "httpHeaderAuth",
                "secretRef": {"name": "openhands"},
                "fields": [
                    {"field": "name", "value": "X-Session-API-Key"},
                    {"field": "value", "secretKey": "sessionKey"},
                ],
            }
        ],
        workflows=[
            {
                "name": "tasks",
                "template": {
                    "name": "openhands-task-webhook",
                    "parameters": {
                        "openhandsUrl": agent_server.url + "/",
                        "llmModel": "openai/not-called",
                        "llmBaseUrl": "http://127.0.0.1:9/v1",
                        "workingDir": f"{agent_server.inside}/project",
                        "run": "false",
                        "path": path,
                        "sessionApiKeyCredential": "openhands",
                    },
                },
            }
        ],
    )
    await kube.apply(custom_resource(KIND, "tasks", namespace, spec))
    body = await wait_for_condition(kube, KIND, "tasks", namespace, "Ready", "True", seconds=SYNC)
    url = workflow_status(body, "tasks")["webhookUrls"][0]
    async with httpx.AsyncClient(timeout=120) as http:
        answer = await http.post(
            url, json={"task": "fix the flaky test", "repository": "o/r", "branch": "main"}
        )
    assert answer.status_code == 200, answer.text
    created = answer.json()
    assert created["execution_status"] == "idle", created
    listed = agent_server.conversations()
    assert [c["id"] for c in listed] == [created["id"]]
    assert listed[0]["workspace"]["working_dir"] == f"{agent_server.inside}/project"
    assert agent_server.user_messages(created["id"]) == [
        "fix the flaky test\n\nRepository: o/r (branch main)"
    ]
