"""The Prometheus client against a real Prometheus (Debian's package) on loopback, scraping
a gauge the test sets: results, and errors that keep Prometheus's own words."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devserver_operator.integrations.prometheus import (
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnreachableError,
    PromQLError,
)
from tests.support.hostile_http import unused_port
from tests.support.prometheus_server import MetricTarget, PrometheusServer, running_prometheus
from tests.support.receivers import WebhookReceiver

pytestmark = pytest.mark.integration
GAUGE = "devserver_client_test_gauge"


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[PrometheusServer, MetricTarget]]:
    with running_prometheus() as (server, target):
        target.set(GAUGE, {"pool": "a"}, 3)
        target.set(GAUGE, {"pool": "b"}, 12.5)
        server.wait_until(GAUGE, lambda result: len(result) == 2, what="both series scraped")
        yield server, target


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


async def test_a_vector_comes_back_as_labelled_samples(
    prometheus: tuple[PrometheusServer, MetricTarget], http: Any
) -> None:
    server, _ = prometheus
    result = await PrometheusClient(server.url + "/", http=http).query(f"{GAUGE} > 5")
    assert result.result_type == "vector"
    [sample] = result.samples
    assert sample.value == 12.5
    assert sample.labels == {
        "__name__": GAUGE,
        "pool": "b",
        "instance": prometheus[1].address,
        "job": "devserver-tests",
    }


async def test_an_empty_vector_is_no_samples(
    prometheus: tuple[PrometheusServer, MetricTarget], http: Any
) -> None:
    result = await PrometheusClient(prometheus[0].url, http=http).query(f"{GAUGE} > 100")
    assert result.samples == []


async def test_a_scalar_is_one_sample_without_labels(
    prometheus: tuple[PrometheusServer, MetricTarget], http: Any
) -> None:
    result = await PrometheusClient(prometheus[0].url, http=http).query("1 + 1")
    assert result.result_type == "scalar"
    assert [(dict(s.labels), s.value) for s in result.samples] == [({}, 2.0)]


async def test_invalid_promql_carries_prometheus_parse_error(
    prometheus: tuple[PrometheusServer, MetricTarget], http: Any
) -> None:
    server, _ = prometheus
    expr = f"rate({GAUGE}[5m"
    raw = (await http.post(f"{server.url}/api/v1/query", data={"query": expr})).json()
    with pytest.raises(PromQLError) as caught:
        await PrometheusClient(server.url, http=http).query(expr)
    assert caught.value.prometheus_error == raw["error"]
    assert "parse error" in caught.value.prometheus_error
    assert str(caught.value) == f"Prometheus refused the expression: {raw['error']}"


async def test_a_string_result_is_refused_as_a_condition(
    prometheus: tuple[PrometheusServer, MetricTarget], http: Any
) -> None:
    with pytest.raises(PrometheusQueryError) as caught:
        await PrometheusClient(prometheus[0].url, http=http).query('"text"')
    assert caught.value.error_type == "bad_result"


async def test_nothing_listening_is_unreachable(http: Any) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(PrometheusUnreachableError) as caught:
        await PrometheusClient(url, http=http).query("up")
    assert str(caught.value).startswith(f"Prometheus at {url} is unreachable: ConnectError")


async def test_a_server_that_is_not_prometheus_is_unreachable(http: Any) -> None:
    other = WebhookReceiver().start()
    try:
        with pytest.raises(PrometheusUnreachableError) as caught:
            await PrometheusClient(other.url(""), http=http).query("up")
    finally:
        other.stop()
    assert "did not answer like a Prometheus API (HTTP 200" in str(caught.value)
