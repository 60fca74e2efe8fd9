"""OIDC login against a real provider (Dex on loopback), then RBAC decides for that user.

Dex runs with one static password user and one static client (tests/support/dex.py). The
test is the browser: it starts the login at the console, follows Dex's redirects, posts
Dex's login form, and brings the code back to the console's callback, with cookies handled
by hand (the console's cookies are Secure, which httpx would not send over http). The user
the console then impersonates is the one the API server's OIDC flags would make of the same
token (username claim email, prefix ``oidc:``, groups claim ``groups``, prefix ``oidc:``), and
TeamAccess grants to that user and that group are what let them see and change anything.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from devserver_operator.api import API_VERSION
from devserver_operator.localcluster.processes import free_loopback_port
from tests.support.console_harness import RunningConsole, apply, console_kubeconfig, start_console
from tests.support.dex import PASSWORD, DexUser, RunningDex, running_dex
from tests.support.operator_harness import RunningOperator

pytestmark = pytest.mark.integration

FLOW_COOKIE = "__Host-devserver_console_oidc"
SESSION_COOKIE = "devserver_console_session"
ALICE = DexUser(email="alice@example.com", username="alice", groups=("devs",))
ALICE_USERNAME = "oidc:alice@example.com"
SETUP_TIMEOUT = 60.0
LINKS = [
    {"title": "n8n", "url": "https://n8n.example.com/"},
    {"title": "GitHub", "url": "https://github.com/ecospherenetwork"},
]
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class Setup:
    console: RunningConsole
    dex: RunningDex
    home: str
    other: str


def _cookie(response: httpx.Response, name: str) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            value = header.split(";")[0].split("=", 1)[1]
            return value or None
    return None


def _wait_for(admin: httpx.Client, path: str) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT
    while admin.get(path).status_code != 200:
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def setup(
    control_plane: Any, operator: RunningOperator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    dex_port = free_loopback_port()
    console = start_console(
        console_kubeconfig(control_plane),
        oidc_issuer_url=f"http://127.0.0.1:{dex_port}/dex",
        oidc_client_id="devserver-console",
        oidc_client_secret="console-client-secret",
        oidc_scopes=["openid", "email", "profile", "groups"],
        oidc_username_claim="email",
        oidc_username_prefix="oidc:",
        oidc_groups_claim="groups",
        oidc_groups_prefix="oidc:",
        links=LINKS,
    )
    home, other = f"o-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    try:
        with (
            running_dex(
                dex_port,
                f"{console.url}/api/v1/oidc/callback",
                [ALICE],
                tmp_path_factory.mktemp("dex"),
                secret="console-client-secret",
            ) as dex,
            control_plane.http_client() as admin,
        ):
            for namespace in (home, other):
                apply(
                    admin,
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                )
                apply(
                    admin,
                    {
                        "apiVersion": API_VERSION,
                        "kind": "MCPServer",
                        "metadata": {"name": "work", "namespace": namespace},
                        "spec": {"image": "example.com/mcp:1", "port": 8080},
                    },
                )
            yield Setup(console, dex, home, other)
            for namespace in (home, other):
                admin.delete(f"/api/v1/namespaces/{namespace}")
    finally:
        console.stop()


class Browser:
    """Just enough of a browser: the console's cookies by hand, Dex's in a jar."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.console = setup.console.client()
        self.idp = httpx.Client(timeout=30.0)
        self.cookies: dict[str, str] = {}

    def close(self) -> None:
        self.console.close()
        self.idp.close()

    def header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def start(self) -> str:
        """Start a login; returns the issuer URL the console sends the browser to."""
        response = self.console.get("/api/v1/oidc/login")
        assert response.status_code == 302, response.text
        flow = _cookie(response, FLOW_COOKIE)
        assert flow is not None
        attributes = {
            part.strip().lower()
            for header in response.headers.get_list("set-cookie")
            if header.startswith(FLOW_COOKIE)
            for part in header.split(";")[1:]
        }
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
        self.cookies[FLOW_COOKIE] = flow
        return response.headers["location"]

    def at_the_issuer(self, location: str, email: str, password: str) -> str:
        """Log in at Dex; returns where Dex sends the browser back to (the callback)."""
        page = self.idp.get(location, follow_redirects=True)
        assert page.status_code == 200 and 'name="password"' in page.text, page.text[:2000]
        action = re.search(r'<form[^>]*action="([^"]*)"', page.text)
        target = urljoin(str(page.url), html.unescape(action.group(1))) if action else str(page.url)
        response = self.idp.post(target, data={"login": email, "password": password})
        for _ in range(MAX_REDIRECTS):
            assert response.status_code in (302, 303), response.text[:2000]
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(self.setup.console.url):
                return location
            response = self.idp.get(location)
        raise AssertionError("Dex never sent the browser back to the console")

    def callback(self, url: str) -> httpx.Response:
        path = url.removeprefix(self.setup.console.url)
        response = self.console.get(path, headers=self.header())
        session = _cookie(response, SESSION_COOKIE)
        if session:
            self.cookies = {SESSION_COOKIE: session}
        return response

    def log_in(self, email: str = ALICE.email) -> dict[str, Any]:
        callback = self.callback(self.at_the_issuer(self.start(), email, PASSWORD))
        assert callback.status_code == 303, callback.text
        assert callback.headers["location"] == "/"
        session = self.console.get("/api/v1/session", headers=self.header())
        assert session.status_code == 200, session.text
        body: dict[str, Any] = session.json()
        return body


@pytest.fixture
def browser(setup: Setup) -> Iterator[Browser]:
    opened = Browser(setup)
    yield opened
    opened.close()


def test_the_login_page_learns_that_oidc_is_on(setup: Setup) -> None:
    with setup.console.client() as http:
        assert http.get("/api/v1/config").json()["login"]["oidc"] == "/api/v1/oidc/login"


def test_the_sidebar_links_are_served_to_logged_in_users_only(browser: Browser) -> None:
    assert browser.console.get("/api/v1/links").status_code == 401
    browser.log_in()
    links = browser.console.get("/api/v1/links", headers=browser.header())
    assert links.status_code == 200 and links.json() == {"items": LINKS}
    assert "Content-Security-Policy" in links.headers


def test_the_issuer_is_sent_a_pkce_s256_code_flow(browser: Browser, setup: Setup) -> None:
    location = browser.start()
    assert location.startswith(f"{setup.dex.issuer}/auth?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert query["state"] == browser.cookies[FLOW_COOKIE]
    assert query["nonce"] and query["nonce"] != query["state"]
    assert query["redirect_uri"] == f"{setup.console.url}/api/v1/oidc/callback"
    assert set(query["scope"].split()) == {"openid", "email", "profile", "groups"}
    assert "secret" not in location


def test_an_oidc_user_logs_in_and_rbac_decides_what_they_see_and_do(
    browser: Browser, setup: Setup, control_plane: Any
) -> None:
    session = browser.log_in()
    assert session["user"] == {"username": ALICE_USERNAME, "groups": ["oidc:devs"]}
    headers = {**browser.header(), "X-CSRF-Token": session["csrfToken"]}
    home = f"/api/v1/namespaces/{setup.home}/mcpservers"
    other = f"/api/v1/namespaces/{setup.other}/mcpservers"
    # Nobody granted Alice anything yet: RBAC refuses her, as it would refuse kubectl.
    assert browser.console.get(home, headers=headers).status_code == 403
    assert browser.console.get(other, headers=headers).status_code == 403
    with control_plane.http_client() as admin:
        grants = [
            (setup.home, "viewer", {"kind": "User", "name": ALICE_USERNAME}),
            (setup.other, "operator", {"kind": "Group", "name": "oidc:devs"}),
        ]
        for namespace, role, member in grants:
            apply(
                admin,
                {
                    "apiVersion": API_VERSION,
                    "kind": "TeamAccess",
                    "metadata": {"name": f"oidc-{role}", "namespace": namespace},
                    "spec": {
                        "role": role,
                        "members": [member],
                        "expiresAt": "2099-01-01T00:00:00Z",
                    },
                },
            )
            _wait_for(
                admin,
                f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/"
                f"devserver-team-oidc-{role}",
            )
    # A viewer grant to her username: she sees her namespace and may not change it.
    listed = browser.console.get(home, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [row["metadata"]["name"] for row in listed.json()["items"]] == ["work"]
    refused = browser.console.post(f"{home}/work/scale", json={"replicas": 2}, headers=headers)
    assert refused.status_code == 403, refused.text
    # An operator grant to her group (from the ID token's groups claim): she scales there.
    scaled = browser.console.post(f"{other}/work/scale", json={"replicas": 2}, headers=headers)
    assert scaled.status_code == 200, scaled.text


def test_a_wrong_password_never_reaches_the_console(browser: Browser) -> None:
    location = browser.start()
    page = browser.idp.get(location, follow_redirects=True)
    action = re.search(r'<form[^>]*action="([^"]*)"', page.text)
    target = urljoin(str(page.url), html.unescape(action.group(1))) if action else str(page.url)
    response = browser.idp.post(target, data={"login": ALICE.email, "password": "wrong"})
    assert response.status_code == 401 or "Invalid" in response.text
    assert "location" not in response.headers


def test_a_callback_whose_state_is_not_this_browsers_is_refused(
    browser: Browser, setup: Setup
) -> None:
    callback = browser.at_the_issuer(browser.start(), ALICE.email, PASSWORD)
    # Another browser (here: another flow cookie) cannot finish this login.
    browser.cookies[FLOW_COOKIE] = "someone-elses-state"
    refused = browser.callback(callback)
    assert refused.status_code == 400 and "state" in refused.text
    assert _cookie(refused, SESSION_COOKIE) is None
    # Without the cookie at all, neither.
    browser.cookies.clear()
    assert browser.callback(callback).status_code == 400


def test_a_code_and_state_are_good_for_one_login_only(browser: Browser) -> None:
    callback = browser.at_the_issuer(browser.start(), ALICE.email, PASSWORD)
    flow = browser.cookies[FLOW_COOKIE]
    assert browser.callback(callback).status_code == 303
    browser.cookies = {FLOW_COOKIE: flow}
    replayed = browser.callback(callback)
    assert replayed.status_code == 400 and "already used" in replayed.text
    assert _cookie(replayed, SESSION_COOKIE) is None


def test_an_issuer_error_ends_the_login_with_its_code(browser: Browser, setup: Setup) -> None:
    browser.start()
    refused = browser.callback(
        f"{setup.console.url}/api/v1/oidc/callback?error=access_denied"
        "&error_description=%3Cscript%3Ealert(1)%3C/script%3E"
    )
    assert refused.status_code == 401
    assert "access_denied" in refused.text and "<script>" not in refused.text


def test_no_token_or_code_reaches_the_log(browser: Browser, setup: Setup) -> None:
    before = len(setup.console.lines)
    callback = browser.at_the_issuer(browser.start(), ALICE.email, PASSWORD)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert browser.callback(callback).status_code == 303
    lines = setup.console.lines[before:]
    assert any(ALICE_USERNAME in line for line in lines)
    # Neither the code nor any JWT (they all start with base64url of '{"') is logged.
    assert not [line for line in lines if code in line or "eyJ" in line]
