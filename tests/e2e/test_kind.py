"""End to end on kind, with real pods: one module, so one pytest-xdist worker owns the cluster.

- The chart with the locally built image: the operator runs as a pod under its ServiceAccount
  and the shipped RBAC, as a UID without a passwd entry, in a namespace that enforces Pod
  Security "restricted", and meets no permission error.
- MCP servers as real pods: the stdio examples run through the default bridge image, the
  everything server over streamable HTTP and SSE, all under "restricted"; the in-cluster
  operator verifies each one and lists its tools.
- The life of a workload: Secret rotation, scaling to zero and back, a deleted pod, deleted and
  edited children, garbage collection.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from typing import Any

import httpx
import pytest

from devserver_operator.localcluster import kind_stack
from devserver_operator.localcluster.kind import KindCluster
from tests.e2e.argocd import (  # noqa: F401 - collected as tests of this module
    argocd_broken,
    argocd_delivery,
    argocd_repository,
    test_argocd_health_of_each_mcpserver_follows_the_operator,
    test_argocd_sees_no_difference_between_git_and_the_cluster,
    test_argocd_shows_the_operators_message_for_a_url_that_is_not_mcp,
)
from tests.e2e.conftest import DEMO, OPERATOR_NAMESPACE
from tests.e2e.flux import (  # noqa: F401 - collected as tests of this module
    flux_delivery,
    flux_repository,
    test_flux_delivers_a_pushed_change_to_the_operator,
    test_flux_kustomization_fails_early_on_a_url_that_is_not_mcp,
    test_flux_kustomization_is_ready_only_when_its_mcpservers_are,
)
from tests.e2e.flux_takeover import (  # noqa: F401 - collected as tests of this module
    flux_takeover,
    test_flux_a_server_pushed_to_git_is_served_by_the_operator_flux_delivered,
    test_flux_a_values_change_pushed_to_git_rolls_the_operator,
    test_flux_helm_controller_adopts_the_release_of_helm_install,
    test_flux_the_kustomize_overlay_takes_over_when_the_helm_release_is_removed,
)
from tests.e2e.helpers import (
    apply,
    condition,
    get,
    get_or_none,
    is_ready,
    ready_object,
    wait_until,
)
from tests.e2e.openhands import (  # noqa: F401 - collected as tests of this module
    openhands_config,
    test_openhands_in_the_cluster_lists_the_tools_of_the_configured_servers,
)
from tests.e2e.stdio_images import (  # noqa: F401 - collected as tests of this module
    stdio_servers,
    test_stdio_a_replaced_proxy_restarts_the_server_it_cannot_initialize_and_serves,
    test_stdio_image_without_command_is_verified_and_answers_tool_calls,
    test_stdio_npx_server_still_runs_behind_the_bridge,
    test_stdio_server_process_that_exits_gives_a_clean_error_and_is_served_again,
    test_stdio_who_may_attach_exec_and_read_pods,
)
from tests.support.gitops import argocd_health, kstatus

# The first test also waits for the cluster, the chart and five MCP servers to start.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def operator_pod(cluster: KindCluster, release: str) -> dict[str, Any]:
    pods = get(
        cluster, "pods", "-n", OPERATOR_NAMESPACE, "-l", f"app.kubernetes.io/instance={release}"
    )["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return dict(pods[0])


def test_the_operator_pod_runs_as_a_uid_without_a_passwd_entry(
    e2e_cluster: KindCluster, installed_chart: str
) -> None:
    """kopf's default peering identity asks getpwuid(); UID 10001 has no entry in the image."""
    pod = operator_pod(e2e_cluster, installed_chart)
    statuses = pod["status"]["containerStatuses"]
    assert all(status["ready"] for status in statuses), statuses
    assert all(status["restartCount"] == 0 for status in statuses), statuses
    passwd = e2e_cluster.kubectl(
        "exec", "-n", OPERATOR_NAMESPACE, pod["metadata"]["name"], "--",
        "python", "-c", "import os, pwd\ntry:\n pwd.getpwuid(os.getuid()); print('entry')\n"
        "except KeyError:\n print('none', os.getuid())",
    )  # fmt: skip
    assert passwd.split() == ["none", "10001"]
    labels = get(e2e_cluster, "namespace", OPERATOR_NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


MCP_IMAGE = "localhost/devserver/mcp-servers:2026.8.31"


def everything_server(name: str, namespace: str, more: str = "") -> str:
    """An MCPServer running the reference "everything" server over streamable HTTP; ``more``
    continues its spec (after an ``env`` list that sets PORT)."""
    return f"""\
apiVersion: devserver.ecosphere.network/v1alpha1
kind: MCPServer
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  image: {MCP_IMAGE}
  transport: streamable-http
  port: 3001
  path: /mcp
  command: [mcp-server-everything, streamableHttp]
  env:
    - {{name: PORT, value: "3001"}}
{more}"""


ROTATION = f"""\
apiVersion: v1
kind: Secret
metadata: {{name: rotation-token, namespace: {DEMO}}}
stringData: {{token: first}}
---
""" + everything_server(
    "rotation",
    DEMO,
    """\
    - name: TOKEN
      valueFrom: {secretKeyRef: {name: rotation-token, key: token}}
""",
)


def test_every_example_is_verified_by_the_in_cluster_operator_with_its_tools(
    e2e_cluster: KindCluster, verified_examples: list[str]
) -> None:
    transports = {}
    bodies = []
    for name in verified_examples:
        body = get(e2e_cluster, "mcpserver", name, "-n", DEMO)
        bodies.append(body)
        status = body["status"]
        tools = [tool["name"] for tool in status.get("tools") or []]
        transports[name] = (body["spec"].get("transport"), status["toolCount"], tools[:3])
        assert status["toolCount"] == len(tools) > 0, name
        assert status["serverInfo"]["protocolVersion"], name
        assert condition(body, "Verified")["status"] == "True", name
    print("verified:", transports)
    # The live objects, as Flux (kstatus) and Argo CD (with gitops/argocd/argocd-cm.yaml) see them.
    assert {(v.name, v.status) for v in kstatus(bodies)} == {(n, "Current") for n in transports}
    assert {(v.name, v.status) for v in argocd_health(bodies)} == {
        (n, "Healthy") for n in transports
    }
    assert {spec[0] for spec in transports.values()} >= {"stdio", "streamable-http", "sse"}
    # The stdio ones run through the default bridge image, which the chart names.
    memory = get(e2e_cluster, "deployment", "memory", "-n", DEMO)
    assert memory["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "supercorp/supergateway:4.0.0"
    )


def test_every_pod_is_admitted_under_restricted(
    e2e_cluster: KindCluster, verified_examples: list[str]
) -> None:
    labels = get(e2e_cluster, "namespace", DEMO)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for replica_set in get(e2e_cluster, "replicasets", "-n", DEMO)["items"]:
        assert not condition(replica_set, "ReplicaFailure"), replica_set["metadata"]["name"]
    running = {
        pod["metadata"]["labels"].get("app.kubernetes.io/instance")
        for pod in get(e2e_cluster, "pods", "-n", DEMO)["items"]
        if pod["status"].get("phase") == "Running"
    }
    assert running >= set(verified_examples)


@pytest.fixture(scope="module")
def rotation(e2e_cluster: KindCluster, verified_examples: list[str]) -> str:
    apply(e2e_cluster, ROTATION)
    wait_until(
        lambda: is_ready(get_or_none(e2e_cluster, "mcpserver", "rotation", "-n", DEMO)),
        seconds=240,
        what="MCPServer rotation Ready",
    )
    return "rotation"


def running_pods(cluster: KindCluster, name: str) -> list[str]:
    """The names of the server's pods that run and are not being deleted."""
    pods = get(cluster, "pods", "-n", DEMO, "-l", f"app.kubernetes.io/instance={name}")["items"]
    return sorted(
        pod["metadata"]["name"]
        for pod in pods
        if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
    )


def ready_with_new_pods(cluster: KindCluster, name: str, old: list[str]) -> list[str] | None:
    pods = running_pods(cluster, name)
    body = get(cluster, "mcpserver", name, "-n", DEMO)
    if pods and not set(pods) & set(old) and is_ready(body):
        return pods
    return None


def test_a_secret_rotation_restarts_the_pods(e2e_cluster: KindCluster, rotation: str) -> None:
    before = running_pods(e2e_cluster, rotation)
    e2e_cluster.kubectl(
        "patch", "secret", "rotation-token", "-n", DEMO, "--type=merge",
        "-p", '{"stringData": {"token": "second"}}',
    )  # fmt: skip
    after = wait_until(
        lambda: ready_with_new_pods(e2e_cluster, rotation, before),
        seconds=240,
        what="new pods after the Secret rotation, and Ready",
    )
    for pod in after:
        env = e2e_cluster.kubectl("exec", "-n", DEMO, pod, "--", "printenv", "TOKEN")
        assert env.strip() == "second", pod


def test_scaling_to_zero_stops_the_server_and_back_to_one_serves_again(
    e2e_cluster: KindCluster, rotation: str
) -> None:
    patch = '{"spec": {"replicas": %d}}'
    e2e_cluster.kubectl("patch", "mcpserver", rotation, "-n", DEMO, "--type=merge", "-p", patch % 0)

    def stopped() -> bool:
        body = get(e2e_cluster, "mcpserver", rotation, "-n", DEMO)
        return condition(body, "Ready").get("reason") == "ScaledToZero" and not running_pods(
            e2e_cluster, rotation
        )

    wait_until(stopped, seconds=180, what="ScaledToZero with no pod left")
    e2e_cluster.kubectl("patch", "mcpserver", rotation, "-n", DEMO, "--type=merge", "-p", patch % 1)
    wait_until(
        lambda: ready_with_new_pods(e2e_cluster, rotation, []),
        seconds=240,
        what="Ready again after scaling back to 1",
    )


def test_a_deleted_pod_ends_in_ready_again(e2e_cluster: KindCluster, rotation: str) -> None:
    before = running_pods(e2e_cluster, rotation)
    e2e_cluster.kubectl(
        "delete", "pods", "-n", DEMO, "-l", f"app.kubernetes.io/instance={rotation}", "--wait=false"
    )
    wait_until(
        lambda: ready_with_new_pods(e2e_cluster, rotation, before),
        seconds=240,
        what="a new pod and Ready after the pod was deleted",
    )


def test_deleted_and_edited_children_are_restored(e2e_cluster: KindCluster, rotation: str) -> None:
    before = get(e2e_cluster, "service", rotation, "-n", DEMO)["metadata"]["uid"]
    e2e_cluster.kubectl("delete", "service", rotation, "-n", DEMO)
    wait_until(
        lambda: (
            (get_or_none(e2e_cluster, "service", rotation, "-n", DEMO) or {})
            .get("metadata", {})
            .get("uid", before)
            != before
        ),
        seconds=120,
        what=f"Service {rotation} to be recreated",
    )
    e2e_cluster.kubectl(
        "patch", "networkpolicy", rotation, "-n", DEMO, "--type=merge",
        "-p", '{"spec": {"ingress": []}}',
    )  # fmt: skip
    wait_until(
        lambda: bool(
            get(e2e_cluster, "networkpolicy", rotation, "-n", DEMO)["spec"].get("ingress")
        ),
        seconds=120,
        what=f"NetworkPolicy {rotation} to be restored",
    )


def test_a_deleted_mcpserver_takes_its_children_along(
    e2e_cluster: KindCluster, rotation: str
) -> None:
    e2e_cluster.kubectl("delete", "mcpserver", rotation, "-n", DEMO, "--wait=true")

    def collected() -> bool:
        left = get(
            e2e_cluster, "deployments,services,networkpolicies,pods", "-n", DEMO,
            "-l", f"app.kubernetes.io/instance={rotation}",
        )["items"]  # fmt: skip
        return not left

    wait_until(collected, seconds=180, what=f"the children of {rotation} to be garbage-collected")


RECEIVER_AND_MONITORED = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: report-receiver, namespace: {DEMO}, labels: {{app: report-receiver}}}}
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {{type: RuntimeDefault}}
  containers:
    - name: receiver
      image: {MCP_IMAGE}
      # Prints every body it receives on one line, for the test to read from the log.
      command: [node, -e, "require('http').createServer((q, r) => {{ let b = '';
        q.on('data', (c) => b += c); q.on('end', () => {{ console.log('REPORT ' + b);
        r.end('ok'); }}); }}).listen(8080)"]
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {{drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {{name: report-receiver, namespace: {DEMO}}}
spec:
  selector: {{app: report-receiver}}
  ports: [{{port: 8080}}]
---
""" + everything_server(
    "monitored",
    DEMO,
    """\
  networkPolicy:
    # n8n runs in its own namespace and calls the server from there.
    ingressFrom:
      - namespaceSelector:
          matchLabels: {kubernetes.io/metadata.name: automation}
""",
)


def integration(n8n_url: str) -> str:
    return textwrap.dedent(f"""\
    apiVersion: devserver.ecosphere.network/v1alpha1
    kind: WorkflowIntegration
    metadata: {{name: health, namespace: {DEMO}}}
    spec:
      n8n:
        url: {n8n_url}
        apiKeySecretRef: {{name: n8n-api-e2e, key: apiKey}}
      mcpServers:
        names: [monitored]
      workflows:
        - name: health
          template:
            name: mcp-health-monitor
            parameters:
              reportUrl: http://report-receiver.{DEMO}.svc.cluster.local:8080/
              path: e2e-health
    """)


def test_an_n8n_workflow_in_the_cluster_calls_an_mcp_server_in_the_cluster(
    e2e_cluster: KindCluster, n8n_in_cluster: Any, verified_examples: list[str]
) -> None:
    """The WorkflowIntegration's health monitor, synced into a real n8n by the in-cluster
    operator, checks an MCP server that runs as a pod and reports it healthy."""
    e2e_cluster.kubectl(
        "create", "secret", "generic", "n8n-api-e2e", "-n", DEMO,
        f"--from-literal=apiKey={n8n_in_cluster.access.api_key}",
    )  # fmt: skip
    apply(e2e_cluster, RECEIVER_AND_MONITORED)
    wait_until(
        lambda: is_ready(get_or_none(e2e_cluster, "mcpserver", "monitored", "-n", DEMO)),
        seconds=240,
        what="MCPServer monitored Ready",
    )
    apply(e2e_cluster, integration(n8n_in_cluster.url))
    synced = wait_until(
        lambda: ready_object(e2e_cluster, "workflowintegration", "health", DEMO),
        seconds=240,
        what="WorkflowIntegration health Ready",
    )
    workflow_id = synced["status"]["workflows"][0]["id"]
    e2e_cluster.kubectl(
        "wait", "--for=condition=Ready", "pod/report-receiver", "-n", DEMO, "--timeout=120s"
    )
    with e2e_cluster.port_forward("automation", "service/n8n", 5678) as port:
        # The webhook runs the check now instead of on the schedule.
        answer = httpx.post(f"http://127.0.0.1:{port}/webhook/e2e-health", json={}, timeout=60)
        assert answer.status_code == 200, answer.text

    def report() -> dict[str, Any] | None:
        lines = e2e_cluster.kubectl("logs", "report-receiver", "-n", DEMO).splitlines()
        reports = [
            json.loads(line.removeprefix("REPORT ")) for line in lines if line.startswith("REPORT ")
        ]
        return reports[-1] if reports else None

    received = wait_until(report, seconds=120, what="the health report at the receiver")
    print(f"n8n workflow {workflow_id} reported: {received}")
    (server,) = received["servers"]
    assert server["name"] == "monitored"
    assert server["healthy"] is True, server
    assert server["serverInfo"]["name"]
    assert server["url"].startswith(f"http://monitored.{DEMO}.svc")


TEAM = "team-e2e"
ALICE = "alice@example.com"
TEAM_SETUP = f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {TEAM}
  labels: {{pod-security.kubernetes.io/enforce: restricted}}
---
apiVersion: v1
kind: Secret
metadata: {{name: db-password, namespace: {TEAM}}}
stringData: {{password: not-for-alice}}
---
apiVersion: devserver.ecosphere.network/v1alpha1
kind: TeamAccess
metadata: {{name: alice, namespace: {TEAM}}}
spec:
  role: operator
  members: [{{kind: User, name: {ALICE}}}]
"""


def secret_reading_server(name: str) -> str:
    """An MCPServer on an allow-listed image that hands the Secret to the server as STOLEN."""
    return everything_server(
        name,
        TEAM,
        """\
    - name: STOLEN
      valueFrom: {secretKeyRef: {name: db-password, key: password}}
""",
    )


def as_alice(cluster: KindCluster, manifest: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(cluster.toolchain.kubectl), "--kubeconfig", str(cluster.kubeconfig_path),
            "--as", ALICE, "apply", "--server-side", "--field-manager=alice", "-f", "-",
        ],
        input=manifest, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def alice_team(e2e_cluster: KindCluster, installed_chart: str) -> str:
    apply(e2e_cluster, TEAM_SETUP)
    wait_until(
        lambda: is_ready(get_or_none(e2e_cluster, "teamaccess", "alice", "-n", TEAM)),
        seconds=120,
        what="TeamAccess alice Granted",
    )
    return ALICE


def test_a_team_member_cannot_reach_a_secret_through_the_operator(
    e2e_cluster: KindCluster, alice_team: str
) -> None:
    """The chart installs the admission webhook: the operator role may write MCPServers, but an
    MCPServer that hands a Secret alice may not read to her own image is refused, and one on an
    allow-listed image without Secrets is admitted and reconciles."""
    refused = as_alice(e2e_cluster, secret_reading_server("thief"))
    print("refused:", refused.stderr.strip())
    assert refused.returncode != 0
    assert (
        'spec.env[1].valueFrom.secretKeyRef.name: needs permission to get secrets "db-password"'
        in (refused.stderr)
    )
    assert get_or_none(e2e_cluster, "mcpserver", "thief", "-n", TEAM) is None
    foreign = as_alice(
        e2e_cluster,
        everything_server("foreign", TEAM).replace(MCP_IMAGE, "docker.io/library/busybox:1.37"),
    )
    print("refused:", foreign.stderr.strip())
    assert foreign.returncode != 0
    assert "spec.image" in foreign.stderr and "create pods" in foreign.stderr
    allowed = as_alice(e2e_cluster, everything_server("honest", TEAM))
    assert allowed.returncode == 0, allowed.stderr
    wait_until(
        lambda: is_ready(get_or_none(e2e_cluster, "mcpserver", "honest", "-n", TEAM)),
        seconds=240,
        what="alice's allow-listed MCPServer Ready",
    )


def test_nothing_slips_through_while_the_operator_restarts(
    e2e_cluster: KindCluster, alice_team: str
) -> None:
    """failurePolicy Fail: while the operator pod is replaced, every forbidden create is refused,
    either by the webhook or by the API server that cannot reach it."""
    e2e_cluster.kubectl(
        "delete", "pods", "-n", OPERATOR_NAMESPACE, "-l",
        f"app.kubernetes.io/instance={kind_stack.RELEASE}", "--wait=false",
    )  # fmt: skip
    outcomes = []
    for attempt in range(30):
        result = as_alice(e2e_cluster, secret_reading_server(f"restart-{attempt}"))
        outcomes.append("admitted" if result.returncode == 0 else "refused")
        time.sleep(1)
    print("creates during the restart:", " ".join(outcomes))
    assert "admitted" not in outcomes
    names = [
        item["metadata"]["name"] for item in get(e2e_cluster, "mcpservers", "-n", TEAM)["items"]
    ]
    assert not [name for name in names if name.startswith("restart-")], names
    e2e_cluster.kubectl(
        "rollout", "status", "-n", OPERATOR_NAMESPACE, f"deployment/{kind_stack.RELEASE}",
        "--timeout=180s", timeout=200,
    )  # fmt: skip


PROBE_POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {{type: RuntimeDefault}}
  containers:
    - name: probe
      image: localhost/devserver/mcp-servers:2026.8.31
      command: [node, -e, {script}]
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {{drop: [ALL]}}
"""
# Connects up to ten times, a second apart, and prints each outcome. kube-router puts a new
# pod's address into the sets of the policies that admit it a moment after the pod starts, so
# the first tries of an admitted client may still be refused.
CONNECT = (
    "const net = require('net'); const seen = [];"
    " function attempt() {{"
    "   const s = net.connect({port}, '{host}'); s.setTimeout(3000);"
    "   const done = (what) => {{ seen.push(what); s.destroy();"
    "     if (what === 'connected' || seen.length >= 10) {{ console.log(seen.join(' ')); }}"
    "     else {{ setTimeout(attempt, 1000); }} }};"
    "   s.on('connect', () => done('connected')); s.on('timeout', () => done('timeout'));"
    "   s.on('error', (e) => done(e.code)); }}"
    " attempt();"
)


def connect_from(cluster: KindCluster, namespace: str, name: str, host: str, port: int) -> str:
    script = CONNECT.format(host=host, port=port)
    apply(cluster, PROBE_POD.format(name=name, namespace=namespace, script=json.dumps(script)))
    wait_until(
        lambda: get(cluster, "pod", name, "-n", namespace)["status"].get("phase") == "Succeeded",
        seconds=180,
        what=f"probe pod {namespace}/{name} to finish",
    )
    return cluster.kubectl("logs", "-n", namespace, name).strip()


def test_network_policy_admits_the_namespace_and_the_operator_and_no_one_else(
    e2e_cluster: KindCluster, verified_examples: list[str]
) -> None:
    """kube-router enforces the MCPServer's NetworkPolicy: a pod of another namespace cannot
    reach the server, one of its own namespace can, and the in-cluster operator verified it."""
    engine = get(e2e_cluster, "daemonset", "kube-router-network-policies", "-n", "kube-system")
    assert engine["status"].get("numberReady") == 1
    host = f"everything.{DEMO}.svc.cluster.local"
    e2e_cluster.kubectl("create", "namespace", "outsider")
    e2e_cluster.kubectl(
        "label", "namespace", "outsider", "pod-security.kubernetes.io/enforce=restricted"
    )
    outside = connect_from(e2e_cluster, "outsider", "probe", host, 3001)
    inside = connect_from(e2e_cluster, DEMO, "probe", host, 3001)
    print(f"from another namespace: {outside}; from {DEMO}: {inside}")
    assert inside.endswith("connected")
    assert "connected" not in outside.split()
    assert len(outside.split()) == 10
    e2e_cluster.kubectl("delete", "pod", "probe", "-n", DEMO, "--wait=false")
    e2e_cluster.kubectl("delete", "namespace", "outsider", "--wait=false")


def test_the_operator_meets_no_permission_error(
    e2e_cluster: KindCluster, installed_chart: str, verified_examples: list[str]
) -> None:
    """After the MCPServer examples are verified, the audit log holds requests of the operator's
    ServiceAccount, and none of them was refused."""
    account = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{installed_chart}"
    mine = [e for e in e2e_cluster.audit_events() if e.get("user", {}).get("username") == account]
    refused = [
        f"{e['verb']} {e.get('objectRef', {})} -> {e['responseStatus'].get('code')}"
        for e in mine
        if e.get("responseStatus", {}).get("code") in (401, 403)
    ]
    print(f"operator requests audited: {len(mine)}; refused: {len(refused)}")
    assert len(mine) > 20
    assert not refused, refused
