"""References to other objects. Secrets are only ever referenced, never inlined."""

from __future__ import annotations

from .base import ApiModel, ConfigKey, ObjectName


class LocalObjectRef(ApiModel):
    """A reference to an object in the same namespace."""

    name: ObjectName
    """Name of the object."""


class SecretKeyRef(ApiModel):
    """A key of a Secret in the same namespace."""

    name: ObjectName
    """Name of the Secret."""
    key: ConfigKey
    """Key within the Secret's data."""


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the same namespace."""

    name: ObjectName
    """Name of the ConfigMap."""
    key: ConfigKey
    """Key within the ConfigMap's data."""
