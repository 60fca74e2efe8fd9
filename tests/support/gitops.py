"""Judge objects with the GitOps tools' own code: kstatus (cli-utils, as Flux computes health)
and Argo CD's health assessment, each a small Go program built from the pinned library
(hack/gitops/, cached by hack/controlplane/build.sh).

Both take many objects in one call: each run starts a process (and Argo CD's settings
informers), so tests collect their objects and ask once.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devserver_operator.localcluster import binaries

REPO = Path(__file__).resolve().parents[2]
ARGOCD_CM = REPO / "gitops" / "argocd" / "argocd-cm.yaml"
"""The ConfigMap users apply (generated from gitops/argocd/health.lua; docs/gitops.md)."""

# Generous: a cold call on a loaded two-core machine; a warm one takes a fraction of a second.
_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Verdict:
    kind: str
    name: str
    status: str
    message: str
    error: str


def _judge(command: list[str], objects: Sequence[Mapping[str, Any]]) -> list[Verdict]:
    payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    done = subprocess.run(
        command, input=payload, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")
    results = [
        Verdict(
            kind=entry["kind"],
            name=entry["name"],
            status=entry.get("status", ""),
            message=entry.get("message", ""),
            error=entry.get("error", ""),
        )
        for entry in json.loads(done.stdout)
    ]
    if len(results) != len(objects):
        raise RuntimeError(f"{command[0]} judged {len(results)} of {len(objects)} objects")
    return results


def kstatus(objects: Sequence[Mapping[str, Any]]) -> list[Verdict]:
    """cli-utils' ``status.Compute`` of each object: Current, InProgress, Failed, ..."""
    tool = binaries.ensure_binaries((binaries.KSTATUS,))[binaries.KSTATUS]
    return _judge([str(tool)], objects)


def argocd_health(
    objects: Sequence[Mapping[str, Any]], argocd_cm: Path = ARGOCD_CM
) -> list[Verdict]:
    """Argo CD's health of each object under ``argocd_cm``: Healthy, Progressing, ..."""
    tool = binaries.ensure_binaries((binaries.ARGOCD_HEALTH,))[binaries.ARGOCD_HEALTH]
    return _judge([str(tool), str(argocd_cm)], objects)
