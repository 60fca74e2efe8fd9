"""The API client's own retries: quick and bounded, never faster than the server asks, and
only where sending a request twice cannot do anything twice. No server needed: an httpx
mock transport answers (KubeClient takes an httpx transport for exactly such uses)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from devserver_operator.kube.client import Credentials, KubeClient, RetryPolicy, _yaml_safe_json
from devserver_operator.kube.errors import (
    ConflictError,
    InvalidError,
    KubeApiError,
    KubeUnavailableError,
)

CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}
FAST = RetryPolicy(attempts=4, first_delay=0.01, max_delay=2.0)


def _client(answers: Callable[[httpx.Request], httpx.Response], seen: list[float]) -> KubeClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        return answers(request)

    return KubeClient(
        Credentials(server="https://kube.invalid"),
        transport=httpx.MockTransport(handler),
        retry=FAST,
    )


def _answers(
    *statuses: int, headers: dict[str, str] | None = None
) -> Callable[..., httpx.Response]:
    queue = list(statuses)

    def answer(_: httpx.Request) -> httpx.Response:
        status = queue.pop(0) if len(queue) > 1 else queue[0]
        body = {"kind": "Status", "reason": "Injected", "message": f"status {status}"}
        return httpx.Response(status, json=body if status >= 400 else CONFIG_MAP, headers=headers)

    return answer


async def test_throttling_is_retried_no_sooner_than_retry_after() -> None:
    seen: list[float] = []
    async with _client(_answers(429, 429, 200, headers={"Retry-After": "1"}), seen) as kube:
        await kube.apply(CONFIG_MAP)
    assert len(seen) == 3
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(seen))


async def test_a_retry_after_longer_than_the_policy_allows_is_not_waited_for() -> None:
    seen: list[float] = []
    async with _client(_answers(429, headers={"Retry-After": "60"}), seen) as kube:
        with pytest.raises(KubeApiError):
            await kube.apply(CONFIG_MAP)
    assert len(seen) == 1


async def test_server_errors_and_lost_races_of_idempotent_writes_are_retried() -> None:
    seen: list[float] = []
    async with _client(_answers(500, 503, 409, 200), seen) as kube:
        await kube.apply(CONFIG_MAP)
    assert len(seen) == 4


async def test_retries_stop_after_the_policy_s_attempts() -> None:
    seen: list[float] = []
    async with _client(_answers(500), seen) as kube:
        with pytest.raises(KubeApiError):
            await kube.apply(CONFIG_MAP)
    assert len(seen) == FAST.attempts


async def test_a_create_is_not_sent_twice_after_a_server_error() -> None:
    seen: list[float] = []
    async with _client(_answers(500, 201), seen) as kube:
        with pytest.raises(KubeApiError):
            await kube.create(CONFIG_MAP)
    assert len(seen) == 1


async def test_already_exists_is_an_answer_not_a_race() -> None:
    seen: list[float] = []
    async with _client(_answers(409), seen) as kube:
        with pytest.raises(ConflictError):
            await kube.create(CONFIG_MAP)
    assert len(seen) == 1


async def test_an_object_the_server_cannot_apply_is_invalid_at_once() -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        message = (
            "failed to create typed patch object (n/c; apps/v1, Kind=Deployment): "
            ".spec.template.spec.topologySpreadConstraints: duplicate entries for key"
        )
        return httpx.Response(500, json={"kind": "Status", "message": message})

    seen: list[float] = []
    async with _client(answer, seen) as kube:
        with pytest.raises(InvalidError):
            await kube.apply(CONFIG_MAP)
    assert len(seen) == 1


async def test_a_refused_connection_is_retried_even_for_a_create() -> None:
    seen: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if len(seen) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json=CONFIG_MAP)

    async with _client(answer, seen) as kube:
        await kube.create(CONFIG_MAP)
    assert len(seen) == 3


async def test_a_create_whose_answer_was_lost_is_not_sent_again() -> None:
    seen: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    async with _client(answer, seen) as kube:
        with pytest.raises(KubeUnavailableError):
            await kube.create(CONFIG_MAP)
    assert len(seen) == 1


@pytest.mark.parametrize(
    "text", ["a\x85b", "a\x7fb", "a\x9fb", "a\u2028b", "a\uffffb", "a\U0001f600b", "a\x01b", "é"]
)
def test_apply_bodies_survive_the_servers_yaml_reader(text: str) -> None:
    """The server reads an apply body as YAML: what JSON allows raw must still mean the same."""
    body = _yaml_safe_json({"data": {"k": text}})
    assert yaml.safe_load(body.decode("utf-8")) == {"data": {"k": text}}
    assert json.loads(body) == {"data": {"k": text}}


def _token_kubeconfig(directory: Path, token: str) -> Path:
    (directory / "token").write_text(token, encoding="utf-8")
    path = directory / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "k", "cluster": {"server": "https://kube.invalid"}}],
                "users": [{"name": "u", "user": {"tokenFile": "token"}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "current-context": "c",
            }
        ),
        encoding="utf-8",
    )
    return path


async def test_a_refused_login_is_replaced_by_a_rotated_token_bounded(tmp_path: Path) -> None:
    path = _token_kubeconfig(tmp_path, "old")
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tokens.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer new":
            return httpx.Response(401, json={"kind": "Status", "reason": "Unauthorized"})
        return httpx.Response(200, json=CONFIG_MAP)

    async with KubeClient.from_kubeconfig(
        str(path), transport=httpx.MockTransport(handler), retry=FAST
    ) as kube:
        # Refused, logged in again (the file still says "old"), refused again: an error,
        # after exactly two sends.
        with pytest.raises(KubeApiError) as refused:
            await kube.get("v1", "ConfigMap", "c", "n")
        assert refused.value.status == 401
        assert tokens == ["Bearer old", "Bearer old"]

        # The token was rotated: the next 401 logs in again and the request goes through.
        (tmp_path / "token").write_text("new", encoding="utf-8")
        tokens.clear()
        assert await kube.get("v1", "ConfigMap", "c", "n") == CONFIG_MAP
        assert tokens == ["Bearer old", "Bearer new"]
