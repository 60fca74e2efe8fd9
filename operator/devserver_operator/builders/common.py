"""Metadata every child carries: explicit labels and a controller ownerReference."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devserver_operator.api import API_VERSION

MANAGER = "devserver-operator"
PART_OF = "devserver-operator"
ANNOTATION_PREFIX = "devserver.ecosphere.network/"
CONFIG_HASH_ANNOTATION = ANNOTATION_PREFIX + "config-hash"
OWNER_KIND_LABEL = ANNOTATION_PREFIX + "owner-kind"
REQUEST_ANNOTATION = ANNOTATION_PREFIX + "requested-at"
"""Set to a new value (the console writes the time) to ask for a reconcile now: an MCPServer
runs its MCP handshake again, a WorkflowIntegration compares every workflow with n8n."""
OWNER_NAME_LABEL = ANNOTATION_PREFIX + "owner-name"


@dataclass(frozen=True)
class Owner:
    """The custom resource that owns the children."""

    kind: str
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        # controller=true lets `kubectl get --show-kind` and GitOps tools attribute the child;
        # blockOwnerDeletion keeps foreground deletion of the parent honest.
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def child_labels(owner: Owner, app_name: str, component: str) -> dict[str, str]:
    """Labels of a child. The parent's labels are deliberately not copied: Argo CD would
    otherwise treat children as its own resources and prune them."""
    return {
        "app.kubernetes.io/name": app_name,
        "app.kubernetes.io/instance": label_value(owner.name),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGER,
        OWNER_KIND_LABEL: owner.kind.lower(),
        OWNER_NAME_LABEL: label_value(owner.name),
    }


def owner_selector(owner: Owner) -> dict[str, str]:
    """Labels that find every child of one owner (for pruning and drift watches)."""
    return {
        "app.kubernetes.io/managed-by": MANAGER,
        OWNER_KIND_LABEL: owner.kind.lower(),
        OWNER_NAME_LABEL: label_value(owner.name),
    }


def label_value(name: str) -> str:
    """``name`` as a label value: object names may reach 253 characters, label values 63."""
    if len(name) <= 63:
        return name
    return f"{name[:46].rstrip('-.')}-{stable_hash(name)}"


def child_metadata(
    owner: Owner,
    name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": dict(labels),
        "ownerReferences": [owner.reference()],
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def held_by_another(live: Mapping[str, Any], owner: Owner) -> str | None:
    """How an existing object is held when ``owner`` does not control it (None when it does).

    The operator applies its children with force; applied over an object someone else made
    it would take that object over, so such a name is refused instead."""
    references = (live.get("metadata") or {}).get("ownerReferences") or []
    controller = next((ref for ref in references if ref.get("controller")), None)
    if controller is not None and controller.get("uid") == owner.uid:
        return None
    if controller is not None:
        return f"is controlled by {controller.get('kind')} {controller.get('name')}"
    return f"exists and is not controlled by this {owner.kind}"


def stable_hash(value: Any, length: int = 16) -> str:
    """A short hash of JSON-able data, independent of key order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
