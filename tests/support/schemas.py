"""Offline checks against the generated CRD schemas (the API server adds CEL on top)."""

from __future__ import annotations

from typing import Any

import jsonschema

from devserver_operator.api import KINDS_BY_NAME
from devserver_operator.api.crd import build_crd


def crd_schema(kind: str) -> dict[str, Any]:
    crd = build_crd(KINDS_BY_NAME[kind])
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def schema_errors(document: dict[str, Any]) -> list[jsonschema.ValidationError]:
    validator = jsonschema.Draft202012Validator(
        crd_schema(document["kind"]), format_checker=jsonschema.FormatChecker()
    )
    return sorted(validator.iter_errors(document), key=lambda e: list(e.path))


def error_text(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) + ": " + error.message
