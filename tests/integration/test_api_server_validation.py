"""The real API server: CRDs install, examples apply, bad input is refused (schema and CEL),
server-side apply records our field manager, the status subresource is honoured."""

from __future__ import annotations

from typing import Any

import pytest

from devserver_operator.api import API_VERSION, KINDS_BY_NAME
from devserver_operator.kube.client import FIELD_MANAGER, Credentials, KubeClient
from devserver_operator.kube.errors import InvalidError
from devserver_operator.render import load_documents, render_document
from devserver_operator.settings import OperatorSettings
from tests.support.invalid_cases import INVALID_CASES, InvalidCase, custom_resource
from tests.support.operator_harness import custom_resource as make_resource

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("installed_crds")]

EXAMPLES = [
    (source, doc)
    for source, doc in load_documents(
        [__import__("pathlib").Path(__file__).resolve().parents[2] / "examples"]
    )
    if doc.get("kind") != "Namespace"
]


def _in(namespace: str, document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "metadata": {**document["metadata"], "namespace": namespace}}


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda c: c.id)
async def test_api_server_refuses_invalid_resources(
    case: InvalidCase, kube: KubeClient, namespace: str
) -> None:
    # A create, not an apply: server-side apply fails typed conversion with a 500 before the
    # schema and CEL get to speak.
    with pytest.raises(InvalidError) as refused:
        await kube.create(custom_resource(case, namespace), dry_run=True)
    assert case.expect in refused.value.message, refused.value.message


async def test_every_example_applies(kube: KubeClient, namespace: str) -> None:
    for _, document in EXAMPLES:
        await kube.apply(_in(namespace, document), dry_run=True)


async def test_rendered_children_pass_a_server_side_dry_run(
    kube: KubeClient, namespace: str
) -> None:
    settings = OperatorSettings()
    count = 0
    for source, document in EXAMPLES:
        rendered = render_document(source, _in(namespace, document), settings)
        for child in rendered.children if rendered else []:
            if child["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # needs Prometheus Operator's CRD; tests/integration/test_alertrule.py
            await kube.apply(child, dry_run=True)
            count += 1
    assert count >= 10


async def test_server_side_apply_records_our_field_manager(
    control_plane: Any, namespace: str
) -> None:
    credentials = Credentials.from_kubeconfig(str(control_plane.kubeconfig_path))
    async with KubeClient(credentials, field_manager=FIELD_MANAGER) as operator_client:
        applied = await operator_client.apply(
            make_resource("MCPServer", "ssa", namespace, {"url": "http://127.0.0.1:9/mcp"})
        )
    entries = applied["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in entries] == [(FIELD_MANAGER, "Apply")]


async def test_cel_rule_message_comes_from_the_server(kube: KubeClient, namespace: str) -> None:
    both = make_resource("MCPServer", "both", namespace, {"image": "a/b:1", "url": "http://x/mcp"})
    with pytest.raises(InvalidError) as refused:
        await kube.apply(both)
    assert "set exactly one of image (run a workload) or url" in refused.value.message
    assert "x-kubernetes-validations" not in refused.value.message


async def test_mcpserver_name_must_suit_a_service(kube: KubeClient, namespace: str) -> None:
    bad = make_resource("MCPServer", "1-starts-with-digit", namespace, {"url": "http://x/mcp"})
    with pytest.raises(InvalidError, match="DNS-1035"):
        await kube.apply(bad)


async def test_status_subresource_ignores_spec_changes(kube: KubeClient, namespace: str) -> None:
    created = await kube.apply(
        make_resource(
            "TeamAccess",
            "sub",
            namespace,
            {"role": "viewer", "members": [{"kind": "User", "name": "a"}]},
        )
    )
    patched = await kube._request(  # a raw merge patch, on purpose
        "PATCH",
        f"/apis/{API_VERSION}/namespaces/{namespace}/teamaccesses/sub/status",
        body=b'{"spec": {"role": "admin"}, "status": {"memberCount": 1}}',
        content_type="application/merge-patch+json",
    )
    assert patched["spec"]["role"] == "viewer"
    assert patched["status"]["memberCount"] == 1
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]


def test_every_kind_is_served_in_the_devserver_category(control_plane: Any) -> None:
    with control_plane.http_client() as client:
        resources = client.get(f"/apis/{API_VERSION}").json()["resources"]
    served = {r["kind"] for r in resources if "devserver" in r.get("categories", [])}
    assert served == set(KINDS_BY_NAME)
