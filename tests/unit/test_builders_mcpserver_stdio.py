"""Children of a stdio server image: the image unchanged in a StatefulSet, the proxy in a
Deployment with a Role that names only the server's pod. Valid Kubernetes objects, Pod
Security "restricted", Secrets only in the server container."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.builders.common import CONFIG_HASH_ANNOTATION, Owner
from devserver_operator.builders.mcpserver import McpServerInputs, build_children, served_transport
from devserver_operator.render import load_documents, render_document
from devserver_operator.settings import OperatorSettings
from tests.support.pod_security import restricted_violations

OWNER = Owner(kind="MCPServer", name="github", namespace="team-a", uid="1234")
IMAGE = "ghcr.io/github/github-mcp-server:v0.20.2"
PROXY = "ghcr.io/ecospherenetwork/devserver-operator:9.9.9"
KUBERNETES_VERSION = "1.35.0"
SECRET_ENV = {
    "name": "GITHUB_PERSONAL_ACCESS_TOKEN",
    "valueFrom": {"secretKeyRef": {"name": "github", "key": "token"}},
}


def children(spec: dict[str, Any], **extra: Any) -> dict[str, dict[str, Any]]:
    inputs = McpServerInputs(
        owner=OWNER,
        spec=MCPServerSpec.model_validate({"transport": "stdio", "image": IMAGE, **spec}),
        bridge_image="supercorp/supergateway:4.0.0",
        operator_namespace="devserver-system",
        proxy_image=PROXY,
        **extra,
    )
    built = build_children(inputs)
    keyed = {f"{child['kind']}/{child['metadata']['name']}": child for child in built}
    assert len(keyed) == len(built)  # no two children share kind and name
    return keyed


def server_container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pod = objects["StatefulSet/github-server"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return dict(container)


def proxy_pod(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(objects["Deployment/github"]["spec"]["template"]["spec"])


def test_a_catalog_style_image_gets_a_server_a_proxy_and_the_proxys_identity() -> None:
    objects = children({"args": ["stdio"]})
    assert sorted(objects) == [
        "Deployment/github",
        "NetworkPolicy/github",
        "NetworkPolicy/github-server",
        "Role/github-stdio-proxy",
        "RoleBinding/github-stdio-proxy",
        "Service/github",
        "ServiceAccount/github-stdio-proxy",
        "StatefulSet/github-server",
    ]


def test_the_image_runs_as_it_is_with_stdin_open_and_args_replacing_its_cmd() -> None:
    plain = server_container(children({}))
    assert plain["image"] == IMAGE
    assert "command" not in plain and "args" not in plain  # entrypoint and CMD of the image
    assert (plain["stdin"], plain["stdinOnce"], plain["tty"]) == (True, False, False)
    assert "ports" not in plain and "readinessProbe" not in plain
    with_args = server_container(children({"args": ["stdio", "--read-only"]}))
    assert with_args["args"] == ["stdio", "--read-only"] and "command" not in with_args
    overridden = server_container(children({"command": ["/bin/server"], "args": ["x"]}))
    assert (overridden["command"], overridden["args"]) == (["/bin/server"], ["x"])


def test_secrets_and_volumes_reach_only_the_server_container() -> None:
    objects = children(
        {
            "env": [SECRET_ENV],
            "envFrom": [{"secretRef": {"name": "more"}}],
            "volumes": [
                {"name": "creds", "mountPath": "/creds", "secret": {"secretName": "files"}}
            ],
        },
        config_hash="abc",
    )
    server = server_container(objects)
    assert SECRET_ENV in server["env"]
    assert server["envFrom"] == [{"secretRef": {"name": "more"}}]
    assert {"name": "creds", "mountPath": "/creds", "readOnly": True} in server["volumeMounts"]
    template = objects["StatefulSet/github-server"]["spec"]["template"]
    assert template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] == "abc"
    proxy = proxy_pod(objects)
    text = str(proxy)
    assert "secret" not in text.lower() and "github" in text  # only its pod name
    assert [v["name"] for v in proxy["volumes"]] == ["devserver-tmp"]


def test_the_proxy_attaches_to_the_one_server_pod_and_serves_the_mcp_port() -> None:
    objects = children({"port": 3000, "path": "/rpc"})
    [proxy] = proxy_pod(objects)["containers"]
    assert proxy["image"] == PROXY
    assert proxy["command"] == ["devserver-operator", "stdio-proxy"]
    args = proxy["args"]
    assert args[args.index("--pod") + 1] == "github-server-0"
    assert args[args.index("--container") + 1] == "server"
    assert args[args.index("--port") + 1] == "3000"
    assert args[args.index("--path") + 1] == "/rpc"
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert proxy["ports"] == [{"name": "mcp", "containerPort": 3000, "protocol": "TCP"}]
    service = objects["Service/github"]["spec"]
    deployment = objects["Deployment/github"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[key] == value for key, value in service["selector"].items())
    server_labels = objects["StatefulSet/github-server"]["spec"]["template"]["metadata"]["labels"]
    # The Service never selects the server pod, which listens on nothing.
    assert not all(server_labels.get(key) == value for key, value in service["selector"].items())
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_the_proxys_role_names_only_the_server_pod() -> None:
    objects = children({})
    role = objects["Role/github-stdio-proxy"]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["pods/attach"],
            "resourceNames": ["github-server-0"],
            "verbs": ["create", "get"],
        },
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "resourceNames": ["github-server-0"],
            "verbs": ["delete"],
        },
    ]
    binding = objects["RoleBinding/github-stdio-proxy"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "github-stdio-proxy",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "github-stdio-proxy", "namespace": "team-a"}
    ]
    proxy = proxy_pod(objects)
    assert proxy["serviceAccountName"] == "github-stdio-proxy"
    assert proxy["automountServiceAccountToken"] is True


def test_the_server_keeps_the_users_identity_and_otherwise_gets_no_token() -> None:
    default = children({})["StatefulSet/github-server"]["spec"]["template"]["spec"]
    assert default["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in default
    chosen = children({"serviceAccount": {"create": True, "name": "gh"}})
    pod = chosen["StatefulSet/github-server"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "gh"
    assert "ServiceAccount/gh" in chosen


def test_network_policies_let_nothing_into_the_server_and_keep_its_egress_rules() -> None:
    egress = [{"ports": [{"protocol": "TCP", "port": 443}]}]
    objects = children({"networkPolicy": {"egress": egress}})
    server = objects["NetworkPolicy/github-server"]["spec"]
    assert server["ingress"] == []
    assert server["policyTypes"] == ["Ingress", "Egress"]
    assert server["egress"][1:] == egress
    proxy = objects["NetworkPolicy/github"]["spec"]
    assert proxy["policyTypes"] == ["Ingress"] and "egress" not in proxy
    assert proxy["podSelector"]["matchLabels"] == objects["Service/github"]["spec"]["selector"]
    none = children({"networkPolicy": {"enabled": False}})
    assert not [key for key in none if key.startswith("NetworkPolicy/")]


@pytest.mark.parametrize(("replicas", "expected"), [(None, 1), (1, 1), (0, 0)])
def test_replicas_zero_stops_both_the_server_and_the_proxy(
    replicas: int | None, expected: int
) -> None:
    objects = children({} if replicas is None else {"replicas": replicas})
    assert objects["StatefulSet/github-server"]["spec"]["replicas"] == expected
    assert objects["Deployment/github"]["spec"]["replicas"] == expected


def test_long_names_stay_within_the_statefulset_label_limit() -> None:
    name = "a" * 63
    inputs = McpServerInputs(
        owner=Owner(kind="MCPServer", name=name, namespace="ns", uid="1"),
        spec=MCPServerSpec.model_validate({"transport": "stdio", "image": IMAGE}),
        bridge_image="b:1",
        operator_namespace="devserver-system",
    )
    statefulset = next(c for c in build_children(inputs) if c["kind"] == "StatefulSet")
    assert len(statefulset["metadata"]["name"]) <= 52
    assert statefulset["metadata"]["name"].endswith("-server")


def test_clients_see_streamable_http() -> None:
    spec = MCPServerSpec.model_validate({"transport": "stdio", "image": IMAGE})
    assert spec.attached
    assert served_transport(spec) == "streamable-http"


FULL = {
    "args": ["stdio"],
    "env": [SECRET_ENV],
    "volumes": [{"name": "data", "mountPath": "/data", "emptyDir": {}}],
    "serviceAccount": {"create": True},
    "podOverrides": {"imagePullSecrets": [{"name": "pull"}], "terminationGracePeriodSeconds": 5},
    "scheduling": {"nodeSelector": {"kubernetes.io/os": "linux"}},
    "networkPolicy": {"egress": [{"ports": [{"protocol": "TCP", "port": 443}]}]},
}


@pytest.mark.parametrize("spec", [{}, FULL], ids=["minimal", "full"])
def test_every_child_passes_strict_kubernetes_validation(spec: dict[str, Any]) -> None:
    for child in children(spec, config_hash="h").values():
        kubernetes_validate.validate(child, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("spec", [{}, FULL], ids=["minimal", "full"])
def test_both_pods_meet_pod_security_restricted(spec: dict[str, Any]) -> None:
    objects = children(spec)
    for key in ("StatefulSet/github-server", "Deployment/github"):
        assert restricted_violations(objects[key]["spec"]["template"]["spec"]) == [], key


def test_render_shows_the_attached_children_offline(tmp_path: Any) -> None:
    manifest = tmp_path / "github.yaml"
    manifest.write_text(
        "apiVersion: devserver.ecosphere.network/v1alpha1\nkind: MCPServer\n"
        "metadata: {name: github, namespace: team-a}\n"
        f"spec: {{transport: stdio, image: '{IMAGE}', args: [stdio]}}\n"
    )
    settings = OperatorSettings(stdio_proxy_image=PROXY)
    [(source, document)] = load_documents([manifest])
    rendered = render_document(source, document, settings)
    assert rendered is not None
    kinds = sorted(child["kind"] for child in rendered.children)
    assert kinds == [
        "Deployment",
        "NetworkPolicy",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "StatefulSet",
    ]
