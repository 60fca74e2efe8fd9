"""Instant queries against a Prometheus HTTP API (``/api/v1/query``), on httpx.

Errors are sorted by what the caller should do about them, and keep Prometheus's own words:

- :class:`PromQLError`: Prometheus refused the expression (``bad_data``, HTTP 400); its parse
  error is in ``prometheus_error``. Retrying will not help: the spec must change.
- :class:`PrometheusQueryError`: the query was valid but failed (``execution``, ``timeout``,
  ``canceled``, ...), e.g. too many samples. It may succeed later.
- :class:`PrometheusUnreachableError`: no answer, or no Prometheus API answer, at that URL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

QUERY_PATH = "/api/v1/query"
# How Prometheus prefixes its refusal of the expression itself (not of another parameter).
QUERY_PARAMETER_ERROR = 'invalid parameter "query"'
MAX_ERROR_TEXT = 512


class PrometheusError(Exception):
    """Base of the errors below; ``str()`` is a sentence for a status condition."""


class PromQLError(PrometheusError):
    def __init__(self, expr: str, prometheus_error: str) -> None:
        super().__init__(f"Prometheus refused the expression: {prometheus_error}")
        self.expr = expr
        self.prometheus_error = prometheus_error


class PrometheusQueryError(PrometheusError):
    def __init__(self, error_type: str, prometheus_error: str) -> None:
        super().__init__(f"the query failed ({error_type}): {prometheus_error}")
        self.error_type = error_type
        self.prometheus_error = prometheus_error


class PrometheusUnreachableError(PrometheusError):
    pass


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector (or the one value of a scalar)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class QueryResult:
    result_type: str
    samples: list[Sample]
    warnings: list[str] = field(default_factory=list)


class PrometheusClient:
    """Queries one Prometheus; ``http`` is shared (connection pooling across AlertRules)."""

    def __init__(self, base_url: str, *, http: httpx.AsyncClient, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._timeout = timeout

    async def query(self, expr: str) -> QueryResult:
        """Evaluate ``expr`` at the server's current time.

        POST with a form body: expressions can be longer than a URL may be. Prometheus is
        asked to give up slightly before our own timeout, so that it answers with a
        ``timeout`` error rather than leaving us with a dropped connection."""
        # Prometheus durations have no fractions: milliseconds it is.
        form = {"query": expr, "timeout": f"{int(max(self._timeout - 0.5, 0.5) * 1000)}ms"}
        try:
            response = await self._http.post(
                self.base_url + QUERY_PATH, data=form, timeout=self._timeout
            )
        except httpx.TimeoutException as error:
            raise PrometheusUnreachableError(
                f"Prometheus at {self.base_url} did not answer within {self._timeout:g}s"
            ) from error
        except httpx.TransportError as error:
            raise PrometheusUnreachableError(
                f"Prometheus at {self.base_url} is unreachable: {_describe(error)}"
            ) from error
        body = _json_body(response)
        if body is None or body.get("status") not in ("success", "error"):
            raise PrometheusUnreachableError(
                f"{self.base_url} did not answer like a Prometheus API "
                f"(HTTP {response.status_code}, {response.headers.get('content-type', 'no type')})"
            )
        if body["status"] == "error":
            error_type = str(body.get("errorType") or "unknown")
            text = str(body.get("error") or "")[:MAX_ERROR_TEXT]
            if error_type == "bad_data" and text.startswith(QUERY_PARAMETER_ERROR):
                raise PromQLError(expr, text)
            raise PrometheusQueryError(error_type, text)
        return _parse_data(body.get("data"), [str(w) for w in body.get("warnings") or []])


def _json_body(response: httpx.Response) -> dict[str, Any] | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _parse_data(data: Any, warnings: list[str]) -> QueryResult:
    if not isinstance(data, dict):
        raise PrometheusUnreachableError("Prometheus answered success without data")
    result_type = str(data.get("resultType"))
    result = data.get("result")
    if result_type == "vector" and isinstance(result, list):
        samples = [
            Sample(dict(item.get("metric") or {}), _number(item.get("value")))
            for item in result
            if isinstance(item, dict)
        ]
        return QueryResult(result_type, samples, warnings)
    if result_type == "scalar" and isinstance(result, list):
        # A scalar is one value without labels; like Prometheus's rule evaluation, treat it
        # as one series, so `vector(1)`-style conditions and plain numbers both work.
        return QueryResult(result_type, [Sample({}, _number(result))], warnings)
    raise PrometheusQueryError(
        "bad_result",
        f"an alert condition must return an instant vector, not a {result_type}",
    )


def _number(pair: Any) -> float:
    # [<unix time>, "<value>"]; values are strings so that NaN and ±Inf survive JSON.
    if isinstance(pair, list) and len(pair) == 2:
        try:
            return float(pair[1])
        except (TypeError, ValueError):
            pass
    return math.nan


def _describe(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
