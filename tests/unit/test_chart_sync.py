"""The Helm chart, the kustomize manifests and the code agree.

- the chart's CRDs are the generated ones in crds/ (plus kopf's peering CRDs);
- every generated install file is current (`devserver-operator manifests --check .`);
- values.schema.json describes every value in values.yaml and accepts the defaults;
- `kustomize build` of each overlay renders exactly what `helm template` renders with the
  matching values (real helm and kustomize, built from their Go modules);
- the dashboard and the chart's alerts only use metrics the operator exports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from devserver_operator import __version__, metrics
from devserver_operator.localcluster import binaries
from devserver_operator.manifests import stale_files

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "devserver-operator"
RELEASE, NAMESPACE = "devserver-operator", "devserver-system"
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
# The chart's CRDs are templates kept on uninstall, by Helm and by Argo CD; kustomize's are
# the same CRDs without the two policies (kubectl delete -k removes them, as documented).
HELM_ONLY_ANNOTATIONS = ("helm.sh/resource-policy", "argocd.argoproj.io/sync-options")
PEERING_CRDS = {"clusterkopfpeerings.kopf.dev.yaml", "kopfpeerings.kopf.dev.yaml"}


def helm() -> Path:
    return binaries.ensure_binaries((binaries.HELM,))[binaries.HELM]


def kustomize() -> Path:
    """kustomize, built by hack/controlplane/build.sh at the version versions.env pins."""
    pins = dict(
        line.split("=", 1)
        for line in binaries.VERSIONS_FILE.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    path = binaries.cache_root() / "bin" / f"kustomize-{pins['KUSTOMIZE_VERSION']}" / "kustomize"
    if not path.is_file():
        subprocess.run(["bash", str(binaries.BUILD_SCRIPT), "kustomize"], check=True)
    return path


def run(*argv: str | Path) -> str:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


def helm_template(*values: str) -> list[dict[str, Any]]:
    text = run(
        helm(), "template", RELEASE, CHART, "--namespace", NAMESPACE, "--include-crds", *values
    )
    return [d for d in yaml.safe_load_all(text) if d]


def kustomize_build(overlay: str) -> list[dict[str, Any]]:
    text = run(kustomize(), "build", REPO / "manifests" / "overlays" / overlay)
    return [d for d in yaml.safe_load_all(text) if d]


def normalized(documents: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            kept = {
                k: strip(v)
                for k, v in value.items()
                if not (k in (*HELM_ONLY_LABELS, *HELM_ONLY_ANNOTATIONS) and isinstance(v, str))
            }
            # metadata.annotations that held only those
            return {k: v for k, v in kept.items() if not (k == "annotations" and v == {})}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): strip(d)
        for d in documents
    }


# -- CRDs and generated files ------------------------------------------------------------


def test_chart_crds_are_the_generated_crds() -> None:
    root = {p.name: p.read_bytes() for p in (REPO / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert len(root) == 4
    assert chart == root
    # Only kopf's peering CRDs in crds/ (Helm installs it once and never upgrades it): a
    # release with two replicas holds a peering object, whose kind Helm must know beforehand.
    assert {p.name for p in (CHART / "crds").glob("*")} == PEERING_CRDS


def test_the_chart_renders_every_crd_kept_on_uninstall() -> None:
    rendered = [d for d in helm_template() if d["kind"] == "CustomResourceDefinition"]
    rendered = [d for d in rendered if "annotations" in d["metadata"]]  # not crds/ (kopf's)
    files = sorted(p.stem for p in (CHART / "files" / "crds").glob("*.yaml"))
    assert sorted(d["metadata"]["name"] for d in rendered) == files
    for crd in rendered:
        annotations = crd["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep"
        assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    generated = yaml.safe_load(
        (CHART / "files/crds/mcpservers.devserver.ecosphere.network.yaml").read_text()
    )
    (mcpserver,) = [d for d in rendered if d["metadata"]["name"] == generated["metadata"]["name"]]
    assert mcpserver["spec"] == generated["spec"]
    # A second release in the same cluster leaves them to the first.
    left = [
        d["metadata"]["name"] for d in helm_template("--set", "crds.install=false")
        if d["kind"] == "CustomResourceDefinition"
    ]  # fmt: skip
    assert sorted(f"{name}.yaml" for name in left) == sorted(PEERING_CRDS)


def test_generated_install_files_are_current() -> None:
    assert stale_files(REPO) == [], "run: devserver-operator manifests --output-dir ."


def test_kustomize_base_carries_the_generated_crds() -> None:
    documents = yaml.safe_load_all((REPO / "manifests/base/generated/crds.yaml").read_text())
    generated = sorted(d["metadata"]["name"] for d in documents if d)
    expected = [p.stem for p in (REPO / "crds").glob("*.yaml")]
    assert generated == sorted([*expected, *(name.removesuffix(".yaml") for name in PEERING_CRDS)])


# -- values and their schema ------------------------------------------------------------


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def undescribed(value: Any, node: dict[str, Any], root: dict[str, Any], path: str) -> list[str]:
    """Paths in ``value`` that the schema ``node`` has no word for."""
    node = resolve(node, root)
    if not isinstance(value, dict):
        return []
    missing = []
    for key, child in value.items():
        properties = node.get("properties", {})
        if key in properties:
            missing += undescribed(child, properties[key], root, f"{path}.{key}")
        elif isinstance(node.get("additionalProperties"), dict):
            missing += undescribed(child, node["additionalProperties"], root, f"{path}.{key}")
        elif node.get("type") == "object" and "properties" not in node:
            continue  # a free-form object (affinity, securityContext): Kubernetes types
        else:
            missing.append(f"{path}.{key}")
    return missing


def test_values_schema_covers_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    root = schema()
    assert undescribed(values, root, root, "") == []
    assert root["additionalProperties"] is False
    assert set(root["properties"]) == set(values)


def test_default_values_pass_the_schema() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema()).validate(values)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (["--set", "replica=2"], "additional properties 'replica' not allowed"),
        (["--set", "logFormat=xml"], "/logFormat"),
        (["--set", "namespaces={Not_A_Name}"], "/namespaces/0"),
        (["--set", "admission.failurePolicy=Never"], "/admission/failurePolicy"),
        (["--set", "admission.timeoutSeconds=31"], "/admission/timeoutSeconds"),
        (["--set", "allowedImages={a,a}"], "/allowedImages"),
    ],
)
def test_helm_refuses_values_outside_the_schema(values: list[str], complaint: str) -> None:
    result = subprocess.run(
        [str(helm()), "template", RELEASE, str(CHART), *values],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert complaint in result.stderr


def test_chart_version_is_the_operator_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__ == chart["version"]


# -- kustomize renders what the chart renders -------------------------------------------


@pytest.mark.parametrize(
    ("overlay", "values"),
    [
        ("cluster-wide", []),
        ("single-namespace", ["--set", f"namespaces={{{NAMESPACE}}}"]),
    ],
)
def test_kustomize_overlay_renders_what_the_chart_renders(overlay: str, values: list[str]) -> None:
    from_helm = normalized(helm_template(*values))
    from_kustomize = normalized(
        # Helm installs into a namespace it is given (--create-namespace); kustomize brings one.
        [d for d in kustomize_build(overlay) if d["kind"] != "Namespace"]
    )
    assert sorted(from_kustomize) == sorted(from_helm)
    for key, rendered in from_helm.items():
        assert from_kustomize[key] == rendered, key


def test_the_kustomize_console_component_renders_what_the_chart_renders(tmp_path: Path) -> None:
    # An overlay of a user's own: the cluster-wide install plus the console component
    # (kustomize takes only relative paths).
    def relative(path: str) -> str:
        return os.path.relpath(REPO / path, tmp_path)

    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [relative("manifests/overlays/cluster-wide")],
                "components": [relative("manifests/components/console")],
            }
        )
    )
    built = yaml.safe_load_all(run(kustomize(), "build", tmp_path))
    from_kustomize = normalized([d for d in built if d and d["kind"] != "Namespace"])
    from_helm = normalized(helm_template("--set", "console.enabled=true"))
    assert sorted(from_kustomize) == sorted(from_helm)
    for key, rendered in from_helm.items():
        assert from_kustomize[key] == rendered, key
    assert ("Deployment", NAMESPACE, "devserver-operator-console") in from_kustomize


def test_kustomize_brings_a_restricted_namespace() -> None:
    namespaces = [d for d in kustomize_build("cluster-wide") if d["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [NAMESPACE]
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# -- metrics used by the dashboard and the alerts exist ---------------------------------

METRIC = re.compile(r"\bdevserver_[a-z0-9_]+")


def metric_families() -> set[str]:
    """Names of the metric families the operator's metrics module declares."""
    return {
        family.name
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase)
        for family in value.describe()
    }


def exported_metric_names() -> set[str]:
    suffixes = ("", "_total", "_bucket", "_sum", "_count", "_created")
    return {family + suffix for family in metric_families() for suffix in suffixes}


def test_dashboard_and_alerts_use_only_exported_metrics() -> None:
    exported = exported_metric_names()
    dashboard = (CHART / "files" / "grafana-dashboard.json").read_text()
    alerts = (CHART / "templates" / "prometheusrule.yaml").read_text()
    used = set(METRIC.findall(dashboard)) | set(METRIC.findall(alerts))
    assert used, "the dashboard shows no operator metric"
    assert used <= exported, used - exported


def test_dashboard_shows_every_exported_metric() -> None:
    dashboard = (CHART / "files" / "grafana-dashboard.json").read_text()
    families = metric_families()
    shown = {name for name in families if re.search(rf"\b{name}(_\w+)?\b", dashboard)}
    assert shown == families, f"not on the dashboard: {sorted(families - shown)}"


def test_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] == "devserver-operator"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and panel["description"], panel["title"]


def test_manifests_command_checks_and_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from devserver_operator.cli import main
    from devserver_operator.manifests import hand_written_sources

    assert main(["manifests", "--check", str(REPO)]) == 0
    for source in hand_written_sources():
        (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / source).write_text((REPO / source).read_text())
    # A stale table of values in the README is found and rewritten.
    readme = tmp_path / "charts/devserver-operator/README.md"
    readme.write_text(readme.read_text().replace("| `replicas` |", "| `replica` |"))
    assert main(["manifests", "--check", str(tmp_path)]) == 1
    assert "manifests --output-dir" in capsys.readouterr().err
    assert main(["manifests", "--output-dir", str(tmp_path)]) == 0
    assert main(["manifests", "--check", str(tmp_path)]) == 0
    assert "| `replicas` |" in readme.read_text()
    stray = tmp_path / "manifests/base/generated/old.yaml"
    stray.write_text("kind: Gone\n")
    assert main(["manifests", "--check", str(tmp_path)]) == 1
    stray.unlink()
    # A CRD of ours left in the chart's crds/ would be installed once and never upgraded.
    (tmp_path / "charts/devserver-operator/crds/old.yaml").write_text("kind: Gone\n")
    assert main(["manifests", "--check", str(tmp_path)]) == 1
