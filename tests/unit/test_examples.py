"""Every custom resource in examples/ is valid for its CRD schema and its model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devserver_operator.api import API_VERSION, KINDS_BY_NAME
from devserver_operator.render import load_documents
from tests.support.schemas import error_text, schema_errors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CUSTOM_RESOURCES = [
    (source, doc)
    for source, doc in load_documents([EXAMPLES])
    if doc.get("apiVersion") == API_VERSION
]


def test_examples_cover_every_kind() -> None:
    kinds = {doc["kind"] for _, doc in CUSTOM_RESOURCES}
    assert kinds == set(KINDS_BY_NAME)


def test_examples_cover_every_mcp_transport_and_remote_mode() -> None:
    specs = [doc["spec"] for _, doc in CUSTOM_RESOURCES if doc["kind"] == "MCPServer"]
    assert {s.get("transport", "streamable-http") for s in specs} == {
        "streamable-http",
        "sse",
        "stdio",
    }
    assert any("url" in s for s in specs)


@pytest.mark.parametrize(
    ("source", "document"), CUSTOM_RESOURCES, ids=[s for s, _ in CUSTOM_RESOURCES]
)
def test_example_passes_the_crd_schema(source: str, document: dict[str, Any]) -> None:
    errors = [error_text(e) for e in schema_errors(document)]
    assert errors == [], source


@pytest.mark.parametrize(
    ("source", "document"), CUSTOM_RESOURCES, ids=[s for s, _ in CUSTOM_RESOURCES]
)
def test_example_parses_with_its_model(source: str, document: dict[str, Any]) -> None:
    KINDS_BY_NAME[document["kind"]].spec_model.model_validate(document["spec"])
