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


# -- every setting is a flag of `run` -------------------------------------------------------


def run_help(capsys: pytest.CaptureFixture[str]) -> str:
    from devserver_operator.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_every_setting_is_a_run_flag_with_its_doc(capsys: pytest.CaptureFixture[str]) -> None:
    from devserver_operator.cli import settings_flags
    from devserver_operator.settings import OperatorSettings

    text = run_help(capsys)
    for name, info in OperatorSettings.model_fields.items():
        for flag in settings_flags(name):
            assert f"{flag} " in text, flag
        assert info.description, f"{name} has no docstring"
        assert " ".join(info.description.split())[:40] in text, name
        assert f"DEVSERVER_OPERATOR_{name.upper()}" in text


def test_the_six_original_flags_keep_their_names(capsys: pytest.CaptureFixture[str]) -> None:
    text = run_help(capsys)
    for flag in ("--namespace", "-n", "--metrics-port", "--health-port", "--log-format"):
        assert f"{flag} " in text
    assert "--log-level {DEBUG,INFO,WARNING,ERROR}" in text
    assert "--peering VALUE" in text


def test_run_flags_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from devserver_operator.cli import build_parser, settings_from_args

    monkeypatch.setenv("DEVSERVER_OPERATOR_CLUSTER_DOMAIN", "from.env")
    monkeypatch.setenv("DEVSERVER_OPERATOR_METRICS_PORT", "9000")
    args = build_parser().parse_args(
        [
            "run",
            "-n",
            "a",
            "--namespace",
            "b",
            "--resync-interval",
            "30",
            "--allowed-image",
            "ghcr.io/org/",
            "--admission-port",
            "8443",
            "--log-level",
            "DEBUG",
            "--metrics-port",
            "9100",
        ]
    )
    settings = settings_from_args(args)
    assert settings.namespaces == ["a", "b"]
    assert settings.resync_interval == 30.0
    assert settings.allowed_images == ["ghcr.io/org/"]
    assert settings.admission_port == 8443
    assert settings.log_level == "DEBUG"
    assert settings.metrics_port == 9100  # the flag wins over the environment
    assert settings.cluster_domain == "from.env"  # no flag: the environment applies


def test_a_bad_value_is_refused_with_the_flag_name(capsys: pytest.CaptureFixture[str]) -> None:
    from devserver_operator.cli import main

    assert main(["run", "--resync-interval", "1"]) == 2
    assert "--resync-interval" in capsys.readouterr().err


def test_the_readme_lists_exactly_the_flags_of_run_help(capsys: pytest.CaptureFixture[str]) -> None:
    import re
    from pathlib import Path

    from devserver_operator.cli import main
    from devserver_operator.cli_reference import BEGIN, END

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index(BEGIN) : readme.index(END)]
    documented = re.findall(r"`(--?[a-z][a-z-]*)`", table)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    options = capsys.readouterr().out.split("settings:", 1)[1]
    # Option lines of argparse's help: "  --flag VALUE" or "  -n VALUE, --namespace VALUE".
    shown = [
        flag
        for line in options.splitlines()
        if line.startswith("  -")
        for flag in re.findall(r"(?:^|, )(--?[a-z][a-z-]*)", line.strip())
    ]
    assert documented and sorted(documented) == sorted(shown)
    for line in table.splitlines()[3:]:
        assert "Env: DEVSERVER_OPERATOR_" in line, line


def test_kubeconfig_and_context_flags_choose_the_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devserver_operator.cli import build_parser, settings_from_args
    from devserver_operator.kube.credentials import load_credentials

    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "clusters: [{name: a, cluster: {server: 'https://a'}},"
        " {name: b, cluster: {server: 'https://b'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: a, context: {cluster: a, user: u}},"
        " {name: b, context: {cluster: b, user: u}}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DEVSERVER_OPERATOR_CONTEXT", "a")
    args = build_parser().parse_args(["run", "--kubeconfig", str(config), "--context", "b"])
    settings = settings_from_args(args)
    assert (settings.kubeconfig, settings.context) == (str(config), "b")
    assert load_credentials(settings.kubeconfig, settings.context).server == "https://b"
