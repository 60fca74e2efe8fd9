"""Vendor the Kubernetes core types that the CRDs embed (EnvVar, Affinity, Probe, ...).

Reads the OpenAPI-derived JSON schemas that the `kubernetes-validate` package ships, resolves
every `$ref`, and rewrites them into *structural* schemas as the API server requires for CRDs:
no `null` in `type`, `int-or-string` markers instead of `oneOf`, descriptions cut to their
first sentence so the CRDs stay small enough for client-side `kubectl apply`.

Run:  .venv/bin/python hack/vendor_k8s_schemas.py
Writes operator/devserver_operator/api/k8s_schemas.json (committed; a test checks it is current).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate

KUBERNETES_SCHEMA_VERSION = "1.35.0"

EMBEDDED_TYPES = [
    "io.k8s.api.core.v1.EnvVar",
    "io.k8s.api.core.v1.EnvFromSource",
    "io.k8s.api.core.v1.ResourceRequirements",
    "io.k8s.api.core.v1.Toleration",
    "io.k8s.api.core.v1.Affinity",
    "io.k8s.api.core.v1.TopologySpreadConstraint",
    "io.k8s.api.core.v1.Probe",
    "io.k8s.api.core.v1.PodSecurityContext",
    "io.k8s.api.core.v1.SecurityContext",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.KeyToPath",
    "io.k8s.api.networking.v1.NetworkPolicyPeer",
    "io.k8s.api.networking.v1.NetworkPolicyEgressRule",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
]

# The x-kubernetes-* extensions a CRD schema may carry; the upstream OpenAPI has others
# (x-kubernetes-unions, x-kubernetes-patch-strategy, ...) that the API server refuses in CRDs.
CRD_EXTENSIONS = {
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
}
OUTPUT = Path(__file__).resolve().parents[1] / "operator/devserver_operator/api/k8s_schemas.json"
_FIRST_SENTENCE = re.compile(r"^(.+?\.)(\s|$)", re.DOTALL)


def _short(description: str) -> str:
    text = " ".join(description.split())
    match = _FIRST_SENTENCE.match(text)
    return match.group(1) if match else text


def _structural(node: Any, definitions: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in stack:
            raise SystemExit(f"recursive type {name} cannot be embedded in a structural schema")
        resolved = _structural(definitions[name], definitions, (*stack, name))
        if "description" in node:
            resolved = {**resolved, "description": _short(node["description"])}
        return resolved
    one_of = node.get("oneOf")
    if one_of is not None:
        kinds = {t for alt in one_of for t in _types(alt)} - {"null"}
        # IntOrString and resource.Quantity both become the API server's int-or-string.
        if not kinds <= {"string", "integer", "number"}:
            raise SystemExit(f"cannot express oneOf {sorted(kinds)} structurally")
        out: dict[str, Any] = {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
        }
        if "description" in node:
            out["description"] = _short(node["description"])
        return out
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type":
            types = [t for t in _types(node) if t != "null"]
            result["type"] = types[0]
        elif key == "description":
            result["description"] = _short(value)
        elif key == "properties":
            result["properties"] = {
                prop: _structural(schema, definitions, stack) for prop, schema in value.items()
            }
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = _structural(value, definitions, stack)
        elif key == "additionalProperties" and value is False:
            continue  # structural schemas prune unknown fields instead
        elif key in ("format", "enum", "required") or key in CRD_EXTENSIONS:
            result[key] = value
    if "properties" in result and "type" not in result:
        result["type"] = "object"
    return result


def _types(node: dict[str, Any]) -> list[str]:
    value = node.get("type", [])
    return [value] if isinstance(value, str) else list(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the JSON")
    output = parser.parse_args().output
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    source = root / f"v{KUBERNETES_SCHEMA_VERSION}-local-strict" / "_definitions.json"
    definitions = json.loads(source.read_text())["$defs"]
    vendored = {
        "_generated": f"by hack/vendor_k8s_schemas.py from Kubernetes {KUBERNETES_SCHEMA_VERSION}",
        "types": {
            name: _structural({"$ref": f"#/{name}"}, definitions, ()) for name in EMBEDDED_TYPES
        },
    }
    output.write_text(json.dumps(vendored, indent=1, sort_keys=True) + "\n")
    print(f"wrote {output} ({output.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
