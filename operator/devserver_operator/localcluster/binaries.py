"""Where the control-plane binaries live, and how to build them when they are missing.

The binaries are compiled from their Go modules by ``hack/controlplane/build.sh`` into a
per-user cache keyed by version, so every clone and every CI run on a machine shares them.
``hack/controlplane/versions.env`` holds the pins for both the script and this module.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

BIN_DIR_ENV: Final = "DEVSERVER_CONTROLPLANE_BIN_DIR"
"""Names a directory that holds the binaries directly; it replaces the version cache."""

CACHE_DIR_ENV: Final = "DEVSERVER_CACHE_DIR"
"""Overrides the cache root (default ``~/.cache/devserver-operator``), as build.sh does."""

ETCD: Final = "etcd"
KUBE_APISERVER: Final = "kube-apiserver"
KUBE_CONTROLLER_MANAGER: Final = "kube-controller-manager"
HELM: Final = "helm"
KUBECTL: Final = "kubectl"
KIND: Final = "kind"
KSTATUS: Final = "kstatus"
"""cli-utils' kstatus as a command (hack/gitops/kstatus): how Flux judges the kinds' status."""
ARGOCD_HEALTH: Final = "argocd-health"
"""Argo CD's health assessment as a command (hack/gitops/argocd-health)."""
ALL_BINARIES: Final = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, HELM)
"""What the local control plane needs; kind and kubectl are built on demand for kind clusters."""

# This file is operator/devserver_operator/localcluster/binaries.py in a clone; the
# build recipe is only there, not in an installed wheel.
_REPO_ROOT: Final = Path(__file__).resolve().parents[3]
HACK_DIR: Final = _REPO_ROOT / "hack" / "controlplane"
VERSIONS_FILE: Final = HACK_DIR / "versions.env"
BUILD_SCRIPT: Final = HACK_DIR / "build.sh"
GITOPS_DIR: Final = _REPO_ROOT / "hack" / "gitops"


class BinariesNotFoundError(RuntimeError):
    """A required binary is neither in the override directory nor in the cache."""


@dataclass(frozen=True)
class PinnedVersions:
    kubernetes: str
    etcd: str
    helm: str
    kind: str = ""
    cli_utils: str = ""
    argocd: str = ""

    def of(self, binary: str) -> str:
        """The version that names ``binary``'s cache directory."""
        if binary == KSTATUS and self.cli_utils:
            return _source_key(self.cli_utils, GITOPS_DIR / KSTATUS)
        if binary == ARGOCD_HEALTH and self.argocd:
            return _source_key(self.argocd, GITOPS_DIR / ARGOCD_HEALTH)
        if binary in (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBECTL):
            return self.kubernetes
        if binary == KIND and self.kind:
            return self.kind
        if binary == ETCD:
            return self.etcd
        if binary == HELM:
            return self.helm
        raise ValueError(f"unknown binary {binary!r}; known: {', '.join(ALL_BINARIES)}")


def read_pinned_versions(versions_file: Path = VERSIONS_FILE) -> PinnedVersions:
    """Parse versions.env: ``KEY=value`` lines, ``#`` comments, no shell expansion."""
    if not versions_file.is_file():
        raise BinariesNotFoundError(
            f"{versions_file} does not exist: the control-plane pins live in the source "
            f"checkout; outside one, point {BIN_DIR_ENV} at a directory with the binaries"
        )
    values: dict[str, str] = {}
    for raw_line in versions_file.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'")
    try:
        return PinnedVersions(
            kubernetes=values["KUBERNETES_VERSION"],
            etcd=values["ETCD_VERSION"],
            helm=values["HELM_VERSION"],
            kind=values.get("KIND_VERSION", ""),
            cli_utils=values.get("CLI_UTILS_VERSION", ""),
            argocd=values.get("ARGOCD_VERSION", ""),
        )
    except KeyError as missing:
        raise ValueError(f"{versions_file} lacks {missing.args[0]}") from None


def _source_key(version: str, module_dir: Path) -> str:
    """build.sh's key for a program of the project's own (source_key there): the library pin
    and a digest of the program's source, so that an edited program is rebuilt."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((module_dir / name).read_bytes())
    return f"{version}-{digest.hexdigest()[:12]}"


def cache_root() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "devserver-operator"


def cached_binary_path(binary: str, versions: PinnedVersions | None = None) -> Path:
    """Where build.sh puts ``binary`` for the pinned version (it may not exist yet)."""
    pins = versions if versions is not None else read_pinned_versions()
    return cache_root() / "bin" / f"{binary}-{pins.of(binary)}" / binary


def locate_binary(binary: str) -> Path | None:
    """The executable for ``binary``, or None when it has not been built."""
    override = os.environ.get(BIN_DIR_ENV)
    candidate = Path(override) / binary if override else cached_binary_path(binary)
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def require_binary(binary: str) -> Path:
    found = locate_binary(binary)
    if found is not None:
        return found
    override = os.environ.get(BIN_DIR_ENV)
    where = f"{override} ({BIN_DIR_ENV})" if override else str(cached_binary_path(binary))
    raise BinariesNotFoundError(
        f"{binary} not found at {where}; build it with `bash {BUILD_SCRIPT} {binary}`"
    )


def build_binaries(binaries: tuple[str, ...] = ALL_BINARIES) -> None:
    """Run build.sh for ``binaries``; it skips those already cached.

    Output is inherited so that the progress of a long cold build stays visible.
    """
    if os.environ.get(BIN_DIR_ENV):
        # The user chose the binaries explicitly; building into the cache would not put
        # anything where they told us to look.
        raise BinariesNotFoundError(
            f"{BIN_DIR_ENV} is set, so binaries are not built; missing ones: "
            + ", ".join(b for b in binaries if locate_binary(b) is None)
        )
    if not BUILD_SCRIPT.is_file():
        raise BinariesNotFoundError(f"{BUILD_SCRIPT} does not exist (not a source checkout?)")
    subprocess.run(["bash", str(BUILD_SCRIPT), *binaries], check=True)


def ensure_binaries(binaries: tuple[str, ...] = ALL_BINARIES) -> dict[str, Path]:
    """Locate ``binaries``, building the missing ones first."""
    missing = tuple(b for b in binaries if locate_binary(b) is None)
    if missing:
        build_binaries(missing)
    return {binary: require_binary(binary) for binary in binaries}
