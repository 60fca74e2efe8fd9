"""Built-in conditions from the operator's view of its own resources, and the annotation
templates alerts use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devserver_operator.alerting.builtin import (
    DEFAULT_SUMMARIES,
    ResourceView,
    builtin_observations,
    resource_view,
)
from devserver_operator.alerting.templates import NO_VALUE, expand, format_value

SINCE = "2027-01-01T10:00:00Z"


def body(kind_status: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "fs", "namespace": "team-a", **metadata},
        "status": kind_status or {},
    }


def ready(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "conditions": [
            {"type": "Ready", "status": status, "reason": "R", "lastTransitionTime": SINCE}
        ],
        **extra,
    }


def test_view_reads_ready_since_and_tool_count() -> None:
    view = resource_view("MCPServer", body(ready("False", toolCount=0)))
    assert view == ResourceView(
        kind="MCPServer",
        namespace="team-a",
        name="fs",
        ready="False",
        ready_since=datetime(2027, 1, 1, 10, tzinfo=UTC),
        tool_count=0,
    )


@pytest.mark.parametrize(
    ("status", "alerts"),
    [("False", True), ("Unknown", True), ("True", False)],
)
def test_mcpserver_not_ready_counts_from_the_ready_transition(status: str, alerts: bool) -> None:
    views = [resource_view("MCPServer", body(ready(status)))]
    found = builtin_observations("MCPServerNotReady", views)
    assert bool(found) is alerts
    if alerts:
        assert found[0].labels == {"kind": "MCPServer", "namespace": "team-a", "name": "fs"}
        assert found[0].since == datetime(2027, 1, 1, 10, tzinfo=UTC)


def test_an_mcpserver_the_operator_has_not_looked_at_yet_does_not_alert() -> None:
    assert builtin_observations("MCPServerNotReady", [resource_view("MCPServer", body())]) == []


def test_an_mcpserver_being_deleted_does_not_alert() -> None:
    view = resource_view("MCPServer", body(ready("False"), deletionTimestamp=SINCE))
    assert builtin_observations("MCPServerNotReady", [view]) == []


@pytest.mark.parametrize(("count", "alerts"), [(0, True), (3, False), (None, False)])
def test_no_tools_alerts_on_a_tool_count_of_zero(count: int | None, alerts: bool) -> None:
    extra = {"toolCount": count} if count is not None else {}
    view = resource_view("MCPServer", body(ready("True", **extra)))
    found = builtin_observations("MCPServerNoTools", [view])
    assert bool(found) is alerts
    if alerts:
        assert found[0].value == 0


def test_workflow_sync_failing_needs_ready_false_on_a_workflowintegration() -> None:
    failing = resource_view("WorkflowIntegration", body(ready("False")))
    unknown = resource_view("WorkflowIntegration", body(ready("Unknown"), name="other"))
    not_ready_server = resource_view("MCPServer", body(ready("False")))
    found = builtin_observations("WorkflowSyncFailing", [failing, unknown, not_ready_server])
    assert [o.labels["name"] for o in found] == ["fs"]
    assert found[0].labels["kind"] == "WorkflowIntegration"


def test_names_limit_the_condition_to_those_resources() -> None:
    views = [
        resource_view("MCPServer", body(ready("False"), name=name)) for name in ("a", "b", "c")
    ]
    found = builtin_observations("MCPServerNotReady", views, names=["a", "c"])
    assert [o.labels["name"] for o in found] == ["a", "c"]


def test_every_builtin_has_a_default_summary() -> None:
    labels = {"namespace": "team-a", "name": "fs"}
    assert {k: expand(v, labels, 1) for k, v in DEFAULT_SUMMARIES.items()} == {
        "MCPServerNotReady": "MCPServer team-a/fs is not Ready",
        "MCPServerNoTools": "MCPServer team-a/fs lists no tools",
        "WorkflowSyncFailing": "WorkflowIntegration team-a/fs fails to sync",
    }


@pytest.mark.parametrize(
    ("template", "expanded"),
    [
        ("{{ $labels.name }} at {{ $value }}", "fs at 7"),
        ("{{$labels.name}}/{{- $value -}}", "fs/7"),
        ("{{ $labels.missing }}", NO_VALUE),
        (
            "{{ humanize $value }} and {{ .Labels.name }}",
            "{{ humanize $value }} and {{ .Labels.name }}",
        ),
    ],
)
def test_templates_expand_labels_and_value_and_leave_the_rest(template: str, expanded: str) -> None:
    assert expand(template, {"name": "fs"}, 7.0) == expanded


@pytest.mark.parametrize(
    ("value", "text"),
    [(7.0, "7"), (0.25, "0.25"), (float("nan"), "NaN"), (float("inf"), "+Inf"), (1e20, "1e+20")],
)
def test_values_print_like_prometheus(value: float, text: str) -> None:
    assert format_value(value) == text
