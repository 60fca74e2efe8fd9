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

import functools
import hashlib
import itertools
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import ValidationError

from devserver_operator.api import API_VERSION, KINDS_BY_NAME
from devserver_operator.localcluster import LocalControlPlane
from devserver_operator.localcluster.audit import WRITE_VERBS, answered_requests
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
from tests.support.schemas import crd_schema

EXAMPLES = int(os.environ.get("DEVSERVER_FUZZ_EXAMPLES", "2000"))
# Bounds grow with the number of examples (CI runs 2,000, the nightly job 20,000); the
# namespaces grow slower, so that each still holds a few hundred objects to wire together.
SCALE = max(1.0, EXAMPLES / 2000)
NAMESPACES = round(4 * SCALE**0.5)
OPERATOR_USER = "op-fuzz"
SETTLE_SECONDS = 200.0 * SCALE  # below the timeout, so that the details get shown
TIMEOUT_SECONDS = round(300 * SCALE)  # per test; the first one also submits everything
QUIET_WINDOW_SECONDS = 11.0  # two resync rounds (5 s) and a bit
QUIET_WINDOWS = 4  # at most; see test_the_operator_never_loops
HOT_LOOP_WRITES = 3  # more writes to one object in the quiet window is a loop
CONFLICT_SECONDS = 60.0
POSTING_THREADS = 4

pytestmark = [pytest.mark.integration, pytest.mark.timeout(TIMEOUT_SECONDS)]


@dataclass
class Submitted:
    kind: str
    namespace: str
    name: str
    model_valid: bool
    mutation: str | None
    spec: dict[str, Any]


@dataclass
class Fuzzed:
    canary: str
    namespaces: list[str]
    operator: OperatorProcess
    conflicts_namespace: str
    """Not fuzzed: the ConfigMap conflict test's own objects, under the same checks."""
    accepted: list[Submitted] = field(default_factory=list)
    rejected: int = 0
    disagreements: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    left_to_the_model: Counter[str] = field(default_factory=Counter)
    """Accepted by the API server, refused by the model (they end Stalled), by error type."""


def _plural(kind: str) -> str:
    return KINDS_BY_NAME[kind].plural


def _model_refusal(item: Spec) -> str | None:
    """Where the operator's model refuses the spec (type and location), or None."""
    try:
        KINDS_BY_NAME[item.kind].spec_model.model_validate(item.spec)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"]))
        return f"{item.kind} {first['type']} at {where}: {first['msg']}"[:300]
    return None


@functools.cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    # Built once per kind: building it (and the CRD) for every example took 17 ms each.
    return jsonschema.Draft202012Validator(
        crd_schema(kind), format_checker=jsonschema.FormatChecker()
    )


def _schema_forbids(document: dict[str, Any], item: Spec) -> str | None:
    errors = sorted(_validator(item.kind).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        return f"{'.'.join(map(str, errors[0].absolute_path))}: {errors[0].message}"[:300]
    if item.mutation and item.mutation.startswith("unknown field"):
        return item.mutation  # structural schemas do not list them; Strict validation does
    return None


@dataclass(frozen=True)
class Verdict:
    """What the local checks said about one document, before the server answers."""

    item: Spec
    namespace: str
    name: str
    forbidden: str | None
    refusal: str | None

    @property
    def model_valid(self) -> bool:
        return self.refusal is None


def _prepare(fuzzed: Fuzzed, index: int, item: Spec) -> tuple[dict[str, Any], Verdict]:
    namespace = fuzzed.namespaces[index % NAMESPACES]
    name = f"{item.kind.lower()}-{index}"
    document = {
        "apiVersion": API_VERSION,
        "kind": item.kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": item.spec,
    }
    return document, Verdict(
        item, namespace, name, _schema_forbids(document, item), _model_refusal(item)
    )


def _post(client: httpx.Client, document: dict[str, Any]) -> httpx.Response:
    metadata = document["metadata"]
    return client.post(
        f"/apis/{API_VERSION}/namespaces/{metadata['namespace']}/{_plural(document['kind'])}",
        params={"fieldValidation": "Strict"},
        json=document,
    )


def _judge(fuzzed: Fuzzed, verdict: Verdict, response: httpx.Response) -> None:
    item = verdict.item
    fuzzed.kinds[item.kind] += 1
    shown = json.dumps(item.spec)[:400]
    if response.status_code == 201:
        submitted = Submitted(
            item.kind,
            verdict.namespace,
            verdict.name,
            verdict.model_valid,
            item.mutation,
            item.spec,
        )
        fuzzed.accepted.append(submitted)
        if verdict.refusal:
            fuzzed.left_to_the_model[verdict.refusal] += 1
        if verdict.forbidden:
            fuzzed.disagreements.append(
                f"accepted, though the schema forbids {verdict.forbidden}: {shown}"
            )
    elif response.status_code in (400, 422):
        fuzzed.rejected += 1
        if verdict.model_valid and not verdict.forbidden:
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
def world(
    control_plane: ControlPlaneAccess,
    local: LocalControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fuzzed]:
    """Namespaces with the canary Secret, and the operator watching them."""
    run = uuid.uuid4().hex[:6]
    namespaces = [f"fuzz-{run}-{i}" for i in range(NAMESPACES)]
    conflicts = f"fuzz-{run}-conflicts"
    log = tmp_path_factory.mktemp("fuzz") / "operator.log"
    operator = OperatorProcess(identity(local, OPERATOR_USER), log, [*namespaces, conflicts])
    world = Fuzzed(f"CANARY-{uuid.uuid4().hex}", namespaces, operator, conflicts)
    with control_plane.http_client() as client:
        for namespace in [*namespaces, conflicts]:
            _plant_canary(client, namespace, world.canary)
        operator.start()
        try:
            yield world
        finally:
            operator.stop()
            for namespace in [*namespaces, conflicts]:  # a throw-away plane: no waiting
                client.delete(f"/api/v1/namespaces/{namespace}")


@pytest.fixture(scope="module")
def fuzzed(world: Fuzzed, control_plane: ControlPlaneAccess, mcp_streamable_server: Any) -> Fuzzed:
    """Every example submitted and judged (the operator reconciles them meanwhile)."""
    loopback = Loopback(mcp_url=mcp_streamable_server.url)
    counter = itertools.count()
    digest = hashlib.sha256()  # printed: equal digests, equal examples
    # The requests go out from a few threads while hypothesis generates the next examples:
    # generating and submitting each take about half of the time.
    posting = ThreadPoolExecutor(max_workers=POSTING_THREADS)
    pending: list[tuple[Verdict, Future[httpx.Response]]] = []
    with control_plane.http_client() as client:
        # derandomize seeds hypothesis from the source of `submit`: editing it changes the
        # examples (once), nothing else does.
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
            shown = repr((item.kind, item.spec, item.mutation))
            digest.update(shown.replace(loopback.mcp_url, "MCP_URL").encode())
            document, verdict = _prepare(world, next(counter), item)
            pending.append((verdict, posting.submit(_post, client, document)))

        started = time.monotonic()
        submit()
        for verdict, answer in pending:
            _judge(world, verdict, answer.result(timeout=120))
        posting.shutdown()
    # For reproducing a failure by hand: what the API server accepted, by name.
    accepted = {f"{s.namespace}/{s.name}": s.spec for s in world.accepted}
    world.operator.log_path.with_name("accepted.json").write_text(json.dumps(accepted, indent=1))
    print(  # the numbers belong in the test log
        f"fuzz: {sum(world.kinds.values())} examples {dict(world.kinds)} in "
        f"{time.monotonic() - started:.0f} s: {len(world.accepted)} accepted, "
        f"{world.rejected} rejected; examples digest {digest.hexdigest()[:12]}; "
        f"accepted but refused by the model: {dict(world.left_to_the_model)}"
    )
    return world


def _integration(namespace: str, name: str, config_map: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "WorkflowIntegration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"openHands": {"configMapName": config_map}},
    }


def _wait_condition(
    client: httpx.Client, namespace: str, name: str, type_: str, status: str
) -> dict[str, Any]:
    path = f"/apis/{API_VERSION}/namespaces/{namespace}/{_plural('WorkflowIntegration')}/{name}"
    started = time.monotonic()
    deadline = started + CONFLICT_SECONDS
    while True:
        body = client.get(path).json()
        found = {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}
        if found.get(type_, {}).get("status") == status:
            print(f"conflict: {name} {type_}={status} after {time.monotonic() - started:.1f} s")
            return found[type_]
        assert time.monotonic() < deadline, f"{name}: no {type_}={status}: {_status_text(body)}"
        time.sleep(0.5)


def test_a_configmap_held_by_another_owner_is_a_conflict_not_a_tug_of_war(
    world: Fuzzed, control_plane: ControlPlaneAccess
) -> None:
    """Found by this fuzzer: two WorkflowIntegrations naming one OpenHands ConfigMap took it
    from each other on every change, tens of writes per resync round. The one that does not
    control it must stall, and leave it alone, until the holder lets go."""
    # First, on a quiet operator; its objects stay for the checks after the fuzzing.
    namespace = world.conflicts_namespace
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    integrations = f"/apis/{API_VERSION}/namespaces/{namespace}/{_plural('WorkflowIntegration')}"
    with control_plane.http_client() as client:
        client.post(
            integrations, json=_integration(namespace, "holder", "shared")
        ).raise_for_status()
        _wait_condition(client, namespace, "holder", "Ready", "True")
        latecomer = _integration(namespace, "latecomer", "shared")
        client.post(integrations, json=latecomer).raise_for_status()
        handmade = {"metadata": {"name": "handmade"}, "data": {"config.toml": "# mine"}}
        client.post(configmaps, json=handmade).raise_for_status()
        intruder = _integration(namespace, "intruder", "handmade")
        client.post(integrations, json=intruder).raise_for_status()

        stalled = _wait_condition(client, namespace, "latecomer", "Stalled", "True")
        assert stalled["reason"] == "ConfigMapConflict"
        assert "WorkflowIntegration holder" in stalled["message"], stalled
        stalled = _wait_condition(client, namespace, "intruder", "Stalled", "True")
        assert stalled["reason"] == "ConfigMapConflict"
        assert "not controlled by" in stalled["message"], stalled
        shared = client.get(f"{configmaps}/shared").json()["metadata"]
        assert [(r["name"], r.get("controller")) for r in shared["ownerReferences"]] == [
            ("holder", True)
        ]
        assert client.get(f"{configmaps}/handmade").json()["data"] == handmade["data"]

        # Once the holder is gone (and the garbage collector took its ConfigMap), the
        # latecomer gets it at its next check.
        client.delete(f"{integrations}/holder").raise_for_status()
        _wait_condition(client, namespace, "latecomer", "Ready", "True")
        shared = client.get(f"{configmaps}/shared").json()["metadata"]
        assert [r["name"] for r in shared["ownerReferences"]] == ["latecomer"]


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


def _unsettled(
    fuzzed: Fuzzed, control_plane: ControlPlaneAccess
) -> list[tuple[Submitted, dict[str, Any] | None]]:
    """Wait (bounded) until every accepted object has settled; what has not by then."""
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
                return unsettled
            time.sleep(2)


def test_every_accepted_object_ends_ready_or_stalled_with_a_message(
    fuzzed: Fuzzed, control_plane: ControlPlaneAccess
) -> None:
    unsettled = _unsettled(fuzzed, control_plane)
    shown = [
        f"{s.kind} {s.name} (model valid: {s.model_valid}): {_status_text(b)}"
        for s, b in unsettled[:8]
    ]
    assert unsettled == [], f"{len(unsettled)} objects never settled:\n" + "\n".join(shown)


def _status_text(body: dict[str, Any] | None) -> str:
    return json.dumps((body or {}).get("status"))[:300]


def test_the_operator_never_loops(
    fuzzed: Fuzzed, local: LocalControlPlane, control_plane: ControlPlaneAccess
) -> None:
    """No object is written more than a few times in a window of two resync rounds.

    "Settled" (a Ready condition with a reason) is not "quiet": a late verification result
    still changes an MCPServer, and with it every WorkflowIntegration that wires all servers
    of its namespace. So the window is measured again, a bounded number of times, until one
    is clean; a loop shows up in every window."""
    assert local.audit_log_path is not None
    _unsettled(fuzzed, control_plane)  # a settled world first (instant after the test above)
    for attempt in range(1, QUIET_WINDOWS + 1):
        start = local.audit_log_path.stat().st_size
        window = f"{time.strftime('%H:%M:%S')} + {QUIET_WINDOW_SECONDS:.0f} s"
        time.sleep(QUIET_WINDOW_SECONDS)
        writes = _writes_since(local.audit_log_path, start)
        per_object = Counter(path for path, _ in writes)
        looping = {path: n for path, n in per_object.items() if n > HOT_LOOP_WRITES}
        print(
            f"quiet window {attempt} ({window}): {len(writes)} writes to {len(per_object)} "
            f"objects, {len(looping)} above {HOT_LOOP_WRITES}"
        )
        if not looping:
            break
    shown: dict[str, Any] = {"window": window}
    with control_plane.http_client() as client:
        for path, count in per_object.most_common(8):
            body = client.get(path).json()
            status = body.get("status") if isinstance(body.get("status"), dict) else {}
            shown[f"{path} ({count} writes: {[c for p, c in writes if p == path]})"] = {
                "spec": body.get("spec") if path in looping else "...",
                "conditions": [
                    f"{c['type']}={c['status']} {c.get('reason')}: {c.get('message', '')[:160]}"
                    for c in status.get("conditions") or []
                ],
            }
    assert looping == {}, json.dumps(shown, indent=1, default=str)[:8000]
    assert sum(per_object.values()) <= len(fuzzed.accepted), per_object.most_common(10)


def _writes_since(audit_log: Path, offset: int) -> list[tuple[str, str]]:
    """(object path, verb and response code) of each write by the operator, Events aside."""
    return [
        (
            event["requestURI"].split("?", 1)[0].removesuffix("/status"),
            f"{event['verb']} {event.get('responseStatus', {}).get('code')}",
        )
        for event in answered_requests(audit_log, offset, OPERATOR_USER)
        if event["verb"] in WRITE_VERBS and "/events" not in event["requestURI"]
    ]


def test_the_operator_never_crashes(fuzzed: Fuzzed) -> None:
    assert fuzzed.operator.alive, fuzzed.operator.tail()
    tracebacks = _tracebacks(fuzzed.operator.log())
    if tracebacks:
        pytest.fail(
            f"{len(tracebacks)} distinct tracebacks in the operator log:\n\n"
            + "\n\n".join(list(tracebacks.values())[:5]),
            pytrace=False,
        )


def _tracebacks(log: str) -> dict[str, str]:
    """Each distinct traceback (by its last line) with the log line that announced it."""
    found: dict[str, str] = {}
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].startswith("[")), len(lines)
        )
        found.setdefault(lines[end - 1], "\n".join(lines[max(index - 1, 0) : end])[-4000:])
    return found


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
