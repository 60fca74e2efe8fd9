"""When a child needs applying: its desired hash changed, or a field we set was changed."""

from __future__ import annotations

from typing import Any

from devserver_operator.builders.common import OWNER_KIND_LABEL, OWNER_NAME_LABEL
from devserver_operator.kube.drift import (
    APPLIED_HASH_ANNOTATION,
    is_subset,
    needs_apply,
    with_applied_hash,
)
from devserver_operator.reconcile.memory import WriteMemory, owner_key

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "s", "namespace": "n", "labels": {"a": "b"}},
    "spec": {"ports": [{"name": "mcp", "port": 8080, "targetPort": "mcp"}], "type": "ClusterIP"},
}


def live_from(desired: dict[str, Any], **changes: Any) -> dict[str, Any]:
    live = {
        **desired,
        "metadata": {
            **desired["metadata"],
            "uid": "u",
            "resourceVersion": "5",
            "labels": {"a": "b", "extra": "x"},
        },
        "spec": {
            **desired["spec"],
            "clusterIP": "10.0.0.1",
            "ports": [{**desired["spec"]["ports"][0], "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {}},
    }
    live.update(changes)
    return live


def test_missing_child_needs_apply() -> None:
    assert needs_apply(with_applied_hash(SERVICE), None)


def test_unchanged_child_with_server_defaults_needs_nothing() -> None:
    desired = with_applied_hash(SERVICE)
    assert not needs_apply(desired, live_from(desired))


def test_edited_field_needs_apply() -> None:
    desired = with_applied_hash(SERVICE)
    live = live_from(desired)
    live["spec"]["ports"][0]["port"] = 9999
    assert needs_apply(desired, live)


def test_changed_desired_state_needs_apply_even_for_removed_fields() -> None:
    old = with_applied_hash({**SERVICE, "spec": {**SERVICE["spec"], "sessionAffinity": "ClientIP"}})
    live = live_from(old)
    new = with_applied_hash(SERVICE)
    assert is_subset(new["spec"], live["spec"])  # the subset check alone would miss it
    assert needs_apply(new, live)


def test_hash_ignores_key_order() -> None:
    reordered = {
        "kind": "Service",
        "apiVersion": "v1",
        "spec": SERVICE["spec"],
        "metadata": SERVICE["metadata"],
    }
    a = with_applied_hash(SERVICE)["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    b = with_applied_hash(reordered)["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    assert a == b


def test_subset_rules() -> None:
    assert is_subset({"a": 1}, {"a": 1, "b": 2})
    assert not is_subset({"a": 1}, {"a": 2})
    assert not is_subset({"a": [1, 2]}, {"a": [1]})
    assert is_subset({"port": 8080}, {"port": "8080"})
    assert not is_subset(True, 1)
    assert not is_subset({"a": {}}, {"a": "x"})


def test_recent_writes_win_until_the_cache_catches_up() -> None:
    memory = WriteMemory()
    key = ("v1", "Service", "n", "s")
    ours = {"metadata": {"resourceVersion": "10"}}
    memory.remember(key, ours)
    assert memory.newer_than_cache(key, {"metadata": {"resourceVersion": "9"}}) == (True, ours)
    assert memory.newer_than_cache(key, None) == (True, ours)
    cached = {"metadata": {"resourceVersion": "11"}}
    assert memory.newer_than_cache(key, cached) == (False, cached)
    assert key not in memory.children


def test_recent_deletes_hide_stale_cache_entries() -> None:
    memory = WriteMemory()
    key = ("v1", "Service", "n", "s")
    memory.remember(key, None)
    assert memory.newer_than_cache(key, {"metadata": {"resourceVersion": "9"}}) == (True, None)


def test_status_memory_prefers_our_newer_write() -> None:
    memory = WriteMemory()
    memory.remember_status("u", {"metadata": {"resourceVersion": "7"}, "status": {"x": 2}})
    stale = {"metadata": {"resourceVersion": "6"}, "status": {"x": 1}}
    assert memory.freshest_status("u", stale) == {"x": 2}
    fresh = {"metadata": {"resourceVersion": "8"}, "status": {"x": 3}}
    assert memory.freshest_status("u", fresh) == {"x": 3}
    # Triggers hand over bodies of different ages: one older than our write never wins, even
    # after a newer one was seen (it would write that status again).
    assert memory.freshest_status("u", stale) == {"x": 2}
    memory.forget_status("u")
    assert memory.freshest_status("u", stale) == {"x": 1}


def test_children_written_lately_are_found_by_their_owner_before_the_cache_has_them() -> None:
    memory = WriteMemory()
    key = ("rbac.authorization.k8s.io/v1", "RoleBinding", "n", "b")
    labels = {OWNER_KIND_LABEL: "teamaccess", OWNER_NAME_LABEL: "team"}
    memory.remember(key, {"metadata": {"resourceVersion": "3", "labels": labels}})
    owner = owner_key("n", "TeamAccess", "team")
    assert memory.written_children(owner) == {key}
    memory.settle(key, {"metadata": {"resourceVersion": "3"}})  # the cache has it now
    assert memory.written_children(owner) == set()


def test_empty_values_the_server_leaves_out_are_not_drift() -> None:
    desired = {"spec": {"imagePullSecrets": [{"name": ""}], "args": [], "labels": {}, "x": None}}
    assert is_subset(desired, {"spec": {"imagePullSecrets": [{}]}})
    # A value that is not empty still has to be there.
    assert not is_subset({"spec": {"image": "a"}}, {"spec": {}})
    assert not is_subset({"spec": {"args": ["a"]}}, {"spec": {}})
