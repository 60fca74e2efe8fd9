"""The securityContext blocks that Pod Security "restricted" asks of the components this package
installs on kind (Flux, Argo CD). They are spliced into YAML kept in Python strings, so each
carries the indentation of its place: a pod spec's fields (6 spaces), a container's (10)."""

from __future__ import annotations

from typing import Final

CONTAINER: Final = """\
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}"""


def pod(run_as: int | None = None) -> str:
    """``run_as``: the uid and gid, for images whose user is a name (kubelet can verify
    runAsNonRoot only for a numeric user)."""
    identity = (
        f"        runAsUser: {run_as}\n        runAsGroup: {run_as}\n" if run_as is not None else ""
    )
    return (
        "      securityContext:\n        runAsNonRoot: true\n"
        f"{identity}        seccompProfile: {{type: RuntimeDefault}}"
    )
