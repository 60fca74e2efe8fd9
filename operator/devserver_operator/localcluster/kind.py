"""kind clusters with real pods, from the node image the project builds itself (hack/kind/).

``hack/kind/build.sh`` starts Docker when needed, builds kind, kubectl and the node binaries
from their Go modules, and assembles the node image and the project's images (operator,
stdio bridge, MCP reference servers) from local sources; this module drives it and the
clusters made with it:

    toolchain = KindToolchain.prepare()          # raises KindUnavailableError with the reason
    with KindCluster(toolchain, "devserver-e2e", work_dir) as cluster:
        cluster.load_images(toolchain.images)
        print(cluster.kubectl("get", "nodes"))

A cluster is deleted when its ``with`` block ends, also after a failure. Clusters left by a
process that was killed are found by name (``<prefix>-<pid>``) and deleted on the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from devserver_operator.localcluster import binaries

KIND_DIR: Final = binaries.HACK_DIR.parent / "kind"
BUILD_SCRIPT: Final = KIND_DIR / "build.sh"
DOCKER_SHIM_DIR: Final = KIND_DIR / "docker-shim"
CAP_SYS_RESOURCE: Final = 24
CREATE_TIMEOUT_SECONDS: Final = 600.0
BUILD_TIMEOUT_SECONDS: Final = 3600.0
AUDIT_IN_NODE: Final = "/etc/kubernetes/devserver-audit"
AUDIT_POLICY: Final = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # The cluster's own components and lease renewals would fill the log within minutes.
  - level: None
    users: [system:kube-controller-manager, system:kube-scheduler, system:apiserver,
            system:kube-proxy]
  - level: None
    userGroups: [system:nodes]
  - level: None
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  - level: Metadata
"""


def cluster_config(audit_dir: Path | None, mounts: dict[Path, str] | None = None) -> str:
    """kind's cluster configuration: one node that shares ``mounts`` (host folder -> node path)
    read-only; with ``audit_dir``, an API server audit log in that folder.

    The audit log is how tests count requests and permission errors of in-cluster clients;
    the folder is shared with the node, so the log is read on the host.
    """
    lines = [
        "kind: Cluster",
        "apiVersion: kind.x-k8s.io/v1alpha4",
        "nodes:",
        "  - role: control-plane",
    ]
    shared = [
        f"      - {{hostPath: {host}, containerPath: {node}, readOnly: true}}"
        for host, node in (mounts or {}).items()
    ]
    if audit_dir is not None:
        shared.append(f"      - {{hostPath: {audit_dir}, containerPath: {AUDIT_IN_NODE}}}")
    if shared:
        lines += ["    extraMounts:", *shared]
    if audit_dir is not None:
        lines += [
            "    kubeadmConfigPatches:",
            "      - |",
            "        kind: ClusterConfiguration",
            "        apiServer:",
            "          extraArgs:",
            "            - {name: audit-policy-file, value: " + AUDIT_IN_NODE + "/policy.yaml}",
            "            - {name: audit-log-path, value: " + AUDIT_IN_NODE + "/audit.log}",
            "          extraVolumes:",
            "            - name: devserver-audit",
            f"              hostPath: {AUDIT_IN_NODE}",
            f"              mountPath: {AUDIT_IN_NODE}",
            "              pathType: Directory",
        ]
    return "\n".join(lines) + "\n"


class KindUnavailableError(RuntimeError):
    """kind cannot run on this machine; the message says why (the e2e suite skips with it)."""


def host_lacks_cap_sys_resource(status_file: Path = Path("/proc/self/status")) -> bool:
    """Docker cannot start --privileged containers on such a host (see hack/kind/docker-shim)."""
    for line in status_file.read_text(encoding="ascii").splitlines():
        if line.startswith("CapBnd:"):
            return not (int(line.split()[1], 16) >> CAP_SYS_RESOURCE) & 1
    return False


@dataclass(frozen=True)
class KindToolchain:
    kind: Path
    kubectl: Path
    node_image: str
    images: tuple[str, ...]
    """The project's images (operator, bridge, MCP servers), to load into a cluster."""
    environment: dict[str, str] = field(repr=False)

    @classmethod
    def prepare(cls, *, project_images: bool = True) -> KindToolchain:
        """Build (or find cached) everything kind needs; raise KindUnavailableError if it can't."""
        if not BUILD_SCRIPT.is_file():
            raise KindUnavailableError(f"{BUILD_SCRIPT} does not exist (not a source checkout?)")
        argv = ["bash", str(BUILD_SCRIPT)] + ([] if project_images else ["--node-only"])
        try:
            built = subprocess.run(
                argv,
                stdout=subprocess.PIPE,
                text=True,
                check=False,
                timeout=BUILD_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            raise KindUnavailableError(
                f"{BUILD_SCRIPT} did not finish in {BUILD_TIMEOUT_SECONDS:.0f} s"
            ) from None
        print(built.stdout, end="", flush=True)
        if built.returncode != 0:
            raise KindUnavailableError(
                f"{BUILD_SCRIPT} failed with exit code {built.returncode} (its output is above)"
            )
        outputs = re.findall(r"^(node-image|image)=(\S+)$", built.stdout, flags=re.MULTILINE)
        node_image = next(value for key, value in outputs if key == "node-image")
        images = tuple(value for key, value in outputs if key == "image")
        return cls(
            kind=binaries.require_binary(binaries.KIND),
            kubectl=binaries.require_binary(binaries.KUBECTL),
            node_image=node_image,
            images=images,
            environment=_kind_environment(),
        )


def _kind_environment() -> dict[str, str]:
    environment = dict(os.environ)
    if host_lacks_cap_sys_resource():
        environment["PATH"] = f"{DOCKER_SHIM_DIR}{os.pathsep}{environment.get('PATH', '')}"
    return environment


class KindCluster:
    """One kind cluster named ``<prefix>-<pid>``: created on enter, deleted on exit."""

    def __init__(
        self,
        toolchain: KindToolchain,
        prefix: str,
        work_dir: Path,
        *,
        audit: bool = False,
        mounts: dict[Path, str] | None = None,
    ) -> None:
        self.toolchain = toolchain
        self.prefix = prefix
        self.name = f"{prefix}-{os.getpid()}"
        work_dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path = work_dir / f"{self.name}.kubeconfig"
        self._config_path = work_dir / f"{self.name}.kind.yaml"
        self.audit_dir = work_dir / f"{self.name}-audit" if audit else None
        self.mounts = dict(mounts or {})

    def __enter__(self) -> Self:
        try:
            self.create()
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.delete()

    def create(self) -> None:
        self.delete_orphans()
        if self.audit_dir is not None:
            self.audit_dir.mkdir(parents=True, exist_ok=True)
            (self.audit_dir / "policy.yaml").write_text(AUDIT_POLICY, encoding="utf-8")
        self._config_path.write_text(cluster_config(self.audit_dir, self.mounts), encoding="utf-8")
        self._kind(
            "create", "cluster", "--name", self.name, "--image", self.toolchain.node_image,
            "--config", str(self._config_path), "--kubeconfig", str(self.kubeconfig_path),
            "--wait", "5m",
            timeout=CREATE_TIMEOUT_SECONDS,
        )  # fmt: skip

    def delete(self) -> None:
        self._kind("delete", "cluster", "--name", self.name, check=False, timeout=180)
        with contextlib.suppress(FileNotFoundError):
            self.kubeconfig_path.unlink()

    def delete_orphans(self) -> None:
        """Delete clusters of this prefix whose creating process no longer runs."""
        listed = self._kind("get", "clusters", check=False, timeout=60)
        for name in listed.split():
            owner = name.removeprefix(f"{self.prefix}-")
            if owner != name and owner.isdigit() and not _process_exists(int(owner)):
                self._kind("delete", "cluster", "--name", name, check=False, timeout=180)

    def audit_events(self) -> list[dict[str, Any]]:
        """Every request the API server has logged so far (the cluster needs ``audit=True``)."""
        if self.audit_dir is None:
            raise ValueError(f"cluster {self.name} was created without an audit log")
        log = self.audit_dir / "audit.log"
        if not log.exists():
            return []
        lines = log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def load_images(self, images: tuple[str, ...] | list[str]) -> None:
        if images:
            self._kind("load", "docker-image", "--name", self.name, *images, timeout=600)

    @contextlib.contextmanager
    def port_forward(self, namespace: str, target: str, port: int) -> Iterator[int]:
        """``kubectl port-forward`` to ``target``'s ``port`` from a free loopback port."""
        process = subprocess.Popen(
            [
                str(self.toolchain.kubectl), "--kubeconfig", str(self.kubeconfig_path),
                "port-forward", "-n", namespace, target, f":{port}", "--address", "127.0.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            local_port = _forwarded_port(process)
            yield local_port
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True, timeout: float = 120
    ) -> str:
        result = subprocess.run(
            [str(self.toolchain.kubectl), "--kubeconfig", str(self.kubeconfig_path), *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        return result.stdout

    def _kind(self, *args: str, check: bool = True, timeout: float) -> str:
        result = subprocess.run(
            [str(self.toolchain.kind), *args],
            env=self.toolchain.environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise KindUnavailableError(
                f"kind {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}"
            )
        return result.stdout


def _forwarded_port(process: subprocess.Popen[str], seconds: float = 30.0) -> int:
    """The local port from kubectl's first line, "Forwarding from 127.0.0.1:PORT -> ..."."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    line = process.stdout.readline() if ready else ""
    found = re.search(r"127\.0\.0\.1:(\d+)", line)
    if found is None:
        process.kill()
        raise KindUnavailableError(f"kubectl port-forward did not start: {line.strip()!r}")
    return int(found.group(1))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
