"""The kind cluster configuration and the host check that decides on the docker shim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from devserver_operator.localcluster.kind import (
    AUDIT_IN_NODE,
    cluster_config,
    host_lacks_cap_sys_resource,
)


def node(config: str) -> dict[str, Any]:
    parsed = yaml.safe_load(config)
    assert parsed["kind"] == "Cluster"
    (control_plane,) = parsed["nodes"]
    assert control_plane["role"] == "control-plane"
    return dict(control_plane)


def test_a_plain_cluster_has_one_node_and_nothing_else() -> None:
    assert node(cluster_config(None)) == {"role": "control-plane"}


def test_mounts_are_shared_read_only_and_the_audit_log_writable(tmp_path: Path) -> None:
    install = tmp_path / "n8n"
    control_plane = node(cluster_config(tmp_path / "audit", {install: "/opt/devserver/n8n"}))
    assert control_plane["extraMounts"] == [
        {"hostPath": str(install), "containerPath": "/opt/devserver/n8n", "readOnly": True},
        {"hostPath": str(tmp_path / "audit"), "containerPath": AUDIT_IN_NODE},
    ]
    (patch,) = control_plane["kubeadmConfigPatches"]
    api_server = yaml.safe_load(patch)["apiServer"]
    arguments = {item["name"]: item["value"] for item in api_server["extraArgs"]}
    assert arguments == {
        "audit-policy-file": f"{AUDIT_IN_NODE}/policy.yaml",
        "audit-log-path": f"{AUDIT_IN_NODE}/audit.log",
    }
    assert api_server["extraVolumes"][0]["hostPath"] == AUDIT_IN_NODE


def status_with(bounding_set: str, tmp_path: Path) -> Path:
    status = tmp_path / "status"
    status.write_text(f"Name:\tpython\nCapEff:\t0000000000000000\nCapBnd:\t{bounding_set}\n")
    return status


def test_a_host_without_cap_sys_resource_needs_the_shim(tmp_path: Path) -> None:
    # The bounding set seen on this project's CI machines: every capability but bit 24.
    assert host_lacks_cap_sys_resource(status_with("000001fffeffffff", tmp_path))


def test_an_ordinary_host_needs_no_shim(tmp_path: Path) -> None:
    assert not host_lacks_cap_sys_resource(status_with("000001ffffffffff", tmp_path))
