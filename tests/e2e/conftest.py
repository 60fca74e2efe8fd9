"""A real cluster with a kubelet for the e2e suite: kind, from the node image the project builds.

``hack/kind/build.sh`` (via ``KindToolchain.prepare``) starts Docker if needed and builds kind,
the node image and the project's images from local sources; the cluster gets an audit log, the
images, and the chart with the locally built operator image. Where no Docker engine can start,
every e2e test is skipped with the reason; where one can, nothing here skips: a failing build
fails the suite. The cluster is deleted at the end, also after a failure; object dumps and logs
of a failed run land in $DEVSERVER_E2E_ARTIFACTS (default: e2e-artifacts/ in the clone).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver_operator.localcluster import kind_n8n, kind_stack
from devserver_operator.localcluster.kind import (
    KIND_DIR,
    KindCluster,
    KindToolchain,
    KindUnavailableError,
)

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = kind_stack.OPERATOR_NAMESPACE
RELEASE = kind_stack.RELEASE
FAILED_KEY = pytest.StashKey[list[str]]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``after_all`` go last, in the order of their definitions in their source
    file (a scenario is a sequence of steps). Collection alone would not put them there: a
    module's tests come in the order of its namespace, where the names it imports from
    scenario modules (sorted by the linter) stand before its own. trylast: after any plugin
    that reorders, so this is the final word; under xdist's --dist loadfile each worker
    collects the same way and runs a file's tests in this order."""
    last = [item for item in items if item.get_closest_marker("after_all")]
    last.sort(key=lambda item: (str(item.reportinfo()[0]), item.reportinfo()[1] or 0))
    items[:] = [item for item in items if not item.get_closest_marker("after_all")] + last


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when in ("setup", "call") and report.failed:
        item.session.stash.setdefault(FAILED_KEY, []).append(item.nodeid)


@pytest.fixture(scope="session")
def kind_toolchain() -> KindToolchain:
    docker = subprocess.run(
        ["bash", str(KIND_DIR / "dockerd.sh")], capture_output=True, text=True, check=False
    )
    if docker.returncode != 0:
        pytest.skip(f"no Docker engine can run here: {docker.stderr.strip()[-500:]}")
    try:
        return KindToolchain.prepare()
    except KindUnavailableError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def e2e_cluster(
    kind_toolchain: KindToolchain,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[KindCluster]:
    work_dir = tmp_path_factory.mktemp("kind")
    # A name of its own lets a second checkout run its e2e tests while another cluster is up.
    name = os.environ.get("DEVSERVER_E2E_CLUSTER", "devserver-e2e")
    with KindCluster(
        kind_toolchain, name, work_dir, audit=True, mounts=kind_stack.paths_in_node()
    ) as cluster:
        cluster.load_images(kind_toolchain.images)
        try:
            yield cluster
        finally:
            if request.session.stash.get(FAILED_KEY, []):
                dump_artifacts(cluster)


def dump_artifacts(cluster: KindCluster) -> None:
    target = Path(os.environ.get("DEVSERVER_E2E_ARTIFACTS", REPO / "e2e-artifacts"))
    target.mkdir(parents=True, exist_ok=True)
    dumps = {
        "objects.yaml": ["get", "all,devserver,networkpolicies,configmaps", "-A", "-o", "yaml"],
        "events.txt": ["get", "events", "-A", "--sort-by=.lastTimestamp"],
        "operator.log": ["logs", "-n", OPERATOR_NAMESPACE, f"deployment/{RELEASE}", "--tail=-1"],
        "mcpservers.txt": ["describe", "mcpservers", "-A"],
        "pods.txt": ["describe", "pods", "-A"],
    }
    for name, args in dumps.items():
        try:
            (target / name).write_text(cluster.kubectl(*args, check=False))
        except Exception as error:  # a dump must never hide the real failure
            (target / name).write_text(f"kubectl {' '.join(args)} failed: {error}\n")


@pytest.fixture(scope="session")
def installed_chart(e2e_cluster: KindCluster, kind_toolchain: KindToolchain) -> str:
    return kind_stack.install_chart(e2e_cluster, kind_stack.operator_image(kind_toolchain.images))


def get(cluster: KindCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json"))


EXAMPLES = sorted(
    path for path in (REPO / "examples").glob("mcpserver-*.yaml") if "remote" not in path.name
)
DEMO = "devserver-demo"
# A cold node pulls nothing (every image is loaded), but five servers start on two cores.
READY_SECONDS = 420.0


@pytest.fixture(scope="session")
def verified_examples(e2e_cluster: KindCluster, installed_chart: str) -> list[str]:
    """The MCPServer examples that need no internet, applied and waited for: Ready and Verified."""
    import yaml

    from tests.e2e.helpers import condition, wait_until

    e2e_cluster.kubectl("apply", "-f", str(REPO / "examples" / "namespace.yaml"))
    names = []
    for path in EXAMPLES:
        e2e_cluster.kubectl("apply", "--server-side", "-f", str(path))
        names.extend(
            doc["metadata"]["name"]
            for doc in yaml.safe_load_all(path.read_text())
            if doc and doc["kind"] == "MCPServer"
        )

    def unverified() -> list[str]:
        items = get(e2e_cluster, "mcpservers", "-n", DEMO)["items"]
        verified = {
            item["metadata"]["name"]
            for item in items
            if condition(item, "Ready").get("status") == "True"
            and condition(item, "Verified").get("status") == "True"
        }
        return sorted(set(names) - verified)

    wait_until(lambda: not unverified(), seconds=READY_SECONDS, what=f"{names} Ready and Verified")
    return names


@pytest.fixture(scope="session")
def n8n_in_cluster(e2e_cluster: KindCluster, kind_toolchain: KindToolchain) -> kind_n8n.KindN8n:
    """n8n in the cluster, at the URL of the WorkflowIntegration example, set up with a key."""
    return kind_n8n.deploy(e2e_cluster, kind_n8n.node_image(kind_toolchain.images))
