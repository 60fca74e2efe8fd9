"""The pure helpers of the n8n client: payload stripping, webhook ids and URLs, errors, backoff."""

from __future__ import annotations

import copy
import email.utils
import pickle
import uuid
from typing import Any

import pytest

from devserver_operator.builders.workflowintegration import DesiredWorkflow
from devserver_operator.integrations import n8n
from devserver_operator.integrations.n8n import (
    WEBHOOK_ID_NAMESPACE,
    RetryPolicy,
    Workflow,
    assign_webhook_ids,
    production_webhook_urls,
    webhook_id_for,
    writable_workflow,
)
from devserver_operator.integrations.n8n_errors import (
    N8nAuthError,
    N8nBadRequestError,
    N8nConflictError,
    N8nError,
    N8nNotFoundError,
    N8nUnavailableError,
    error_for_status,
    redact,
)
from devserver_operator.integrations.n8n_payloads import with_save_defaults, workflow_differences
from devserver_operator.integrations.n8n_sync import n8n_payload

WEBHOOK = "n8n-nodes-base.webhook"

FETCHED = {
    "id": "aBcD1234",
    "name": "health monitor",
    "active": True,
    "isArchived": False,
    "createdAt": "2025-01-01T00:00:00.000Z",
    "updatedAt": "2025-01-02T00:00:00.000Z",
    "versionId": "0b2c5f0e-0000-4000-8000-000000000000",
    "triggerCount": 1,
    "tags": [{"id": "t1", "name": "managed"}],
    "pinData": {"Webhook": [{"json": {}}]},
    "meta": {"templateCredsSetupCompleted": True},
    "staticData": None,
    "shared": [{"role": "workflow:owner"}],
    "nodes": [
        {
            "id": "n1",
            "name": "Webhook",
            "type": WEBHOOK,
            "typeVersion": 2,
            "position": [0, 0],
            "parameters": {"path": "health", "httpMethod": "POST"},
            "webhookId": "11111111-2222-3333-4444-555555555555",
        }
    ],
    "connections": {"Webhook": {"main": [[]]}},
    "settings": {"executionOrder": "v1"},
}


class TestWritableWorkflow:
    def test_keeps_only_writable_fields(self) -> None:
        payload = writable_workflow(FETCHED)
        assert set(payload) == {"name", "nodes", "connections", "settings"}
        assert payload["name"] == "health monitor"
        assert payload["nodes"] == FETCHED["nodes"]
        assert payload["connections"] == FETCHED["connections"]
        assert payload["settings"] == {"executionOrder": "v1"}

    def test_returns_deep_copies(self) -> None:
        original = copy.deepcopy(FETCHED)
        payload = writable_workflow(FETCHED)
        payload["nodes"][0]["parameters"]["path"] = "changed"
        payload["settings"]["timezone"] = "UTC"
        assert original == FETCHED

    def test_defaults_for_missing_parts(self) -> None:
        expected: dict[str, object] = {
            "name": "empty",
            "nodes": [],
            "connections": {},
            "settings": {},
        }
        assert dict(writable_workflow({"name": "empty"})) == expected
        assert writable_workflow({"name": "n", "settings": None})["settings"] == {}

    @pytest.mark.parametrize(
        "bad",
        [
            {},
            {"name": 3},
            {"name": "x", "nodes": {"a": 1}},
            {"name": "x", "connections": []},
            {"name": "x", "settings": "v1"},
        ],
    )
    def test_rejects_malformed(self, bad: dict[str, object]) -> None:
        with pytest.raises(ValueError, match="workflow"):
            writable_workflow(bad)

    def test_idempotent(self) -> None:
        once = writable_workflow(FETCHED)
        assert writable_workflow(once) == once

    def test_model_payload_round_trip(self) -> None:
        workflow = Workflow.model_validate(FETCHED)
        assert workflow.version_id == FETCHED["versionId"]
        assert workflow.tags[0].name == "managed"
        # Unknown fields survive parsing (n8n adds fields between versions) ...
        assert workflow.model_dump(by_alias=True)["triggerCount"] == 1
        # ... but the payload holds only what n8n accepts.
        assert workflow.payload() == writable_workflow(FETCHED)


class TestWebhookIds:
    def test_stable_and_distinct(self) -> None:
        a = webhook_id_for("ns/wi/monitor", "Webhook")
        assert a == webhook_id_for("ns/wi/monitor", "Webhook")
        assert uuid.UUID(a).version == 5
        assert a != webhook_id_for("ns/wi/monitor", "Webhook1")
        assert a != webhook_id_for("ns/wi/other", "Webhook")
        assert a != webhook_id_for("ns/wi/monitor", "Webhook", uuid.NAMESPACE_DNS)

    def test_namespace_is_fixed(self) -> None:
        # Changing it would change every webhook id, and so URLs: pin the value.
        assert str(WEBHOOK_ID_NAMESPACE) == str(
            uuid.uuid5(uuid.NAMESPACE_URL, "https://devserver.ecosphere.network/n8n/webhook")
        )
        assert webhook_id_for("k", "n") == str(uuid.uuid5(WEBHOOK_ID_NAMESPACE, "k/n"))

    def test_assigns_only_missing_ids_on_webhook_nodes(self) -> None:
        nodes: list[dict[str, Any]] = [
            {"name": "Webhook", "type": WEBHOOK, "parameters": {"path": "a"}},
            {"name": "Kept", "type": WEBHOOK, "webhookId": "keep-me"},
            {"name": "Empty", "type": WEBHOOK, "webhookId": ""},
            {"name": "Form", "type": "n8n-nodes-base.formTrigger"},
            {"name": "Set", "type": "n8n-nodes-base.set"},
        ]
        before = copy.deepcopy(nodes)
        out = assign_webhook_ids(nodes, "ns/wi/wf")
        assert nodes == before  # input untouched
        assert out[0]["webhookId"] == webhook_id_for("ns/wi/wf", "Webhook")
        assert out[1]["webhookId"] == "keep-me"
        assert out[2]["webhookId"] == webhook_id_for("ns/wi/wf", "Empty")
        assert out[3]["webhookId"] == webhook_id_for("ns/wi/wf", "Form")
        assert "webhookId" not in out[4]
        assert assign_webhook_ids(out, "ns/wi/wf") == out  # idempotent

    def test_custom_types(self) -> None:
        nodes = [{"name": "Wait", "type": "n8n-nodes-base.wait"}]
        assert "webhookId" not in assign_webhook_ids(nodes, "k")[0]
        out = assign_webhook_ids(nodes, "k", node_types={"n8n-nodes-base.wait"})
        assert out[0]["webhookId"] == webhook_id_for("k", "Wait")


class TestProductionWebhookUrls:
    def test_url_shapes(self) -> None:
        nodes: list[dict[str, Any]] = [
            {"name": "Static", "type": WEBHOOK, "webhookId": "id1", "parameters": {"path": "/a/b"}},
            {"name": "Blank", "type": WEBHOOK, "webhookId": "id2", "parameters": {"path": ""}},
            {"name": "Dyn", "type": WEBHOOK, "webhookId": "id3", "parameters": {"path": "u/:id"}},
            {"name": "No Id", "type": WEBHOOK, "parameters": {"path": "p"}},
            {"name": "Off", "type": WEBHOOK, "webhookId": "id4", "disabled": True},
            {"name": "Set", "type": "n8n-nodes-base.set"},
        ]
        assert production_webhook_urls("http://n8n:5678/", nodes) == {
            "Static": "http://n8n:5678/webhook/a/b",
            "Blank": "http://n8n:5678/webhook/id2",
            "Dyn": "http://n8n:5678/webhook/id3/u/:id",
        }
        with_id = production_webhook_urls("http://n8n", nodes, workflow_id="WF1")
        assert with_id["No Id"] == "http://n8n/webhook/WF1/no%20id/p"

    def test_custom_prefix(self) -> None:
        nodes = [{"name": "W", "type": WEBHOOK, "webhookId": "x", "parameters": {"path": "p"}}]
        assert production_webhook_urls("http://h", nodes, webhook_prefix="/hooks/") == {
            "W": "http://h/hooks/p"
        }


class TestWhatN8nAddsOnSave:
    """n8n 1.123 adds node ids and two settings on save; neither is a difference."""

    DESIRED: dict[str, Any] = {
        "name": "wf",
        "nodes": [
            {"name": "Webhook", "type": WEBHOOK, "parameters": {"path": "a"}},
            {"name": "Done", "type": "n8n-nodes-base.noOp", "parameters": {}},
        ],
        "connections": {"Webhook": {"main": [[{"node": "Done", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"},
    }

    def saved(self) -> dict[str, Any]:
        """DESIRED as n8n stores and returns it."""
        stored = copy.deepcopy(self.DESIRED)
        for index, item in enumerate(stored["nodes"]):
            item["id"] = f"random-{index}"
        stored["settings"] |= {"callerPolicy": "workflowsFromSameOwner", "availableInMCP": False}
        return {**stored, "id": "W1", "active": True, "versionId": "v", "tags": []}

    def test_save_defaults_are_preset_and_can_be_overridden(self) -> None:
        assert with_save_defaults(self.DESIRED)["settings"] == {
            "executionOrder": "v1",
            "callerPolicy": "workflowsFromSameOwner",
            "availableInMCP": False,
        }
        mine = {**self.DESIRED, "settings": {"callerPolicy": "any"}}
        assert with_save_defaults(mine)["settings"]["callerPolicy"] == "any"

    def test_a_saved_copy_does_not_differ(self) -> None:
        assert workflow_differences(self.DESIRED, self.saved()) == []
        assert workflow_differences(with_save_defaults(self.DESIRED), self.saved()) == []

    def test_node_ids_count_where_the_desired_workflow_sets_them(self) -> None:
        desired = copy.deepcopy(self.DESIRED)
        desired["nodes"][0]["id"] = "fixed"
        assert workflow_differences(desired, self.saved()) == ["nodes['Webhook'].id"]

    def test_a_changed_save_default_is_a_difference(self) -> None:
        edited = self.saved()
        edited["settings"]["availableInMCP"] = True
        assert workflow_differences(self.DESIRED, edited) == ["settings.availableInMCP"]

    @pytest.mark.parametrize(
        ("edit", "expected"),
        [
            (lambda w: w.update(name="renamed"), ["name"]),
            (
                lambda w: w["nodes"][0]["parameters"].update(path="b"),
                ["nodes['Webhook'].parameters"],
            ),
            (lambda w: w["nodes"][1].update(disabled=True), ["nodes['Done'].disabled"]),
            (lambda w: w["nodes"].pop(), ["nodes['Done'] is missing"]),
            (
                lambda w: w["nodes"].append({"name": "Extra", "type": "t"}),
                ["nodes['Extra'] was added"],
            ),
            (lambda w: w["nodes"].reverse(), ["nodes (order)"]),
            (lambda w: w["connections"].clear(), ["connections['Webhook']"]),
            (lambda w: w["settings"].update(timezone="UTC"), ["settings.timezone"]),
            (lambda w: w["settings"].pop("executionOrder"), ["settings.executionOrder"]),
        ],
    )
    def test_edits_are_differences(self, edit: Any, expected: list[str]) -> None:
        edited = self.saved()
        edit(edited)
        assert workflow_differences(self.DESIRED, edited) == expected

    def test_read_only_fields_never_count(self) -> None:
        other = {**self.saved(), "active": False, "versionId": "w", "tags": [{"id": "t"}]}
        assert workflow_differences(self.DESIRED, other) == []

    def test_what_the_operator_sends(self) -> None:
        desired = DesiredWorkflow(
            key="hook", workflow=copy.deepcopy(self.DESIRED), active=True, tag="t", webhook_key="k"
        )
        payload = n8n_payload(desired)
        assert payload["nodes"][0]["webhookId"] == webhook_id_for("k", "Webhook")
        assert "webhookId" not in payload["nodes"][1]
        assert payload["settings"]["callerPolicy"] == "workflowsFromSameOwner"
        assert "webhookId" not in desired.workflow["nodes"][0]  # the desired one untouched


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (400, N8nBadRequestError),
            (401, N8nAuthError),
            (403, N8nAuthError),
            (404, N8nNotFoundError),
            (405, N8nBadRequestError),
            (409, N8nConflictError),
            (415, N8nBadRequestError),
            (422, N8nBadRequestError),
            (429, N8nUnavailableError),
            (500, N8nUnavailableError),
            (503, N8nUnavailableError),
            (302, N8nError),
        ],
    )
    def test_mapping(self, status: int, cls: type[N8nError]) -> None:
        err = error_for_status(status, "n8n says no", method="GET", path="/workflows/1")
        assert type(err) is cls
        assert isinstance(err, N8nError)
        assert err.status == status
        assert err.message == "n8n says no"
        assert str(err) == f"GET /workflows/1 -> HTTP {status}: n8n says no"

    def test_without_status_or_call(self) -> None:
        assert str(N8nUnavailableError("refused")) == "n8n API call: refused"

    def test_pickles(self) -> None:
        err = N8nConflictError("exists", status=409, method="POST", path="/tags")
        back = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
        assert type(back) is N8nConflictError
        assert (back.message, back.status, back.method, back.path) == (
            "exists",
            409,
            "POST",
            "/tags",
        )

    def test_redact(self) -> None:
        text = "bad token s3cr3t-token-value near s3cr3t"
        assert redact(text, ["s3cr3t", "s3cr3t-token-value"]) == (
            "bad token [redacted] near [redacted]"
        )
        assert redact("a b c", ["a", ""]) == "a b c"  # too short to scrub safely


class TestRetryPolicy:
    def test_backoff_is_bounded_exponential_with_jitter(self) -> None:
        policy = RetryPolicy(initial_delay=1.0, max_delay=5.0)
        for retry, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
            delays = {policy.backoff(retry) for _ in range(50)}
            assert all(full / 2 <= d <= full for d in delays)
            assert len(delays) > 1

    @pytest.mark.parametrize(
        "kwargs", [{"max_attempts": 0}, {"initial_delay": -1.0}, {"total_timeout": -1.0}]
    )
    def test_rejects_nonsense(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="must"):
            RetryPolicy(**kwargs)  # type: ignore[arg-type]

    def test_retry_after(self) -> None:
        parse = n8n._retry_after_seconds
        assert parse(None) is None
        assert parse("") is None
        assert parse("garbage") is None
        assert parse("2") == 2.0
        assert parse(" 1.5 ") == 1.5
        assert parse("-3") == 0.0
        now = 1_700_000_000.0
        date = email.utils.formatdate(now + 7, usegmt=True)
        assert parse(date, now=now) == pytest.approx(7.0, abs=1.0)
        assert parse(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0
