"""Turn pydantic errors into one sentence that names the fields, for a Stalled condition."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(error: ValidationError, limit: int = 5) -> str:
    parts = []
    for item in error.errors()[:limit]:
        location = ".".join(str(p) for p in item["loc"]) or "spec"
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"spec.{location}: {message}" if location != "spec" else f"spec: {message}")
    more = len(error.errors()) - limit
    suffix = f" (and {more} more)" if more > 0 else ""
    return "Invalid spec: " + "; ".join(parts) + suffix
