"""Kubernetes Events on the custom resources, for transitions a person wants to see."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import kopf


def post_event(
    body: Mapping[str, Any], type_: Literal["Normal", "Warning"], *, reason: str, message: str
) -> None:
    # kopf posts in the background and accepts any mapping with apiVersion, kind and metadata;
    # bodies from our indexes are plain dicts.
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)
