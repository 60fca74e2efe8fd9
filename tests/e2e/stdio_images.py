"""stdio MCP server images on kind, run as they are: no command, no bridge, any entrypoint.

- a Go server from the official SDK in ``scratch`` (no shell) and a Python server whose
  ENTRYPOINT is the server, each as an MCPServer with only ``image``, ``transport: stdio``
  and optional ``args``/``env``: Ready, Verified, tools in status, and a tool call through
  the Service returns the right result; the bridged npx form still works next to them;
- a server process that exits: the client gets a clean JSON-RPC error at once, the kubelet
  restarts the container, the proxy attaches again, and the client is served again;
- who may do what (SubjectAccessReviews through ``kubectl auth can-i --as``): the server's
  identity cannot attach to, exec into or read any pod; the proxy may attach to its own server
  pod and to no other.

The tests run as part of ``test_kind.py``, which imports them: one module, so that one
pytest-xdist worker (``--dist loadfile``) owns the one kind cluster. Their namespace enforces
Pod Security "restricted". Alone: ``pytest tests/e2e/test_kind.py -k stdio``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from devserver_operator.localcluster.kind import KindCluster
from tests.e2e.helpers import apply, condition, get, get_or_none, wait_until

NAMESPACE = "stdio-images"
GO_IMAGE = "localhost/devserver/go-mcp-stdio:1.0.0"
PYTHON_IMAGE = "localhost/devserver/python-mcp-stdio:1.0.0"
READY_SECONDS = 300.0
SERVERS = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
---
apiVersion: v1
kind: Secret
metadata: {{name: python-secret, namespace: {NAMESPACE}}}
stringData: {{token: s3cret-value}}
---
apiVersion: devserver.ecosphere.network/v1alpha1
kind: MCPServer
metadata: {{name: go-stdio, namespace: {NAMESPACE}}}
spec:
  image: {GO_IMAGE}
  transport: stdio
---
apiVersion: devserver.ecosphere.network/v1alpha1
kind: MCPServer
metadata: {{name: python-stdio, namespace: {NAMESPACE}}}
spec:
  image: {PYTHON_IMAGE}
  transport: stdio
  args: ["from", "args:"]
  env:
    - name: SERVER_TOKEN
      valueFrom: {{secretKeyRef: {{name: python-secret, key: token}}}}
---
apiVersion: devserver.ecosphere.network/v1alpha1
kind: MCPServer
metadata: {{name: npx-memory, namespace: {NAMESPACE}}}
spec:
  transport: stdio
  command: ["npx", "-y", "@modelcontextprotocol/server-memory@2026.8.31"]
"""
NAMES = ("go-stdio", "python-stdio", "npx-memory")


@pytest.fixture(scope="module")
def stdio_servers(e2e_cluster: KindCluster, installed_chart: str) -> dict[str, Any]:
    apply(e2e_cluster, SERVERS)

    def verified() -> dict[str, Any] | None:
        items = {
            item["metadata"]["name"]: item
            for item in get(e2e_cluster, "mcpservers", "-n", NAMESPACE)["items"]
        }
        done = {
            name: body
            for name, body in items.items()
            if condition(body, "Ready").get("status") == "True"
            and condition(body, "Verified").get("status") == "True"
        }
        return done if set(done) >= set(NAMES) else None

    try:
        return wait_until(verified, seconds=READY_SECONDS, what=f"{NAMES} Ready and Verified")
    except AssertionError:
        print(
            e2e_cluster.kubectl(
                "get", "mcpservers,pods,statefulsets", "-n", NAMESPACE, "-o", "wide", check=False
            )
        )
        print(
            e2e_cluster.kubectl(
                "logs", "-n", NAMESPACE, "deployment/go-stdio", "--tail=50", check=False
            )
        )
        raise


class McpClient:
    """A plain streamable-HTTP MCP client (JSON answers), enough for a tool call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=httpx.Timeout(30.0))
        self.session = ""
        self.ids = iter(range(1, 1_000_000))

    def post(self, method: str, params: Any = None) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self.ids), "method": method}
        if params is not None:
            message["params"] = params
        headers = {"Accept": "application/json, text/event-stream"}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
        answer = self.http.post(self.url, json=message, headers=headers)
        if method == "initialize" and answer.status_code == 200:
            self.session = answer.headers["Mcp-Session-Id"]
        return _decode(answer)

    def initialize(self) -> dict[str, Any]:
        result = self.post(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "e2e", "version": "1"},
            },
        )
        self.http.post(
            self.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={
                "Mcp-Session-Id": self.session,
                "Accept": "application/json, text/event-stream",
            },
        )
        return result

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        return self.post("tools/call", {"name": tool, "arguments": arguments})


def _decode(answer: httpx.Response) -> dict[str, Any]:
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        # supergateway answers with one SSE event
        data = [line[5:].strip() for line in answer.text.splitlines() if line.startswith("data:")]
        return dict(json.loads(data[-1]))
    return dict(answer.json())


def text_of(answer: dict[str, Any]) -> str:
    return str(answer["result"]["content"][0]["text"])


@pytest.mark.parametrize(
    ("name", "server_name", "echoed"),
    [
        ("go-stdio", "devserver-go-stdio", "from go: hi"),  # the image's own CMD
        ("python-stdio", "devserver-python-stdio", "from args: hi"),  # args replace the CMD
    ],
)
def test_stdio_image_without_command_is_verified_and_answers_tool_calls(
    e2e_cluster: KindCluster,
    stdio_servers: dict[str, Any],
    name: str,
    server_name: str,
    echoed: str,
) -> None:
    status = stdio_servers[name]["status"]
    assert status["serverInfo"]["name"] == server_name
    assert status["transport"] == "streamable-http"
    assert status["url"] == f"http://{name}.{NAMESPACE}.svc.cluster.local:8080/mcp"
    assert {"add", "echo", "exit"} <= {tool["name"] for tool in status["tools"]}
    statefulset = get(e2e_cluster, "statefulset", f"{name}-server", "-n", NAMESPACE)
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    assert "command" not in container  # the image's entrypoint runs
    with e2e_cluster.port_forward(NAMESPACE, f"service/{name}", 8080) as port:
        mcp = McpClient(f"http://127.0.0.1:{port}/mcp")
        assert mcp.initialize()["result"]["serverInfo"]["name"] == server_name
        assert text_of(mcp.call("add", a=19, b=23)) == "42"
        assert text_of(mcp.call("echo", text="hi")) == echoed
        if name == "python-stdio":
            # The Secret reaches the server container (and only it: see the proxy's pod).
            assert text_of(mcp.call("environment", name="SERVER_TOKEN")) == "s3cret-value"
    proxy = get(e2e_cluster, "deployment", name, "-n", NAMESPACE)
    assert "python-secret" not in json.dumps(proxy["spec"])


def test_stdio_npx_server_still_runs_behind_the_bridge(
    e2e_cluster: KindCluster, stdio_servers: dict[str, Any]
) -> None:
    status = stdio_servers["npx-memory"]["status"]
    assert status["toolCount"] > 0
    deployment = get(e2e_cluster, "deployment", "npx-memory", "-n", NAMESPACE)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["command"] == ["supergateway"]
    with e2e_cluster.port_forward(NAMESPACE, "service/npx-memory", 8080) as port:
        mcp = McpClient(f"http://127.0.0.1:{port}/mcp")
        mcp.initialize()
        graph = mcp.call("read_graph")
        assert "result" in graph, graph


def server_pod(cluster: KindCluster, name: str) -> dict[str, Any]:
    return dict(get(cluster, "pod", f"{name}-server-0", "-n", NAMESPACE))


def test_stdio_server_process_that_exits_gives_a_clean_error_and_is_served_again(
    e2e_cluster: KindCluster, stdio_servers: dict[str, Any]
) -> None:
    before = server_pod(e2e_cluster, "go-stdio")
    restarts = before["status"]["containerStatuses"][0]["restartCount"]
    with e2e_cluster.port_forward(NAMESPACE, "service/go-stdio", 8080) as port:
        mcp = McpClient(f"http://127.0.0.1:{port}/mcp")
        mcp.initialize()
        started = time.monotonic()
        exited = mcp.call("exit", code=3)
        took = time.monotonic() - started
        assert exited["error"]["code"] == -32000, exited  # CONNECTION_CLOSED
        assert "ended" in exited["error"]["message"]
        assert took < 10.0, took

        def served_again() -> str | None:
            answer = mcp.call("add", a=1, b=2)
            if "error" in answer:
                # meanwhile: clean errors, never a hung request (httpx's 30 s would fail)
                assert answer["error"]["code"] == -32000, answer
                return None
            return text_of(answer)

        assert wait_until(served_again, seconds=180, what="go-stdio served again") == "3"
        print(
            f"clean error after {took:.2f} s; served again after {time.monotonic() - started:.1f} s"
        )
    after = server_pod(e2e_cluster, "go-stdio")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # the kubelet restarted it
    assert after["status"]["containerStatuses"][0]["restartCount"] == restarts + 1
    wait_until(
        lambda: (
            condition(get(e2e_cluster, "mcpserver", "go-stdio", "-n", NAMESPACE), "Ready").get(
                "status"
            )
            == "True"
        ),
        seconds=120,
        what="go-stdio Ready again",
    )


def can_i(cluster: KindCluster, who: str, *args: str) -> bool:
    answer = cluster.kubectl(
        "auth", "can-i", *args, "-n", NAMESPACE, f"--as=system:serviceaccount:{who}", check=False
    )
    return answer.strip().splitlines()[-1] == "yes"


def test_stdio_who_may_attach_exec_and_read_pods(
    e2e_cluster: KindCluster, stdio_servers: dict[str, Any]
) -> None:
    go_pod, python_pod = "go-stdio-server-0", "python-stdio-server-0"
    proxy_pod = get(
        e2e_cluster,
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        "app.kubernetes.io/instance=go-stdio,app.kubernetes.io/component=stdio-proxy",
    )["items"][0]["metadata"]["name"]
    server = server_pod(e2e_cluster, "go-stdio")["spec"]
    # The server runs as the namespace's default account and mounts no token at all.
    assert server.get("serviceAccountName", "default") == "default"
    assert server["automountServiceAccountToken"] is False
    assert not [v for v in server.get("volumes", []) if "projected" in v]
    server_identity = f"{NAMESPACE}:default"
    go_proxy = f"{NAMESPACE}:go-stdio-stdio-proxy"
    checks = [
        ("create", f"pods/{go_pod}", "attach"),
        ("create", f"pods/{python_pod}", "attach"),
        ("create", f"pods/{proxy_pod}", "attach"),
        ("create", f"pods/{go_pod}", "exec"),
        ("create", f"pods/{python_pod}", "exec"),
        ("get", f"pods/{python_pod}", ""),
        ("list", "pods", ""),
        ("get", "secrets/python-secret", ""),
        ("delete", f"pods/{go_pod}", ""),
        ("delete", f"pods/{python_pod}", ""),
    ]
    matrix = {
        (who, verb, target + (f"/{sub}" if sub else "")): can_i(
            e2e_cluster, who, verb, target, *([f"--subresource={sub}"] if sub else [])
        )
        for who in (server_identity, go_proxy)
        for verb, target, sub in checks
    }
    for (who, verb, target), allowed in sorted(matrix.items()):
        print(f"{who:40} {verb:7} {target:45} {'yes' if allowed else 'no'}")
    allowed = {key for key, value in matrix.items() if value}
    assert allowed == {
        (go_proxy, "create", f"pods/{go_pod}/attach"),  # attach to its own server pod
        (go_proxy, "delete", f"pods/{go_pod}"),  # restart its own server pod
    }


def test_stdio_a_replaced_proxy_restarts_the_server_it_cannot_initialize_and_serves(
    e2e_cluster: KindCluster, stdio_servers: dict[str, Any]
) -> None:
    """The Go SDK refuses a second initialize: a new proxy in front of a process the old one
    initialized deletes the server pod (its Role allows that one pod) and serves the fresh one."""
    before = server_pod(e2e_cluster, "go-stdio")["metadata"]["uid"]
    e2e_cluster.kubectl(
        "delete", "pod", "-n", NAMESPACE, "-l",
        "app.kubernetes.io/instance=go-stdio,app.kubernetes.io/component=stdio-proxy",
        "--wait=true",
    )  # fmt: skip

    def fresh_and_ready() -> bool:
        pod = get_or_none(e2e_cluster, "pod", "go-stdio-server-0", "-n", NAMESPACE)
        body = get(e2e_cluster, "mcpserver", "go-stdio", "-n", NAMESPACE)
        return bool(
            pod
            and pod["metadata"]["uid"] != before
            and condition(body, "Ready").get("status") == "True"
        )

    wait_until(fresh_and_ready, seconds=180, what="a fresh go-stdio server behind a new proxy")
    with e2e_cluster.port_forward(NAMESPACE, "service/go-stdio", 8080) as port:
        mcp = McpClient(f"http://127.0.0.1:{port}/mcp")
        mcp.initialize()
        assert text_of(mcp.call("add", a=2, b=2)) == "4"
