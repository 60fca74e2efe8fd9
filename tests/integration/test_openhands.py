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
from tests.support.receivers import WebhookReceiver

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
    """Both keys of the ConfigMap, each read by the OpenHands that reads it: ``mcp.json`` by
    the SDK 1.58.2, ``config.toml`` by openhands-ai 1.6.0 (the last release with its
    ``[mcp]`` tables), whose own MCP client lists the tools too."""
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
    legacy = openhands_root.load_legacy_toml(live["data"]["config.toml"])
    assert legacy["shttp"] == [mcp_streamable_server.url]
    assert legacy["sse"] == [mcp_sse_server.url]
    # The legacy client names tools as the servers do: each server's, once per server.
    assert legacy["tools"] == sorted([*REAL_TOOLS, *REAL_TOOLS])
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
        # The openhands CLI reads the same file from ~/.openhands/mcp.json, headers included.
        cli = openhands_root.cli_mcp(text)
        assert cli["path"].endswith("/.openhands/mcp.json"), cli
        assert cli["servers"] == ["github", "open"]
        assert cli["tools"] == sorted([*tools("github"), *tools("open")])
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


def task_spec(
    n8n: N8nServer, agent_server: AgentServer, path: str, **parameters: str
) -> dict[str, Any]:
    """A WorkflowIntegration with the ``openhands-task-webhook`` template for ``agent_server``;
    its session key is the n8n credential ``openhands`` made of the Secret ``openhands``."""
    return n8n_spec(
        n8n.base_url,
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
                        "workingDir": f"{agent_server.inside}/project",
                        "path": path,
                        "sessionApiKeyCredential": "openhands",
                        **parameters,
                    },
                },
            }
        ],
    )


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
    spec = task_spec(
        n8n_server,
        agent_server,
        path,
        llmModel="openai/not-called",
        llmBaseUrl="http://127.0.0.1:9/v1",
        run="false",
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


# What an OpenAI-compatible server answers to a chat completion: one message, no tool call,
# so the agent's turn ends after one model call.
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-stand-in",
        "object": "chat.completion",
        "created": 0,
        "model": "stand-in",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Nothing to do."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()


@pytest.mark.n8n
async def test_the_model_key_comes_from_the_agent_servers_environment(
    operator: RunningOperator,
    kube: KubeClient,
    namespace: str,
    n8n_server: N8nServer,
    api_key: str,  # noqa: F811 - the fixture imported above
    openhands_root: OpenHandsRoot,
) -> None:
    """``run: true``: the agent calls its model with the key of the agent-server's own
    environment (``OPENAI_API_KEY``), which neither the WorkflowIntegration nor n8n holds.
    A local OpenAI-compatible stand-in takes the model's place, and only the model's: it
    records the call and answers one message."""
    model = WebhookReceiver().start()
    model.answer("/v1/chat/completions", 200, COMPLETION, {"Content-Type": "application/json"})
    key = f"sk-environment-{uuid.uuid4().hex[:12]}"
    server = AgentServer(openhands_root, env={"OPENAI_API_KEY": key})
    server.start()
    try:
        path = f"task-{uuid.uuid4().hex[:8]}"
        await put_secret(kube, namespace, "openhands", {"sessionKey": server.session_key})
        spec = task_spec(
            n8n_server,
            server,
            path,
            llmModel="openai/stand-in",
            llmBaseUrl=model.url("/v1"),
            run="true",
        )
        await kube.apply(custom_resource(KIND, "tasks", namespace, spec))
        body = await wait_for_condition(
            kube, KIND, "tasks", namespace, "Ready", "True", seconds=SYNC
        )
        assert key not in json.dumps(body)
        url = workflow_status(body, "tasks")["webhookUrls"][0]
        async with httpx.AsyncClient(timeout=120) as http:
            answer = await http.post(url, json={"task": "say hello"})
        assert answer.status_code == 200, answer.text
        [call, *_] = model.wait_for(1, "/v1/chat/completions", timeout=120)
        assert call.headers["authorization"] == f"Bearer {key}"
        assert call.json()["model"] == "stand-in"
        assert "say hello" in json.dumps(call.json()["messages"])
    finally:
        server.stop()
        model.stop()
