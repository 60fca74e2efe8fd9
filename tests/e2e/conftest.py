"""kind for the e2e suite: a real cluster with a kubelet, so pods really run.

Needs Docker and kind (GitHub Actions: .github/workflows/e2e.yml passes --kind-bin). Without
them every e2e test is skipped with the reason "Docker/kind not available" -- the only skip
in the suite. On failure, logs and object dumps land in $DEVSERVER_E2E_ARTIFACTS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP_REASON = "Docker/kind not available"
DEFAULT_IMAGE = "ghcr.io/ecospherenetwork/devserver-operator:e2e"
OPERATOR_NAMESPACE = "devserver-system"
RELEASE = "devserver-operator"


def docker_and_kind_available(config: pytest.Config) -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        info = subprocess.run([docker, "info"], capture_output=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if info.returncode != 0:
        return False
    kind = config.getoption("kind_bin") or shutil.which("kind")
    return bool(kind) and Path(kind).is_file()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        item.session.stash.setdefault(FAILED_KEY, []).append(item.nodeid)


FAILED_KEY = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def e2e_cluster(request: pytest.FixtureRequest) -> Any:
    if not docker_and_kind_available(request.config):
        pytest.skip(SKIP_REASON)
    cluster = request.getfixturevalue("kind_cluster")
    yield cluster
    if request.session.stash.get(FAILED_KEY, []):
        dump_artifacts(cluster)


def dump_artifacts(cluster: Any) -> None:
    target = Path(os.environ.get("DEVSERVER_E2E_ARTIFACTS", REPO / "e2e-artifacts"))
    target.mkdir(parents=True, exist_ok=True)
    dumps = {
        "objects.yaml": ["get", "all,mcpservers,networkpolicies,configmaps", "-A", "-o", "yaml"],
        "events.txt": ["get", "events", "-A", "--sort-by=.lastTimestamp"],
        "operator.log": ["logs", "-n", OPERATOR_NAMESPACE, f"deployment/{RELEASE}", "--tail=-1"],
        "mcpservers.txt": ["describe", "mcpservers", "-A"],
        "pods.txt": ["describe", "pods", "-A"],
    }
    for name, args in dumps.items():
        try:
            (target / name).write_text(cluster.kubectl(*args))
        except Exception as error:  # a dump must never hide the real failure
            (target / name).write_text(f"kubectl {' '.join(args)} failed: {error}\n")


@pytest.fixture(scope="session")
def operator_image(e2e_cluster: Any) -> str:
    """The image built from this checkout (by the workflow, or here) and loaded into kind."""
    image = os.environ.get("DEVSERVER_E2E_IMAGE")
    if not image:
        image = DEFAULT_IMAGE
        subprocess.run(["docker", "build", "-t", image, str(REPO)], check=True, timeout=1800)
    e2e_cluster.load_docker_image(image)
    return image


@pytest.fixture(scope="session")
def installed_chart(e2e_cluster: Any, operator_image: str) -> str:
    from devserver_operator.localcluster import binaries

    helm = binaries.ensure_binaries((binaries.HELM,))[binaries.HELM]
    repository, _, tag = operator_image.rpartition(":")
    # The operator's own namespace enforces Pod Security "restricted" too.
    e2e_cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE)
    e2e_cluster.kubectl(
        "label", "namespace", OPERATOR_NAMESPACE, "pod-security.kubernetes.io/enforce=restricted"
    )
    subprocess.run(
        [
            str(helm), "install", RELEASE, str(REPO / "charts" / "devserver-operator"),
            "--namespace", OPERATOR_NAMESPACE,
            "--set", f"image.repository={repository}",
            "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=Never",
            "--set", "logFormat=text",
            "--wait", "--timeout", "5m",
            "--kubeconfig", str(e2e_cluster.kubeconfig_path),
        ],
        check=True,
        timeout=600,
    )  # fmt: skip
    return RELEASE
