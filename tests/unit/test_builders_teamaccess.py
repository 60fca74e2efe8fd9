"""TeamAccess builder: one RoleBinding in the TeamAccess's namespace, to a team role only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devserver_operator.api.teamaccess import CLUSTER_ROLE_FOR, TeamAccessSpec
from devserver_operator.builders.common import OWNER_KIND_LABEL, Owner
from devserver_operator.builders.teamaccess import (
    BINDING_PREFIX,
    MAX_NAME_LENGTH,
    binding_name,
    binding_summary,
    build_role_binding,
    expiry,
    foreign_service_accounts,
    has_expired,
    subjects,
)

OWNER = Owner(kind="TeamAccess", name="platform", namespace="team-a", uid="uid-1234")
KUBERNETES_VERSION = "1.35.0"
RBAC = "rbac.authorization.k8s.io"


def spec(role: str = "operator", **extra: Any) -> TeamAccessSpec:
    members = extra.pop("members", [{"kind": "User", "name": "alice@example.com"}])
    return TeamAccessSpec.model_validate({"role": role, "members": members, **extra})


def test_binding_is_named_after_the_teamaccess() -> None:
    assert build_role_binding(OWNER, spec())["metadata"]["name"] == "devserver-team-platform"


def test_binding_lives_in_the_teamaccess_namespace_and_is_controlled_by_it() -> None:
    metadata = build_role_binding(OWNER, spec())["metadata"]
    assert metadata["namespace"] == "team-a"
    (reference,) = metadata["ownerReferences"]
    assert reference["uid"] == "uid-1234" and reference["kind"] == "TeamAccess"
    assert reference["controller"] is True


def test_binding_labels_are_explicit_and_name_the_owner() -> None:
    labels = build_role_binding(OWNER, spec())["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "devserver-operator"
    assert labels["app.kubernetes.io/instance"] == "platform"
    assert labels[OWNER_KIND_LABEL] == "teamaccess"


@pytest.mark.parametrize("role", sorted(CLUSTER_ROLE_FOR))
def test_each_role_binds_its_own_cluster_role_and_nothing_else(role: str) -> None:
    binding = build_role_binding(OWNER, spec(role))
    assert binding["roleRef"] == {
        "apiGroup": RBAC,
        "kind": "ClusterRole",
        "name": f"devserver-{role}",
    }


def test_users_and_groups_use_the_rbac_api_group() -> None:
    result = subjects(
        spec(members=[{"kind": "Group", "name": "oidc:devs"}, {"kind": "User", "name": "bob"}]),
        "team-a",
    )
    assert result == [
        {"kind": "Group", "apiGroup": RBAC, "name": "oidc:devs"},
        {"kind": "User", "apiGroup": RBAC, "name": "bob"},
    ]


def test_service_accounts_default_to_the_teamaccess_namespace() -> None:
    result = subjects(spec(members=[{"kind": "ServiceAccount", "name": "ci"}]), "team-a")
    assert result == [{"kind": "ServiceAccount", "name": "ci", "namespace": "team-a"}]


def test_member_order_does_not_change_the_binding() -> None:
    members = [
        {"kind": "User", "name": "zed"},
        {"kind": "ServiceAccount", "name": "ci"},
        {"kind": "Group", "name": "devs"},
    ]
    forward = build_role_binding(OWNER, spec(members=members))
    backward = build_role_binding(OWNER, spec(members=list(reversed(members))))
    assert forward == backward


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["User", "Group", "ServiceAccount"]),
            st.from_regex(r"[a-z]([a-z0-9-]{0,18}[a-z0-9])?", fullmatch=True),
        ),
        min_size=1,
        max_size=20,
        unique=True,
    )
)
def test_every_member_becomes_exactly_one_subject(pairs: list[tuple[str, str]]) -> None:
    members = [{"kind": kind, "name": name} for kind, name in pairs]
    result = subjects(spec(members=members), "team-a")
    assert sorted((s["kind"], s["name"]) for s in result) == sorted(pairs)


@pytest.mark.parametrize("role", sorted(CLUSTER_ROLE_FOR))
def test_binding_is_a_valid_kubernetes_object(role: str) -> None:
    members = [
        {"kind": "User", "name": "alice@example.com"},
        {"kind": "Group", "name": "oidc:platform"},
        {"kind": "ServiceAccount", "name": "ci-deployer"},
    ]
    binding = build_role_binding(OWNER, spec(role, members=members))
    kubernetes_validate.validate(binding, KUBERNETES_VERSION, strict=True)


def test_long_names_stay_within_the_limit_and_distinct() -> None:
    first, second = "a" * 250, "a" * 249 + "b"
    assert len(binding_name(first)) <= MAX_NAME_LENGTH
    assert binding_name(first).startswith(BINDING_PREFIX)
    assert binding_name(first) != binding_name(second)
    assert binding_name("x") == BINDING_PREFIX + "x"


def test_service_account_of_another_namespace_is_named_with_field_and_value() -> None:
    members = [
        {"kind": "User", "name": "alice"},
        {"kind": "ServiceAccount", "name": "ci", "namespace": "prod"},
        {"kind": "ServiceAccount", "name": "local", "namespace": "team-a"},
    ]
    (problem,) = foreign_service_accounts(spec(members=members), "team-a")
    assert "spec.members[1].namespace" in problem
    assert "'prod'" in problem and "'team-a'" in problem


def test_service_accounts_of_the_own_namespace_are_fine() -> None:
    members = [{"kind": "ServiceAccount", "name": "ci", "namespace": "team-a"}]
    assert foreign_service_accounts(spec(members=members), "team-a") == []


NOW = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


def test_no_expiry_never_expires() -> None:
    assert not has_expired(spec(), NOW + timedelta(days=10_000))


@pytest.mark.parametrize(
    ("offset", "expired"),
    [(timedelta(seconds=-1), False), (timedelta(0), True), (timedelta(seconds=1), True)],
)
def test_access_ends_at_the_expiry_instant(offset: timedelta, expired: bool) -> None:
    access = spec(expiresAt="2027-01-01T12:00:00Z")
    assert has_expired(access, NOW + offset) is expired


def test_expiry_in_other_zones_is_compared_in_utc() -> None:
    access = spec(expiresAt="2027-01-01T13:00:00+01:00")
    assert expiry(access) == NOW
    assert has_expired(access, NOW)


def test_expiry_without_zone_counts_as_utc() -> None:
    access = spec(expiresAt="2027-01-01T12:00:00")
    assert expiry(access) == NOW


def test_status_summary_of_a_binding() -> None:
    members = [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"}]
    binding = build_role_binding(OWNER, spec("viewer", members=members))
    assert binding_summary(binding) == {
        "name": "devserver-team-platform",
        "clusterRole": "devserver-viewer",
        "subjects": 2,
    }
