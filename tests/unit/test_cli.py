"""The command line: crds, render, version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devserver_operator.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip()


def test_crds_prints_four_crds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert sorted(d["spec"]["names"]["kind"] for d in documents) == [
        "AlertRule",
        "MCPServer",
        "TeamAccess",
        "WorkflowIntegration",
    ]


def test_render_examples_prints_children_and_names_kinds_without_builder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["render", "-f", str(EXAMPLES)]) == 0
    captured = capsys.readouterr()
    kinds = {d["kind"] for d in yaml.safe_load_all(captured.out) if d}
    assert {"Deployment", "Service", "NetworkPolicy", "RoleBinding", "PrometheusRule"} <= kinds
    config_map = next(d for d in yaml.safe_load_all(captured.out) if d and d["kind"] == "ConfigMap")
    # The example selects github, everything and memory by name (and team: platform by label).
    servers = json.loads(config_map["data"]["mcp.json"])["mcpServers"]
    assert sorted(servers) == ["everything", "github", "memory"]
    assert "remote server: no workload" in captured.err


def test_render_refuses_an_invalid_resource_and_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: devserver.ecosphere.network/v1alpha1\nkind: MCPServer\n"
        "metadata: {name: x}\nspec: {image: 'ghcr.io/a/b:1', port: 0}\n"
    )
    assert main(["render", "-f", str(bad)]) == 1
    assert "port" in capsys.readouterr().err


def test_render_ignores_foreign_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "cm.yaml"
    other.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert main(["render", "-f", str(other)]) == 0
    assert capsys.readouterr().out == ""
