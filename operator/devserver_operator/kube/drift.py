"""Does a live child still say what we last applied? Pure functions, no I/O.

Two checks together decide whether an apply is needed:
- the hash annotation: the desired manifest changed since the last apply (this also catches
  fields we stopped setting, which server-side apply then removes);
- the subset check: every field we set still has our value on the live object (someone
  edited or deleted it). Fields the server or other controllers add are ignored, so an
  unchanged object is never re-applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devserver_operator.builders.common import ANNOTATION_PREFIX, stable_hash

APPLIED_HASH_ANNOTATION = ANNOTATION_PREFIX + "applied-hash"


def with_applied_hash(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with the hash of its own content as an annotation."""
    digest = stable_hash(manifest, length=20)
    metadata = dict(manifest["metadata"])
    metadata["annotations"] = {**metadata.get("annotations", {}), APPLIED_HASH_ANNOTATION: digest}
    return {**manifest, "metadata": metadata}


def is_subset(desired: Any, live: Any) -> bool:
    """Whether every value in ``desired`` is present, equal, in ``live``."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(
            is_subset(value, live[key]) if key in live else _dropped_when_empty(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_subset(d, item) for d, item in zip(desired, live, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, str):
        return str(desired) == live  # int-or-string fields come back as given
    return bool(desired == live)


def _dropped_when_empty(value: Any) -> bool:
    # The API server leaves out empty optional fields (Go's omitempty): a desired "" or []
    # that is missing from the live object is there as much as it can be. Without this, such
    # a child would be applied again, successfully and for nothing, on every check.
    return value is None or value in ("", [], {})


def needs_apply(desired_with_hash: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    if live is None:
        return True
    wanted = desired_with_hash["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]
    current = (live.get("metadata", {}).get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)
    if wanted != current:
        return True
    return not is_subset(_without_status(desired_with_hash), live)


def _without_status(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in manifest.items() if key != "status"}
