"""Base model and scalar types shared by every kind.

Every model is frozen (handlers never mutate a parsed spec), speaks camelCase on the wire and
snake_case in Python, and forbids unknown fields: the API server prunes unknown fields with the
structural schema, so anything unknown that still reaches the model is a bug worth surfacing.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``90s``, ``5m`` or ``1h30m``."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


# Go's time.Duration (int64 nanoseconds), which the API server's CEL duration() converts to:
# a longer one makes every CEL rule on it fail, so the model refuses it too (found by fuzzing).
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9


def _check_duration(text: str) -> str:
    if parse_duration(text) > MAX_DURATION_SECONDS:
        raise ValueError(f"{text!r} is longer than the longest duration Kubernetes can hold")
    return text


Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=32),
    AfterValidator(_check_duration),
]
"""A duration such as ``30s``, ``5m`` or ``1h30m`` (units ms, s, m, h)."""


def _require_rfc3339_text(value: object) -> object:
    # pydantic would also take a number as Unix time; the API server takes only RFC 3339 text.
    if isinstance(value, int | float):
        raise ValueError("must be an RFC 3339 date-time string such as 2027-01-31T00:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_require_rfc3339_text)]
"""An RFC 3339 date-time (``2027-01-31T00:00:00Z``)."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

DnsLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
"""A DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters."""

ObjectName = Annotated[str, Field(pattern=DNS_SUBDOMAIN_PATTERN, min_length=1, max_length=253)]
"""The name of a Kubernetes object in the same namespace."""

ConfigKey = Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", min_length=1, max_length=253)]
"""A key of a ConfigMap or Secret."""

LabelMap = Annotated[
    dict[str, Annotated[str, Field(max_length=63)]],
    WithJsonSchema({"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}}),
]
"""Kubernetes labels: keys and values as ``metadata.labels`` accepts them."""

AnnotationMap = dict[str, str]


def list_map(*keys: str) -> JsonDict:
    """Schema markers of a list that server-side apply merges item by item, keyed by ``keys``."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}
