"""Bad input is refused the same way by the CRD schema and by the models.

Schema-level cases are checked here with jsonschema; cases that only a CEL rule can catch are
checked against the model here (same message) and against the real API server in
tests/integration/test_api_server_validation.py.
"""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from devserver_operator.api import KINDS_BY_NAME
from tests.support.invalid_cases import INVALID_CASES, InvalidCase, custom_resource
from tests.support.schemas import error_text, schema_errors


def test_at_least_five_invalid_cases_per_kind_and_layer_mix() -> None:
    per_kind = Counter(case.kind for case in INVALID_CASES)
    assert set(per_kind) == set(KINDS_BY_NAME)
    assert min(per_kind.values()) >= 5
    for kind in KINDS_BY_NAME:
        layers = {case.layer for case in INVALID_CASES if case.kind == kind}
        assert layers == {"schema", "cel"}, kind


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda c: c.id)
def test_model_rejects_and_names_the_field(case: InvalidCase) -> None:
    with pytest.raises(ValidationError) as caught:
        KINDS_BY_NAME[case.kind].spec_model.model_validate(case.spec)
    text = str(caught.value)
    if case.layer == "cel":
        assert case.expect in text
    else:
        locations = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
        assert any(case.expect in loc for loc in locations), (locations, text)


@pytest.mark.parametrize(
    "case", [c for c in INVALID_CASES if c.layer == "schema"], ids=lambda c: c.id
)
def test_schema_rejects_and_names_the_field(case: InvalidCase) -> None:
    errors = [error_text(e) for e in schema_errors(custom_resource(case))]
    assert errors, f"{case.id} passed the schema"
    assert any(case.expect in error for error in errors), errors


@pytest.mark.parametrize("case", [c for c in INVALID_CASES if c.layer == "cel"], ids=lambda c: c.id)
def test_cel_cases_pass_the_openapi_part_so_only_cel_catches_them(case: InvalidCase) -> None:
    # Guards the test data: a CEL case that the OpenAPI part already rejects would not prove
    # that the CEL rule exists on the server.
    assert schema_errors(custom_resource(case)) == []


@pytest.mark.parametrize("case", [c for c in INVALID_CASES if c.layer == "cel"], ids=lambda c: c.id)
def test_every_cel_message_exists_in_the_crd(case: InvalidCase) -> None:
    from devserver_operator.api.crd import build_crd

    assert case.expect in str(build_crd(KINDS_BY_NAME[case.kind]))
