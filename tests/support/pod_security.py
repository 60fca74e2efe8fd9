"""Pod Security Standards, "restricted" profile, checked field by field.

Follows the checks the API server's PodSecurity admission applies (baseline + restricted), so
a pod template that passes here is admitted to a namespace labelled enforce=restricted.
"""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
ALLOWED_ADDED_CAPABILITIES = {"NET_BIND_SERVICE"}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"spec.{field} must be unset or false")
    pod_sc = pod.get("securityContext") or {}
    containers = [
        *(pod.get("initContainers") or []),
        *(pod.get("containers") or []),
        *(pod.get("ephemeralContainers") or []),
    ]
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            found.append(f"volume {volume['name']}: type {sorted(kinds)} is not allowed")
    if pod_sc.get("runAsUser") == 0:
        found.append("spec.securityContext.runAsUser must not be 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        found.append("spec.securityContext.seccompProfile.type must be RuntimeDefault or Localhost")
    for sysctl in pod_sc.get("sysctls") or []:
        found.append(f"sysctl {sysctl.get('name')} is not in the safe set")
    for container in containers:
        name = container.get("name")
        sc = container.get("securityContext") or {}
        prefix = f"container {name}"
        if sc.get("privileged"):
            found.append(f"{prefix}: privileged must be false")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{prefix}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{prefix}: capabilities.drop must include ALL")
        if set(caps.get("add") or []) - ALLOWED_ADDED_CAPABILITIES:
            found.append(f"{prefix}: capabilities.add may only hold NET_BIND_SERVICE")
        run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if run_as_non_root is not True:
            found.append(f"{prefix}: runAsNonRoot must be true (container or pod)")
        if sc.get("runAsUser") == 0:
            found.append(f"{prefix}: runAsUser must not be 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ALLOWED_SECCOMP:
            found.append(f"{prefix}: seccompProfile.type must be RuntimeDefault or Localhost")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{prefix}: hostPort must not be set")
        if (sc.get("procMount") or "Default") != "Default":
            found.append(f"{prefix}: procMount must be Default")
    return found
