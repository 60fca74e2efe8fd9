"""MCPServer builders: every branch, valid Kubernetes objects, Pod Security "restricted"."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.builders.common import CONFIG_HASH_ANNOTATION, Owner
from devserver_operator.builders.mcpserver import (
    McpServerInputs,
    build_children,
    config_hash,
    referenced_objects,
    served_transport,
    server_url,
)
from devserver_operator.render import load_documents, render_document
from devserver_operator.settings import OperatorSettings
from tests.support.pod_security import restricted_violations

OWNER = Owner(kind="MCPServer", name="srv", namespace="team-a", uid="1234")
IMAGE = "ghcr.io/example/server:1.0.0"
KUBERNETES_VERSION = "1.35.0"


def children(spec: dict[str, Any], **extra: Any) -> dict[str, dict[str, Any]]:
    inputs = McpServerInputs(
        owner=OWNER,
        spec=MCPServerSpec.model_validate(spec),
        bridge_image="supercorp/supergateway:4.0.0",
        operator_namespace="devserver-system",
        **extra,
    )
    return {child["kind"]: child for child in build_children(inputs)}


def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    return result


def pod_spec(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = objects["Deployment"]["spec"]["template"]["spec"]
    return result


def test_remote_server_has_no_children() -> None:
    assert children({"url": "https://mcp.example.com/mcp"}) == {}


def test_minimal_workload_children() -> None:
    objects = children({"image": IMAGE})
    assert sorted(objects) == ["Deployment", "NetworkPolicy", "Service"]


def test_every_child_is_owned_and_labelled_without_copying_parent_labels() -> None:
    for child in children(
        {"image": IMAGE, "replicas": 3, "serviceAccount": {"create": True}}
    ).values():
        metadata = child["metadata"]
        assert metadata["ownerReferences"] == [
            {
                "apiVersion": "devserver.ecosphere.network/v1alpha1",
                "kind": "MCPServer",
                "name": "srv",
                "uid": "1234",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert metadata["namespace"] == "team-a"
        labels = metadata["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "devserver-operator"
        assert labels["app.kubernetes.io/instance"] == "srv"
        assert labels["app.kubernetes.io/part-of"] == "devserver-operator"
        assert {"app.kubernetes.io/name", "app.kubernetes.io/component"} <= set(labels)


def test_long_names_fit_label_values() -> None:
    owner = Owner(kind="MCPServer", name="a" * 200, namespace="n", uid="u")
    inputs = McpServerInputs(
        owner=owner, spec=MCPServerSpec(image=IMAGE), bridge_image="b:1", operator_namespace="o"
    )
    for child in build_children(inputs):
        assert all(len(v) <= 63 for v in child["metadata"]["labels"].values())


def test_replicas_default_zero_and_explicit() -> None:
    assert children({"image": IMAGE})["Deployment"]["spec"]["replicas"] == 1
    assert children({"image": IMAGE, "replicas": 0})["Deployment"]["spec"]["replicas"] == 0
    assert children({"image": IMAGE, "replicas": 4})["Deployment"]["spec"]["replicas"] == 4


def test_pdb_only_with_more_than_one_replica() -> None:
    assert "PodDisruptionBudget" not in children({"image": IMAGE, "replicas": 1})
    pdb = children({"image": IMAGE, "replicas": 2})["PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_autoscaling_adds_hpa_and_leaves_replicas_to_it() -> None:
    objects = children({"image": IMAGE, "autoscaling": {"minReplicas": 2, "maxReplicas": 5}})
    assert "replicas" not in objects["Deployment"]["spec"]
    hpa = objects["HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "srv"
    assert "PodDisruptionBudget" in objects


def test_service_ports_and_session_affinity() -> None:
    service = children({"image": IMAGE, "port": 3001, "sessionAffinity": "ClientIP"})["Service"]
    assert service["spec"]["ports"][0]["port"] == 3001
    assert service["spec"]["ports"][0]["targetPort"] == "mcp"
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert "sessionAffinity" not in children({"image": IMAGE})["Service"]["spec"]


def test_service_selector_matches_pod_labels() -> None:
    objects = children({"image": IMAGE})
    selector = objects["Service"]["spec"]["selector"]
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert objects["Deployment"]["spec"]["selector"]["matchLabels"] == selector


def test_service_account_created_used_or_absent() -> None:
    created = children(
        {"image": IMAGE, "serviceAccount": {"create": True, "annotations": {"a": "b"}}}
    )
    assert created["ServiceAccount"]["metadata"]["name"] == "srv"
    assert created["ServiceAccount"]["metadata"]["annotations"] == {"a": "b"}
    assert pod_spec(created)["serviceAccountName"] == "srv"
    existing = children({"image": IMAGE, "serviceAccount": {"name": "reader"}})
    assert "ServiceAccount" not in existing
    assert pod_spec(existing)["serviceAccountName"] == "reader"
    none = children({"image": IMAGE})
    assert "serviceAccountName" not in pod_spec(none)
    assert pod_spec(none)["automountServiceAccountToken"] is False


def test_network_policy_default_custom_and_disabled() -> None:
    default = children({"image": IMAGE})["NetworkPolicy"]["spec"]
    peers = default["ingress"][0]["from"]
    assert {"podSelector": {}} in peers
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "devserver-system"}}
    } in peers
    assert default["policyTypes"] == ["Ingress"]
    custom = children(
        {
            "image": IMAGE,
            "networkPolicy": {
                "ingressFrom": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}],
                "egress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
            },
        }
    )["NetworkPolicy"]["spec"]
    assert {"podSelector": {}} not in custom["ingress"][0]["from"]
    assert custom["policyTypes"] == ["Ingress", "Egress"]
    assert custom["egress"][0]["ports"][0]["port"] == 53  # DNS stays reachable
    assert "NetworkPolicy" not in children({"image": IMAGE, "networkPolicy": {"enabled": False}})


def test_stdio_runs_the_command_behind_the_bridge() -> None:
    objects = children(
        {
            "transport": "stdio",
            "command": ["npx", "-y", "@modelcontextprotocol/server-memory@1.0.0"],
            "args": ["--x", "a b"],
        }
    )
    server = container(objects)
    assert server["image"] == "supercorp/supergateway:4.0.0"
    assert server["command"] == ["supergateway"]
    args = server["args"]
    assert (
        args[args.index("--stdio") + 1]
        == "npx -y @modelcontextprotocol/server-memory@1.0.0 --x 'a b'"
    )
    assert args[args.index("--outputTransport") + 1] == "streamableHttp"
    assert args[args.index("--streamableHttpPath") + 1] == "/mcp"
    assert args[args.index("--port") + 1] == "8080"


def test_stdio_with_an_image_is_attached_not_bridged() -> None:
    objects = children(
        {"transport": "stdio", "image": "my/python:2.0", "command": ["uvx", "mcp-server-fetch"]}
    )
    assert "StatefulSet" in objects  # tests/unit/test_builders_mcpserver_stdio.py has the rest
    assert "supergateway" not in str(objects)


def test_http_server_command_args_and_env() -> None:
    server = container(
        children(
            {
                "image": IMAGE,
                "command": ["node", "server.js"],
                "args": ["--port", "8080"],
                "env": [
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}
                ],
                "envFrom": [{"configMapRef": {"name": "settings"}}],
            }
        )
    )
    assert server["command"] == ["node", "server.js"]
    assert server["args"] == ["--port", "8080"]
    assert {"name": "HOME", "value": "/tmp"} in server["env"]
    assert server["envFrom"] == [{"configMapRef": {"name": "settings"}}]
    assert "command" not in container(children({"image": IMAGE}))


def test_user_home_is_kept() -> None:
    server = container(children({"image": IMAGE, "env": [{"name": "HOME", "value": "/data"}]}))
    assert [e for e in server["env"] if e["name"] == "HOME"] == [{"name": "HOME", "value": "/data"}]


def test_volumes_are_always_mounted() -> None:
    objects = children(
        {
            "image": IMAGE,
            "volumes": [
                {"name": "cfg", "mountPath": "/etc/cfg", "configMap": {"name": "c"}},
                {"name": "creds", "mountPath": "/var/creds", "secret": {"secretName": "s"}},
                {"name": "scratch", "mountPath": "/scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                {
                    "name": "data",
                    "mountPath": "/data",
                    "subPath": "x",
                    "readOnly": True,
                    "persistentVolumeClaim": {"claimName": "pvc"},
                },
            ],
        }
    )
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    mounts = {m["name"]: m for m in container(objects)["volumeMounts"]}
    assert set(volumes) == set(mounts)
    assert volumes["cfg"]["configMap"] == {"name": "c"}
    assert volumes["creds"]["secret"] == {"secretName": "s"}
    assert volumes["scratch"]["emptyDir"] == {"sizeLimit": "1Gi"}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "pvc", "readOnly": True}
    assert mounts["cfg"]["readOnly"] and mounts["creds"]["readOnly"]
    assert "readOnly" not in mounts["scratch"]
    assert mounts["data"]["subPath"] == "x"
    assert mounts["devserver-tmp"]["mountPath"] == "/tmp"


def test_user_tmp_mount_replaces_the_default() -> None:
    objects = children(
        {
            "image": IMAGE,
            "volumes": [{"name": "t", "mountPath": "/tmp", "emptyDir": {"medium": "Memory"}}],
        }
    )
    assert [m["mountPath"] for m in container(objects)["volumeMounts"]] == ["/tmp"]


def test_default_resources_and_override() -> None:
    assert container(children({"image": IMAGE}))["resources"]["requests"]["memory"] == "128Mi"
    custom = {"limits": {"cpu": "1"}}
    assert container(children({"image": IMAGE, "resources": custom}))["resources"] == custom


def test_default_probes_allow_slow_first_start_and_can_be_replaced() -> None:
    server = container(children({"image": IMAGE}))
    startup = server["startupProbe"]
    assert startup["tcpSocket"] == {"port": "mcp"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    probe = {"httpGet": {"path": "/healthz", "port": 8080}}
    replaced = container(children({"image": IMAGE, "probes": {"readiness": probe}}))
    assert replaced["readinessProbe"] == probe
    assert replaced["livenessProbe"]["tcpSocket"] == {"port": "mcp"}


def test_scheduling_and_pod_overrides() -> None:
    objects = children(
        {
            "image": IMAGE,
            "scheduling": {
                "nodeSelector": {"pool": "mcp"},
                "tolerations": [{"key": "mcp", "operator": "Exists", "effect": "NoSchedule"}],
                "priorityClassName": "high",
            },
            "podOverrides": {
                "labels": {"team": "a", "app.kubernetes.io/instance": "spoof"},
                "annotations": {"note": "x"},
                "imagePullSecrets": [{"name": "regcred"}],
                "terminationGracePeriodSeconds": 5,
            },
        }
    )
    spec = pod_spec(objects)
    assert spec["nodeSelector"] == {"pool": "mcp"}
    assert spec["tolerations"][0]["key"] == "mcp"
    assert spec["priorityClassName"] == "high"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["terminationGracePeriodSeconds"] == 5
    template = objects["Deployment"]["spec"]["template"]["metadata"]
    assert template["labels"]["team"] == "a"
    assert template["labels"]["app.kubernetes.io/instance"] == "srv"  # ours win
    assert template["annotations"] == {"note": "x"}


def test_security_context_overrides_replace_the_restricted_defaults() -> None:
    objects = children(
        {
            "image": IMAGE,
            "podOverrides": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containerSecurityContext": {"readOnlyRootFilesystem": False},
            },
        }
    )
    assert "runAsUser" not in pod_spec(objects)["securityContext"]  # OpenShift assigns UIDs
    assert container(objects)["securityContext"] == {"readOnlyRootFilesystem": False}


def test_config_hash_lands_on_the_pod_template() -> None:
    objects = children({"image": IMAGE}, config_hash="abc123")
    annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations[CONFIG_HASH_ANNOTATION] == "abc123"


def test_config_hash_changes_with_content_and_presence() -> None:
    base = config_hash({"secret/s": {"k": "v1"}})
    assert base == config_hash({"secret/s": {"k": "v1"}})
    assert base != config_hash({"secret/s": {"k": "v2"}})
    assert base != config_hash({"secret/s": None})


def test_referenced_objects_are_found_everywhere() -> None:
    spec = MCPServerSpec.model_validate(
        {
            "image": IMAGE,
            "env": [
                {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c1", "key": "k"}}},
                {"name": "C", "value": "plain"},
            ],
            "envFrom": [{"secretRef": {"name": "s2"}}, {"configMapRef": {"name": "c2"}}],
            "volumes": [
                {"name": "v1", "mountPath": "/a", "secret": {"secretName": "s3"}},
                {"name": "v2", "mountPath": "/b", "configMap": {"name": "c3"}},
            ],
        }
    )
    assert referenced_objects(spec) == ({"s1", "s2", "s3"}, {"c1", "c2", "c3"})


def test_references_without_a_name_read_nothing() -> None:
    # Found by the fuzz suite: the schema allows them (the API server then refuses the
    # Deployment); the operator crashed on them instead of reporting that.
    spec = MCPServerSpec.model_validate(
        {
            "image": IMAGE,
            "env": [
                {"name": "A", "valueFrom": {"secretKeyRef": {"key": "k"}}},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"key": "k"}}},
            ],
            "envFrom": [{"secretRef": {}}, {"configMapRef": {"optional": True}}],
        }
    )
    assert referenced_objects(spec) == (set(), set())


def test_urls_and_transports() -> None:
    remote = MCPServerSpec(url="https://mcp.example.com/x")
    assert server_url(OWNER, remote, "cluster.local") == "https://mcp.example.com/x"
    sse = MCPServerSpec.model_validate({"image": IMAGE, "transport": "sse", "port": 9000})
    assert server_url(OWNER, sse, "cluster.local") == "http://srv.team-a.svc.cluster.local:9000/sse"
    assert served_transport(sse) == "sse"
    stdio = MCPServerSpec.model_validate({"transport": "stdio", "command": ["x"]})
    assert served_transport(stdio) == "streamable-http"
    assert server_url(OWNER, MCPServerSpec(image=IMAGE, path="/v1/mcp"), "c.l").endswith(
        ":8080/v1/mcp"
    )


EXAMPLE_CHILDREN = [
    (f"{rendered.kind}/{rendered.name}:{child['kind']}", child)
    for source, doc in load_documents(
        [__import__("pathlib").Path(__file__).resolve().parents[2] / "examples"]
    )
    if (rendered := render_document(source, doc, OperatorSettings())) is not None
    for child in rendered.children
]


def test_examples_render_children() -> None:
    assert len(EXAMPLE_CHILDREN) >= 10


@pytest.mark.parametrize(("name", "child"), EXAMPLE_CHILDREN, ids=[n for n, _ in EXAMPLE_CHILDREN])
def test_rendered_children_pass_strict_kubernetes_validation(
    name: str, child: dict[str, Any]
) -> None:
    if child["apiVersion"].startswith("monitoring.coreos.com/"):
        # Not a built-in kind: its rule groups are checked with promtool in the AlertRule tests.
        assert child["spec"]["groups"]
        return
    kubernetes_validate.validate(child, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("name", "child"),
    [(n, c) for n, c in EXAMPLE_CHILDREN if c["kind"] == "Deployment"],
    ids=[n for n, c in EXAMPLE_CHILDREN if c["kind"] == "Deployment"],
)
def test_rendered_pods_meet_pod_security_restricted(name: str, child: dict[str, Any]) -> None:
    assert restricted_violations(child["spec"]["template"]["spec"]) == []


def test_pod_security_checker_can_fail() -> None:
    bad = {
        "hostNetwork": True,
        "securityContext": {},
        "containers": [{"name": "c", "securityContext": {"privileged": True}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    found = restricted_violations(bad)
    assert len(found) >= 5
