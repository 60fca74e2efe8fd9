"""Fuzzing: hypothesis generates specs for all four kinds, valid and invalid, and every one
is submitted to the real API server (schema + CEL, as `kubectl apply` would: unknown fields
rejected) and reconciled by a real `devserver-operator run`.

- The API server rejects what the schema forbids, and accepts what the operator's own model
  accepts (the two must not disagree, or users could write objects nobody can reconcile).
- Every accepted object ends with a Ready condition that carries a reason and a message:
  Ready, Stalled (what the model refuses ends Stalled), or Ready=False with a reason such as
  an unreachable URL.
- The operator stays up, never loops (writes per object are counted over two resync rounds),
  and a canary value planted in the only Secret the specs may reference never appears in its
  log, in Events, or in any object's status or annotations.

At least 2,000 examples in the normal run (derandomized: the same ones every time, for CI);
``DEVSERVER_FUZZ_EXAMPLES`` sets more for a nightly job. Submission is one phase, the checks
are separate tests over its results (module scope), so one failing property does not hide
the others.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import ValidationError

from devserver_operator.api import API_VERSION, KINDS_BY_NAME
from devserver_operator.localcluster import LocalControlPlane
from tests.integration.conftest import ControlPlaneAccess
from tests.reliability.fuzz_strategies import (
    CANARY_KEYS,
    CANARY_SECRET,
    CLOSED_URL,
    Loopback,
    Spec,
    specs,
)
from tests.reliability.harness import OperatorProcess, identity
from tests.support.audit import AuditCursor
from tests.support.schemas import schema_errors

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("DEVSERVER_FUZZ_EXAMPLES", "2000"))
NAMESPACES = 4
OPERATOR_USER = "op-fuzz"
SETTLE_SECONDS = 300.0
QUIET_WINDOW_SECONDS = 11.0  # two resync rounds (5 s) and a bit
HOT_LOOP_WRITES = 3  # more writes to one object in the quiet window is a loop


@dataclass
class Submitted:
    kind: str
    namespace: str
    name: str
    model_valid: bool
    mutation: str | None


@dataclass
class Fuzzed:
    canary: str
    namespaces: list[str]
    operator: OperatorProcess
    accepted: list[Submitted] = field(default_factory=list)
    rejected: int = 0
    disagreements: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)


def _plural(kind: str) -> str:
    return KINDS_BY_NAME[kind].plural


def _model_valid(item: Spec) -> bool:
    try:
        KINDS_BY_NAME[item.kind].spec_model.model_validate(item.spec)
    except ValidationError:
        return False
    return True


def _schema_forbids(document: dict[str, Any], item: Spec) -> str | None:
    errors = schema_errors(document)
    if errors:
        return f"{'.'.join(map(str, errors[0].absolute_path))}: {errors[0].message}"[:300]
    if item.mutation and item.mutation.startswith("unknown field"):
        return item.mutation  # structural schemas do not list them; Strict validation does
    return None


def _submit(client: httpx.Client, fuzzed: Fuzzed, counter: Iterator[int], item: Spec) -> None:
    index = next(counter)
    namespace = fuzzed.namespaces[index % NAMESPACES]
    name = f"{item.kind.lower()}-{index}"
    document = {
        "apiVersion": API_VERSION,
        "kind": item.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": item.spec,
    }
    forbidden = _schema_forbids(document, item)
    model_valid = _model_valid(item)
    response = client.post(
        f"/apis/{API_VERSION}/namespaces/{namespace}/{_plural(item.kind)}",
        params={"fieldValidation": "Strict"},
        json=document,
    )
    fuzzed.kinds[item.kind] += 1
    shown = json.dumps(item.spec)[:400]
    if response.status_code == 201:
        fuzzed.accepted.append(Submitted(item.kind, namespace, name, model_valid, item.mutation))
        if forbidden:
            fuzzed.disagreements.append(f"accepted, though the schema forbids {forbidden}: {shown}")
    elif response.status_code in (400, 422):
        fuzzed.rejected += 1
        if model_valid and not forbidden:
            message = response.json().get("message", "")[:300]
            fuzzed.disagreements.append(
                f"rejected what the operator's model accepts ({message}): {item.kind} {shown}"
            )
    else:
        fuzzed.disagreements.append(f"HTTP {response.status_code} {response.text[:200]}: {shown}")


def _plant_canary(client: httpx.Client, namespace: str, canary: str) -> None:
    client.post("/api/v1/namespaces", json={"metadata": {"name": namespace}}).raise_for_status()
    values = {key: canary for key in CANARY_KEYS} | {"url": f"{CLOSED_URL}{canary}"}
    client.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        json={"metadata": {"name": CANARY_SECRET}, "stringData": values},
    ).raise_for_status()


@pytest.fixture(scope="module")
def fuzzed(
    control_plane: ControlPlaneAccess,
    local: LocalControlPlane,
    mcp_streamable_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fuzzed]:
    canary = f"CANARY-{uuid.uuid4().hex}"
    run = uuid.uuid4().hex[:6]
    namespaces = [f"fuzz-{run}-{i}" for i in range(NAMESPACES)]
    log = tmp_path_factory.mktemp("fuzz") / "operator.log"
    operator = OperatorProcess(identity(local, OPERATOR_USER), log, namespaces)
    world = Fuzzed(canary, namespaces, operator)
    with control_plane.http_client() as client:
        for namespace in namespaces:
            _plant_canary(client, namespace, canary)
        operator.start()
        counter = itertools.count()
        loopback = Loopback(mcp_url=mcp_streamable_server.url)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,  # the same examples on every run: CI must not flake on luck
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking against a live server
            suppress_health_check=list(HealthCheck),
        )
        @given(item=specs(loopback))
        def submit(item: Spec) -> None:
            _submit(client, world, counter, item)

        started = time.monotonic()
        submit()
        print(  # the numbers belong in the test log
            f"fuzz: {sum(world.kinds.values())} examples {dict(world.kinds)} in "
            f"{time.monotonic() - started:.0f} s: {len(world.accepted)} accepted, "
            f"{world.rejected} rejected"
        )
        try:
            yield world
        finally:
            operator.stop()
            for namespace in namespaces:  # the finalizers need no waiting: a throw-away plane
                client.delete(f"/api/v1/namespaces/{namespace}")


def test_enough_examples_of_every_kind(fuzzed: Fuzzed) -> None:
    assert sum(fuzzed.kinds.values()) >= EXAMPLES
    assert all(fuzzed.kinds[kind] >= EXAMPLES // 10 for kind in KINDS_BY_NAME), fuzzed.kinds
    assert len(fuzzed.accepted) >= EXAMPLES // 5 and fuzzed.rejected >= EXAMPLES // 10


def test_the_api_server_and_the_model_agree_on_what_is_valid(fuzzed: Fuzzed) -> None:
    assert fuzzed.disagreements == [], "\n".join(fuzzed.disagreements[:10])


def _settled(body: dict[str, Any], submitted: Submitted) -> bool:
    status = body.get("status") or {}
    if status.get("observedGeneration") != body["metadata"]["generation"]:
        return False
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    ready = conditions.get("Ready")
    if not ready or not ready.get("reason") or not ready.get("message"):
        return False
    if not submitted.model_valid:
        stalled = conditions.get("Stalled")
        return bool(stalled and stalled["status"] == "True" and stalled.get("message"))
    return ready["status"] in ("True", "False") or "Stalled" in conditions


def _live(client: httpx.Client, fuzzed: Fuzzed) -> dict[tuple[str, str, str], dict[str, Any]]:
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for namespace in fuzzed.namespaces:
        for kind in KINDS_BY_NAME:
            listing = client.get(f"/apis/{API_VERSION}/namespaces/{namespace}/{_plural(kind)}")
            for body in listing.json()["items"]:
                found[(kind, namespace, body["metadata"]["name"])] = body
    return found


def test_every_accepted_object_ends_ready_or_stalled_with_a_message(
    fuzzed: Fuzzed, control_plane: ControlPlaneAccess
) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    with control_plane.http_client() as client:
        while True:
            live = _live(client, fuzzed)
            unsettled = [
                (s, live.get((s.kind, s.namespace, s.name)))
                for s in fuzzed.accepted
                if not _settled(live.get((s.kind, s.namespace, s.name)) or {"metadata": {}}, s)
            ]
            if not unsettled or time.monotonic() > deadline:
                break
            time.sleep(2)
    shown = [
        f"{s.kind} {s.name} (model valid: {s.model_valid}): {_status_text(b)}"
        for s, b in unsettled[:8]
    ]
    assert unsettled == [], f"{len(unsettled)} objects never settled:\n" + "\n".join(shown)


def _status_text(body: dict[str, Any] | None) -> str:
    return json.dumps((body or {}).get("status"))[:300]


def test_the_operator_never_loops(fuzzed: Fuzzed, local: LocalControlPlane) -> None:
    assert local.audit_log_path is not None
    cursor = AuditCursor.at_end(local.audit_log_path)
    time.sleep(QUIET_WINDOW_SECONDS)
    per_object = Counter(
        uri.split("?", 1)[0].removesuffix("/status")
        for _, uri in cursor.writes(OPERATOR_USER)
        if "/events" not in uri
    )
    looping = {path: n for path, n in per_object.items() if n > HOT_LOOP_WRITES}
    assert looping == {}, looping
    assert sum(per_object.values()) <= len(fuzzed.accepted), per_object.most_common(10)


def test_the_operator_never_crashes(fuzzed: Fuzzed) -> None:
    assert fuzzed.operator.alive, fuzzed.operator.tail()
    log = fuzzed.operator.log()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]


def test_the_canary_secret_never_leaks_into_logs_events_status_or_annotations(
    fuzzed: Fuzzed, control_plane: ControlPlaneAccess
) -> None:
    secret = fuzzed.canary.removeprefix("CANARY-")
    assert secret not in fuzzed.operator.log(), "the operator logged the canary"
    with control_plane.http_client() as client:
        for namespace in fuzzed.namespaces:
            for path in (
                f"/api/v1/namespaces/{namespace}/events",
                f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
            ):
                events = client.get(path).json()["items"]
                leaked = [e for e in events if secret in json.dumps(e)]
                assert leaked == [], leaked[:3]
        for (kind, _, name), body in _live(client, fuzzed).items():
            visible = {
                "status": body.get("status"),
                "annotations": body["metadata"].get("annotations"),
            }
            assert secret not in json.dumps(visible), f"{kind} {name}: {visible}"
