"""The Helm chart with the real helm binary (built from its Go module) against a real API server.

- `helm lint --strict` in both modes; every rendered object passes strict schema validation;
- `helm install` into a local control plane of its own (a fresh etcd + kube-apiserver, so that
  the session's other operator cannot do this operator's work);
- the admission webhook is on by default: its configuration has no caBundle, so every render
  is the same; until an operator answers, spec writes of the three kinds are refused;
- the operator runs under the chart's ServiceAccount, with a real token from the TokenRequest
  API: it creates its webhook certificate's Secret, writes the CA into the chart's webhook
  configuration, answers the API server's admission reviews and reconciles an MCPServer to
  Ready; the audit log shows it was never refused;
- `helm uninstall` leaves nothing of the release behind but the CRDs (kept by design);
- `helm upgrade` from the previous chart version (from git history, CRDs in `crds/`) to this
  one (templated CRDs) and on to a next one applies changed CRDs on the API server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from devserver_operator.admission import WEBHOOK_PATH
from devserver_operator.kube.client import Credentials, KubeClient
from devserver_operator.kube.errors import KubeApiError
from devserver_operator.localcluster import (
    ControlPlaneBinaries,
    LocalControlPlane,
    binaries,
    read_kubeconfig_credentials,
)
from devserver_operator.localcluster.audit import answered_requests
from tests.support.operator_harness import custom_resource, start_operator, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "devserver-operator"
KUBERNETES_VERSION = "1.35.0"  # the newest schema set kubernetes-validate ships
NOT_IN_KUBERNETES_VALIDATE = {
    "ServiceMonitor",
    "PrometheusRule",
    "ClusterKopfPeering",
    "KopfPeering",
}
MODES = {
    "cluster-wide": [],
    "single-namespace": ["--set", "namespaces={NAMESPACE}"],
}
SINGLE_NAMESPACE_EXTRAS = ["--set", "replicas=2", "--set", "prometheusRule.enabled=true"]
IMAGE = "ghcr.io/example/mcp-server:1.0.0"


def helm_binary() -> Path:
    return binaries.ensure_binaries((binaries.HELM,))[binaries.HELM]


def helm(*args: str | Path, kubeconfig: Path | None = None) -> str:
    argv = [str(helm_binary()), *(str(a) for a in args)]
    if kubeconfig is not None:
        argv += ["--kubeconfig", str(kubeconfig)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, f"helm {args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def mode_values(mode: str, namespace: str) -> list[str]:
    return [v.replace("NAMESPACE", namespace) for v in MODES[mode]]


# -- lint and template ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_helm_lint_is_clean(mode: str) -> None:
    output = helm("lint", "--strict", CHART, *mode_values(mode, "team-a"))
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize("mode", MODES)
def test_rendered_objects_pass_strict_validation(mode: str) -> None:
    extras = [
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        "replicas=2",
    ]
    text = helm(
        "template", "devserver-operator", CHART, "--namespace", "devserver-system",
        "--include-crds", *mode_values(mode, "team-a"), *extras,
    )  # fmt: skip
    documents = [d for d in yaml.safe_load_all(text) if d]
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "ServiceAccount", "CustomResourceDefinition"} <= kinds
    roles = {(d["kind"], d["metadata"]["name"]) for d in documents if "Role" in d["kind"]}
    manager = "devserver-operator-manager"
    assert (("Role", manager) in roles) == (mode == "single-namespace")
    assert (("ClusterRoleBinding", manager) in roles) == (mode == "cluster-wide")
    # The admission webhook's Role on its Secret, and in single-namespace mode its only
    # cluster-scoped right (the caBundle of its own webhook configuration).
    assert ("Role", "devserver-operator-admission") in roles
    assert (("ClusterRole", "devserver-operator-admission") in roles) == (
        mode == "single-namespace"
    )
    for document in documents:
        if document["kind"] in NOT_IN_KUBERNETES_VALIDATE:
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_operator_pod_meets_pod_security_restricted() -> None:
    from tests.support.pod_security import restricted_violations

    text = helm("template", "x", CHART)
    deployment = next(d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment")
    assert restricted_violations(deployment["spec"]["template"]["spec"]) == []
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "health"}


def render(*values: str, release: str = "x") -> dict[tuple[str, str], dict[str, Any]]:
    text = helm("template", release, CHART, "--namespace", "ops", *values)
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


def container(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    deployment = objects[("Deployment", "x-devserver-operator")]
    first: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return first


def env(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(objects)["env"]}


def test_the_admission_webhook_is_installed_by_default() -> None:
    objects = render()
    name = "x-devserver-operator-admission"
    configuration = objects[("ValidatingWebhookConfiguration", name)]
    (webhook,) = configuration["webhooks"]
    # No caBundle: the operator writes it, so a render never differs from the last one.
    assert webhook["clientConfig"] == {
        "service": {"namespace": "ops", "name": name, "path": WEBHOOK_PATH, "port": 443}
    }
    assert (webhook["failurePolicy"], webhook["timeoutSeconds"]) == ("Fail", 5)
    assert "namespaceSelector" not in webhook
    assert webhook["matchConditions"][0]["name"] == "spec-written"
    service = objects[("Service", name)]
    assert service["spec"]["ports"] == [
        {"name": "admission", "port": 443, "targetPort": "admission", "protocol": "TCP"}
    ]
    assert {"name": "admission", "containerPort": 9443, "protocol": "TCP"} in container(objects)[
        "ports"
    ]
    assert env(objects) | {
        "DEVSERVER_OPERATOR_ADMISSION_PORT": "9443",
        "DEVSERVER_OPERATOR_ADMISSION_TLS_SECRET": f"{name}-tls",
        "DEVSERVER_OPERATOR_ADMISSION_SERVICE": name,
        "DEVSERVER_OPERATOR_ADMISSION_WEBHOOK_CONFIGURATION": name,
    } == env(objects)
    assert "DEVSERVER_OPERATOR_ALLOWED_IMAGES" not in env(objects)
    # The API server is no pod: the webhook port is open to any source.
    ingress = objects[("NetworkPolicy", "x-devserver-operator")]["spec"]["ingress"]
    assert {"ports": [{"port": "admission", "protocol": "TCP"}]} in ingress
    # RBAC: this release's Secret and webhook configuration, by name.
    role = objects[("Role", name)]
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"][0]["resourceNames"] == [f"{name}-tls"]
    assert role["rules"][0]["verbs"] == ["get", "update"]
    assert role["rules"][1] == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    assert objects[("RoleBinding", name)]["roleRef"]["name"] == name
    manager = objects[("ClusterRole", "x-devserver-operator-manager")]
    (ca_bundle_rule,) = [
        r for r in manager["rules"] if "validatingwebhookconfigurations" in r["resources"]
    ]
    assert ca_bundle_rule["resourceNames"] == [name]
    assert ("ClusterRole", name) not in objects  # cluster-wide: the manager role has it


def test_the_admission_values_reach_the_webhook_and_the_operator() -> None:
    objects = render(
        "--set", "admission.port=10443", "--set", "admission.timeoutSeconds=3",
        "--set", "admission.failurePolicy=Ignore", "--set", "allowedImages={ghcr.io/ok/}",
        "--set", "namespaces={team-a,team-b}",
    )  # fmt: skip
    name = "x-devserver-operator-admission"
    (webhook,) = objects[("ValidatingWebhookConfiguration", name)]["webhooks"]
    assert (webhook["failurePolicy"], webhook["timeoutSeconds"]) == ("Ignore", 3)
    # Single-namespace mode: checked only where the operator works.
    assert webhook["namespaceSelector"] == {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}
        ]
    }
    assert env(objects)["DEVSERVER_OPERATOR_ADMISSION_PORT"] == "10443"
    assert env(objects)["DEVSERVER_OPERATOR_ALLOWED_IMAGES"] == '["ghcr.io/ok/"]'
    assert {"name": "admission", "containerPort": 10443, "protocol": "TCP"} in container(objects)[
        "ports"
    ]
    # Its one cluster-scoped right: the caBundle of this release's webhook configuration.
    assert objects[("ClusterRole", name)]["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [name],
            "verbs": ["get", "patch"],
        }
    ]
    assert objects[("ClusterRoleBinding", name)]["subjects"][0]["namespace"] == "ops"


def test_admission_disabled_leaves_out_the_webhook_and_all_it_needs() -> None:
    objects = render("--set", "admission.enabled=false", "--set", "namespaces={team-a}")
    kinds = {kind for kind, name in objects if name.endswith("-admission")}
    assert kinds == set()
    assert not any(key.startswith("DEVSERVER_OPERATOR_ADMISSION") for key in env(objects))
    ingress = objects[("NetworkPolicy", "x-devserver-operator")]["spec"]["ingress"]
    assert all(port["port"] != "admission" for rule in ingress for port in rule["ports"])


def test_the_console_is_off_by_default() -> None:
    assert not [key for key in render() if "console" in key[1]]


def test_the_console_runs_apart_with_only_its_own_least_privileged_role() -> None:
    from devserver_operator.manifests.console_rbac import console_rules
    from tests.support.pod_security import restricted_violations

    objects = render(
        "--set", "console.enabled=true", "--set", "console.publicOrigin=https://c.example"
    )
    name = "x-devserver-operator-console"
    assert {kind for kind, found in objects if found == name} == {
        "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service",
    }  # fmt: skip
    assert objects[("ClusterRole", name)]["rules"] == console_rules()
    binding = objects[("ClusterRoleBinding", name)]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "ops"}]
    pod = objects[("Deployment", name)]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert restricted_violations(pod) == []
    (console,) = pod["containers"]
    assert console["args"][0] == "console"
    assert {"name": "DEVSERVER_CONSOLE_PUBLIC_ORIGIN", "value": "https://c.example"} in console[
        "env"
    ]
    for document in objects.values():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    # The operator's own Deployment is untouched by the console.
    assert (
        objects[("Deployment", "x-devserver-operator")]["spec"]["template"]["spec"][
            "serviceAccountName"
        ]
        != name
    )


def test_two_replicas_are_drained_one_at_a_time() -> None:
    """Every replica answers the fail-closed webhook: a drain must leave one running."""
    assert not any(kind == "PodDisruptionBudget" for kind, _ in render())
    objects = render("--set", "replicas=2")
    budget = objects[("PodDisruptionBudget", "x-devserver-operator")]["spec"]
    assert budget["maxUnavailable"] == 1
    pods = objects[("Deployment", "x-devserver-operator")]["spec"]["template"]["metadata"]
    assert budget["selector"]["matchLabels"].items() <= pods["labels"].items()


def test_two_replicas_spread_over_nodes_and_zones_but_still_schedule_on_one() -> None:
    """With one replica nothing is constrained; with more, both topology keys, ScheduleAnyway
    (a one-node cluster runs them all), and the selector of this release's pods."""
    one = render()[("Deployment", "x-devserver-operator")]["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in one
    objects = render("--set", "replicas=3")
    deployment = objects[("Deployment", "x-devserver-operator")]
    constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in constraints] == [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    ]
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    for constraint in constraints:
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert constraint["maxSkew"] == 1
        assert constraint["labelSelector"]["matchLabels"].items() <= pods.items()
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]
    # Given constraints replace the default, with any replica count.
    own = [{"maxSkew": 2, "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "x"}}}]  # fmt: skip
    objects = render("--set-json", f"topologySpreadConstraints={json.dumps(own)}")
    spec = objects[("Deployment", "x-devserver-operator")]["spec"]["template"]["spec"]
    assert spec["topologySpreadConstraints"] == own


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_alert_links_a_runbook_section_that_exists() -> None:
    objects = render("--set", "prometheusRule.enabled=true")
    (group,) = objects[("PrometheusRule", "x-devserver-operator")]["spec"]["groups"]
    operations = (REPO / "docs" / "operations.md").read_text()
    anchors = github_anchors(operations)
    page = "https://github.com/ecospherenetwork/devserver-operator/blob/v0.1.0/docs/operations.md"
    assert len(group["rules"]) >= 6
    for rule in group["rules"]:
        url = rule["annotations"]["runbook_url"]
        assert url == f"{page}#{rule['alert'].lower()}"
        assert url.split("#")[1] in anchors, f"docs/operations.md has no section {url}"
    assert "scraping-honorlabels" in anchors  # the honorLabels requirement the rule names
    # Your own copy of the runbooks.
    objects = render(
        "--set", "prometheusRule.enabled=true",
        "--set", "prometheusRule.runbookBaseUrl=https://wiki.example/devserver",
    )  # fmt: skip
    (group,) = objects[("PrometheusRule", "x-devserver-operator")]["spec"]["groups"]
    assert group["rules"][0]["annotations"]["runbook_url"] == (
        "https://wiki.example/devserver#devserveroperatordown"
    )


def test_every_render_is_the_same() -> None:
    """GitOps: no generated certificate or random value in the chart (no diff on each sync)."""
    values = ["--set", "replicas=2"]
    assert helm("template", "x", CHART, *values) == helm("template", "x", CHART, *values)


# -- install, run under the chart's identity, uninstall ---------------------------------


@pytest.fixture(scope="module")
def chart_cluster(control_plane_binaries: ControlPlaneBinaries) -> Iterator[LocalControlPlane]:
    with LocalControlPlane(control_plane_binaries, audit=True, controller_manager=True) as local:
        yield local


def service_account_kubeconfig(
    local: LocalControlPlane, namespace: str, service_account: str, target: Path
) -> Path:
    """A kubeconfig with a real, short-lived token of the ServiceAccount (TokenRequest API)."""
    credentials = read_kubeconfig_credentials(local.kubeconfig_path)
    import httpx

    with httpx.Client(
        base_url=credentials.server_url,
        verify=credentials.ssl_context,
        headers=credentials.headers(),
        timeout=30,
    ) as client:
        response = client.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            },
        )
        response.raise_for_status()
        token = response.json()["status"]["token"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": local.server_url,
                    "certificate-authority": str(local.ca_cert_path),
                },
            }
        ],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": service_account}}],
        "current-context": "sa",
    }
    target.write_text(yaml.safe_dump(config))
    target.chmod(0o600)
    return target


async def make_available(kube: KubeClient, name: str, namespace: str) -> None:
    """Play the Deployment controller (no kubelet here): report one ready pod."""
    live = await kube.get("apps/v1", "Deployment", name, namespace)
    assert live is not None
    await kube.patch_status(
        "apps/v1",
        "Deployment",
        name,
        namespace,
        {
            "observedGeneration": live["metadata"]["generation"],
            "replicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "updatedReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    )


RELEASE_KINDS = [
    ("apps/v1", "deployments"),
    ("v1", "services"),
    ("v1", "serviceaccounts"),
    ("v1", "configmaps"),
    ("networking.k8s.io/v1", "networkpolicies"),
    ("rbac.authorization.k8s.io/v1", "roles"),
    ("rbac.authorization.k8s.io/v1", "rolebindings"),
    ("rbac.authorization.k8s.io/v1", "clusterroles"),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings"),
    ("kopf.dev/v1", "kopfpeerings"),
    ("kopf.dev/v1", "clusterkopfpeerings"),
]


def objects_of_release(local: LocalControlPlane, release: str) -> list[str]:
    credentials = read_kubeconfig_credentials(local.kubeconfig_path)
    import httpx

    found = []
    with httpx.Client(
        base_url=credentials.server_url,
        verify=credentials.ssl_context,
        headers=credentials.headers(),
        timeout=30,
    ) as client:
        for api_version, plural in RELEASE_KINDS:
            base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            response = client.get(
                f"{base}/{plural}",
                params={"labelSelector": f"app.kubernetes.io/instance={release}"},
            )
            if response.status_code == 404:
                continue
            if response.status_code != 200:
                # e.g. 429 while a new CRD's storage initializes: unknown yet, ask again.
                found.append(f"{plural}: HTTP {response.status_code}")
                continue
            found += [f"{plural}/{i['metadata']['name']}" for i in response.json()["items"]]
    return found


@pytest.mark.parametrize("mode", MODES)
async def test_install_run_as_the_chart_service_account_and_uninstall(
    mode: str, chart_cluster: LocalControlPlane, tmp_path: Path
) -> None:
    local = chart_cluster
    suffix = uuid.uuid4().hex[:6]
    release = f"devserver-operator-{suffix}"
    system = f"devserver-system-{suffix}"
    apps = f"apps-{suffix}"
    admin = KubeClient(Credentials.from_kubeconfig(str(local.kubeconfig_path)))
    # In single-namespace mode the operator works in `apps` only, with Roles only.
    values = mode_values(mode, apps) if mode == "single-namespace" else []
    if mode == "single-namespace":
        values += SINGLE_NAMESPACE_EXTRAS[:2]  # replicas=2: peering objects and rules too
        # A second release in the cluster: the CRDs are the first one's (kept after its
        # uninstall), so this one leaves them out (applied below when it runs alone).
        values += ["--set", "crds.install=false"]
    try:
        if mode == "single-namespace":
            await apply_chart_crds(admin, CHART)
        await admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": apps}})
        started = time.monotonic()
        helm(
            "install", release, CHART, "--namespace", system, "--create-namespace",
            # Team roles are cluster-scoped and shared: the first release installs them.
            "--set", f"clusterObjects.team-roles={'true' if mode == 'cluster-wide' else 'false'}",
            *values, kubeconfig=local.kubeconfig_path,
        )  # fmt: skip
        install_seconds = time.monotonic() - started
        assert install_seconds < 60
        service_account = release  # fullname: the release name contains the chart name
        kubeconfig = service_account_kubeconfig(
            local, system, service_account, tmp_path / "sa.kubeconfig"
        )
        webhook_name = f"{release}-admission"
        await refused_while_no_operator_answers(admin, apps)
        port = free_port()
        # The chart's settings of the webhook (its Deployment's environment), listening on
        # loopback; "localhost" lets the API server call it by URL (no pod network here).
        overrides: dict[str, Any] = {
            "operator_namespace": system,
            "admission_port": port,
            "admission_address": "127.0.0.1",
            "admission_tls_secret": f"{webhook_name}-tls",
            "admission_service": webhook_name,
            "admission_webhook_configuration": webhook_name,
            "admission_dns_names": ["localhost"],
        }
        if mode == "single-namespace":
            overrides["namespaces"] = [apps]
            overrides["peering"] = release
        running = start_operator(kubeconfig, **overrides)
        user = f"system:serviceaccount:{system}:{service_account}"
        try:
            await call_the_webhook_at(admin, webhook_name, system, port)
            body = custom_resource(
                "MCPServer", "fs", apps, {"image": IMAGE, "verification": {"enabled": False}}
            )
            await admin.apply(body)

            async def deployment() -> dict[str, Any] | None:
                return await admin.get("apps/v1", "Deployment", "fs", apps)

            await wait_for(deployment, seconds=30, what="the MCPServer's Deployment")
            await make_available(admin, "fs", apps)

            async def ready() -> bool:
                live = await admin.get(
                    "devserver.ecosphere.network/v1alpha1", "MCPServer", "fs", apps
                )
                conditions = (live or {}).get("status", {}).get("conditions", [])
                return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

            async def show() -> Any:
                return await admin.get(
                    "devserver.ecosphere.network/v1alpha1", "MCPServer", "fs", apps
                )

            await wait_for(ready, seconds=30, what="MCPServer Ready=True", dump=show)
            await admin.delete("devserver.ecosphere.network/v1alpha1", "MCPServer", "fs", apps)

            async def gone() -> bool:
                return await show() is None

            await wait_for(gone, seconds=30, what="the MCPServer to be deleted (finalizer)")
        finally:
            running.stop()
        assert not running.errors, running.errors

        assert local.audit_log_path is not None
        events = answered_requests(local.audit_log_path, 0, user)
        writes = [e for e in events if e["verb"] in ("create", "patch", "update", "delete")]
        assert any("/deployments/fs" in e["requestURI"] for e in writes), "it did the work"
        assert any(
            e["verb"] == "create"
            and e["requestURI"].startswith(f"/api/v1/namespaces/{system}/secrets")
            for e in writes
        ), "it created its webhook certificate"
        assert any(f"validatingwebhookconfigurations/{webhook_name}" in e["requestURI"]
                   for e in writes), "it wrote the caBundle"  # fmt: skip
        refused = [
            (e["verb"], e["requestURI"])
            for e in events
            if e.get("responseStatus", {}).get("code") == 403
        ]
        assert refused == []

        helm(
            "uninstall", release, "--namespace", system, "--wait", kubeconfig=local.kubeconfig_path
        )

        async def nothing_left() -> bool:
            return not objects_of_release(local, release)

        await wait_for(nothing_left, seconds=30, what=f"objects of {release} to be gone")
        # CRDs stay: they are kept on uninstall (helm.sh/resource-policy: keep); deleting them
        # would delete every custom resource in the cluster. docs/operations.md says how.
        crd = await admin.get(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "mcpservers.devserver.ecosphere.network",
            None,
        )
        assert crd is not None
    finally:
        for namespace in (apps, system):
            await admin.delete("v1", "Namespace", namespace, None)
        await admin.close()
        await asyncio.sleep(0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def refused_while_no_operator_answers(admin: KubeClient, namespace: str) -> None:
    """Fail closed: right after the install nothing answers the webhook yet."""
    body = custom_resource("MCPServer", "early", namespace, {"image": IMAGE})
    with pytest.raises(KubeApiError) as refusal:
        await admin.create(body)
    assert "failed calling webhook" in refusal.value.message


async def call_the_webhook_at(admin: KubeClient, name: str, namespace: str, port: int) -> None:
    """The operator wrote its CA into the chart's webhook configuration; the API server here
    cannot reach Services, so the webhook is called by URL instead, with that caBundle."""
    api = "admissionregistration.k8s.io/v1"
    secret_name = f"{name}-tls"

    async def published() -> dict[str, Any] | None:
        live = await admin.get(api, "ValidatingWebhookConfiguration", name, None)
        secret = await admin.get("v1", "Secret", secret_name, namespace)
        if live is None or secret is None:
            return None
        bundle = live["webhooks"][0]["clientConfig"].get("caBundle")
        return live if bundle == secret["data"]["ca.crt"] else None

    live = await wait_for(published, seconds=30, what="the operator's CA in the caBundle")
    assert live is not None
    secret = await admin.get("v1", "Secret", secret_name, namespace)
    assert secret is not None and secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]).startswith(b"-----BEGIN CERTIFICATE")
    service = live["webhooks"][0]["clientConfig"].pop("service")
    assert service == {"namespace": namespace, "name": name, "path": WEBHOOK_PATH, "port": 443}
    live["webhooks"][0]["clientConfig"]["url"] = f"https://localhost:{port}{WEBHOOK_PATH}"
    await admin.raw("PUT", f"/apis/{api}/validatingwebhookconfigurations/{name}", live)


CRD_API = "apiextensions.k8s.io/v1"


async def established(admin: KubeClient, name: str) -> bool:
    live = await admin.get(CRD_API, "CustomResourceDefinition", name, None)
    conditions = (live or {}).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


async def apply_chart_crds(admin: KubeClient, chart: Path) -> None:
    """What `crds.install=true` would install, for a release that leaves them out."""
    for path in sorted((chart / "files" / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        await admin.apply(crd)

        async def ready(name: str = crd["metadata"]["name"]) -> bool:
            return await established(admin, name)

        await wait_for(ready, seconds=30, what=f"CRD {crd['metadata']['name']} Established")


# -- CRD upgrades through helm upgrade ---------------------------------------------------

PREVIOUS_CHART_REVISION = "a46d53594bf2a60c350a2b658ea3005530bb07c4"
"""The last chart with its CRDs in crds/ (which Helm installs once and never upgrades): the
version before this one. When a release tag exists, the previous tag takes its place."""
MCPSERVERS = "mcpservers.devserver.ecosphere.network"
NO_WEBHOOK = ["--set", "admission.enabled=false"]  # nothing answers it here; not under test


def previous_chart(target: Path) -> Path:
    """The chart at PREVIOUS_CHART_REVISION, from git history (CI checks out the whole
    history for this: .github/workflows/ci.yml, fetch-depth 0)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", PREVIOUS_CHART_REVISION,
         "charts/devserver-operator"],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert archive.returncode == 0, (
        f"the previous chart needs the git history ({PREVIOUS_CHART_REVISION[:12]}): "
        f"{archive.stderr.decode()}"
    )
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    chart = target / "charts" / "devserver-operator"
    assert (chart / "crds" / f"{MCPSERVERS}.yaml").is_file(), "not the crds/ layout"
    return chart


def next_chart(target: Path, version: str, new_fields: list[str]) -> Path:
    """This chart as a later version whose MCPServer CRD has new optional spec fields."""
    chart = Path(shutil.copytree(CHART, target))
    crd_file = chart / "files" / "crds" / f"{MCPSERVERS}.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for field in new_fields:
        spec["properties"][field] = {"type": "string", "description": "Added by an upgrade."}
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    meta = chart / "Chart.yaml"
    meta.write_text(re.sub(r"^version: .*$", f"version: {version}", meta.read_text(), flags=re.M))
    return chart


async def spec_fields(admin: KubeClient) -> set[str]:
    live = await admin.get(CRD_API, "CustomResourceDefinition", MCPSERVERS, None)
    assert live is not None
    schema = live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return set(schema["properties"]["spec"]["properties"])


async def kept_field(admin: KubeClient, namespace: str, name: str, field: str) -> bool:
    """The API server keeps a field only when its schema has it (a create prunes others)."""
    body = custom_resource("MCPServer", name, namespace, {"url": "http://127.0.0.1:9/mcp"})
    body["spec"][field] = "kept"
    await admin.create(body)
    live = await admin.get("devserver.ecosphere.network/v1alpha1", "MCPServer", name, namespace)
    return (live or {}).get("spec", {}).get(field) == "kept"


def helm_failing(*args: str | Path, kubeconfig: Path) -> str:
    argv = [str(helm_binary()), *(str(a) for a in args), "--kubeconfig", str(kubeconfig)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode != 0, f"helm {args} succeeded: {result.stdout}"
    return result.stderr


async def test_helm_upgrade_from_the_previous_chart_applies_changed_crds(
    control_plane_binaries: ControlPlaneBinaries, tmp_path: Path
) -> None:
    """previous chart (CRDs in crds/) -> this chart with a new CRD field (--take-ownership,
    once) -> a next version with another new field (a plain upgrade) -> uninstall keeps them.
    A control plane of its own: the CRDs change, and other chart tests install theirs."""
    release, namespace = "devserver-operator", "devserver-system"
    with LocalControlPlane(control_plane_binaries) as local:
        kubeconfig = local.kubeconfig_path
        admin = KubeClient(Credentials.from_kubeconfig(str(kubeconfig)))
        try:
            previous = previous_chart(tmp_path / "previous")
            helm("install", release, previous, "-n", namespace, "--create-namespace",
                 *NO_WEBHOOK, kubeconfig=kubeconfig)  # fmt: skip
            await wait_for(lambda: established(admin, MCPSERVERS), seconds=30, what="the CRD")
            assert "upgradeCheck" not in await spec_fields(admin)
            assert not await kept_field(admin, "default", "before", "upgradeCheck")

            current = next_chart(tmp_path / "current", "0.1.0", ["upgradeCheck"])
            # The CRDs came from crds/: not the release's, and Helm does not adopt them silently.
            refusal = helm_failing("upgrade", release, current, "-n", namespace, *NO_WEBHOOK,
                                   kubeconfig=kubeconfig)  # fmt: skip
            assert "invalid ownership metadata" in refusal or "cannot be imported" in refusal
            helm("upgrade", release, current, "-n", namespace, "--take-ownership",
                 *NO_WEBHOOK, kubeconfig=kubeconfig)  # fmt: skip
            assert "upgradeCheck" in await spec_fields(admin)
            assert await kept_field(admin, "default", "after", "upgradeCheck")
            live = await admin.get(CRD_API, "CustomResourceDefinition", MCPSERVERS, None)
            assert live is not None
            assert live["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
            assert live["metadata"]["annotations"]["meta.helm.sh/release-name"] == release

            later = next_chart(tmp_path / "later", "0.1.1", ["upgradeCheck", "laterField"])
            helm("upgrade", release, later, "-n", namespace, *NO_WEBHOOK, kubeconfig=kubeconfig)
            assert {"upgradeCheck", "laterField"} <= await spec_fields(admin)
            assert await kept_field(admin, "default", "later", "laterField")

            helm("uninstall", release, "-n", namespace, kubeconfig=kubeconfig)
            assert "laterField" in await spec_fields(admin), "kept on uninstall"
            live_objects = await admin.raw(
                "GET", "/apis/devserver.ecosphere.network/v1alpha1/mcpservers"
            )
            assert len(live_objects["items"]) == 3, "the custom resources stay with their CRD"
        finally:
            await admin.close()


async def test_a_first_install_with_two_replicas_holds_its_peering_object(
    control_plane_binaries: ControlPlaneBinaries,
) -> None:
    """Two replicas bring a ClusterKopfPeering: its CRD must exist before Helm renders the
    release, which is why kopf's CRDs stay in crds/ while the four kinds' are templates."""
    with LocalControlPlane(control_plane_binaries) as local:
        admin = KubeClient(Credentials.from_kubeconfig(str(local.kubeconfig_path)))
        try:
            helm("install", "ha", CHART, "-n", "ops", "--create-namespace", "--set", "replicas=2",
                 *NO_WEBHOOK, kubeconfig=local.kubeconfig_path)  # fmt: skip
            peering = await admin.raw(
                "GET", "/apis/kopf.dev/v1/clusterkopfpeerings/ha-devserver-operator"
            )
            assert peering["kind"] == "ClusterKopfPeering"
            assert await established(admin, MCPSERVERS)
        finally:
            await admin.close()
