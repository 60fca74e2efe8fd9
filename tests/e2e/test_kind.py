"""End to end on kind: the chart installs the operator image, and real pods run.

The MCPServer examples (all but the remote one, which needs credentials) reach Ready with
Verified=True against their running servers; deleted and edited children are restored; a
deleted MCPServer takes its children with it (the real garbage collector); and every pod the
operator creates is admitted to a namespace that enforces Pod Security "restricted".
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DEMO = "devserver-demo"
READY_TIMEOUT = 900.0  # first starts pull images and run npx downloads
EXAMPLES = sorted(p for p in (REPO / "examples").glob("mcpserver-*.yaml") if "remote" not in p.name)


def get(cluster: Any, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json"))


def condition(body: dict[str, Any], wanted: str) -> str | None:
    for item in body.get("status", {}).get("conditions", []) or []:
        if item["type"] == wanted:
            return str(item["status"])
    return None


def wait_until(probe: Any, *, seconds: float, what: str, interval: float = 3.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def examples(e2e_cluster: Any, installed_chart: str) -> list[str]:
    e2e_cluster.kubectl("apply", "-f", str(REPO / "examples" / "namespace.yaml"))
    names = []
    for path in EXAMPLES:
        e2e_cluster.kubectl("apply", "--server-side", "-f", str(path))
        names.append(yaml.safe_load(path.read_text())["metadata"]["name"])
    return names


def test_the_operator_runs_in_a_restricted_namespace(
    e2e_cluster: Any, installed_chart: str
) -> None:
    deployment = get(e2e_cluster, "deployment", installed_chart, "-n", "devserver-system")
    assert deployment["status"].get("readyReplicas") == 1


def test_mcpserver_examples_reach_ready_and_verified(e2e_cluster: Any, examples: list[str]) -> None:
    def all_verified() -> bool:
        items = get(e2e_cluster, "mcpservers", "-n", DEMO)["items"]
        done = {
            i["metadata"]["name"]
            for i in items
            if condition(i, "Ready") == "True" and condition(i, "Verified") == "True"
        }
        return done >= set(examples)

    wait_until(all_verified, seconds=READY_TIMEOUT, what=f"{examples} Ready and Verified")
    for name in examples:
        body = get(e2e_cluster, "mcpserver", name, "-n", DEMO)
        assert body["status"]["toolCount"] > 0
        assert body["status"]["serverInfo"]["protocolVersion"]


def test_every_pod_the_operator_creates_is_admitted_under_restricted(
    e2e_cluster: Any, examples: list[str]
) -> None:
    labels = get(e2e_cluster, "namespace", DEMO)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for replica_set in get(e2e_cluster, "replicasets", "-n", DEMO)["items"]:
        assert condition(replica_set, "ReplicaFailure") is None, replica_set["metadata"]["name"]
    pods = get(e2e_cluster, "pods", "-n", DEMO)["items"]
    assert {p["metadata"]["labels"].get("app.kubernetes.io/instance") for p in pods} >= set(
        examples
    )


def test_deleted_and_edited_children_are_restored(e2e_cluster: Any, examples: list[str]) -> None:
    name = examples[0]
    before = get(e2e_cluster, "service", name, "-n", DEMO)["metadata"]["uid"]
    e2e_cluster.kubectl("delete", "service", name, "-n", DEMO)

    def recreated() -> bool:
        try:
            return bool(get(e2e_cluster, "service", name, "-n", DEMO)["metadata"]["uid"] != before)
        except Exception:  # not there yet
            return False

    wait_until(recreated, seconds=120, what=f"Service {name} to be recreated")
    e2e_cluster.kubectl(
        "patch", "networkpolicy", name, "-n", DEMO, "--type=merge",
        "-p", '{"spec": {"ingress": []}}',
    )  # fmt: skip

    def restored() -> bool:
        policy = get(e2e_cluster, "networkpolicy", name, "-n", DEMO)
        return bool(policy["spec"].get("ingress"))

    wait_until(restored, seconds=120, what=f"NetworkPolicy {name} to be restored")


def test_a_deleted_mcpserver_takes_its_children_along(
    e2e_cluster: Any, examples: list[str]
) -> None:
    name = examples[-1]
    e2e_cluster.kubectl("delete", "mcpserver", name, "-n", DEMO, "--wait=true")

    def collected() -> bool:
        left = get(
            e2e_cluster, "deployments,services,networkpolicies", "-n", DEMO,
            "-l", f"app.kubernetes.io/instance={name}",
        )["items"]  # fmt: skip
        return not left

    wait_until(collected, seconds=120, what=f"the children of {name} to be garbage-collected")
