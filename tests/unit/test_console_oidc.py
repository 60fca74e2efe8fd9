"""The ID token checks of the OIDC login, against an issuer whose keys the test holds.

A small issuer on loopback serves a discovery document and a JWKS (a real HTTP server, the
console's real client); the test signs tokens with that issuer's key, with a key of its own
(forged), or with none, and changes one claim at a time. Every token but the good one must
be refused with a message that names the failed check and never the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from devserver_operator.console.links import SidebarLink, is_https_or_loopback
from devserver_operator.console.oidc import (
    OidcConfig,
    OidcError,
    OidcProvider,
    PendingLogins,
    user_from_claims,
)
from devserver_operator.console.settings import ConsoleSettings

KID = "key-1"
CLIENT = "devserver-console"
NONCE = "the-nonce-of-this-login"


class Issuer:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.discovery: dict[str, Any] = {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/auth",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256", "plain"],
        }
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks: dict[str, Any] = {"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}
        self.key_fetches = 0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = issuer.discovery
                elif self.path == "/keys":
                    issuer.key_fetches += 1
                    body = issuer.jwks
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT,
            "sub": "user-1",
            "email": "alice@example.com",
            "email_verified": True,
            "groups": ["devs"],
            "iat": now,
            "exp": now + 300,
            "nonce": NONCE,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], *, key: Any = None, kid: str | None = KID) -> str:
        headers = {"kid": kid} if kid else {}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers=headers)


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    running = Issuer()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()
    thread.join(10)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def provider(issuer: Issuer, **config: Any) -> OidcProvider:
    return OidcProvider(OidcConfig(issuer=issuer.url, client_id=CLIENT, **config))


async def test_a_good_token_passes(issuer: Issuer) -> None:
    claims = await provider(issuer).verify_id_token(issuer.sign(issuer.claims()), NONCE)
    assert claims["email"] == "alice@example.com"


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"iat": int(time.time()) + 3600}, "not yet valid"),
        ({"aud": "another-client"}, "Audience doesn't match"),
        ({"aud": [CLIENT, "another-client"]}, "another client"),
        ({"aud": [CLIENT, "another-client"], "azp": "another-client"}, "another client"),
        ({"iss": "https://evil.example.com"}, "issuer"),
        ({"nonce": "a-replayed-login"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"exp": None}, "exp"),
    ],
)
async def test_a_token_with_a_wrong_claim_is_refused(
    issuer: Issuer, changes: dict[str, Any], complaint: str
) -> None:
    token = issuer.sign(issuer.claims(**changes))
    with pytest.raises(OidcError, match=complaint) as refused:
        await provider(issuer).verify_id_token(token, NONCE)
    assert token not in str(refused.value)


async def test_a_forged_signature_is_refused(issuer: Issuer) -> None:
    good = issuer.sign(issuer.claims())
    header, _, signature = good.split(".")
    # The same signature over other claims (someone else's email).
    other = issuer.sign(issuer.claims(email="mallory@example.com")).split(".")[1]
    with pytest.raises(OidcError, match="Signature verification failed"):
        await provider(issuer).verify_id_token(f"{header}.{other}.{signature}", NONCE)
    # A key of the forger's own, under the issuer's key id.
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(OidcError, match="Signature verification failed"):
        await provider(issuer).verify_id_token(issuer.sign(issuer.claims(), key=forger), NONCE)


async def test_unsigned_and_hmac_tokens_are_refused(issuer: Issuer) -> None:
    unsigned = jwt.encode(issuer.claims(), None, algorithm="none", headers={"kid": KID})
    with pytest.raises(OidcError, match="algorithm 'none'"):
        await provider(issuer).verify_id_token(unsigned, NONCE)
    # HS256 keyed with the issuer's public key: the classic algorithm confusion.
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT refuses to make one; built by hand as a forger would.
    signing_input = ".".join(
        _b64(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT", "kid": KID}, issuer.claims())
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    hmac_token = f"{signing_input}.{_b64(mac)}"
    with pytest.raises(OidcError, match="algorithm 'HS256'"):
        await provider(issuer).verify_id_token(hmac_token, NONCE)
    with pytest.raises(OidcError, match="not a JWT"):
        await provider(issuer).verify_id_token("not-a-token", NONCE)


async def test_an_unknown_key_id_fetches_the_keys_again_but_not_in_a_loop(issuer: Issuer) -> None:
    oidc = provider(issuer)
    await oidc.verify_id_token(issuer.sign(issuer.claims()), NONCE)
    assert issuer.key_fetches == 1
    for _ in range(3):
        with pytest.raises(OidcError, match="unknown kid"):
            await oidc.verify_id_token(issuer.sign(issuer.claims(), kid="rotated"), NONCE)
    # Keys fetched a moment ago are not fetched again for every unknown kid.
    assert issuer.key_fetches == 1


async def test_rotated_keys_are_picked_up(issuer: Issuer) -> None:
    oidc = OidcProvider(OidcConfig(issuer=issuer.url, client_id=CLIENT), jwks_refresh_seconds=0)
    await oidc.verify_id_token(issuer.sign(issuer.claims()), NONCE)
    issuer.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
    issuer.jwks["keys"].append({**public, "kid": "key-2", "use": "sig"})
    token = issuer.sign(issuer.claims(), kid="key-2")
    assert (await oidc.verify_id_token(token, NONCE))["sub"] == "user-1"
    # One fetch per unknown kid: a token naming a key nobody has costs one fetch, not a loop.
    fetches = issuer.key_fetches
    with pytest.raises(OidcError, match="unknown kid"):
        await oidc.verify_id_token(issuer.sign(issuer.claims(), kid="nobody"), NONCE)
    assert issuer.key_fetches == fetches + 1


async def test_a_discovery_document_of_another_issuer_is_refused(issuer: Issuer) -> None:
    issuer.discovery["issuer"] = "https://elsewhere.example.com"
    with pytest.raises(OidcError, match="names issuer"):
        await provider(issuer).verify_id_token(issuer.sign(issuer.claims()), NONCE)


async def test_an_issuer_without_s256_is_refused(issuer: Issuer) -> None:
    issuer.discovery["code_challenge_methods_supported"] = ["plain"]
    pending = PendingLogins().start()
    with pytest.raises(OidcError, match="S256"):
        await provider(issuer).authorization_url(pending, "http://127.0.0.1/cb")


def test_the_user_is_named_as_the_api_server_would_name_it() -> None:
    claims = {"sub": "u1", "email": "a@example.com", "email_verified": True, "groups": ["devs"]}
    issuer = "https://idp.example.com"
    # The API server's defaults: claim sub, prefixed with the issuer.
    assert user_from_claims(claims, OidcConfig(issuer, CLIENT)).username == f"{issuer}#u1"
    by_email = OidcConfig(issuer, CLIENT, username_claim="email", groups_claim="groups")
    user = user_from_claims(claims, by_email)
    assert (user.username, user.groups) == ("a@example.com", ("devs",))
    prefixed = OidcConfig(
        issuer, CLIENT, username_prefix="oidc:", groups_claim="groups", groups_prefix="oidc:"
    )
    assert user_from_claims(claims, prefixed).groups == ("oidc:devs",)
    assert (
        user_from_claims(claims, OidcConfig(issuer, CLIENT, username_prefix="-")).username == "u1"
    )


@pytest.mark.parametrize(
    ("claims", "config", "complaint"),
    [
        ({"email": "a@x", "email_verified": False}, {"username_claim": "email"}, "verified"),
        ({"sub": ""}, {}, "no string claim"),
        ({"sub": "system:admin"}, {"username_prefix": "-"}, "reserved"),
        ({"sub": "u", "groups": ["system:masters"]}, {"groups_claim": "groups"}, "reserved"),
        ({"sub": "u", "groups": [1, 2]}, {"groups_claim": "groups"}, "list of strings"),
    ],
)
def test_claims_that_name_no_acceptable_user_are_refused(
    claims: dict[str, Any], config: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(OidcError, match=complaint):
        user_from_claims(claims, OidcConfig("https://idp.example.com", CLIENT, **config))


def test_pending_logins_are_taken_once_and_bounded() -> None:
    pending = PendingLogins(limit=3)
    first = pending.start()
    assert pending.take(first.state) == first
    assert pending.take(first.state) is None
    for _ in range(10):
        pending.start()
    assert len(pending) == 3
    expired = PendingLogins(ttl=0.0).start()
    assert PendingLogins(ttl=0.0).take(expired.state) is None


def test_oidc_settings_must_be_complete_and_https() -> None:
    with pytest.raises(ValueError, match="client_id"):
        ConsoleSettings(oidc_issuer_url="https://idp.example.com")
    with pytest.raises(ValueError, match="https"):
        ConsoleSettings(oidc_issuer_url="http://idp.example.com", oidc_client_id=CLIENT)
    with pytest.raises(ValueError, match="openid"):
        ConsoleSettings(
            oidc_issuer_url="https://idp.example.com", oidc_client_id=CLIENT, oidc_scopes=["email"]
        )
    assert is_https_or_loopback("http://127.0.0.1:5556/dex")
    assert not is_https_or_loopback("http://127.0.0.1.example.com/")


def test_sidebar_links_are_http_urls_only() -> None:
    assert SidebarLink(title="n8n", url="https://n8n.example.com").url
    for bad in ("javascript:alert(1)", "data:text/html,x", "//example.com", "ftp://x"):
        with pytest.raises(ValueError, match="http"):
            SidebarLink(title="x", url=bad)
