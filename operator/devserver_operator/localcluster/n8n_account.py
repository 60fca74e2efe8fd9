"""The first account of a fresh n8n, and an API key for the operator: what a person does once in
n8n's UI, done through the REST routes the UI uses. Shared by the loopback n8n of the tests and
the n8n that runs in a kind cluster (the e2e suite and ``devserver-operator dev``)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Final

import httpx

OWNER_EMAIL: Final = "owner@devserver.test"
# The owner of an n8n that lives on this machine only; n8n wants 8-64 chars, A-Z and a digit.
OWNER_PASSWORD: Final = "Devserver-0wner-Pass"  # noqa: S105
BROWSER_ID: Final = "devserver-operator-tests"


class N8nSetupError(RuntimeError):
    """n8n answered a setup step with an error."""


@dataclass(frozen=True)
class N8nAccess:
    api_key: str
    version: str


def routes_ready(client: httpx.Client) -> bool:
    """Whether the REST routes exist: POST /rest/owner/setup {} answers a 400 JSON then.

    (/healthz/readiness answers earlier, before the routes are registered.)
    """
    with contextlib.suppress(httpx.HTTPError, ValueError):
        answer = client.post("/rest/owner/setup", json={})
        return answer.status_code == 400 and isinstance(answer.json(), dict)
    return False


def wait_for_routes(base_url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if routes_ready(client):
                return
            time.sleep(0.5)
    raise N8nSetupError(f"n8n at {base_url} did not serve its REST routes within {seconds:g} s")


def create_owner_and_api_key(base_url: str) -> N8nAccess:
    """Create the owner account and an API key with every scope; return the key."""
    headers = {"browser-id": BROWSER_ID}
    with httpx.Client(base_url=base_url, timeout=30.0, headers=headers) as client:
        answer = client.post(
            "/rest/owner/setup",
            json={
                "email": OWNER_EMAIL,
                "firstName": "Devserver",
                "lastName": "Operator",
                "password": OWNER_PASSWORD,
            },
        )
        _require(answer, "owner setup")
        answer = client.get("/rest/api-keys/scopes")
        _require(answer, "listing API key scopes")
        scopes = answer.json()["data"]
        answer = client.post(
            "/rest/api-keys",
            json={"label": "devserver-operator", "scopes": scopes, "expiresAt": None},
        )
        _require(answer, "creating the API key")
        api_key = str(answer.json()["data"]["rawApiKey"])
        answer = client.get("/rest/settings")
        version = ""
        if answer.status_code == 200:
            version = str(answer.json().get("data", {}).get("versionCli", ""))
        return N8nAccess(api_key=api_key, version=version)


def _require(answer: httpx.Response, step: str) -> None:
    if answer.status_code != 200:
        raise N8nSetupError(f"{step} failed: HTTP {answer.status_code} {answer.text[:300]}")
