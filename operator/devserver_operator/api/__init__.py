"""The API: pydantic models of the four kinds, the single source of truth for the CRDs."""

from .kinds import ALL_KINDS, API_VERSION, CATEGORY, GROUP, KINDS_BY_NAME, VERSION, KindInfo

__all__ = ["ALL_KINDS", "API_VERSION", "CATEGORY", "GROUP", "KINDS_BY_NAME", "VERSION", "KindInfo"]
