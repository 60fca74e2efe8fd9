"""What each spec makes the operator do for its author, as rights (admission/references.py),
and the pure parts of the decision (admission/decision.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devserver_operator.admission.decision import BadReviewError, decide, needed
from devserver_operator.admission.references import (
    Requirement,
    changed,
    check_allow_list_entry,
    image_allowed,
    requirements,
)
from devserver_operator.api.alertrule import AlertRuleSpec
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec

BRIDGE = "supercorp/supergateway:4.0.0"
IMAGE = "ghcr.io/team/server:1.0"
DIGEST = "sha256:" + "a" * 64


def rights(kind: str, spec: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    model = {
        "MCPServer": MCPServerSpec,
        "WorkflowIntegration": WorkflowIntegrationSpec,
        "AlertRule": AlertRuleSpec,
    }[kind]
    found = requirements(kind, model.model_validate(spec), bridge_image=BRIDGE)
    return {(r.field, r.resource, r.verb, r.name) for r in found}


POD = ("spec.image", "pods", "create", "")

# -- MCPServer ------------------------------------------------------------------------------


def test_a_workload_needs_pods_or_the_allow_list_and_nothing_else() -> None:
    [requirement] = requirements(
        "MCPServer", MCPServerSpec.model_validate({"image": IMAGE}), bridge_image=BRIDGE
    )
    assert (requirement.field, requirement.resource, requirement.verb) == POD[:3]
    assert requirement.image == IMAGE


def test_the_bridge_image_is_a_workload_too() -> None:
    spec = MCPServerSpec.model_validate({"transport": "stdio", "command": ["npx", "x"]})
    [requirement] = requirements("MCPServer", spec, bridge_image=BRIDGE)
    assert requirement.field == "spec.transport (the bridge image)"
    assert requirement.image == BRIDGE


def test_a_stdio_image_is_a_workload_of_its_own_image_with_secrets_checked() -> None:
    """Attached by the operator's proxy, the image still runs the author's choice: pods or the
    allow-list, as any image; the proxy (the operator's image) is nobody's choice."""
    spec = MCPServerSpec.model_validate(
        {
            "transport": "stdio",
            "image": IMAGE,
            "args": ["stdio"],
            "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "gh", "key": "token"}}}],
        }
    )
    found = requirements("MCPServer", spec, bridge_image=BRIDGE)
    workload = [r for r in found if r.resource == "pods"]
    assert [(r.field, r.image) for r in workload] == [("spec.image", IMAGE)]
    assert ("secrets", "get", "gh") in {(r.resource, r.verb, r.name) for r in found}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            ("spec.env[0].valueFrom.secretKeyRef.name", "secrets", "get", "s"),
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]},
            ("spec.env[0].valueFrom.configMapKeyRef.name", "configmaps", "get", "c"),
        ),
        (
            {"envFrom": [{"secretRef": {"name": "s"}}]},
            ("spec.envFrom[0].secretRef.name", "secrets", "get", "s"),
        ),
        (
            {"envFrom": [{"configMapRef": {"name": "c"}}]},
            ("spec.envFrom[0].configMapRef.name", "configmaps", "get", "c"),
        ),
        (
            {"volumes": [{"name": "v", "mountPath": "/v", "secret": {"secretName": "s"}}]},
            ("spec.volumes[0].secret.secretName", "secrets", "get", "s"),
        ),
        (
            {"volumes": [{"name": "v", "mountPath": "/v", "configMap": {"name": "c"}}]},
            ("spec.volumes[0].configMap.name", "configmaps", "get", "c"),
        ),
        (
            {"podOverrides": {"imagePullSecrets": [{"name": "pull"}]}},
            ("spec.podOverrides.imagePullSecrets[0].name", "secrets", "get", "pull"),
        ),
        (
            {
                "headers": [
                    {
                        "name": "Authorization",
                        "valueFrom": {"secretKeyRef": {"name": "h", "key": "k"}},
                    }
                ]
            },
            ("spec.headers[0].valueFrom.secretKeyRef.name", "secrets", "get", "h"),
        ),
        (
            {"serviceAccount": {"name": "deployer"}},
            ("spec.serviceAccount.name", "pods", "create", ""),
        ),
    ],
)
def test_every_reference_of_a_workload(extra: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert rights("MCPServer", {"image": IMAGE, **extra}) == {POD, expected}


def test_unreferenced_volumes_and_plain_env_need_nothing() -> None:
    spec = {
        "image": IMAGE,
        "env": [
            {"name": "A", "value": "b"},
            {"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "volumes": [
            {"name": "t", "mountPath": "/t", "emptyDir": {}},
            {"name": "p", "mountPath": "/p", "persistentVolumeClaim": {"claimName": "data"}},
        ],
    }
    assert rights("MCPServer", spec) == {POD}


def test_the_service_account_the_server_creates_itself_needs_no_pod_rights() -> None:
    assert rights("MCPServer", {"image": IMAGE, "serviceAccount": {"create": True}}) == {POD}
    named = {"create": True, "name": "own"}
    assert rights("MCPServer", {"image": IMAGE, "serviceAccount": named}) == {POD}


def test_a_remote_server_needs_only_its_header_secrets() -> None:
    header = {"name": "X-Key", "valueFrom": {"secretKeyRef": {"name": "h", "key": "k"}}}
    spec = {"url": "https://mcp.example/mcp", "headers": [header]}
    assert rights("MCPServer", spec) == {
        ("spec.headers[0].valueFrom.secretKeyRef.name", "secrets", "get", "h")
    }
    assert rights("MCPServer", {"url": "https://mcp.example/mcp"}) == set()


# -- WorkflowIntegration --------------------------------------------------------------------

N8N = {"url": "http://n8n:5678", "apiKeySecretRef": {"name": "n8n-key", "key": "k"}}


def test_workflowintegration_references() -> None:
    spec = {
        "n8n": N8N,
        "credentials": [
            {
                "name": "gh",
                "type": "githubApi",
                "secretRef": {"name": "gh"},
                "fields": [{"field": "t", "secretKey": "t"}],
            }
        ],
        "workflows": [
            {"name": "a", "configMapRef": {"name": "flows", "key": "a.json"}},
            {"name": "b", "template": {"name": "mcp-health-monitor"}},
        ],
    }
    assert rights("WorkflowIntegration", spec) == {
        ("spec.n8n.apiKeySecretRef.name", "secrets", "get", "n8n-key"),
        ("spec.credentials[0].secretRef.name", "secrets", "get", "gh"),
        ("spec.workflows[0].configMapRef.name", "configmaps", "get", "flows"),
    }


def test_openhands_only_reads_nothing() -> None:
    spec = {"openHands": {"configMapName": "openhands-mcp"}}
    assert rights("WorkflowIntegration", spec) == set()


def test_openhands_copies_the_header_secrets_of_the_selected_servers() -> None:
    """The OpenHands Secret carries the MCPServers' header values: its author must be able
    to read the Secrets they come from."""
    spec = WorkflowIntegrationSpec.model_validate(
        {"mcpServers": {"names": ["github"]}, "openHands": {"configMapName": "oh"}}
    )
    found = requirements(
        "WorkflowIntegration",
        spec,
        bridge_image=BRIDGE,
        openhands_headers=[("github", "github-token"), ("github", "github-token")],
    )
    assert [(r.field, r.resource, r.verb, r.name, r.reaches) for r in found] == [
        (
            "spec.openHands (a header of MCPServer github)",
            "secrets",
            "get",
            "github-token",
            "openhands secret oh",
        )
    ]
    # Without openHands nothing is copied, whatever the servers send.
    no_openhands = WorkflowIntegrationSpec.model_validate(
        {
            "mcpServers": {"names": ["github"]},
            "n8n": {"url": "http://n8n", "apiKeySecretRef": {"name": "n8n-api", "key": "k"}},
        }
    )
    found = requirements(
        "WorkflowIntegration",
        no_openhands,
        bridge_image=BRIDGE,
        openhands_headers=[("github", "github-token")],
    )
    assert [r.name for r in found] == ["n8n-api"]


def test_turning_openhands_on_checks_the_header_secrets_an_unrelated_edit_does_not() -> None:
    old = {
        "mcpServers": {"names": ["github"]},
        "n8n": {"url": "http://n8n", "apiKeySecretRef": {"name": "n8n-api", "key": "k"}},
    }
    new = {**old, "openHands": {"configMapName": "oh"}}
    headers = [("github", "github-token")]
    kind = "WorkflowIntegration"
    turned_on = needed(
        review("UPDATE", new, old, kind), bridge_image=BRIDGE, openhands_headers=headers
    )
    assert [r.name for r in turned_on] == ["github-token"]
    edited = {**new, "syncInterval": "10m"}
    unrelated = needed(
        review("UPDATE", edited, new, kind), bridge_image=BRIDGE, openhands_headers=headers
    )
    assert unrelated == []


# -- AlertRule ------------------------------------------------------------------------------

RULES = [{"name": "down", "builtin": {"condition": "MCPServerNotReady"}}]


def channel(**kind: Any) -> dict[str, Any]:
    return {"rules": RULES, "channels": [{"name": "c", **kind}]}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            {"slack": {"webhookUrlSecretRef": {"name": "s", "key": "url"}}},
            {("spec.channels[0].slack.webhookUrlSecretRef.name", "secrets", "get", "s")},
        ),
        (
            {"teams": {"webhookUrlSecretRef": {"name": "t", "key": "url"}}},
            {("spec.channels[0].teams.webhookUrlSecretRef.name", "secrets", "get", "t")},
        ),
        ({"webhook": {"url": "https://hooks.example/x"}}, set()),
        (
            {
                "webhook": {
                    "urlSecretRef": {"name": "u", "key": "url"},
                    "hmacSecretRef": {"name": "h", "key": "k"},
                }
            },
            {
                ("spec.channels[0].webhook.urlSecretRef.name", "secrets", "get", "u"),
                ("spec.channels[0].webhook.hmacSecretRef.name", "secrets", "get", "h"),
            },
        ),
        (
            {
                "email": {
                    "smtpHost": "smtp.example",
                    "from": "a@example.com",
                    "to": ["b@example.com"],
                    "usernameSecretRef": {"name": "smtp", "key": "user"},
                    "passwordSecretRef": {"name": "smtp", "key": "password"},
                }
            },
            {
                ("spec.channels[0].email.usernameSecretRef.name", "secrets", "get", "smtp"),
                ("spec.channels[0].email.passwordSecretRef.name", "secrets", "get", "smtp"),
            },
        ),
    ],
)
def test_alertrule_channel_references(kind: dict[str, Any], expected: set[Any]) -> None:
    assert rights("AlertRule", channel(**kind)) == expected


def test_requirements_refuse_an_unknown_kind() -> None:
    with pytest.raises(TypeError):
        requirements("TeamAccess", object(), bridge_image=BRIDGE)


# -- updates --------------------------------------------------------------------------------


def review(
    operation: str, spec: dict[str, Any], old: dict[str, Any] | None = None, kind: str = "MCPServer"
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "u1",
        "kind": {"group": "devserver.ecosphere.network", "version": "v1alpha1", "kind": kind},
        "namespace": "team",
        "operation": operation,
        "userInfo": {"username": "olga", "groups": ["system:authenticated"]},
        "object": {"spec": spec},
    }
    if old is not None:
        request["oldObject"] = {"spec": old}
    return request


SECRET_ENV = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]


def fields(found: list[Requirement]) -> set[str]:
    return {r.field for r in found}


def test_an_unrelated_edit_needs_nothing() -> None:
    old = {"image": IMAGE, "env": SECRET_ENV, "serviceAccount": {"name": "deployer"}}
    new = {**old, "replicas": 3}
    assert needed(review("UPDATE", new, old), bridge_image=BRIDGE) == []


def test_a_new_reference_is_checked_alone() -> None:
    old = {"image": IMAGE}
    new = {"image": IMAGE, "env": SECRET_ENV}
    assert fields(needed(review("UPDATE", new, old), bridge_image=BRIDGE)) == {
        "spec.env[0].valueFrom.secretKeyRef.name"
    }


def test_moving_a_reference_to_another_field_of_the_same_workload_is_no_change() -> None:
    old = {"image": IMAGE, "env": SECRET_ENV}
    new = {"image": IMAGE, "envFrom": [{"secretRef": {"name": "s"}}]}
    assert needed(review("UPDATE", new, old), bridge_image=BRIDGE) == []


@pytest.mark.parametrize(
    "change",
    [
        {"image": "ghcr.io/other/server:2"},
        {"command": ["sh", "-c", "env"]},
        {"args": ["--dump"]},
        {"serviceAccount": {"name": "deployer"}},
    ],
)
def test_a_change_of_what_runs_checks_every_reference_of_the_workload_again(
    change: dict[str, Any],
) -> None:
    old = {"image": IMAGE, "env": SECRET_ENV}
    assert "spec.env[0].valueFrom.secretKeyRef.name" in fields(
        needed(review("UPDATE", {**old, **change}, old), bridge_image=BRIDGE)
    )


def test_a_new_n8n_url_checks_the_secrets_sent_there_again() -> None:
    old = {"n8n": N8N}
    new = {"n8n": {**N8N, "url": "http://mine.example:5678"}}
    assert fields(
        needed(review("UPDATE", new, old, "WorkflowIntegration"), bridge_image=BRIDGE)
    ) == {"spec.n8n.apiKeySecretRef.name"}


def test_a_new_smtp_host_checks_the_password_again() -> None:
    email = {
        "smtpHost": "smtp.example",
        "from": "a@example.com",
        "to": ["b@example.com"],
        "usernameSecretRef": {"name": "smtp", "key": "user"},
        "passwordSecretRef": {"name": "smtp", "key": "password"},
    }
    old = channel(email=email)
    new = channel(email={**email, "smtpHost": "mine.example"})
    assert len(needed(review("UPDATE", new, old, "AlertRule"), bridge_image=BRIDGE)) == 2


def test_a_webhook_url_change_checks_its_hmac_key_again() -> None:
    hook = {"url": "https://hooks.example/a", "hmacSecretRef": {"name": "h", "key": "k"}}
    old = channel(webhook=hook)
    new = channel(webhook={**hook, "url": "https://mine.example/"})
    assert fields(needed(review("UPDATE", new, old, "AlertRule"), bridge_image=BRIDGE)) == {
        "spec.channels[0].webhook.hmacSecretRef.name"
    }


def test_create_checks_everything_and_an_unparsable_old_spec_vouches_for_nothing() -> None:
    spec = {"image": IMAGE, "env": SECRET_ENV}
    assert len(needed(review("CREATE", spec), bridge_image=BRIDGE)) == 2
    assert len(needed(review("UPDATE", spec, {"nonsense": 1}), bridge_image=BRIDGE)) == 2


def test_changed_keeps_order_and_ignores_field_paths() -> None:
    a = Requirement("spec.a", "secrets", "get", "x", "w")
    b = Requirement("spec.b", "secrets", "get", "y", "w")
    assert changed([a, b], [Requirement("spec.z", "secrets", "get", "x", "w")]) == [b]


# -- allow-list -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "allow_list", "allowed"),
    [
        ("ghcr.io/team/server:1.0", ["ghcr.io/team/"], True),
        ("ghcr.io/teamevil/server:1.0", ["ghcr.io/team/"], False),
        ("ghcr.io/team/server:1.0", ["ghcr.io/"], True),
        ("docker.io/team/server:1.0", ["ghcr.io/team/"], False),
        (f"ghcr.io/x/y@{DIGEST}", [DIGEST], True),
        ("ghcr.io/x/y:" + DIGEST[7:20], [DIGEST], False),
        (f"ghcr.io/x/y@{DIGEST}", [f"ghcr.io/x/y@{DIGEST}"], True),
        (f"ghcr.io/x/z@{DIGEST}", [f"ghcr.io/x/y@{DIGEST}"], False),
        ("ghcr.io/team/server:1.0", [], False),
    ],
)
def test_image_allow_list(image: str, allow_list: list[str], allowed: bool) -> None:
    assert image_allowed(image, allow_list) is allowed


@pytest.mark.parametrize("entry", ["ghcr.io/team/", DIGEST, f"ghcr.io/x/y@{DIGEST}"])
def test_allow_list_entries_accepted(entry: str) -> None:
    assert check_allow_list_entry(entry) == entry


@pytest.mark.parametrize(
    "entry",
    ["ghcr.io/team", "ghcr.io/team/server:1.0", "/", "", "sha256:abc", "a b/", f"@{DIGEST}"],
)
def test_allow_list_entries_that_would_match_too_much_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed image"):
        check_allow_list_entry(entry)


# -- bad input to the decision --------------------------------------------------------------


def decide_offline(request: Any) -> dict[str, Any]:
    # Cases that never reach a SubjectAccessReview: no API client is needed.
    return asyncio.run(decide(request, None, allowed_images=[IMAGE + "/"], bridge_image=BRIDGE))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"request": "x"},
        {"request": {"kind": {"kind": "MCPServer"}, "object": {"spec": {}}}},  # no uid
        {"request": {"uid": "1", "kind": {"kind": "Pod"}, "object": {}}},
        {"request": {"uid": "1", "kind": {"kind": "MCPServer"}}},
    ],
)
def test_malformed_reviews_are_bad_requests(body: Any) -> None:
    with pytest.raises(BadReviewError):
        decide_offline(body)


def test_a_spec_the_model_refuses_is_422_naming_the_field() -> None:
    answer = decide_offline({"request": review("CREATE", {"image": "unpinned"})})
    response = answer["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert "image must pin a tag or digest" in response["status"]["message"]


def test_nothing_to_check_is_allowed_without_asking() -> None:
    answer = decide_offline({"request": review("CREATE", {"url": "https://mcp.example/mcp"})})
    assert answer["response"] == {"uid": "u1", "allowed": True}


def test_creating_an_existing_foreign_service_account_needs_pod_rights() -> None:
    spec = MCPServerSpec.model_validate(
        {"image": IMAGE, "serviceAccount": {"create": True, "name": "deployer"}}
    )
    fresh = requirements("MCPServer", spec, bridge_image=BRIDGE)
    taken = requirements("MCPServer", spec, bridge_image=BRIDGE, foreign_accounts={"deployer"})
    field = ("spec.serviceAccount.name", "pods", "create", "")
    assert field not in {(r.field, r.resource, r.verb, r.name) for r in fresh}
    assert field in {(r.field, r.resource, r.verb, r.name) for r in taken}
    other = requirements("MCPServer", spec, bridge_image=BRIDGE, foreign_accounts={"else"})
    assert [r.key for r in other] == [r.key for r in fresh]


def test_creating_an_existing_account_named_after_the_server_needs_pod_rights() -> None:
    spec = MCPServerSpec.model_validate({"image": IMAGE, "serviceAccount": {"create": True}})
    fresh = requirements("MCPServer", spec, bridge_image=BRIDGE)
    taken = requirements("MCPServer", spec, bridge_image=BRIDGE, foreign_accounts={"github"})
    assert [r.field for r in fresh if r.field.startswith("spec.serviceAccount")] == []
    assert [(r.field, r.resource, r.verb) for r in taken if r.image is None] == [
        ("spec.serviceAccount.create (the account github)", "pods", "create")
    ]
