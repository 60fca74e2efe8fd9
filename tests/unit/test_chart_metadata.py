"""What the chart tells people who find it on Artifact Hub: a README whose table of values is
the schema's, an icon that exists, and annotations (images, CRDs with examples, changes,
licence, links) that agree with the code, examples/ and values.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml

from devserver_operator import __version__
from devserver_operator.api.crd import build_all_crds
from devserver_operator.manifests import artifacthub, chart_readme

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "devserver-operator"
RAW = "https://raw.githubusercontent.com/ecospherenetwork/devserver-operator/main/"
CHANGE_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}


def chart() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return loaded


def annotation(name: str) -> Any:
    return yaml.safe_load(chart()["annotations"][f"artifacthub.io/{name}"])


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def test_every_value_has_a_description() -> None:
    assert chart_readme.undocumented(schema()) == []


def test_readme_lists_every_value_with_its_default() -> None:
    readme = (CHART / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| .* \| (.*) \| .* \|$", readme, flags=re.MULTILINE)
    listed = dict(rows)
    leaves = [path for path, _ in chart_readme._leaves(schema(), schema(), "")]
    assert list(listed) == leaves
    assert listed["replicas"] == "`1`"
    assert listed["crds.install"] == "`true`"
    assert listed["image.repository"] == '`"ghcr.io/ecospherenetwork/devserver-operator"`'


def test_undocumented_values_are_found() -> None:
    broken = schema()
    del broken["properties"]["replicas"]["description"]
    assert chart_readme.undocumented(broken) == ["replicas"]


def test_icon_is_an_svg_in_the_repository() -> None:
    icon = chart()["icon"]
    assert icon.startswith(RAW)
    path = REPO / icon.removeprefix(RAW)
    root = ElementTree.parse(path).getroot()  # noqa: S314 - our own file
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 256 256"


def test_images_are_the_release_and_the_bridge() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    images = {i["name"]: i["image"] for i in annotation("images")}
    assert images == {
        "devserver-operator": f"ghcr.io/ecospherenetwork/devserver-operator:{__version__}",
        "supergateway": values["bridgeImage"],
    }
    assert not any(image.endswith(":latest") for image in images.values())


def test_crds_and_their_examples_are_the_generated_ones() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in build_all_crds()}
    described = {c["kind"]: c for c in annotation("crds")}
    assert set(described) == set(crds)
    for kind, entry in described.items():
        assert entry["name"] == crds[kind]["metadata"]["name"]
        assert entry["version"] == crds[kind]["spec"]["versions"][0]["name"]
        assert entry["description"]
    examples = annotation("crdsExamples")
    assert [e["kind"] for e in examples] == list(crds)
    for example in examples:
        source = REPO / artifacthub.EXAMPLES[example["kind"]]
        assert example in list(yaml.safe_load_all(source.read_text()))


def test_changes_licence_and_links() -> None:
    changes = annotation("changes")
    assert changes and {c["kind"] for c in changes} <= CHANGE_KINDS
    assert all(c["description"] for c in changes)
    assert chart()["annotations"]["artifacthub.io/license"] == "Apache-2.0"
    assert (REPO / "LICENSE").read_text().split()[:2] == ["Apache", "License"]
    links = annotation("links")
    for link in links:
        assert link["url"].startswith("https://github.com/ecospherenetwork/devserver-operator/")
        local = link["url"].split("/main/", 1)[1]
        assert (REPO / local).exists(), link


def test_stale_annotations_are_replaced_and_missing_markers_refused() -> None:
    text = (CHART / "Chart.yaml").read_text()
    generated = text[text.index(artifacthub.BEGIN) : text.index(artifacthub.END)]
    stale = text.replace(generated, artifacthub.BEGIN + "  artifacthub.io/images: old\n")
    assert artifacthub.render(stale, generated + artifacthub.END) == text
    try:
        artifacthub.render("apiVersion: v2\n", "")
    except ValueError as error:
        assert "markers" in str(error)
    else:
        raise AssertionError("a Chart.yaml without markers was accepted")
