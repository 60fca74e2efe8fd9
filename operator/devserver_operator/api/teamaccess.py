"""TeamAccess: preset roles over this project's resources for users, groups and service
accounts, through RoleBindings in the TeamAccess's own namespace."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from .base import DNS_SUBDOMAIN_PATTERN, ApiModel, ObjectName, Timestamp, list_map
from .conditions import Condition

TeamRole = Literal["viewer", "operator", "admin"]
CLUSTER_ROLE_FOR = {
    "viewer": "devserver-viewer",
    "operator": "devserver-operator",
    "admin": "devserver-admin",
}
SA_NAMESPACE_ONLY_MESSAGE = "namespace applies only to members of kind ServiceAccount"
UNIQUE_MEMBERS_MESSAGE = "members must be unique by kind and name"
SA_NAME_MESSAGE = (
    "a ServiceAccount member's name must be a DNS subdomain "
    "(lower-case letters, digits, '-' and '.', at most 253 characters)"
)
ANONYMOUS_MEMBER_MESSAGE = (
    "the User system:anonymous and the Group system:unauthenticated cannot be members: "
    "a team role is only for authenticated identities"
)
# Kubernetes names every unauthenticated request so; binding a role to them opens it to anyone
# who can reach the API server.
ANONYMOUS_SUBJECTS = (("User", "system:anonymous"), ("Group", "system:unauthenticated"))


class Member(ApiModel):
    """A subject that gets the role."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.kind == 'ServiceAccount' || !has(self.__namespace__)",
                    "message": SA_NAMESPACE_ONLY_MESSAGE,
                },
                {
                    # A raw CEL string: the pattern's backslashes are not escapes.
                    "rule": f"self.kind != 'ServiceAccount' || "
                    f"self.name.matches(r'{DNS_SUBDOMAIN_PATTERN}')",
                    "message": SA_NAME_MESSAGE,
                },
                {
                    "rule": " && ".join(
                        f"!(self.kind == '{kind}' && self.name == '{name}')"
                        for kind, name in ANONYMOUS_SUBJECTS
                    ),
                    "message": ANONYMOUS_MEMBER_MESSAGE,
                },
            ]
        }
    }

    kind: Literal["User", "Group", "ServiceAccount"]
    """User and Group come from the cluster's authentication (OIDC groups included)."""
    name: str = Field(min_length=1, max_length=253)
    """User name, group name or ServiceAccount name."""
    namespace: ObjectName | None = None
    """ServiceAccount namespace; must be the TeamAccess's own namespace (the default)."""

    @model_validator(mode="after")
    def _namespace_for_service_accounts(self) -> Member:
        if self.namespace is not None and self.kind != "ServiceAccount":
            raise ValueError(SA_NAMESPACE_ONLY_MESSAGE)
        return self

    @model_validator(mode="after")
    def _service_account_name(self) -> Member:
        if self.kind == "ServiceAccount" and not re.fullmatch(DNS_SUBDOMAIN_PATTERN, self.name):
            raise ValueError(SA_NAME_MESSAGE)
        return self

    @model_validator(mode="after")
    def _authenticated_only(self) -> Member:
        if (self.kind, self.name) in ANONYMOUS_SUBJECTS:
            raise ValueError(ANONYMOUS_MEMBER_MESSAGE)
        return self


class TeamAccessSpec(ApiModel):
    """Who gets which role, until when."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.members.all(m, self.members.exists_one(o, "
                    "o.kind == m.kind && o.name == m.name))",
                    "message": UNIQUE_MEMBERS_MESSAGE,
                }
            ]
        }
    }

    role: TeamRole
    """viewer (read the four kinds and their children), operator (also create and change
    MCPServer, WorkflowIntegration and AlertRule) or admin (also TeamAccess and Secrets); bound
    as the ClusterRole devserver-<role> in this namespace only. Creating or changing a
    TeamAccess requires permission to bind that ClusterRole here (admission policy)."""
    members: list[Member] = Field(min_length=1, max_length=100)
    """Users, groups and service accounts that get the role."""
    expires_at: Timestamp | None = None
    """When the access ends (RFC 3339): the operator removes the bindings at that moment and
    reports Expired. An expiry in the past grants nothing."""
    description: str | None = Field(default=None, max_length=1024)
    """Why the access exists, for reviewers."""

    @model_validator(mode="after")
    def _unique_members(self) -> TeamAccessSpec:
        keys = [(m.kind, m.name) for m in self.members]
        if len(set(keys)) != len(keys):
            raise ValueError(UNIQUE_MEMBERS_MESSAGE)
        return self

    @property
    def cluster_role(self) -> str:
        return CLUSTER_ROLE_FOR[self.role]


class BindingStatus(ApiModel):
    """A RoleBinding the operator maintains."""

    name: str
    """RoleBinding name."""
    cluster_role: str
    """ClusterRole it binds."""
    subjects: int
    """Number of subjects."""


class TeamAccessStatus(ApiModel):
    """Observed state of the access."""

    observed_generation: int | None = None
    """The .metadata.generation last reconciled."""
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra=list_map("type"),
    )
    """Ready, Reconciling, Stalled and Expired."""
    bindings: list[BindingStatus] | None = None
    """RoleBindings in force."""
    member_count: int | None = None
    """Members that hold the role now."""
    expires_at: datetime | None = None
    """When the access ends."""
    expired: bool | None = None
    """The access has ended and its bindings are gone."""
