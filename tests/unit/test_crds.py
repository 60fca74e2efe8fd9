"""The CRDs are generated from the models, structural, documented and in sync with crds/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devserver_operator.api import ALL_KINDS, CATEGORY, GROUP
from devserver_operator.api.crd import UNOBSERVED_STATUS, build_all_crds, build_crd
from devserver_operator.cli import crd_files, main

ROOT = Path(__file__).resolve().parents[2]
TAKEN_SHORT_NAMES = {"mcp", "mcps", "mcpserver"}  # used by other MCP operators


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for name, sub in (node.get("properties") or {}).items():
            found.extend(_walk(sub, f"{path}.{name}"))
        if isinstance(node.get("items"), dict):
            found.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            found.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return found


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crds_match_the_models() -> None:
    assert main(["crds", "--check", str(ROOT / "crds")]) == 0


def test_check_fails_when_a_crd_is_stale(tmp_path: Path) -> None:
    for name, text in crd_files().items():
        (tmp_path / name).write_text(text)
    stale = next(iter(crd_files()))
    (tmp_path / stale).write_text(
        (tmp_path / stale).read_text().replace("maxLength: 63", "maxLength: 64", 1)
    )
    assert main(["crds", "--check", str(tmp_path)]) == 1


def test_check_fails_on_a_missing_or_foreign_file(tmp_path: Path) -> None:
    assert main(["crds", "--check", str(tmp_path)]) == 1
    for name, text in crd_files().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "extra.yaml").write_text("kind: Foo\n")
    assert main(["crds", "--check", str(tmp_path)]) == 1


@pytest.mark.parametrize("crd", build_all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_every_field_has_a_description_and_a_type(crd: dict[str, Any]) -> None:
    spec_and_status = {k: _schema(crd)["properties"][k] for k in ("spec", "status")}
    for path, node in _walk(spec_and_status):
        if not path or (path in (".spec", ".status") and "description" in node):
            continue
        if path.endswith("[]") or path.endswith("{}"):
            continue  # list items and map values are described by their field
        assert node.get("description"), f"{crd['metadata']['name']}{path} has no description"
        typed = "type" in node or node.get("x-kubernetes-int-or-string")
        assert typed or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"


@pytest.mark.parametrize("crd", build_all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_schemas_are_structural(crd: dict[str, Any]) -> None:
    text = json.dumps(_schema(crd))
    assert "$ref" not in text
    assert '"additionalProperties": false' not in text
    # Defaults belong to the models, not the CRD: a spec default would be GitOps noise. The one
    # default is status' own (never in Git): it makes a new object read as not observed yet.
    status = _schema(crd)["properties"]["status"]
    assert status["default"] == UNOBSERVED_STATUS == {"observedGeneration": 0}
    others = json.dumps(
        {
            **_schema(crd),
            "properties": {
                **_schema(crd)["properties"],
                "status": {k: v for k, v in status.items() if k != "default"},
            },
        }
    )
    assert '"default"' not in others, "defaults belong to the models, not the CRD (GitOps noise)"
    for path, node in _walk(_schema(crd)):
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf only for int-or-string"
        if "properties" in node:
            assert "additionalProperties" not in node, path


ALLOWED_EXTENSIONS = {
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-validations",
}


@pytest.mark.parametrize("crd", build_all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_only_extensions_that_crds_accept(crd: dict[str, Any]) -> None:
    for path, node in _walk(_schema(crd)):
        extensions = {key for key in node if key.startswith("x-")}
        assert extensions <= ALLOWED_EXTENSIONS, (path, extensions - ALLOWED_EXTENSIONS)


@pytest.mark.parametrize("crd", build_all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_names_status_subresource_and_printer_columns(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == [CATEGORY]
    assert not set(spec["names"]["shortNames"]) & TAKEN_SHORT_NAMES
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[0] == "Ready" and columns[-1] == "Age" and len(columns) >= 3
    conditions = _schema(crd)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_short_names_are_unique_across_kinds() -> None:
    names = [n for info in ALL_KINDS for n in info.short_names]
    assert len(names) == len(set(names))


def test_crds_fit_client_side_apply() -> None:
    # kubectl apply without --server-side stores the whole object in an annotation capped at
    # 256 KiB; staying below keeps the plain `kubectl apply -f crds/` install path working.
    for info in ALL_KINDS:
        assert len(json.dumps(build_crd(info))) < 200_000, info.kind


def test_vendored_kubernetes_schemas_are_current(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "hack/vendor_k8s_schemas.py"),
            "--output",
            str(tmp_path / "k.json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.returncode == 0
    committed = ROOT / "operator/devserver_operator/api/k8s_schemas.json"
    assert (tmp_path / "k.json").read_text() == committed.read_text()


def test_committed_crd_reference_matches_the_models() -> None:
    assert main(["reference", "--check", str(ROOT / "docs/reference.md")]) == 0


def test_reference_check_fails_when_stale(tmp_path: Path) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text("# old\n")
    assert main(["reference", "--check", str(stale)]) == 1
