""" "Reconcile now" requests: each new annotation value reaches exactly one reconcile."""

from __future__ import annotations

from typing import Any

from devserver_operator.builders.common import REQUEST_ANNOTATION
from devserver_operator.reconcile.requests import MAX_REQUEST_CHARS, HandledRequests


def body(value: str | None) -> dict[str, Any]:
    annotations = {REQUEST_ANNOTATION: value} if value is not None else {}
    return {"metadata": {"uid": "u1", "annotations": annotations}}


def test_a_new_value_is_taken_once() -> None:
    requests = HandledRequests()
    assert requests.pending("u1", body("t1")) == "t1"
    assert requests.take("u1", body("t1")) == "t1"
    assert requests.take("u1", body("t1")) is None
    assert requests.pending("u1", body("t1")) is None
    assert requests.take("u1", body("t2")) == "t2"


def test_no_annotation_is_no_request() -> None:
    requests = HandledRequests()
    assert requests.take("u1", body(None)) is None
    assert requests.take("u1", body("")) is None
    assert requests.take("u1", {"metadata": {}}) is None


def test_objects_are_apart_and_forgetting_starts_over() -> None:
    requests = HandledRequests()
    assert requests.take("u1", body("t1")) == "t1"
    assert requests.take("u2", body("t1")) == "t1"
    requests.forget("u1")
    assert requests.take("u1", body("t1")) == "t1"  # after a restart: handled once more


def test_a_long_value_is_cut() -> None:
    requests = HandledRequests()
    assert requests.take("u1", body("x" * 1000)) == "x" * MAX_REQUEST_CHARS
    assert requests.take("u1", body("x" * 2000)) is None
