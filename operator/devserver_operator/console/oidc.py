"""OIDC login: authorization code with PKCE (S256), and the ID token checked to the letter.

The console is a relying party of one issuer. A login starts with a random ``state``,
``nonce`` and PKCE verifier kept server-side (``PendingLogins``, ten minutes, one use) and
bound to the browser by a cookie holding the state. The callback exchanges the code for
tokens at the issuer's token endpoint (with the verifier, and the client secret when there
is one) and accepts the ID token only if:

- its signature verifies with a key from the issuer's JWKS (asymmetric algorithms only, and
  only those the discovery document announces; never ``none`` or an HMAC);
- ``iss`` is the configured issuer, ``aud`` holds the client id (``azp`` names it when there
  are several audiences), ``exp`` is in the future and ``iat`` is not (60 s of leeway);
- ``nonce`` is the one this login sent.

The user is then built the way the API server's OIDC authenticator builds one from the same
token (username claim and prefix, groups claim and prefix), and the console impersonates
that user like any other, so RBAC and TeamAccess decide. No token is kept, logged or put in
a URL: only the resulting username and groups live in the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt

from .identity import User
from .links import is_https_or_loopback

log = logging.getLogger(__name__)

PENDING_SECONDS = 600.0
"""How long a started login may take at the issuer."""
METADATA_SECONDS = 3600.0
JWKS_REFRESH_SECONDS = 30.0
"""An unknown ``kid`` (the issuer rotated its keys) fetches the JWKS again at most this often."""
LEEWAY_SECONDS = 60
HTTP_TIMEOUT = 10.0
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
RESERVED_PREFIX = "system:"


class OidcError(Exception):
    """A login that cannot complete. The message is safe to show and log: never a token."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    username_claim: str = "sub"
    username_prefix: str | None = None
    groups_claim: str | None = None
    groups_prefix: str = ""
    ca_file: str | None = None

    @property
    def effective_username_prefix(self) -> str:
        """The API server's rule: unset means ``<issuer>#`` unless the claim is ``email``."""
        if self.username_prefix is None:
            return "" if self.username_claim == "email" else f"{self.issuer}#"
        return "" if self.username_prefix == "-" else self.username_prefix


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    verifier: str
    expires: float


class PendingLogins:
    """Started logins by state: bounded, expiring, each taken at most once."""

    def __init__(self, ttl: float = PENDING_SECONDS, limit: int = 10_000) -> None:
        self._ttl = ttl
        self._limit = limit
        self._pending: dict[str, PendingLogin] = {}

    def start(self) -> PendingLogin:
        now = time.monotonic()
        if len(self._pending) >= self._limit:
            self._pending = {k: p for k, p in self._pending.items() if p.expires > now}
            while len(self._pending) >= self._limit:
                # A flood of started logins must not grow memory: the oldest go first.
                del self._pending[next(iter(self._pending))]
        pending = PendingLogin(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),
            expires=now + self._ttl,
        )
        self._pending[pending.state] = pending
        return pending

    def take(self, state: str) -> PendingLogin | None:
        pending = self._pending.pop(state, None)
        if pending is None or pending.expires <= time.monotonic():
            return None
        return pending

    def __len__(self) -> int:
        return len(self._pending)


def code_challenge(verifier: str) -> str:
    """PKCE S256: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _string_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise OidcError(f"the ID token has no string claim {name!r}")
    return value


def user_from_claims(claims: dict[str, Any], config: OidcConfig) -> User:
    """The Kubernetes user these claims name, as the API server's OIDC authenticator would."""
    claim = config.username_claim
    value = _string_claim(claims, claim)
    if claim == "email" and "email_verified" in claims and claims["email_verified"] is not True:
        raise OidcError("the issuer has not verified this email address (email_verified)")
    username = config.effective_username_prefix + value
    if username.startswith(RESERVED_PREFIX):
        raise OidcError(f"the username {username!r} is reserved for Kubernetes itself")
    groups: list[str] = []
    if config.groups_claim and config.groups_claim in claims:
        raw = claims[config.groups_claim]
        values = [raw] if isinstance(raw, str) else raw
        if not isinstance(values, list) or not all(isinstance(g, str) for g in values):
            raise OidcError(f"the claim {config.groups_claim!r} is not a list of strings")
        groups = [config.groups_prefix + g for g in values]
    reserved = [g for g in groups if g.startswith(RESERVED_PREFIX)]
    if reserved:
        # Impersonating system:masters would make an IdP group cluster-admin.
        raise OidcError(f"the groups {reserved} are reserved for Kubernetes itself")
    return User(username=username, groups=tuple(groups))


@dataclass(frozen=True)
class _Key:
    jwk: jwt.PyJWK
    declared: str | None
    """The JWK's own ``alg``, when it names one; the key may then verify only that."""

    def fits(self, algorithm: str) -> bool:
        if self.declared is not None and self.declared != algorithm:
            return False
        families = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("EdDSA",)}
        return algorithm.startswith(families.get(str(self.jwk.key_type), ()))


@dataclass
class _Cache:
    metadata: dict[str, Any] | None = None
    metadata_until: float = 0.0
    keys: dict[str, _Key] = field(default_factory=dict)
    unnamed_keys: list[_Key] = field(default_factory=list)
    keys_fetched: float | None = None


class OidcProvider:
    """The issuer, as seen from the console: discovery, JWKS, code exchange, token checks."""

    def __init__(
        self, config: OidcConfig, *, jwks_refresh_seconds: float = JWKS_REFRESH_SECONDS
    ) -> None:
        self.config = config
        self._jwks_refresh = jwks_refresh_seconds
        self.pending = PendingLogins()
        self._cache = _Cache()

    def _client(self) -> httpx.AsyncClient:
        # Logins are rare: a client per call keeps no connection or file open between them.
        verify: ssl.SSLContext | bool = True
        if self.config.ca_file:
            verify = ssl.create_default_context(cafile=self.config.ca_file)
        return httpx.AsyncClient(verify=verify, timeout=HTTP_TIMEOUT, follow_redirects=False)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._client() as client:
                response = await client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise OidcError(f"the issuer's {what} cannot be read: {type(error).__name__}") from None
        if response.status_code != 200:
            raise OidcError(f"the issuer's {what} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise OidcError(f"the issuer's {what} is not JSON") from None
        if not isinstance(body, dict):
            raise OidcError(f"the issuer's {what} is not a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, checked: same issuer, https endpoints, code flow, S256."""
        now = time.monotonic()
        if self._cache.metadata is not None and now < self._cache.metadata_until:
            return self._cache.metadata
        issuer = self.config.issuer
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery document")
        if document.get("issuer") != issuer:
            raise OidcError(
                f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}"
            )
        for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(endpoint)
            if not isinstance(value, str) or not is_https_or_loopback(value):
                raise OidcError(f"the discovery document's {endpoint} is missing or not https")
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise OidcError("the issuer does not support PKCE with S256")
        self._cache.metadata, self._cache.metadata_until = document, now + METADATA_SECONDS
        return document

    async def authorization_url(self, pending: PendingLogin, redirect_uri: str) -> str:
        metadata = await self.metadata()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.config.scopes),
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": code_challenge(pending.verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = str(metadata["authorization_endpoint"])
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def exchange(self, code: str, pending: PendingLogin, redirect_uri: str) -> User:
        """Trade the code for an ID token, check the token, and name its user."""
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pending.verifier,
        }
        auth: httpx.Auth | None = None
        secret = self.config.client_secret
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if secret and "client_secret_basic" in methods:
            # RFC 6749 2.3.1: both form-encoded before they become the Basic credentials.
            auth = httpx.BasicAuth(quote(self.config.client_id, safe=""), quote(secret, safe=""))
        else:
            form["client_id"] = self.config.client_id
            if secret:
                form["client_secret"] = secret
        try:
            async with self._client() as client:
                response = await client.post(
                    str(metadata["token_endpoint"]),
                    data=form,
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                    headers={"Accept": "application/json"},
                )
        except httpx.HTTPError as error:
            raise OidcError(
                f"the token endpoint cannot be reached: {type(error).__name__}"
            ) from None
        if response.status_code != 200:
            # The error code only (RFC 6749 5.2); the description may echo what was sent.
            error_code = _json_field(response, "error") or f"HTTP {response.status_code}"
            raise OidcError(f"the issuer refused the authorization code: {error_code}")
        id_token = _json_field(response, "id_token")
        if not id_token:
            raise OidcError("the token response has no id_token")
        claims = await self.verify_id_token(id_token, pending.nonce)
        return user_from_claims(claims, self.config)

    async def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcError("the ID token is not a JWT") from None
        algorithm = header.get("alg")
        metadata = await self.metadata()
        announced = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        if algorithm not in ASYMMETRIC_ALGORITHMS or algorithm not in announced:
            raise OidcError(f"the ID token's algorithm {algorithm!r} is not accepted")
        key = await self._signing_key(header.get("kid"), str(algorithm))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.jwk.key,
                algorithms=[str(algorithm)],
                audience=self.config.client_id,
                issuer=self.config.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as error:
            # PyJWT's messages name the failed check (signature, expired, audience), not values.
            raise OidcError(f"the ID token is not valid: {error}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise OidcError("the ID token was issued to another client (azp)")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, nonce):
            raise OidcError("the ID token's nonce is not this login's")
        return claims

    async def _signing_key(self, kid: Any, algorithm: str) -> _Key:
        for attempt in range(2):
            found = self._find_key(kid, algorithm)
            if found is not None:
                return found
            fetched = self._cache.keys_fetched
            if attempt == 0 and (
                fetched is None or time.monotonic() - fetched >= self._jwks_refresh
            ):
                await self._fetch_keys()
        raise OidcError("no key of the issuer's JWKS verifies this ID token (unknown kid)")

    def _find_key(self, kid: Any, algorithm: str) -> _Key | None:
        if isinstance(kid, str):
            found = self._cache.keys.get(kid)
            return found if found is not None and found.fits(algorithm) else None
        every = [*self._cache.keys.values(), *self._cache.unnamed_keys]
        fitting = [k for k in every if k.fits(algorithm)]
        # Without a kid, only a single candidate is unambiguous.
        return fitting[0] if len(fitting) == 1 else None

    async def _fetch_keys(self) -> None:
        metadata = await self.metadata()
        self._cache.keys_fetched = time.monotonic()
        document = await self._get_json(str(metadata["jwks_uri"]), "JWKS")
        keys: dict[str, _Key] = {}
        unnamed: list[_Key] = []
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                declared = entry.get("alg") if isinstance(entry.get("alg"), str) else None
                key = _Key(jwt.PyJWK(entry), declared)
            except jwt.PyJWTError:
                continue  # a key type this console cannot use (the issuer may list several)
            if isinstance(entry.get("kid"), str):
                keys[entry["kid"]] = key
            else:
                unnamed.append(key)
        self._cache.keys, self._cache.unnamed_keys = keys, unnamed


def _json_field(response: httpx.Response, name: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None
