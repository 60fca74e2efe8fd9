"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and, when built,
kube-controller-manager, as envtest runs them for controller-runtime.

No kubelet and no scheduler run, so Pods never start; what is real is the API: storage,
validation (OpenAPI + CEL), admission, RBAC, server-side apply, watches, and, with the
controller manager, garbage collection through ownerReferences and namespace deletion.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

import httpx

from devserver_operator.localcluster import binaries, certs
from devserver_operator.localcluster.kubeconfig import write_kubeconfig
from devserver_operator.localcluster.processes import ManagedProcess, free_loopback_port

SERVICE_CLUSTER_IP_RANGE: Final = "10.96.0.0/16"
# The first address of the range: the ClusterIP of the `kubernetes` Service.
KUBERNETES_SERVICE_IP: Final = "10.96.0.1"
SERVICE_ACCOUNT_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
ADMIN_USER: Final = "devserver-admin"
CONTROLLER_MANAGER_USER: Final = "system:kube-controller-manager"

DEFAULT_CONTROLLERS: Final = (
    "garbagecollector",  # deletes children whose ownerReference points at a deleted owner
    "namespace",  # finishes namespace deletion (otherwise it stays Terminating forever)
    "serviceaccount",  # creates the `default` ServiceAccount in new namespaces
    "serviceaccount-token",  # fills legacy ServiceAccount token Secrets
    "clusterrole-aggregation",  # fills aggregated ClusterRoles (the chart ships some)
    "root-ca-cert-publisher",  # kube-root-ca.crt ConfigMap in every namespace
)
"""Controllers started by default. The workload controllers (deployment, replicaset,
statefulset, ...) stay off: without a kubelet their Pods never run, and the deployment
controller would overwrite the Deployment status that tests set by hand."""

# Every request at Metadata level (who, verb, resource, response code; no bodies).
# RequestReceived is omitted so that an ordinary request yields one event, at
# ResponseComplete; watches additionally log ResponseStarted.
AUDIT_POLICY: Final = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
"""


_T = TypeVar("_T")


class ControlPlaneStartError(RuntimeError):
    """A component exited or did not become ready; the message holds its last log lines."""


@dataclass(frozen=True)
class ControlPlaneBinaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path | None = None

    @classmethod
    def locate(cls, *, build_if_missing: bool = False) -> ControlPlaneBinaries:
        """Find the binaries (see ``binaries``). The controller manager is optional."""
        required = (binaries.ETCD, binaries.KUBE_APISERVER)
        if build_if_missing:
            found = binaries.ensure_binaries((*required, binaries.KUBE_CONTROLLER_MANAGER))
        else:
            found = {name: binaries.require_binary(name) for name in required}
        return cls(
            etcd=found[binaries.ETCD],
            kube_apiserver=found[binaries.KUBE_APISERVER],
            kube_controller_manager=found.get(binaries.KUBE_CONTROLLER_MANAGER)
            or binaries.locate_binary(binaries.KUBE_CONTROLLER_MANAGER),
        )


class LocalControlPlane:
    """Starts etcd, kube-apiserver and kube-controller-manager on 127.0.0.1.

    Use as a context manager, or call ``start()`` and ``stop()``. Everything lives in
    ``work_dir`` (a new temporary directory unless given): data, certificates,
    kubeconfigs, the audit log and one log file per component.
    """

    def __init__(
        self,
        control_plane_binaries: ControlPlaneBinaries | None = None,
        *,
        work_dir: Path | None = None,
        audit: bool = False,
        controller_manager: bool | None = None,
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
        extra_apiserver_args: Sequence[str] = (),
        startup_timeout: float = 120.0,
    ) -> None:
        """``controller_manager``: True requires it, False never starts it, None (the
        default) starts it when its binary has been built."""
        self._binaries = control_plane_binaries
        self._audit = audit
        self._controller_manager = controller_manager
        self._controllers = tuple(controllers)
        self._extra_apiserver_args = tuple(extra_apiserver_args)
        self._startup_timeout = startup_timeout
        self._processes: list[ManagedProcess] = []
        self._pki: certs.ControlPlanePki | None = None
        self._controller_manager_binary: Path | None = None
        self._owns_work_dir = work_dir is None
        self._work_dir = work_dir
        self._server_url: str | None = None
        self._kubeconfig_path: Path | None = None
        self.etcd_url = ""
        self.audit_log_path: Path | None = None
        """JSON lines, one audit event per line; None unless ``audit=True``. It lives in
        ``work_dir``: read it before ``stop()`` removes a temporary one."""
        self.controller_manager_running = False
        self.startup_seconds = 0.0
        """Wall-clock time ``start()`` took, certificates included."""

    @property
    def work_dir(self) -> Path:
        return _started(self._work_dir, "work_dir")

    @property
    def server_url(self) -> str:
        """``https://127.0.0.1:<port>`` of kube-apiserver."""
        return _started(self._server_url, "server_url")

    @property
    def kubeconfig_path(self) -> Path:
        """A kubeconfig for an admin (group system:masters) with embedded certificates."""
        return _started(self._kubeconfig_path, "kubeconfig_path")

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._processes:
            raise RuntimeError("this LocalControlPlane is already running")
        started = time.monotonic()
        found = self._binaries or ControlPlaneBinaries.locate()
        controller_manager = found.kube_controller_manager
        if self._controller_manager is False:
            controller_manager = None
        elif self._controller_manager and controller_manager is None:
            # Raises with a hint how to build it when it is missing.
            controller_manager = binaries.require_binary(binaries.KUBE_CONTROLLER_MANAGER)
        self._controller_manager_binary = controller_manager
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="devserver-controlplane-"))
        self._work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._pki = certs.create_control_plane_pki(
                self.work_dir / "pki", admin_user=ADMIN_USER, service_ip=KUBERNETES_SERVICE_IP
            )
            self._start_etcd(found.etcd)
            self._start_apiserver(found.kube_apiserver)
            self._kubeconfig_path = self.work_dir / "admin.kubeconfig"
            write_kubeconfig(
                self._kubeconfig_path,
                server_url=self.server_url,
                ca_pem=self._pki.ca.certificate_pem,
                client_cert_pem=self._pki.admin.certificate_pem,
                client_key_pem=self._pki.admin.key_pem,
                user=ADMIN_USER,
            )
            if controller_manager is not None:
                self._start_controller_manager(controller_manager)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stops the components, newest first, and removes a temporary work dir."""
        while self._processes:
            self._processes.pop().stop()
        self.controller_manager_running = False
        if self._owns_work_dir and self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def restart_controller_manager(self) -> None:
        """Restart kube-controller-manager, e.g. right after installing CRDs.

        The garbage collector rediscovers API resources only every 30 seconds (fixed in
        kube-controller-manager), so children owned by a custom resource of a freshly
        installed CRD are collected up to ~40 s late. A restart (about a second)
        discovers them at once.
        """
        running = [p for p in self._processes if p.name == "kube-controller-manager"]
        if not running or self._controller_manager_binary is None:
            raise RuntimeError("kube-controller-manager is not running")
        running[0].stop()
        self._processes.remove(running[0])
        self.controller_manager_running = False
        self._start_controller_manager(self._controller_manager_binary)

    def restart_apiserver(self, downtime: float = 0.0) -> None:
        """Stop kube-apiserver, wait ``downtime`` seconds, and start it again with the same
        arguments (same port, same etcd: every object survives); returns once it is ready.

        Call it from a thread that outlives the control plane (normally the main thread):
        the kernel ties a child's PDEATHSIG to the thread that started it.
        """
        index = next((i for i, p in enumerate(self._processes) if p.name == "kube-apiserver"), None)
        if index is None:
            raise RuntimeError("kube-apiserver is not running")
        old = self._processes[index]
        old.stop()
        time.sleep(downtime)
        log = old.log_path.with_name(f"kube-apiserver-{int(time.time() * 1000)}.log")
        process = ManagedProcess(old.name, old.argv, log, cwd=self.work_dir)
        self._processes[index] = process
        pki = self._require_pki()
        tls = ssl.create_default_context(cafile=pki.ca_cert_path)
        tls.load_cert_chain(pki.admin_cert_path, pki.admin_key_path)
        with httpx.Client(verify=tls, timeout=5.0) as client:
            self._wait_until_ready(process, client, f"{self.server_url}/readyz")

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the running components, by component name."""
        return {process.name: process.pid for process in self._processes}

    # -- identities --------------------------------------------------------------------

    def write_user_kubeconfig(
        self, user: str, groups: Sequence[str] = (), path: Path | None = None
    ) -> Path:
        """A kubeconfig that authenticates as ``user`` in ``groups`` by client certificate.

        Cheap (one EC key); RBAC decides what the identity may do, so tests can check
        that something is denied to an unprivileged user.
        """
        pki = self._require_pki()
        identity = certs.issue_client_certificate(pki.ca, user, groups)
        target = path or self.work_dir / f"user-{_file_safe(user)}.kubeconfig"
        return write_kubeconfig(
            target,
            server_url=self.server_url,
            ca_pem=pki.ca.certificate_pem,
            client_cert_pem=identity.certificate_pem,
            client_key_pem=identity.key_pem,
            user=user,
        )

    @property
    def ca_cert_path(self) -> Path:
        return self._require_pki().ca_cert_path

    def _require_pki(self) -> certs.ControlPlanePki:
        if self._pki is None:
            raise RuntimeError("the control plane has not been started")
        return self._pki

    # -- components --------------------------------------------------------------------

    def _spawn(self, name: str, argv: Sequence[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.work_dir / f"{name}.log", cwd=self.work_dir)
        self._processes.append(process)
        return process

    def _start_etcd(self, etcd: Path) -> None:
        client_port, peer_port = free_loopback_port(), free_loopback_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        process = self._spawn(
            "etcd",
            [
                str(etcd),
                "--name=devserver-local",
                f"--data-dir={self.work_dir / 'etcd-data'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=devserver-local={peer_url}",
                # Throw-away data: skipping fsync makes every API write much faster,
                # and durability across a power cut is worthless here.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        with httpx.Client(timeout=2.0) as client:
            self._wait_until_ready(process, client, f"{self.etcd_url}/health")

    def _start_apiserver(self, kube_apiserver: Path) -> None:
        pki = self._require_pki()
        port = free_loopback_port()
        self._server_url = f"https://127.0.0.1:{port}"
        args = [
            str(kube_apiserver),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--etcd-servers={self.etcd_url}",
            f"--tls-cert-file={pki.serving_cert_path}",
            f"--tls-private-key-file={pki.serving_key_path}",
            f"--client-ca-file={pki.ca_cert_path}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.service_account_public_key_path}",
            f"--service-account-signing-key-file={pki.service_account_key_path}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # A loopback address cannot be an Endpoints address, so the reconciler that
            # publishes the apiserver in the `kubernetes` Service would only log errors.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
        ]
        if self._audit:
            self.audit_log_path = self.work_dir / "audit.log"
            policy = self.work_dir / "audit-policy.yaml"
            policy.write_text(AUDIT_POLICY, encoding="utf-8")
            args += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log_path}",
                "--audit-log-format=json",
                # Blocking: an event is on disk before the response is sent, so a
                # benchmark that counts requests right after its last call sees them all.
                "--audit-log-mode=blocking",
                "--audit-log-maxsize=0",
            ]
        args += self._extra_apiserver_args
        process = self._spawn("kube-apiserver", args)
        tls = ssl.create_default_context(cafile=pki.ca_cert_path)
        tls.load_cert_chain(pki.admin_cert_path, pki.admin_key_path)
        with httpx.Client(verify=tls, timeout=5.0) as client:
            self._wait_until_ready(process, client, f"{self.server_url}/readyz")

    def _start_controller_manager(self, kube_controller_manager: Path) -> None:
        pki = self._require_pki()
        # Its own user name keeps its requests apart from the operator's in the audit
        # log; system:masters because the garbage collector must delete any kind.
        kubeconfig = self.write_user_kubeconfig(
            CONTROLLER_MANAGER_USER,
            ["system:masters"],
            self.work_dir / "controller-manager.kubeconfig",
        )
        port = free_loopback_port()
        process = self._spawn(
            "kube-controller-manager",
            [
                str(kube_controller_manager),
                # No --authentication/authorization-kubeconfig: delegated auth would look
                # for the front-proxy CA that this apiserver does not configure and log
                # errors for ever; /healthz is served without it.
                f"--kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.work_dir / 'controller-manager-certs'}",
                "--leader-elect=false",
                f"--controllers={','.join(self._controllers)}",
                f"--service-account-private-key-file={pki.service_account_key_path}",
                f"--root-ca-file={pki.ca_cert_path}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            ],
        )
        # /healthz is always allowed without credentials; the serving certificate is
        # self-signed by the controller manager, so it is not verified.
        with httpx.Client(verify=False, timeout=5.0) as client:  # noqa: S501
            self._wait_until_ready(process, client, f"https://127.0.0.1:{port}/healthz")
        self.controller_manager_running = True

    def _wait_until_ready(self, process: ManagedProcess, client: httpx.Client, url: str) -> None:
        deadline = time.monotonic() + self._startup_timeout
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            exit_code = process.exit_code()
            if exit_code is not None:
                raise ControlPlaneStartError(
                    f"{process.name} exited with code {exit_code} during start-up; "
                    f"last lines of {process.log_path}:\n{process.log_tail()}"
                )
            try:
                response = client.get(url)
            except httpx.HTTPError as error:
                last_problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    return
                last_problem = f"HTTP {response.status_code}: {response.text[:500]}"
            time.sleep(0.1)
        raise ControlPlaneStartError(
            f"{process.name} was not ready at {url} after {self._startup_timeout:.0f}s "
            f"({last_problem}); last lines of {process.log_path}:\n{process.log_tail()}"
        )


def _started(value: _T | None, attribute: str) -> _T:
    if value is None:
        raise RuntimeError(f"LocalControlPlane.{attribute} is only set between start() and stop()")
    return value


def _file_safe(name: str) -> str:
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name)
