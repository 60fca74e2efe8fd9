"""Models of what n8n's public API answers. They keep unknown fields: n8n adds fields between
versions, and a fetched workflow must survive a round trip."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from .n8n_payloads import WorkflowPayload, writable_workflow

__all__ = ["Credential", "Execution", "ModelT", "Page", "Tag", "Workflow"]


class _N8nModel(BaseModel):
    # extra="allow": n8n adds fields between versions; keep them (model_dump returns them).
    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)


def _id_to_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Tag(_N8nModel):
    id: str
    name: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Workflow(_N8nModel):
    id: str
    name: str
    active: bool = False
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    connections: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)
    version_id: str | None = None
    is_archived: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def payload(self) -> WorkflowPayload:
        """This workflow in the shape create/update accept."""
        return writable_workflow(self.model_dump(by_alias=True))


class Credential(_N8nModel):
    """A created credential. n8n never returns a credential's data."""

    id: str
    name: str
    type: str
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Execution(_N8nModel):
    id: str
    finished: bool = False
    mode: str | None = None
    status: str | None = None
    workflow_id: str | None = None
    retry_of: str | None = None
    retry_success_id: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    wait_till: datetime | None = None
    data: dict[str, Any] | None = None

    _ids = field_validator("id", "workflow_id", "retry_of", "retry_success_id", mode="before")(
        _id_to_str
    )


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(BaseModel, Generic[ItemT]):
    """One page of a list answer; ``next_cursor`` is None on the last page."""

    model_config = ConfigDict(populate_by_name=True)

    data: list[ItemT]
    next_cursor: str | None = Field(default=None, alias="nextCursor")


ModelT = TypeVar("ModelT", bound=BaseModel)
