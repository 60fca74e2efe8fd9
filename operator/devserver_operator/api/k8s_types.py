"""Kubernetes core types embedded in the custom resources (EnvVar, Affinity, Probe, ...).

Their schemas are vendored from the Kubernetes OpenAPI by ``hack/vendor_k8s_schemas.py`` so
the CRDs carry the full upstream shapes. In Python they stay plain dicts (they are handed to
the pod template unchanged), checked against the same schema so that the operator refuses what
the API server refuses.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


@cache
def vendored_schema(type_name: str) -> dict[str, Any]:
    """The structural schema of one vendored Kubernetes type."""
    raw = resources.files(__package__).joinpath("k8s_schemas.json").read_text()
    schema: dict[str, Any] = json.loads(raw)["types"][type_name]
    return schema


def check_against_schema(value: Any, schema: dict[str, Any], path: str) -> None:
    """Raise ValueError naming the first field of ``value`` that ``schema`` rejects."""
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise ValueError(f"{path}: must be an integer or a string")
        return
    expected = schema.get("type")
    if expected is not None:
        python_type = _JSON_TYPES[expected]
        if not isinstance(value, python_type) or (
            expected in ("integer", "number") and isinstance(value, bool)
        ):
            raise ValueError(f"{path}: must be of type {expected}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{path}: must be one of {schema['enum']}")
    if isinstance(value, dict):
        properties = schema.get("properties")
        for required in schema.get("required", []):
            if required not in value:
                raise ValueError(f"{path}.{required}: required")
        for key, item in value.items():
            if properties is not None:
                if key not in properties:
                    raise ValueError(f"{path}.{key}: unknown field")
                check_against_schema(item, properties[key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                check_against_schema(item, schema["additionalProperties"], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            check_against_schema(item, schema["items"], f"{path}[{index}]")


def _checker(type_name: str) -> AfterValidator:
    short = type_name.rsplit(".", 1)[-1]

    def check(value: dict[str, Any]) -> dict[str, Any]:
        check_against_schema(value, vendored_schema(type_name), short)
        return value

    return AfterValidator(check)


def _schema(type_name: str) -> WithJsonSchema:
    return WithJsonSchema(vendored_schema(type_name))


# Spelled out one by one because type checkers only accept literal Annotated aliases.

EnvVar = Annotated[
    dict[str, Any], _checker("io.k8s.api.core.v1.EnvVar"), _schema("io.k8s.api.core.v1.EnvVar")
]
EnvFromSource = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.core.v1.EnvFromSource"),
    _schema("io.k8s.api.core.v1.EnvFromSource"),
]
ResourceRequirements = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.core.v1.ResourceRequirements"),
    _schema("io.k8s.api.core.v1.ResourceRequirements"),
]
Toleration = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.core.v1.Toleration"),
    _schema("io.k8s.api.core.v1.Toleration"),
]
Affinity = Annotated[
    dict[str, Any], _checker("io.k8s.api.core.v1.Affinity"), _schema("io.k8s.api.core.v1.Affinity")
]
TopologySpreadConstraint = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.core.v1.TopologySpreadConstraint"),
    _schema("io.k8s.api.core.v1.TopologySpreadConstraint"),
]
Probe = Annotated[
    dict[str, Any], _checker("io.k8s.api.core.v1.Probe"), _schema("io.k8s.api.core.v1.Probe")
]
PodSecurityContext = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.core.v1.PodSecurityContext"),
    _schema("io.k8s.api.core.v1.PodSecurityContext"),
]
SecurityContext = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.core.v1.SecurityContext"),
    _schema("io.k8s.api.core.v1.SecurityContext"),
]
LocalObjectReference = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.core.v1.LocalObjectReference"),
    _schema("io.k8s.api.core.v1.LocalObjectReference"),
]
KeyToPath = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.core.v1.KeyToPath"),
    _schema("io.k8s.api.core.v1.KeyToPath"),
]
NetworkPolicyPeer = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.networking.v1.NetworkPolicyPeer"),
    _schema("io.k8s.api.networking.v1.NetworkPolicyPeer"),
]
NetworkPolicyEgressRule = Annotated[
    dict[str, Any],
    _checker("io.k8s.api.networking.v1.NetworkPolicyEgressRule"),
    _schema("io.k8s.api.networking.v1.NetworkPolicyEgressRule"),
]
LabelSelector = Annotated[
    dict[str, Any],
    _checker("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
    _schema("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
]
