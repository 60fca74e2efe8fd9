"""install.yaml, the single manifest attached to each release (hack/install-manifest.sh):
the CRDs and the cluster-wide kustomize install, the image pinned to the release."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.unit.test_chart_sync import kustomize, kustomize_build

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "install-manifest.sh"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def install_manifest(*args: str) -> subprocess.CompletedProcess[str]:
    kustomize()  # built once, outside the script's output
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=120
    )


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_install_yaml_is_the_cluster_wide_overlay_with_the_release_image() -> None:
    result = install_manifest("1.2.3", DIGEST)
    assert result.returncode == 0, result.stderr
    rendered = documents(result.stdout)
    crds = sorted(
        d["metadata"]["name"] for d in rendered if d["kind"] == "CustomResourceDefinition"
    )
    assert len(crds) == 6  # the four kinds and kopf's two peering CRDs
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/ecospherenetwork/devserver-operator:1.2.3@{DIGEST}"
    # Everything else is the overlay as it is.
    overlay = kustomize_build("cluster-wide")
    key = [(d["kind"], d["metadata"]["name"]) for d in rendered]
    assert key == [(d["kind"], d["metadata"]["name"]) for d in overlay]
    (original,) = [d for d in overlay if d["kind"] == "Deployment"]
    original["spec"]["template"]["spec"]["containers"][0]["image"] = image
    assert deployment == original


def test_install_yaml_refuses_what_is_not_a_release() -> None:
    for args in (["latest"], ["1.2"], ["1.2.3", "sha256:short"]):
        result = install_manifest(*args)
        assert result.returncode == 2, args
        assert result.stdout == ""
