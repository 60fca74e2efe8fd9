"""Fixtures of the reliability tests: a control plane of their own, and helpers to run
operators as processes (see ``harness``).

These tests kill operators, restart the API server and put a fault proxy in front of it, so
they get their own kube-apiserver + etcd instead of the integration session's: the
in-process operator of the integration tests would otherwise reconcile their objects too and
spoil every count. ``control_plane`` is overridden here, so the shared ``kube`` and
``namespace`` fixtures talk to this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devserver_operator.localcluster import ControlPlaneBinaries, LocalControlPlane
from tests.integration.conftest import ControlPlaneAccess, using_existing_cluster
from tests.support.operator_harness import install_crds

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERING_CRDS = sorted((REPO_ROOT / "charts" / "devserver-operator" / "crds").glob("*kopf.dev.yaml"))


def pytest_collection_finish(session: pytest.Session) -> None:
    # Build missing binaries before the first test, so the build does not count against a
    # test's timeout (as tests/integration does).
    if using_existing_cluster():
        return
    if any(str(item.path).startswith(str(Path(__file__).parent)) for item in session.items):
        capture = session.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            ControlPlaneBinaries.locate(build_if_missing=True)


@pytest.fixture(scope="session")
def control_plane(pytestconfig: pytest.Config) -> Iterator[ControlPlaneAccess]:
    if using_existing_cluster():
        pytest.skip(
            "reliability tests restart and proxy the API server: they need the local control "
            "plane, not DEVSERVER_TEST_EXISTING_CLUSTER"
        )
    found = ControlPlaneBinaries.locate(build_if_missing=True)
    with LocalControlPlane(found, controller_manager=True, audit=True) as local:
        access = ControlPlaneAccess(
            kubeconfig_path=local.kubeconfig_path, server_url=local.server_url, local=local
        )
        with access.http_client() as client:
            install_crds(client)
            for path in PEERING_CRDS:
                crd = yaml.safe_load(path.read_text(encoding="utf-8"))
                client.patch(
                    f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}",
                    params={"fieldManager": "devserver-operator-tests", "force": "true"},
                    json=crd,
                    headers={"Content-Type": "application/apply-patch+yaml"},
                ).raise_for_status()
        # The garbage collector discovers the new CRDs at once after a restart (see
        # LocalControlPlane.restart_controller_manager).
        local.restart_controller_manager()
        yield access


@pytest.fixture(scope="session")
def local(control_plane: ControlPlaneAccess) -> LocalControlPlane:
    assert control_plane.local is not None
    return control_plane.local
