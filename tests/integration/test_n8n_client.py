"""The n8n client against a REAL n8n (npm package, SQLite, loopback): fixture ``n8n_server``.

Retry behaviour is proven with a fault-injecting proxy in front of that same n8n.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from devserver_operator.integrations.n8n import (
    N8nAuthError,
    N8nBadRequestError,
    N8nClient,
    N8nConflictError,
    N8nError,
    N8nNotFoundError,
    N8nUnavailableError,
    RetryPolicy,
    Workflow,
    assign_webhook_ids,
    production_webhook_urls,
    writable_workflow,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.n8n_server import N8nServer

pytestmark = [pytest.mark.n8n, pytest.mark.integration]

FAST = RetryPolicy(max_attempts=4, initial_delay=0.05, max_delay=0.2, total_timeout=30)
WEBHOOK = "n8n-nodes-base.webhook"
SECRET_VALUE = "Bearer do-not-log-this-credential-value-7f3a"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def webhook_workflow(name: str, path: str, *, with_id: bool = True) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [
        {
            "name": "Webhook",
            "type": WEBHOOK,
            "typeVersion": 2,
            "position": [0, 0],
            "parameters": {"httpMethod": "POST", "path": path, "options": {}},
        },
        {
            "name": "Done",
            "type": "n8n-nodes-base.noOp",
            "typeVersion": 1,
            "position": [220, 0],
            "parameters": {},
        },
    ]
    if with_id:
        nodes = assign_webhook_ids(nodes, f"tests/{name}")
    return {
        "name": name,
        "nodes": nodes,
        "connections": {"Webhook": {"main": [[{"node": "Done", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"},
    }


async def wait_for_executions(
    client: N8nClient, workflow_id: str, count: int = 1, within: float = 30.0
) -> list[Any]:
    deadline = time.monotonic() + within
    while True:
        page = await client.list_executions(workflow_id=workflow_id, limit=50)
        done = [e for e in page.data if e.finished or e.status in ("success", "error")]
        if len(done) >= count or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.25)


@pytest.fixture
async def client(n8n_server: N8nServer) -> AsyncIterator[N8nClient]:
    async with N8nClient(n8n_server.base_url, n8n_server.api_key, retry=FAST) as c:
        yield c


class Cleanup:
    """Deletes what a test created, whatever happened (ignoring what is already gone)."""

    def __init__(self) -> None:
        self.workflows: list[str] = []
        self.tags: list[str] = []
        self.credentials: list[str] = []

    async def run(self, client: N8nClient) -> None:
        for wf in self.workflows:
            with contextlib.suppress(N8nNotFoundError):
                await client.deactivate_workflow(wf)
                await client.delete_workflow(wf)
        for tag in self.tags:
            with contextlib.suppress(N8nNotFoundError):
                await client.delete_tag(tag)
        for cred in self.credentials:
            with contextlib.suppress(N8nNotFoundError):
                await client.delete_credential(cred)


@pytest.fixture
async def cleanup(n8n_server: N8nServer) -> AsyncIterator[Cleanup]:
    todo = Cleanup()
    yield todo
    n8n_server.ensure_running()
    async with N8nClient(n8n_server.base_url, n8n_server.api_key, retry=FAST) as c:
        await todo.run(c)


@pytest.fixture
def proxy(n8n_server: N8nServer) -> Iterator[FaultProxy]:
    with FaultProxy(n8n_server.base_url) as p:
        yield p


# -------------------------------------------------------------------------- workflows


async def test_workflow_crud_round_trip(client: N8nClient, cleanup: Cleanup) -> None:
    desired = webhook_workflow(unique("crud"), unique("crud"))
    created = await client.create_workflow(desired)
    cleanup.workflows.append(created.id)
    assert isinstance(created, Workflow)
    assert created.id
    assert created.name == desired["name"]
    assert created.active is False
    assert [n["name"] for n in created.nodes] == ["Webhook", "Done"]
    assert created.nodes[0]["webhookId"] == desired["nodes"][0]["webhookId"]

    fetched = await client.get_workflow(created.id)
    assert fetched.id == created.id
    assert fetched.connections == desired["connections"]
    assert fetched.version_id

    # A fetched workflow goes back as it is: the client strips the read-only fields.
    full = fetched.model_dump(by_alias=True)
    full["name"] = desired["name"] + "-renamed"
    updated = await client.update_workflow(created.id, full)
    assert updated.name == desired["name"] + "-renamed"
    assert updated.version_id != fetched.version_id
    assert (await client.get_workflow(created.id)).name == updated.name
    # n8n keeps the writable shape as sent (what drift detection compares).
    again = writable_workflow((await client.get_workflow(created.id)).model_dump(by_alias=True))
    assert again["nodes"] == updated.payload()["nodes"]

    deleted = await client.delete_workflow(created.id)
    assert deleted.id == created.id
    with pytest.raises(N8nNotFoundError) as err:
        await client.get_workflow(created.id)
    assert err.value.status == 404
    assert err.value.message  # n8n's own words
    with pytest.raises(N8nNotFoundError):
        await client.delete_workflow(created.id)


async def test_n8n_rejects_read_only_fields(n8n_server: N8nServer, cleanup: Cleanup) -> None:
    """Why writable_workflow exists: raw n8n refuses versionId/pinData/meta on create."""
    headers = {"X-N8N-API-KEY": n8n_server.api_key}
    body = {**webhook_workflow(unique("raw"), unique("raw")), "versionId": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=n8n_server.base_url, headers=headers) as raw:
        answer = await raw.post("/api/v1/workflows", json=body)
    assert answer.status_code == 400, answer.text
    assert "additional properties" in answer.json()["message"]


async def test_list_workflows_pages_and_filters(client: N8nClient, cleanup: Cleanup) -> None:
    tag = await client.create_tag(unique("page"))
    cleanup.tags.append(tag.id)
    ids = []
    for i in range(5):
        wf = await client.create_workflow({"name": f"{tag.name}-{i}", "nodes": [], "settings": {}})
        cleanup.workflows.append(wf.id)
        await client.set_workflow_tags(wf.id, [tag.id])
        ids.append(wf.id)

    first = await client.list_workflows(tags=[tag.name], limit=2)
    assert len(first.data) == 2
    assert first.next_cursor
    second = await client.list_workflows(tags=[tag.name], limit=2, cursor=first.next_cursor)
    assert len(second.data) == 2
    assert not {w.id for w in first.data} & {w.id for w in second.data}

    seen = [w.id async for w in client.iter_workflows(tags=[tag.name], page_size=2)]
    assert sorted(seen) == sorted(ids)
    assert all(w.tags[0].name == tag.name for w in first.data)

    by_name = await client.list_workflows(name=f"{tag.name}-3")
    assert [w.id for w in by_name.data] == [ids[3]]
    inactive = [w.id async for w in client.iter_workflows(tags=[tag.name], active=False)]
    assert sorted(inactive) == sorted(ids)
    assert [w async for w in client.iter_workflows(tags=[tag.name], active=True)] == []


# -------------------------------------------------------------------------- tags


async def test_tags(client: N8nClient, cleanup: Cleanup) -> None:
    name = unique("tag")
    tag = await client.create_tag(name)
    cleanup.tags.append(tag.id)
    assert tag.name == name
    with pytest.raises(N8nConflictError) as err:
        await client.create_tag(name)
    assert err.value.status == 409
    assert err.value.message
    assert (await client.ensure_tag(name)).id == tag.id
    made = await client.ensure_tag(unique("ensured"))
    cleanup.tags.append(made.id)

    listed = [t.id async for t in client.iter_tags(page_size=1)]
    assert {tag.id, made.id} <= set(listed)

    wf = await client.create_workflow({"name": unique("tagged"), "nodes": [], "settings": {}})
    cleanup.workflows.append(wf.id)
    assert await client.get_workflow_tags(wf.id) == []
    set_tags = await client.set_workflow_tags(wf.id, [tag.id, made.id])
    assert {t.name for t in set_tags} == {tag.name, made.name}
    assert {t.id for t in await client.get_workflow_tags(wf.id)} == {tag.id, made.id}
    assert {t.id for t in (await client.get_workflow(wf.id)).tags} == {tag.id, made.id}
    assert [t.id for t in await client.set_workflow_tags(wf.id, [made.id])] == [made.id]
    with pytest.raises(N8nError) as unknown:
        await client.set_workflow_tags(wf.id, ["no-such-tag-id"])
    assert unknown.value.status in (400, 404)


# -------------------------------------------------------------------------- activation


async def test_activate_call_production_webhook_and_see_execution(
    n8n_server: N8nServer, client: N8nClient, cleanup: Cleanup
) -> None:
    path = unique("hook")
    wf = await client.create_workflow(webhook_workflow(unique("active"), path))
    cleanup.workflows.append(wf.id)
    urls = production_webhook_urls(n8n_server.base_url, wf.nodes)
    assert urls == {"Webhook": f"{n8n_server.base_url}/webhook/{path}"}

    activated = await client.activate_workflow(wf.id)
    assert activated.active is True
    assert client.activation_api == "activate"  # n8n 1.x
    assert (await client.get_workflow(wf.id)).active is True
    assert (await client.activate_workflow(wf.id)).active is True  # idempotent

    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(urls["Webhook"], json={"hello": "n8n"})
        assert answer.status_code == 200, answer.text
        done = await wait_for_executions(client, wf.id)
        assert len(done) == 1
        execution = await client.get_execution(done[0].id, include_data=True)
        assert execution.workflow_id == wf.id
        assert execution.status == "success"
        assert execution.mode == "webhook"
        assert execution.data is not None
        assert [e.id async for e in client.iter_executions(workflow_id=wf.id)] == [execution.id]

        deactivated = await client.deactivate_workflow(wf.id)
        assert deactivated.active is False
        gone = await http.post(urls["Webhook"], json={})
        assert gone.status_code == 404
        assert (await client.deactivate_workflow(wf.id)).active is False  # idempotent

    with pytest.raises(N8nNotFoundError):
        await client.get_execution("999999999")


async def test_webhook_without_id_registers_under_workflow_id(
    n8n_server: N8nServer, client: N8nClient, cleanup: Cleanup
) -> None:
    """The quirk assign_webhook_ids protects against."""
    path = unique("noid")
    wf = await client.create_workflow(webhook_workflow(unique("noid"), path, with_id=False))
    cleanup.workflows.append(wf.id)
    if wf.nodes[0].get("webhookId"):
        pytest.fail(f"n8n now assigns webhook ids itself: {wf.nodes[0]['webhookId']}")
    await client.activate_workflow(wf.id)
    urls = production_webhook_urls(n8n_server.base_url, wf.nodes, workflow_id=wf.id)
    assert urls["Webhook"] == f"{n8n_server.base_url}/webhook/{wf.id}/webhook/{path}"
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.post(urls["Webhook"], json={})).status_code == 200
        assert (await http.post(f"{n8n_server.base_url}/webhook/{path}")).status_code == 404


async def test_webhook_url_shapes_match_n8n(
    n8n_server: N8nServer, client: N8nClient, cleanup: Cleanup
) -> None:
    """production_webhook_urls agrees with n8n for empty and dynamic (:param) paths."""
    name = unique("shapes")
    nodes = assign_webhook_ids(
        [
            {
                "name": node_name,
                "type": WEBHOOK,
                "typeVersion": 2,
                "position": [0, 200 * i],
                "parameters": {"httpMethod": "POST", "path": path, "options": {}},
            }
            for i, (node_name, path) in enumerate(
                [("Blank", ""), ("Dynamic", f"{name}/:item"), ("Static", f"{name}/fixed")]
            )
        ],
        f"tests/{name}",
    )
    wf = await client.create_workflow({"name": name, "nodes": nodes, "settings": {}})
    cleanup.workflows.append(wf.id)
    await client.activate_workflow(wf.id)
    urls = production_webhook_urls(n8n_server.base_url, wf.nodes)
    async with httpx.AsyncClient(timeout=30) as http:
        for url in (urls["Blank"], urls["Dynamic"].replace(":item", "42"), urls["Static"]):
            answer = await http.post(url, json={})
            assert answer.status_code == 200, (url, answer.text)
    assert len(await wait_for_executions(client, wf.id, count=3)) == 3


async def test_unknown_node_type_fails_on_activation(client: N8nClient, cleanup: Cleanup) -> None:
    workflow = webhook_workflow(unique("unknown"), unique("unknown"))
    workflow["nodes"][1]["type"] = "n8n-nodes-base.doesNotExist"
    wf = await client.create_workflow(workflow)  # n8n accepts it ...
    cleanup.workflows.append(wf.id)
    with pytest.raises(N8nError) as err:  # ... and refuses to activate it
        await client.activate_workflow(wf.id)
    assert isinstance(err.value, N8nBadRequestError), repr(err.value)
    assert "doesNotExist" in err.value.message or "unknown" in err.value.message.lower(), (
        err.value.message
    )
    assert (await client.get_workflow(wf.id)).active is False


async def test_webhook_path_taken_by_another_active_workflow(
    client: N8nClient, cleanup: Cleanup
) -> None:
    path = unique("taken")
    first = await client.create_workflow(webhook_workflow(unique("first"), path))
    second = await client.create_workflow(webhook_workflow(unique("second"), path))
    cleanup.workflows += [first.id, second.id]
    await client.activate_workflow(first.id)
    with pytest.raises(N8nError) as err:
        await client.activate_workflow(second.id)
    assert isinstance(err.value, N8nBadRequestError), repr(err.value)
    assert "already" in err.value.message.lower() or "conflict" in err.value.message.lower(), (
        err.value.message
    )
    assert (await client.get_workflow(second.id)).active is False
    assert (await client.get_workflow(first.id)).active is True


async def test_update_of_active_workflow_that_cannot_reactivate(
    n8n_server: N8nServer, client: N8nClient, cleanup: Cleanup
) -> None:
    """n8n quirk the reconciler must handle: the PUT answers 400 with the activation error,
    yet the new version IS stored and the workflow is left INACTIVE (old webhook gone)."""
    taken, own = unique("taken"), unique("own")
    holder = await client.create_workflow(webhook_workflow(unique("holder"), taken))
    mover = await client.create_workflow(webhook_workflow(unique("mover"), own))
    cleanup.workflows += [holder.id, mover.id]
    await client.activate_workflow(holder.id)
    await client.activate_workflow(mover.id)

    moved = webhook_workflow(mover.name, taken)
    with pytest.raises(N8nBadRequestError) as err:
        await client.update_workflow(mover.id, moved)
    assert "already taken" in err.value.message
    after = await client.get_workflow(mover.id)
    assert after.active is False
    assert after.nodes[0]["parameters"]["path"] == taken  # stored despite the 400
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.post(f"{n8n_server.base_url}/webhook/{own}")).status_code == 404
        assert (await http.post(f"{n8n_server.base_url}/webhook/{taken}")).status_code == 200


# -------------------------------------------------------------------------- bad input


async def test_wrong_api_key_is_an_auth_error(
    n8n_server: N8nServer, caplog: pytest.LogCaptureFixture
) -> None:
    bad_key = "n8n_api_wrong-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    async with N8nClient(n8n_server.base_url, bad_key, retry=FAST) as bad:
        with pytest.raises(N8nAuthError) as err:
            await bad.list_workflows()
        assert err.value.status == 401
        assert err.value.message  # n8n's message
        assert bad_key not in str(err.value)
        assert bad_key not in repr(err.value)
        assert bad_key not in repr(bad)
    async with N8nClient(n8n_server.base_url, "", retry=FAST) as empty:
        with pytest.raises(N8nAuthError) as missing:
            await empty.list_workflows()
        assert "X-N8N-API-KEY" in missing.value.message
    assert bad_key not in caplog.text


async def test_invalid_workflow_is_a_bad_request(client: N8nClient, cleanup: Cleanup) -> None:
    broken = webhook_workflow(unique("broken"), unique("broken"))
    broken["nodes"][0]["color"] = "red"  # nodes allow no properties of their own invention
    with pytest.raises(N8nBadRequestError) as err:
        await client.create_workflow(broken)
    assert err.value.status == 400
    assert err.value.message == "request/body/nodes/0 must NOT have additional properties"
    assert str(err.value).startswith("POST /workflows -> HTTP 400: request/body/nodes/0 ")

    with pytest.raises(N8nBadRequestError) as bad_settings:
        await client.create_workflow(
            {"name": unique("settings"), "nodes": [], "settings": {"executionOrder": 7}}
        )
    assert bad_settings.value.message == "request/body/settings/executionOrder must be string"

    # n8n does NOT validate nodes beyond the schema: a node without a type is stored.
    typeless = webhook_workflow(unique("typeless"), unique("typeless"))
    del typeless["nodes"][1]["type"]
    stored = await client.create_workflow(typeless)
    cleanup.workflows.append(stored.id)
    assert "type" not in stored.nodes[1]


# -------------------------------------------------------------------------- credentials


async def test_credentials_create_schema_delete(
    n8n_server: N8nServer, client: N8nClient, cleanup: Cleanup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    schema = await client.get_credential_schema("httpHeaderAuth")
    assert schema["type"] == "object"
    assert {"name", "value"} <= set(schema["properties"])

    cred = await client.create_credential(
        unique("cred"), "httpHeaderAuth", {"name": "Authorization", "value": SECRET_VALUE}
    )
    cleanup.credentials.append(cred.id)
    assert cred.type == "httpHeaderAuth"
    assert SECRET_VALUE not in cred.model_dump_json()

    # Data that does not fit the schema: n8n's message, no secret in it.
    with pytest.raises(N8nBadRequestError) as err:
        await client.create_credential(
            unique("bad"), "httpHeaderAuth", {"value": SECRET_VALUE, "token": SECRET_VALUE}
        )
    assert err.value.message == (
        'request.body.data is not allowed to have the additional property "token"'
    )
    assert SECRET_VALUE not in str(err.value)
    with pytest.raises(N8nBadRequestError) as bad_type:
        await client.create_credential(unique("bad"), "noSuchCredentialType", {})
    assert bad_type.value.message == "req.body.type is not a known type"

    with pytest.raises(N8nNotFoundError):
        await client.get_credential_schema("noSuchCredentialType")

    # The only way n8n's public API lists credentials: its audit of unused ones.
    assert (cred.id, cred.name) in await client.unused_credentials()

    deleted = await client.delete_credential(cred.id)
    assert deleted.id == cred.id
    assert cred.id not in {id_ for id_, _ in await client.unused_credentials()}
    with pytest.raises(N8nNotFoundError):
        await client.delete_credential(cred.id)
    assert SECRET_VALUE not in caplog.text
    assert n8n_server.api_key not in caplog.text


# -------------------------------------------------------------------------- retries


async def test_429_with_retry_after_is_retried(
    n8n_server: N8nServer, proxy: FaultProxy, cleanup: Cleanup
) -> None:
    async with N8nClient(proxy.url, n8n_server.api_key, retry=FAST) as client:
        proxy.fail_next(2, 429, headers={"Retry-After": "1"}, body='{"message":"slow down"}')
        began = time.monotonic()
        page = await client.list_workflows(limit=1)
        elapsed = time.monotonic() - began
        assert isinstance(page.data, list)
        assert [r.outcome for r in proxy.requests] == [
            "injected 429",
            "injected 429",
            "forwarded 200",
        ]
        assert elapsed >= 1.9  # Retry-After: 1 honoured twice

        # 429 means "not processed": even a create is retried, and only one copy exists.
        name = unique("once")
        proxy.fail_next(1, 429, headers={"Retry-After": "0"}, method="POST")
        wf = await client.create_workflow({"name": name, "nodes": [], "settings": {}})
        cleanup.workflows.append(wf.id)
        assert proxy.count(method="POST", path="/workflows$") == 2
        assert [w.id for w in (await client.list_workflows(name=name)).data] == [wf.id]


async def test_5xx_and_dropped_connections_are_retried_within_bounds(
    n8n_server: N8nServer, proxy: FaultProxy, cleanup: Cleanup
) -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=0.05, max_delay=0.1, total_timeout=10)
    async with N8nClient(proxy.url, n8n_server.api_key, retry=policy) as client:
        proxy.fail_next(2, 503)
        assert isinstance((await client.list_workflows(limit=1)).data, list)
        assert proxy.count() == 3

        proxy.reset()
        proxy.fail_next(100, 502, body='{"message":"bad gateway upstream"}')
        with pytest.raises(N8nUnavailableError) as err:
            await client.list_workflows(limit=1)
        assert proxy.count() == 3  # bounded: max_attempts
        assert err.value.status == 502
        assert "bad gateway upstream" in err.value.message
        assert "3 attempt" in err.value.message

        proxy.reset()
        proxy.drop_next(2)
        assert isinstance((await client.list_workflows(limit=1)).data, list)
        assert [r.outcome for r in proxy.requests][:2] == ["dropped", "dropped"]

        # A POST whose connection dropped may have been processed: not repeated.
        proxy.reset()
        proxy.drop_next(1, method="POST")
        with pytest.raises(N8nUnavailableError):
            await client.create_workflow({"name": unique("dropped"), "nodes": [], "settings": {}})
        assert proxy.count(method="POST") == 1
        # Nor is a 500 on a POST.
        proxy.fail_next(1, 500, method="POST")
        with pytest.raises(N8nUnavailableError) as five_hundred:
            await client.create_workflow({"name": unique("500"), "nodes": [], "settings": {}})
        assert five_hundred.value.status == 500
        assert proxy.count(method="POST") == 2

    # The total time bounds the whole call, whatever Retry-After asks for.
    short = RetryPolicy(max_attempts=10, initial_delay=0.05, total_timeout=2)
    async with N8nClient(proxy.url, n8n_server.api_key, retry=short) as client:
        proxy.reset()
        proxy.fail_next(100, 429, headers={"Retry-After": "30"})
        began = time.monotonic()
        with pytest.raises(N8nUnavailableError) as limited:
            await client.list_workflows()
        assert time.monotonic() - began < 1.0  # did not wait 30 s past the deadline
        assert limited.value.status == 429
        assert proxy.count() == 1


async def test_publish_api_of_n8n_2_is_detected(
    n8n_server: N8nServer, proxy: FaultProxy, cleanup: Cleanup
) -> None:
    """Emulate n8n 2.x in front of the real n8n: /activate is gone, /publish does it."""
    proxy.fail_next(1000, 404, body='{"message":"not found"}', path=r"/(de)?activate$")
    proxy.rewrite(r"/publish$", "/activate")
    proxy.rewrite(r"/unpublish$", "/deactivate")
    async with N8nClient(proxy.url, n8n_server.api_key, retry=FAST) as client:
        wf = await client.create_workflow(webhook_workflow(unique("pub"), unique("pub")))
        cleanup.workflows.append(wf.id)
        assert (await client.activate_workflow(wf.id)).active is True
        assert client.activation_api == "publish"
        assert (await client.deactivate_workflow(wf.id)).active is False
        assert proxy.count(path="/activate$") == 1  # tried once, then remembered
        assert proxy.count(path="/deactivate$") == 0
        assert proxy.count(path="/publish$") == 1
        assert proxy.count(path="/unpublish$") == 1
        # A workflow that does not exist is still "not found", after trying both.
        with pytest.raises(N8nNotFoundError):
            await client.activate_workflow("doesNotExist")

    async with N8nClient(n8n_server.base_url, n8n_server.api_key, retry=FAST) as direct:
        with pytest.raises(N8nNotFoundError) as missing:
            await direct.activate_workflow("doesNotExist")
        assert direct.activation_api is None  # 404 on both: nothing learnt
        assert missing.value.path == "/workflows/doesNotExist/activate"


# -------------------------------------------------------------------------- outage


async def test_n8n_stopped_is_unavailable_quickly_then_recovers(
    n8n_server: N8nServer, cleanup: Cleanup
) -> None:
    policy = RetryPolicy(max_attempts=3, initial_delay=0.1, max_delay=0.5, total_timeout=5)
    async with N8nClient(n8n_server.base_url, n8n_server.api_key, retry=policy) as client:
        wf = await client.create_workflow({"name": unique("survivor"), "nodes": [], "settings": {}})
        cleanup.workflows.append(wf.id)
        n8n_server.stop()
        try:
            began = time.monotonic()
            with pytest.raises(N8nUnavailableError) as err:
                await client.get_workflow(wf.id)
            assert time.monotonic() - began < 5.0
            assert err.value.status is None
            assert "cannot reach n8n" in err.value.message
            assert n8n_server.api_key not in str(err.value)
        finally:
            n8n_server.start()
        # Same URL, same data, same API key: the same client works again.
        assert (await client.get_workflow(wf.id)).name == wf.name
