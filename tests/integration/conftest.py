"""Integration fixtures: a real Kubernetes control plane for the whole test session.

By default the session starts its own (etcd + kube-apiserver + kube-controller-manager,
see ``devserver_operator.localcluster``). With ``DEVSERVER_TEST_EXISTING_CLUSTER=1`` and
``KUBECONFIG`` set, the tests use that cluster instead (e.g. kind in GitHub Actions).

Missing binaries are built, never a reason to skip: before the first test runs (so the
build does not count against a test's timeout), and only when a selected test needs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver_operator.localcluster import (
    ControlPlaneBinaries,
    LocalControlPlane,
    read_kubeconfig_credentials,
)

EXISTING_CLUSTER_ENV = "DEVSERVER_TEST_EXISTING_CLUSTER"
FIXTURES_NEEDING_BINARIES = frozenset(
    {"control_plane", "local_control_plane", "control_plane_binaries"}
)


def using_existing_cluster() -> bool:
    return os.environ.get(EXISTING_CLUSTER_ENV) == "1"


def _existing_kubeconfig() -> Path:
    configured = os.environ.get("KUBECONFIG", "")
    # KUBECONFIG may list several files; like kubectl, the first one names the context.
    first = next((part for part in configured.split(os.pathsep) if part), "")
    if not first:
        raise pytest.UsageError(f"{EXISTING_CLUSTER_ENV}=1 needs KUBECONFIG to be set")
    return Path(first)


@dataclass(frozen=True)
class ControlPlaneAccess:
    """How tests reach the cluster, whichever kind it is."""

    kubeconfig_path: Path
    server_url: str
    local: LocalControlPlane | None
    """The local control plane, or None when the tests run against an existing cluster."""

    def http_client(self, kubeconfig_path: Path | None = None) -> httpx.Client:
        """An httpx client authenticated as the kubeconfig's current user (admin by default)."""
        credentials = read_kubeconfig_credentials(kubeconfig_path or self.kubeconfig_path)
        return httpx.Client(
            base_url=credentials.server_url,
            verify=credentials.ssl_context,
            headers=credentials.headers(),
            timeout=30.0,
        )


def _with_output_shown(config: pytest.Config) -> Any:
    # A cold build takes many minutes; its progress must reach the terminal even though
    # pytest captures output.
    capture = config.pluginmanager.getplugin("capturemanager")
    return capture.global_and_fixture_disabled()


def pytest_collection_finish(session: pytest.Session) -> None:
    if using_existing_cluster():
        return
    if any(
        FIXTURES_NEEDING_BINARIES & set(getattr(item, "fixturenames", ())) for item in session.items
    ):
        with _with_output_shown(session.config):
            ControlPlaneBinaries.locate(build_if_missing=True)


@pytest.fixture(scope="session")
def control_plane_binaries(pytestconfig: pytest.Config) -> ControlPlaneBinaries:
    if using_existing_cluster():
        pytest.skip(f"{EXISTING_CLUSTER_ENV}=1: the local control plane itself is not tested")
    with _with_output_shown(pytestconfig):
        return ControlPlaneBinaries.locate(build_if_missing=True)


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[ControlPlaneAccess]:
    if using_existing_cluster():
        kubeconfig = _existing_kubeconfig()
        server_url = read_kubeconfig_credentials(kubeconfig).server_url
        yield ControlPlaneAccess(kubeconfig_path=kubeconfig, server_url=server_url, local=None)
        return
    with _with_output_shown(pytestconfig):
        found = ControlPlaneBinaries.locate(build_if_missing=True)
    # The audit log lets tests and benchmarks count the API requests of one identity
    # (e.g. "an idle resync writes nothing"); see LocalControlPlane.audit_log_path.
    with LocalControlPlane(found, controller_manager=True, audit=True) as local:
        yield ControlPlaneAccess(
            kubeconfig_path=local.kubeconfig_path, server_url=local.server_url, local=local
        )


@pytest.fixture(scope="session")
def local_control_plane(control_plane: ControlPlaneAccess) -> LocalControlPlane:
    """The session's local control plane, for tests about it (versions, identities)."""
    if control_plane.local is None:
        pytest.skip(f"{EXISTING_CLUSTER_ENV}=1: the local control plane itself is not tested")
    return control_plane.local
