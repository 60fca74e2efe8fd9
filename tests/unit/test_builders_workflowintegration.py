"""The pure WorkflowIntegration builders: MCPServer selection, placeholders, desired workflows,
credentials, the built-in templates (real, importable n8n workflows), and the conditions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devserver_operator.api.conditions import check_kstatus
from devserver_operator.api.workflowintegration import (
    BUILTIN_TEMPLATES,
    Credential,
    McpServerSelector,
    Workflow,
)
from devserver_operator.builders.common import Owner
from devserver_operator.builders.workflow_templates import OPENHANDS_SESSION_HEADER, TEMPLATES
from devserver_operator.builders.workflowintegration import (
    PLACEHOLDER,
    CredentialRef,
    PlaceholderValues,
    WiredMcpServer,
    WorkflowBuildError,
    WorkflowPendingError,
    build_workflow,
    check_workflow,
    credential_data,
    credential_hash,
    credential_name,
    label_selector_matches,
    parse_workflow_json,
    placeholders_in,
    select_mcp_servers,
    substitute,
    wired_server_from,
    workflow_hash,
    workflow_tag,
)
from devserver_operator.observe.workflowintegration import (
    Problem,
    Summary,
    conditions_for,
)

OWNER = Owner("WorkflowIntegration", "stack", "team-a", "5f0c4a1e-0000-4000-8000-000000000001")
GITHUB = WiredMcpServer("github", "http://github.team-a.svc:8080/mcp", "streamable-http", True)
LEGACY = WiredMcpServer("legacy", "http://legacy.team-a.svc:8080/sse", "sse", False)
PENDING = WiredMcpServer("pending", None, None, False)

# n8n 1.123's public API schema (components.schemas.node): a node may have only these keys.
N8N_NODE_KEYS = {
    "id", "name", "webhookId", "disabled", "notesInFlow", "notes", "type", "typeVersion",
    "executeOnce", "alwaysOutputData", "retryOnFail", "maxTries", "waitBetweenTries",
    "continueOnFail", "onError", "position", "parameters", "credentials",
}  # fmt: skip
N8N_SETTINGS_KEYS = {
    "saveExecutionProgress", "saveManualExecutions", "saveDataErrorExecution",
    "saveDataSuccessExecution", "executionTimeout", "errorWorkflow", "timezone",
    "executionOrder", "callerPolicy", "callerIds", "timeSavedPerExecution", "availableInMCP",
}  # fmt: skip


def values(**overrides: Any) -> PlaceholderValues:
    base: dict[str, Any] = {
        "params": {"url": "https://example.com/hook"},
        "servers": [GITHUB, LEGACY, PENDING],
        "credentials": {"slack": CredentialRef("cred123", "team-a/stack/slack"), "late": None},
        "owner": OWNER,
    }
    return PlaceholderValues(**{**base, **overrides})


def mcp_body(name: str, labels: dict[str, str] | None = None, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "status": status}


def node(name: str, type_: str = "n8n-nodes-base.noOp", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "typeVersion": 1,
        "position": [0, 0],
        "parameters": {},
        **extra,
    }


def inline(**extra: Any) -> dict[str, Any]:
    return {
        "name": "From JSON",
        "nodes": [node("A"), node("B")],
        "connections": {"A": {"main": [[{"node": "B", "type": "main", "index": 0}]]}},
        **extra,
    }


# ---------------------------------------------------------------------------- MCPServers


def expression(operator: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": "t", "operator": operator, "values": list(values)}]}


class TestLabelSelector:
    @pytest.mark.parametrize(
        ("selector", "labels", "expected"),
        [
            ({}, {}, True),
            ({"matchLabels": {"team": "a"}}, {"team": "a", "x": "y"}, True),
            ({"matchLabels": {"team": "a"}}, {"team": "b"}, False),
            (expression("In", "a", "b"), {"t": "b"}, True),
            (expression("In", "a"), {}, False),
            (expression("NotIn", "a"), {}, True),
            (expression("NotIn", "a"), {"t": "a"}, False),
            (expression("Exists"), {"t": ""}, True),
            (expression("Exists"), {}, False),
            (expression("DoesNotExist"), {"t": "x"}, False),
            ({"matchLabels": {"a": "1"}, **expression("Exists")}, {"a": "1"}, False),
        ],
    )
    def test_kubernetes_semantics(
        self, selector: dict[str, Any], labels: dict[str, str], expected: bool
    ) -> None:
        assert label_selector_matches(selector, labels) is expected


class TestSelection:
    BODIES = [
        mcp_body("zeta", {"team": "a"}, url="http://z/mcp", transport="streamable-http"),
        mcp_body("alpha", {}, url="http://a/sse", transport="sse"),
        mcp_body("other", {"team": "b"}),
        {**mcp_body("gone", {"team": "a"}), "metadata": {
            "name": "gone", "labels": {"team": "a"}, "deletionTimestamp": "2027-01-01T00:00:00Z"
        }},
    ]  # fmt: skip

    def test_names_and_selector_are_a_union_sorted_by_name(self) -> None:
        selector = McpServerSelector.model_validate(
            {"names": ["alpha"], "selector": {"matchLabels": {"team": "a"}}}
        )
        assert [s.name for s in select_mcp_servers(selector, self.BODIES)] == ["alpha", "zeta"]

    def test_an_empty_selector_selects_every_server_not_being_deleted(self) -> None:
        selector = McpServerSelector.model_validate({"selector": {}})
        assert [s.name for s in select_mcp_servers(selector, self.BODIES)] == [
            "alpha",
            "other",
            "zeta",
        ]

    def test_no_selector_selects_nothing(self) -> None:
        assert select_mcp_servers(None, self.BODIES) == []
        assert select_mcp_servers(McpServerSelector(), self.BODIES) == []

    def test_state_comes_from_the_status(self) -> None:
        ready = mcp_body(
            "s",
            url="http://s/mcp",
            transport="streamable-http",
            conditions=[{"type": "Ready", "status": "True"}],
        )
        assert wired_server_from(ready) == WiredMcpServer(
            "s", "http://s/mcp", "streamable-http", True
        )
        assert wired_server_from(mcp_body("n")) == WiredMcpServer("n", None, None, False)


# ---------------------------------------------------------------------------- placeholders


class TestPlaceholders:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("{{ param.url }}", "https://example.com/hook"),
            ("{{param.url}}/x", "https://example.com/hook/x"),
            ("{{ mcp.github.url }}", GITHUB.url),
            ("{{ mcp.legacy.transport }}", "sse"),
            ("{{ credential.slack }}", "cred123"),
            ("{{ credential.slack.id }}", "cred123"),
            ("{{ credential.slack.name }}", "team-a/stack/slack"),
            ("{{ integration.name }}@{{ integration.namespace }}", "stack@team-a"),
            ("={{ $json.body }} and {{ $('Webhook').item }}", None),  # n8n's own: untouched
            ("{{ params.url }}", None),  # not one of ours
        ],
    )
    def test_substitution(self, text: str, expected: str | None) -> None:
        assert substitute(text, values(), where="w") == (text if expected is None else expected)

    def test_every_string_in_the_workflow_but_no_key(self) -> None:
        workflow = {"{{ param.url }}": ["{{ param.url }}", 3, True, None, {"k": "{{ param.url }}"}]}
        assert substitute(workflow, values(), where="w") == {
            "{{ param.url }}": ["https://example.com/hook", 3, True, None, {"k": "https://example.com/hook"}]
        }  # fmt: skip

    def test_servers_is_json_of_the_servers_with_a_url(self) -> None:
        servers = json.loads(substitute("{{ mcp.servers }}", values(), where="w"))
        assert servers == [
            {"name": "github", "url": GITHUB.url, "transport": "streamable-http", "ready": True},
            {"name": "legacy", "url": LEGACY.url, "transport": "sse", "ready": False},
        ]

    def test_a_server_name_with_dots(self) -> None:
        dotted = WiredMcpServer("tools.v2", "http://t/mcp", "streamable-http", True)
        assert substitute("{{ mcp.tools.v2.url }}", values(servers=[dotted]), where="w") == (
            "http://t/mcp"
        )

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("{{ param.nope }}", "w: {{ param.nope }} has no value: set parameters.nope"),
            ("{{ mcp.ghost.url }}", "MCPServer ghost is not selected by mcpServers"),
            ("{{ mcp.github.token }}", "use mcp.SERVER.url, mcp.SERVER.transport or mcp.servers"),
            ("{{ credential.ghost }}", "there is no credential ghost in credentials"),
            ("{{ credential.slack.data }}", "a credential has only id and name"),
            ("{{ integration.uid }}", "integration has only name and namespace"),
        ],
    )
    def test_mistakes_are_permanent_errors_that_name_the_placeholder(
        self, text: str, message: str
    ) -> None:
        with pytest.raises(WorkflowBuildError) as error:
            substitute(text, values(), where="w")
        assert not isinstance(error.value, WorkflowPendingError)
        assert message in str(error.value)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("{{ mcp.pending.url }}", "w: waits for MCPServer pending to report its URL"),
            ("{{ credential.late }}", "w: waits for credential late to exist in n8n"),
        ],
    )
    def test_what_is_still_coming_is_pending(self, text: str, message: str) -> None:
        with pytest.raises(WorkflowPendingError, match=message):
            substitute(text, values(), where="w")

    def test_placeholders_in(self) -> None:
        assert placeholders_in({"a": ["{{ param.x }} {{ mcp.s.url }}", "{{ $json }}"]}) == {
            "param.x",
            "mcp.s.url",
        }


# ---------------------------------------------------------------------------- workflows


class TestBuildWorkflow:
    def test_inline_with_parameters(self) -> None:
        source = inline()
        source["nodes"][0]["parameters"] = {"url": "{{ param.target }}/{{ mcp.github.url }}"}
        spec = Workflow.model_validate(
            {"name": "notify", "inline": source, "parameters": {"target": "T"}, "active": False}
        )
        desired = build_workflow(OWNER, spec, servers=[GITHUB], credentials={})
        assert desired.key == "notify"
        assert desired.active is False
        assert desired.workflow["name"] == "From JSON"
        assert desired.workflow["nodes"][0]["parameters"]["url"] == f"T/{GITHUB.url}"
        assert desired.workflow["settings"] == {}
        assert desired.webhook_key == "team-a/stack/notify"
        assert desired.tag == workflow_tag(OWNER, "notify")
        assert source["nodes"][0]["parameters"]["url"].startswith("{{")  # input untouched

    @pytest.mark.parametrize(
        ("display_name", "json_name", "expected"),
        [("Shown", "From JSON", "Shown"), (None, "From JSON", "From JSON"), (None, None, "key")],
    )
    def test_name_displayname_then_json_then_key(
        self, display_name: str | None, json_name: str | None, expected: str
    ) -> None:
        source = inline()
        if json_name is None:
            del source["name"]
        spec = Workflow.model_validate(
            {"name": "key", "inline": source, "displayName": display_name}
        )
        assert build_workflow(OWNER, spec, servers=[], credentials={}).workflow["name"] == expected

    def test_config_map_source(self) -> None:
        spec = Workflow.model_validate({"name": "w", "configMapRef": {"name": "c", "key": "k"}})
        desired = build_workflow(OWNER, spec, servers=[], credentials={}, source=inline())
        assert [n["name"] for n in desired.workflow["nodes"]] == ["A", "B"]
        with pytest.raises(WorkflowBuildError, match="was not read"):
            build_workflow(OWNER, spec, servers=[], credentials={})

    def test_tag_is_stable_short_and_distinct(self) -> None:
        tag = workflow_tag(OWNER, "notify")
        assert tag == workflow_tag(
            Owner("WorkflowIntegration", "stack", "team-a", "other"), "notify"
        )
        assert len(tag) <= 24  # n8n's limit for tag names
        assert tag.startswith("devserver-")
        assert tag != workflow_tag(OWNER, "other")
        assert tag != workflow_tag(Owner("WorkflowIntegration", "stack", "team-b", "u"), "notify")

    def test_hash_follows_content_and_activation(self) -> None:
        first = workflow_hash(inline(), True)
        assert first == workflow_hash(inline(), True)
        assert first != workflow_hash(inline(), False)
        assert first != workflow_hash(inline(name="Other"), True)


class TestCheckWorkflow:
    @pytest.mark.parametrize(
        ("workflow", "message"),
        [
            (inline(name=""), "needs a name"),
            (inline(nodes=[node("A"), node("A")]), "two nodes are named 'A'"),
            (inline(nodes=[{"name": "A"}, node("B")]), "node 'A' has no type"),
            (inline(nodes=["A"]), r"nodes\[0\] is not an object"),
            (inline(nodes=[node("B")]), "connections name a missing node 'A'"),
            (
                inline(connections={"A": {"main": [[{"node": "C", "type": "main", "index": 0}]]}}),
                "node 'A' connects to a missing node 'C'",
            ),
        ],
    )
    def test_broken_workflows(self, workflow: dict[str, Any], message: str) -> None:
        with pytest.raises(WorkflowBuildError, match=message):
            check_workflow(workflow, "spec.workflows[w]")

    def test_the_build_checks_too(self) -> None:
        spec = Workflow.model_validate({"name": "w", "inline": inline(nodes=[node("B")])})
        with pytest.raises(WorkflowBuildError, match=r"spec.workflows\[w\]: connections"):
            build_workflow(OWNER, spec, servers=[], credentials={})

    def test_json_text(self) -> None:
        assert parse_workflow_json(json.dumps(inline()), "cm")["name"] == "From JSON"
        with pytest.raises(WorkflowBuildError, match="cm is not valid JSON"):
            parse_workflow_json("{", "cm")
        with pytest.raises(WorkflowBuildError, match="with a nodes list"):
            parse_workflow_json("[]", "cm")


# ---------------------------------------------------------------------------- templates


ALL_TEMPLATES = sorted(TEMPLATES)


def required_parameters(name: str) -> dict[str, str]:
    return {p.name: "http://example.com/x" for p in TEMPLATES[name].parameters if p.default is None}


class TestTemplates:
    def test_every_api_template_exists(self) -> None:
        assert tuple(TEMPLATES) == BUILTIN_TEMPLATES
        assert len(TEMPLATES) >= 2

    @pytest.mark.parametrize("name", ALL_TEMPLATES)
    def test_is_an_importable_n8n_workflow(self, name: str) -> None:
        workflow = TEMPLATES[name].load()
        assert set(workflow) <= {"name", "nodes", "connections", "settings"}
        check_workflow(workflow, name)
        ids = [n["id"] for n in workflow["nodes"]]
        assert len(set(ids)) == len(ids)  # n8n's import keys nodes by id as well
        for item in workflow["nodes"]:
            assert set(item) <= N8N_NODE_KEYS, item["name"]
            assert item["type"].startswith("n8n-nodes-base.")
            assert isinstance(item["typeVersion"], int | float)
            assert len(item["position"]) == 2
        assert set(workflow["settings"]) <= N8N_SETTINGS_KEYS
        assert workflow["settings"]["executionOrder"] == "v1"

    @pytest.mark.parametrize("name", ALL_TEMPLATES)
    def test_uses_only_declared_parameters(self, name: str) -> None:
        declared = {p.name for p in TEMPLATES[name].parameters}
        used = {
            p.split(".", 1)[1]
            for p in placeholders_in(TEMPLATES[name].load())
            if p.startswith("param.")
        }
        assert used <= declared

    @pytest.mark.parametrize("name", ALL_TEMPLATES)
    def test_builds_with_its_required_parameters_only(self, name: str) -> None:
        spec = Workflow.model_validate(
            {"name": "t", "template": {"name": name, "parameters": required_parameters(name)}}
        )
        desired = build_workflow(OWNER, spec, servers=[GITHUB, LEGACY], credentials={})
        assert not PLACEHOLDER.search(json.dumps(desired.workflow))

    def test_parameters_of_the_workflow_override_the_templates(self) -> None:
        spec = Workflow.model_validate(
            {
                "name": "t",
                "template": {
                    "name": "mcp-health-monitor",
                    "parameters": {"reportUrl": "http://a", "path": "one"},
                },
                "parameters": {"path": "two"},
            }
        )
        desired = build_workflow(OWNER, spec, servers=[], credentials={})
        hook = next(n for n in desired.workflow["nodes"] if n["type"].endswith(".webhook"))
        assert hook["parameters"]["path"] == "two"
        schedule = next(n for n in desired.workflow["nodes"] if n["type"].endswith("Trigger"))
        assert schedule["parameters"]["rule"]["interval"][0]["expression"] == "*/5 * * * *"

    def test_health_monitor_gets_the_servers_as_json(self) -> None:
        spec = Workflow.model_validate(
            {
                "name": "t",
                "template": {"name": "mcp-health-monitor", "parameters": {"reportUrl": "http://r"}},
            }
        )
        desired = build_workflow(OWNER, spec, servers=[GITHUB, LEGACY, PENDING], credentials={})
        code = next(n for n in desired.workflow["nodes"] if n["type"].endswith(".code"))
        line = next(
            x for x in code["parameters"]["jsCode"].splitlines() if x.startswith("const servers")
        )
        listed = json.loads(line.removeprefix("const servers = ").removesuffix(";"))
        assert [s["name"] for s in listed] == ["github", "legacy"]
        report = next(n for n in desired.workflow["nodes"] if n["name"] == "Report")
        assert report["parameters"]["url"] == "http://r"

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ({}, "needs parameter openhandsUrl"),
            ({"openhandsUrl": "http://o"}, "needs parameter llmModel"),
            (
                {"openhandsUrl": "http://o", "llmModel": "m", "sessionKey": "x"},
                "has no parameter sessionKey",
            ),
        ],
    )
    def test_parameters_are_checked(self, given: dict[str, str], message: str) -> None:
        spec = Workflow.model_validate(
            {"name": "t", "template": {"name": "openhands-task-webhook", "parameters": given}}
        )
        with pytest.raises(WorkflowBuildError, match=message):
            build_workflow(OWNER, spec, servers=[], credentials={})

    def test_openhands_without_a_session_key(self) -> None:
        spec = Workflow.model_validate(
            {"name": "t", "template": {"name": "openhands-task-webhook",
                                       "parameters": {"openhandsUrl": "http://oh:3000/",
                                                      "llmModel": "openai/gpt-4o"}}}
        )  # fmt: skip
        desired = build_workflow(OWNER, spec, servers=[], credentials={})
        request = next(n for n in desired.workflow["nodes"] if n["name"] == "Start conversation")
        assert request["parameters"]["url"] == "http://oh:3000/api/conversations"  # no "//"
        assert "credentials" not in request
        assert "authentication" not in request["parameters"]

    def test_openhands_with_a_session_key_credential(self) -> None:
        spec = Workflow.model_validate(
            {
                "name": "t",
                "template": {
                    "name": "openhands-task-webhook",
                    "parameters": {
                        "openhandsUrl": "http://oh",
                        "llmModel": "openai/gpt-4o",
                        "sessionApiKeyCredential": "oh",
                    },
                },
            }
        )
        with pytest.raises(WorkflowPendingError):
            build_workflow(OWNER, spec, servers=[], credentials={"oh": None})
        desired = build_workflow(
            OWNER, spec, servers=[], credentials={"oh": CredentialRef("c9", "team-a/stack/oh")}
        )
        request = next(n for n in desired.workflow["nodes"] if n["name"] == "Start conversation")
        assert request["credentials"] == {"httpHeaderAuth": {"id": "c9", "name": "team-a/stack/oh"}}
        assert request["parameters"]["genericAuthType"] == "httpHeaderAuth"
        assert OPENHANDS_SESSION_HEADER == "X-Session-API-Key"
        # The template itself is left as it was.
        assert "credentials" not in json.dumps(TEMPLATES["openhands-task-webhook"].load())


# ---------------------------------------------------------------------------- credentials


CREDENTIAL = Credential.model_validate(
    {
        "name": "openhands",
        "type": "httpHeaderAuth",
        "secretRef": {"name": "oh-secret"},
        "fields": [
            {"field": "name", "value": "X-Session-API-Key"},
            {"field": "value", "secretKey": "key"},
        ],
    }
)


class TestCredentials:
    def test_data_from_values_and_secret_keys(self) -> None:
        assert credential_data(CREDENTIAL, {"key": "s3cret", "other": "x"}) == {
            "name": "X-Session-API-Key",
            "value": "s3cret",
        }

    def test_a_missing_key_names_secret_and_key_but_no_value(self) -> None:
        with pytest.raises(WorkflowBuildError) as error:
            credential_data(CREDENTIAL, {"wrong": "s3cret"})
        assert str(error.value) == ("spec.credentials[openhands]: Secret oh-secret has no key key")

    def test_hash_changes_with_the_values_and_is_salted_per_owner(self) -> None:
        one = credential_hash(OWNER, CREDENTIAL, {"value": "a"})
        assert one == credential_hash(OWNER, CREDENTIAL, {"value": "a"})
        assert one != credential_hash(OWNER, CREDENTIAL, {"value": "b"})
        other = Owner(OWNER.kind, OWNER.name, OWNER.namespace, "another-uid")
        assert one != credential_hash(other, CREDENTIAL, {"value": "a"})

    def test_name_says_where_it_comes_from(self) -> None:
        assert credential_name(OWNER, "openhands") == "team-a/stack/openhands"

    def test_a_field_takes_exactly_one_source(self) -> None:
        with pytest.raises(ValueError, match="exactly one of secretKey, value"):
            Credential.model_validate(
                {**CREDENTIAL.to_wire(), "fields": [{"field": "f", "secretKey": "k", "value": "v"}]}
            )
        with pytest.raises(ValueError, match="exactly one of secretKey, value"):
            Credential.model_validate({**CREDENTIAL.to_wire(), "fields": [{"field": "f"}]})


# ---------------------------------------------------------------------------- conditions


SUMMARY = Summary(
    n8n=True, workflows_in_sync=2, workflows=2, credentials=1, drifted=[], open_hands_servers=3
)


class TestConditionsFromProblems:
    def by_type(self, problems: list[Problem], summary: Summary = SUMMARY) -> dict[str, Any]:
        conditions = conditions_for(problems, summary)
        check_kstatus(conditions)
        return {c.type: c for c in conditions}

    def test_all_well(self) -> None:
        found = self.by_type([])
        assert (found["Ready"].status, found["Ready"].reason) == ("True", "Synced")
        assert found["Ready"].message == (
            "2/2 workflows and 1 credentials in n8n match the spec; "
            "the OpenHands config lists 3 MCP servers."
        )
        assert found["Synced"].status == "True"
        assert found["Drifted"].status == "False"
        assert "Reconciling" not in found and "Stalled" not in found

    def test_drift_is_reported_without_failing_ready(self) -> None:
        drifted = Summary(**{**SUMMARY.__dict__, "drifted": ["hook"]})
        found = self.by_type([], drifted)
        assert found["Ready"].status == "True"
        assert (found["Drifted"].status, found["Drifted"].reason) == ("True", "DriftDetected")
        assert "hook" in found["Drifted"].message

    def test_transient_wins_and_is_neither_stalled_nor_reconciling(self) -> None:
        found = self.by_type(
            [
                Problem("stalled", "ActivationFailed", "a"),
                Problem("transient", "N8nUnavailable", "b"),
            ]
        )
        assert (found["Ready"].status, found["Ready"].reason) == ("False", "N8nUnavailable")
        assert "Stalled" not in found and "Reconciling" not in found
        assert found["Synced"].reason == "N8nUnavailable"

    def test_stalled(self) -> None:
        problems = [Problem("stalled", "WorkflowRejected", f"m{i}") for i in range(5)]
        found = self.by_type([Problem("pending", "WaitingForMCPServer", "p"), *problems])
        assert found["Stalled"].reason == "WorkflowRejected"
        assert found["Stalled"].message == "m0; m1; m2 (and 2 more)"
        assert found["Ready"].status == "False"

    def test_pending_is_reconciling(self) -> None:
        found = self.by_type([Problem("pending", "WaitingForMCPServer", "waits")])
        assert (found["Reconciling"].status, found["Reconciling"].reason) == (
            "True",
            "WaitingForMCPServer",
        )

    def test_without_n8n_there_is_no_synced_or_drifted(self) -> None:
        only_openhands = Summary(False, 0, 0, 0, [], 2)
        found = self.by_type([], only_openhands)
        assert set(found) == {"Ready"}
        assert found["Ready"].message == "The OpenHands config lists 2 MCP servers."
