"""The local control plane is a real Kubernetes API server, and it cleans up after itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devserver_operator.localcluster import (
    ControlPlaneBinaries,
    LocalControlPlane,
    read_pinned_versions,
)
from tests.integration.conftest import ControlPlaneAccess

pytestmark = pytest.mark.integration

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def process_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # The state letter follows the parenthesised command name, which may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (here: a work dir path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def admin(control_plane: ControlPlaneAccess) -> Iterator[httpx.Client]:
    with control_plane.http_client() as client:
        yield client


@pytest.fixture
def namespace(admin: httpx.Client) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    created = admin.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert created.status_code == 201, created.text
    yield name
    admin.delete(f"/api/v1/namespaces/{name}")


def test_api_server_reports_ready(admin: httpx.Client) -> None:
    response = admin.get("/readyz")

    assert response.status_code == 200
    assert response.text == "ok"


def test_api_server_reports_the_pinned_kubernetes_version(
    local_control_plane: LocalControlPlane, admin: httpx.Client
) -> None:
    pinned = read_pinned_versions().kubernetes
    minor = pinned.split(".")[1]

    version = admin.get("/version").json()

    assert version["gitVersion"] == pinned
    assert (version["major"], version["minor"]) == ("1", minor)
    # The emulation version (what API behaviour the server offers) follows the binary.
    assert version.get("emulationMajor", "1") == "1"
    assert version.get("emulationMinor", minor) == minor


def test_admin_can_write_and_read_back(admin: httpx.Client, namespace: str) -> None:
    body = {"metadata": {"name": "greeting"}, "data": {"hello": "world"}}

    created = admin.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body)
    read = admin.get(f"/api/v1/namespaces/{namespace}/configmaps/greeting")

    assert created.status_code == 201, created.text
    assert read.json()["data"] == {"hello": "world"}


def test_rbac_denies_an_anonymous_request(control_plane: ControlPlaneAccess) -> None:
    credentials_free = httpx.Client(base_url=control_plane.server_url, verify=False)  # noqa: S501

    with credentials_free:
        response = credentials_free.get("/api/v1/namespaces")

    assert response.status_code in (401, 403), response.text


def test_rbac_denies_an_authenticated_user_without_bindings(
    local_control_plane: LocalControlPlane, control_plane: ControlPlaneAccess, namespace: str
) -> None:
    kubeconfig = local_control_plane.write_user_kubeconfig("alice", ["developers"])

    with control_plane.http_client(kubeconfig) as alice:
        response = alice.get(f"/api/v1/namespaces/{namespace}/secrets")

    assert response.status_code == 403
    assert 'User "alice" cannot list resource "secrets"' in response.json()["message"]


def test_rbac_grants_what_a_role_binding_allows(
    local_control_plane: LocalControlPlane,
    control_plane: ControlPlaneAccess,
    admin: httpx.Client,
    namespace: str,
) -> None:
    kubeconfig = local_control_plane.write_user_kubeconfig("bob")
    binding = {
        "metadata": {"name": "bob-views"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
    }
    created = admin.post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings", json=binding
    )
    assert created.status_code == 201, created.text

    with control_plane.http_client(kubeconfig) as bob:
        allowed = bob.get(f"/api/v1/namespaces/{namespace}/configmaps")
        still_denied = bob.get(f"/api/v1/namespaces/{namespace}/secrets")

    assert allowed.status_code == 200
    assert still_denied.status_code == 403


def test_garbage_collector_deletes_children_of_a_deleted_owner(
    control_plane: ControlPlaneAccess, admin: httpx.Client, namespace: str
) -> None:
    if control_plane.local is not None:
        assert control_plane.local.controller_manager_running
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = admin.post(configmaps, json={"metadata": {"name": "owner"}}).json()
    child = {
        "metadata": {
            "name": "child",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                }
            ],
        }
    }
    assert admin.post(configmaps, json=child).status_code == 201

    assert admin.delete(f"{configmaps}/owner").status_code == 200

    wait_for(
        lambda: admin.get(f"{configmaps}/child").status_code == 404,
        timeout=60,
        what="the garbage collector to delete the child ConfigMap",
    )


def test_restarted_controller_manager_collects_children_of_new_custom_resources(
    local_control_plane: LocalControlPlane, admin: httpx.Client, namespace: str
) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.example.com"
    crd = {
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert admin.post(crds, json=crd).status_code == 201
    widgets = f"/apis/{group}/v1/namespaces/{namespace}/widgets"
    try:
        wait_for(lambda: admin.get(widgets).status_code == 200, timeout=30, what="the CRD to serve")
        local_control_plane.restart_controller_manager()
        owner = admin.post(
            widgets, json={"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}
        ).json()
        owner_ref = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "name": "w",
            "uid": owner["metadata"]["uid"],
        }
        configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
        child = {"metadata": {"name": "child", "ownerReferences": [owner_ref]}}
        assert admin.post(configmaps, json=child).status_code == 201

        admin.delete(f"{widgets}/w")

        # Without the restart this takes up to ~40 s (the collector's 30 s rediscovery).
        wait_for(
            lambda: admin.get(f"{configmaps}/child").status_code == 404,
            timeout=10,
            what="the garbage collector to delete the custom resource's child",
        )
    finally:
        admin.delete(f"{crds}/widgets.{group}")


def test_audit_log_records_each_request(control_plane_binaries: ControlPlaneBinaries) -> None:
    marker = f"audit-probe-{uuid.uuid4().hex[:8]}"

    with LocalControlPlane(control_plane_binaries, audit=True, controller_manager=False) as cp:
        with ControlPlaneAccess(cp.kubeconfig_path, cp.server_url, cp).http_client() as client:
            assert client.get(f"/api/v1/namespaces/{marker}").status_code == 404
        assert cp.audit_log_path is not None
        events = [json.loads(line) for line in cp.audit_log_path.read_text().splitlines()]

    probes = [event for event in events if event.get("objectRef", {}).get("name") == marker]
    assert [(e["verb"], e["stage"], e["user"]["username"]) for e in probes] == [
        ("get", "ResponseComplete", "devserver-admin")
    ]


def test_stop_leaves_no_component_running(control_plane_binaries: ControlPlaneBinaries) -> None:
    cluster = LocalControlPlane(control_plane_binaries, controller_manager=True)
    cluster.start()
    pids = cluster.pids
    work_dir = str(cluster.work_dir)
    assert set(pids) == set(COMPONENTS)
    assert all(process_alive(pid) for pid in pids.values())

    cluster.stop()

    assert [name for name, pid in pids.items() if process_alive(pid)] == []
    assert processes_mentioning(work_dir) == []
    assert not Path(work_dir).exists()


def test_components_die_when_the_python_process_is_killed(
    control_plane_binaries: ControlPlaneBinaries, tmp_path: Path
) -> None:
    # SIGKILL runs no Python code at all (no finally, no atexit): only the kernel's
    # parent-death signal can stop the children then.
    script = textwrap.dedent(
        """
        import json, sys, time
        from pathlib import Path
        from devserver_operator.localcluster import LocalControlPlane
        cluster = LocalControlPlane(work_dir=Path(sys.argv[1]), controller_manager=True)
        cluster.start()
        print(json.dumps(cluster.pids), flush=True)
        time.sleep(600)
        """
    )
    work_dir = tmp_path / "cluster"
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(work_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "operator")},
    )
    try:
        assert owner.stdout is not None
        pids: dict[str, int] = json.loads(owner.stdout.readline() or "{}")
        assert set(pids) == set(COMPONENTS)

        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
    finally:
        owner.kill()
        owner.wait()

    try:
        wait_for(
            lambda: not any(process_alive(pid) for pid in pids.values()),
            timeout=10,
            what=f"components {pids} to die with their parent",
        )
        assert processes_mentioning(str(work_dir)) == []
    finally:
        # Should this test fail, it must not leave its orphans behind for the next one.
        for pid in processes_mentioning(str(work_dir)):
            os.kill(pid, signal.SIGKILL)
