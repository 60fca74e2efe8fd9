"""The PrometheusRule an AlertRule renders: the PrometheusRule schema, ownership, selector
labels, and rule groups that the real ``promtool check rules`` accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from devserver_operator.api.alertrule import AlertRuleSpec, parse_prometheus_duration
from devserver_operator.builders.common import OWNER_KIND_LABEL, OWNER_NAME_LABEL, Owner
from devserver_operator.builders.prometheusrule import build_prometheus_rule, rule_groups
from devserver_operator.render import load_documents
from tests.support.prometheus_server import ensure_installed

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "tests/support/crds/prometheusrule-crd.yaml"
OWNER = Owner(kind="AlertRule", name="mcp-health", namespace="team-a", uid="0b5d-uid")
EXPR_RULE = {
    "name": "McpProbeFailures",
    "expr": 'sum by (result) (rate(devserver_mcp_probe_total{result!="ok"}[5m])) > 0',
    "for": "10m",
    "keepFiringFor": "5m",
    "severity": "critical",
    "labels": {"team": "platform"},
    "annotations": {"summary": "MCP handshakes fail with {{ $labels.result }}"},
}
BUILTIN_RULE = {"name": "McpServerNotReady", "builtin": {"condition": "MCPServerNotReady"}}


def spec(**overrides: Any) -> AlertRuleSpec:
    raw = {
        "rules": [EXPR_RULE, BUILTIN_RULE],
        "prometheusRule": {"labels": {"release": "kube-prometheus-stack"}},
        **overrides,
    }
    return AlertRuleSpec.model_validate(raw)


def promtool_check(
    groups: list[dict[str, Any]], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    return subprocess.run(
        [ensure_installed("promtool"), "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_expr_rules_become_one_group_with_prometheus_field_names() -> None:
    rendered = build_prometheus_rule(OWNER, spec())
    assert rendered is not None
    assert rendered["apiVersion"] == "monitoring.coreos.com/v1"
    assert rendered["kind"] == "PrometheusRule"
    assert rendered["spec"] == {
        "groups": [
            {
                "name": "mcp-health",
                "rules": [
                    {
                        "alert": "McpProbeFailures",
                        "expr": EXPR_RULE["expr"],
                        "for": "10m",
                        "keep_firing_for": "5m",
                        "labels": {"team": "platform", "severity": "critical"},
                        "annotations": {"summary": "MCP handshakes fail with {{ $labels.result }}"},
                    }
                ],
            }
        ]
    }


def test_builtin_rules_stay_out_and_a_rule_without_extras_is_minimal() -> None:
    groups = rule_groups(OWNER, spec(rules=[{"name": "Up", "expr": "up == 0"}, BUILTIN_RULE]))
    assert groups == [
        {
            "name": "mcp-health",
            "rules": [{"alert": "Up", "expr": "up == 0", "labels": {"severity": "warning"}}],
        }
    ]


def test_owned_by_the_alertrule_with_selector_labels_that_cannot_steal_ownership() -> None:
    labels = {
        "release": "kube-prometheus-stack",
        "app.kubernetes.io/managed-by": "helm",
        OWNER_NAME_LABEL: "someone-else",
    }
    rendered = build_prometheus_rule(OWNER, spec(prometheusRule={"labels": labels}))
    assert rendered is not None
    metadata = rendered["metadata"]
    assert metadata["name"] == "mcp-health" and metadata["namespace"] == "team-a"
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "devserver.ecosphere.network/v1alpha1",
            "kind": "AlertRule",
            "name": "mcp-health",
            "uid": "0b5d-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert metadata["labels"]["release"] == "kube-prometheus-stack"
    assert metadata["labels"]["app.kubernetes.io/managed-by"] == "devserver-operator"
    assert metadata["labels"][OWNER_KIND_LABEL] == "alertrule"
    assert metadata["labels"][OWNER_NAME_LABEL] == "mcp-health"


@pytest.mark.parametrize(
    "overrides",
    [
        {"prometheusRule": None, "evaluation": {"prometheusUrl": "http://prometheus:9090"}},
        {"prometheusRule": {"enabled": False}, "evaluation": {"prometheusUrl": "http://p:9090"}},
        {"rules": [BUILTIN_RULE]},
    ],
    ids=["not-requested", "disabled", "builtin-only"],
)
def test_no_prometheus_rule_when_not_requested_or_nothing_to_put_in_it(
    overrides: dict[str, Any],
) -> None:
    assert build_prometheus_rule(OWNER, spec(**overrides)) is None


def test_rendered_object_passes_the_prometheusrule_crd_schema() -> None:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rendered = build_prometheus_rule(OWNER, spec())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(rendered))
    assert errors == []
    broken = {**rendered, "spec": {"groups": [{"rules": [{"alert": "X"}]}]}}  # type: ignore[dict-item]
    assert len(list(jsonschema.Draft202012Validator(schema).iter_errors(broken))) == 2


def test_promtool_accepts_the_rendered_groups(tmp_path: Path) -> None:
    rich = spec(
        rules=[
            EXPR_RULE,
            {"name": "Up", "expr": "up == 0", "for": "1h30m", "keepFiringFor": "0"},
            {"name": "Days", "expr": "vector(1)", "for": "2d"},
        ]
    )
    result = promtool_check(rule_groups(OWNER, rich), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout


def test_promtool_accepts_the_example_alertrule(tmp_path: Path) -> None:
    documents = [doc for _, doc in load_documents([ROOT / "examples/alertrule.yaml"])]
    example = next(doc for doc in documents if doc.get("kind") == "AlertRule")
    groups = rule_groups(OWNER, AlertRuleSpec.model_validate(example["spec"]))
    result = promtool_check(groups, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_catches_what_prometheus_would_refuse(tmp_path: Path) -> None:
    # Guards the check above: promtool really parses the PromQL we render.
    groups = rule_groups(OWNER, spec(rules=[{"name": "Broken", "expr": "rate(up[5m"}]))
    result = promtool_check(groups, tmp_path)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("250ms", 0.25),
    ],
)
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_prometheus_duration(text) == seconds


@pytest.mark.parametrize("text", ["1.5m", "5m1h", "5 minutes", "", "m"])
def test_durations_prometheus_refuses_are_refused_by_the_model(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(rules=[{**EXPR_RULE, "for": text}])
    assert "for" in str(caught.value)
