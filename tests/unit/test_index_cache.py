"""The copies kept in the operator's watch caches."""

from __future__ import annotations

import json

from devserver_operator.reconcile.lookup import cached_copy

LIVE = {
    "metadata": {
        "name": "s0001",
        "namespace": "bench",
        "labels": {"app.kubernetes.io/name": "mcp-server"},
        "managedFields": [{"manager": "devserver-operator", "operation": "Apply"}],
    },
    "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "note": "x" * 100},
    "status": {"replicas": 1, "ready": True, "conditions": None},
}


def decoded() -> dict[str, object]:
    """Every watch event is decoded on its own, with strings of its own."""
    return json.loads(json.dumps(LIVE))  # type: ignore[no-any-return]


def test_a_cached_copy_is_the_object_without_managed_fields() -> None:
    copy = cached_copy(decoded(), "v1", "Service")

    expected = {**json.loads(json.dumps(LIVE)), "apiVersion": "v1", "kind": "Service"}
    del expected["metadata"]["managedFields"]
    assert copy == expected


def test_cached_copies_share_keys_and_short_strings() -> None:
    first, second = cached_copy(decoded(), "v1", "Service"), cached_copy(decoded(), "v1", "Service")

    first_labels, second_labels = first["metadata"]["labels"], second["metadata"]["labels"]
    (first_key,), (second_key,) = first_labels, second_labels
    assert first_key is second_key
    assert first_labels[first_key] is second_labels[second_key]
    assert first["spec"]["ports"][0]["protocol"] is second["spec"]["ports"][0]["protocol"]


def test_a_cached_copy_shares_no_container_with_the_event() -> None:
    body = decoded()
    copy = cached_copy(body, "v1", "Service")

    body["spec"]["ports"][0]["port"] = 9090  # type: ignore[index]
    assert copy["spec"]["ports"][0]["port"] == 8080
