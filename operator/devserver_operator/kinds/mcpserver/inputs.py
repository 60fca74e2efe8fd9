"""Read what an MCPServer references: Secrets and ConfigMaps (for the pod hash) and header
values (for verification). Values never leave this module except as a hash or as headers."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.builders.mcpserver import config_hash, referenced_objects
from devserver_operator.kube.client import KubeClient


class MissingReferenceError(Exception):
    """A referenced Secret, ConfigMap or key does not exist; the message names it, not values."""


@dataclass(frozen=True)
class ReferencedInputs:
    config_hash: str | None
    headers: dict[str, str]


def _decode(data: Mapping[str, str] | None) -> dict[str, str]:
    return {
        key: base64.b64decode(value).decode(errors="replace") for key, value in (data or {}).items()
    }


async def read_referenced_inputs(
    kube: KubeClient, namespace: str, spec: MCPServerSpec
) -> ReferencedInputs:
    secrets, config_maps = referenced_objects(spec)
    optional = _optional_names(spec)
    contents: dict[str, Mapping[str, str] | None] = {}
    for name in sorted(secrets):
        secret = await kube.get("v1", "Secret", name, namespace)
        if secret is None and name not in optional:
            raise MissingReferenceError(f"Secret {namespace}/{name} does not exist")
        contents[f"secret/{name}"] = _decode(secret.get("data")) if secret else None
    for name in sorted(config_maps):
        config_map = await kube.get("v1", "ConfigMap", name, namespace)
        if config_map is None and name not in optional:
            raise MissingReferenceError(f"ConfigMap {namespace}/{name} does not exist")
        contents[f"configmap/{name}"] = dict(config_map.get("data") or {}) if config_map else None
    return ReferencedInputs(
        config_hash(contents) if contents else None, await read_headers(kube, namespace, spec)
    )


async def read_headers(kube: KubeClient, namespace: str, spec: MCPServerSpec) -> dict[str, str]:
    """The values of ``spec.headers`` from their Secrets, read with ``kube``'s rights (the
    console passes a person's client: what they may not read stays unread)."""
    headers: dict[str, str] = {}
    for header in spec.headers or []:
        reference = header.value_from.secret_key_ref
        secret = await kube.get("v1", "Secret", reference.name, namespace)
        if secret is None:
            raise MissingReferenceError(
                f"Secret {namespace}/{reference.name} for header {header.name} does not exist"
            )
        values = _decode(secret.get("data"))
        if reference.key not in values:
            raise MissingReferenceError(
                f"Secret {namespace}/{reference.name} has no key {reference.key} "
                f"(needed for header {header.name})"
            )
        headers[header.name] = values[reference.key].strip()
    return headers


def _optional_names(spec: MCPServerSpec) -> set[str]:
    names: set[str] = set()
    for env in spec.env or []:
        for ref in (env.get("valueFrom") or {}).values():
            if isinstance(ref, dict) and ref.get("optional"):
                names.add(ref.get("name", ""))
    for env_from in spec.env_from or []:
        for ref in env_from.values():
            if isinstance(ref, dict) and ref.get("optional"):
                names.add(ref.get("name", ""))
    for volume in spec.volumes or []:
        if volume.secret is not None and volume.secret.optional:
            names.add(volume.secret.secret_name)
        if volume.config_map is not None and volume.config_map.optional:
            names.add(volume.config_map.name)
    return names
