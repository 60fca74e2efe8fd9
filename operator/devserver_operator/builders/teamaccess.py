"""TeamAccess -> one RoleBinding in the TeamAccess's own namespace. Pure: no I/O, no clock.

One binding per TeamAccess, not one per member or member kind: a RoleBinding holds any mix of
Users, Groups and ServiceAccounts, so one object means one write when members change, one name
to look for in a conflict, and nothing to reassemble for the status.

The binding's roleRef is immutable in Kubernetes; when the role changes, the handler deletes
the binding and creates it anew under the same name, which also means a member never holds the
old and the new role at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from devserver_operator.api.teamaccess import TeamAccessSpec

from .common import Owner, child_labels, child_metadata, stable_hash

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLE_BINDING_API_VERSION = f"{RBAC_GROUP}/v1"
BINDING_PREFIX = "devserver-team-"
MAX_NAME_LENGTH = 253
APP_NAME = "devserver-team-access"
COMPONENT = "team-access"


def binding_name(teamaccess_name: str) -> str:
    """``devserver-team-<name>``; names that would pass the 253-character limit keep a prefix
    and end in a hash of the full name, so distinct TeamAccesses never share a binding."""
    name = BINDING_PREFIX + teamaccess_name
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = stable_hash(teamaccess_name)
    keep = MAX_NAME_LENGTH - len(BINDING_PREFIX) - len(digest) - 1
    return f"{BINDING_PREFIX}{teamaccess_name[:keep].rstrip('-.')}-{digest}"


def subjects(spec: TeamAccessSpec, namespace: str) -> list[dict[str, str]]:
    """RBAC subjects of the members, sorted so that reordering members in Git changes nothing."""
    result: list[dict[str, str]] = []
    for member in spec.members:
        if member.kind == "ServiceAccount":
            result.append(
                {
                    "kind": "ServiceAccount",
                    "name": member.name,
                    "namespace": member.namespace or namespace,
                }
            )
        else:
            result.append({"kind": member.kind, "apiGroup": RBAC_GROUP, "name": member.name})
    return sorted(result, key=lambda s: (s["kind"], s.get("namespace", ""), s["name"]))


def role_ref(spec: TeamAccessSpec) -> dict[str, str]:
    return {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": spec.cluster_role}


def build_role_binding(owner: Owner, spec: TeamAccessSpec) -> dict[str, Any]:
    """The RoleBinding that gives every member the TeamAccess's role in its namespace."""
    return {
        "apiVersion": ROLE_BINDING_API_VERSION,
        "kind": "RoleBinding",
        "metadata": child_metadata(
            owner, binding_name(owner.name), child_labels(owner, APP_NAME, COMPONENT)
        ),
        "roleRef": role_ref(spec),
        "subjects": subjects(spec, owner.namespace),
    }


def foreign_service_accounts(spec: TeamAccessSpec, namespace: str) -> list[str]:
    """One sentence per ServiceAccount member from another namespace (the CRD's CEL rules
    cannot see the object's namespace, so the operator checks this)."""
    return [
        f"spec.members[{index}].namespace: {member.namespace!r} is not this TeamAccess's "
        f"namespace {namespace!r}; a TeamAccess binds only ServiceAccounts of its own namespace"
        for index, member in enumerate(spec.members)
        if member.kind == "ServiceAccount"
        and member.namespace is not None
        and member.namespace != namespace
    ]


def expiry(spec: TeamAccessSpec) -> datetime | None:
    """``expiresAt`` as an aware UTC time; a time without zone counts as UTC."""
    if spec.expires_at is None:
        return None
    if spec.expires_at.tzinfo is None:
        return spec.expires_at.replace(tzinfo=UTC)
    return spec.expires_at.astimezone(UTC)


def has_expired(spec: TeamAccessSpec, now: datetime) -> bool:
    """Whether the access has ended at ``now`` (the expiry instant itself counts as ended)."""
    ends = expiry(spec)
    return ends is not None and ends <= now


def binding_summary(binding: Mapping[str, Any]) -> dict[str, Any]:
    """The status entry of a binding (``status.bindings[]``)."""
    return {
        "name": binding["metadata"]["name"],
        "clusterRole": binding["roleRef"]["name"],
        "subjects": len(binding.get("subjects") or []),
    }
