"""The console's pure pieces: identities, sessions, limits, and the derived views."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devserver_operator.console.identity import TokenCache, User, user_from_review
from devserver_operator.console.objects import grant_view, health, mcp_server_view, slim, summary
from devserver_operator.console.ratelimit import RateLimiter, retry_after_header
from devserver_operator.console.sessions import SessionStore

ALICE = User("alice", uid="u-1", groups=("team-a", "system:authenticated"))


def test_impersonation_headers_carry_user_uid_groups_and_escaped_extras() -> None:
    user = User(
        "system:serviceaccount:a:b",
        uid="42",
        groups=("system:serviceaccounts",),
        extra=(("authentication.kubernetes.io/credential-id", ("JTI=1",)),),
    )
    assert user.impersonation_headers() == [
        ("Impersonate-User", "system:serviceaccount:a:b"),
        ("Impersonate-Uid", "42"),
        ("Impersonate-Group", "system:serviceaccounts"),
        ("Impersonate-Extra-authentication.kubernetes.io%2Fcredential-id", "JTI=1"),
    ]


def test_the_local_admin_is_not_impersonated() -> None:
    assert User("local-admin", impersonated=False).impersonation_headers() == []


@pytest.mark.parametrize(
    "status",
    [{"authenticated": False}, {"authenticated": True, "user": {}}, {}],
)
def test_an_unauthenticated_review_gives_no_user(status: dict[str, object]) -> None:
    assert user_from_review(status) is None


def test_a_review_gives_the_user_with_sorted_extras() -> None:
    user = user_from_review(
        {
            "authenticated": True,
            "user": {
                "username": "bob",
                "uid": "9",
                "groups": ["g"],
                "extra": {"b": ["2"], "a": ["1"]},
            },
        }
    )
    assert user == User("bob", uid="9", groups=("g",), extra=(("a", ("1",)), ("b", ("2",))))


def test_the_token_cache_keeps_hashes_not_tokens() -> None:
    cache = TokenCache(ttl=60)
    cache.put("secret-token", ALICE)
    assert cache.get("secret-token") == (True, ALICE)
    assert cache.get("other") == (False, None)
    assert "secret-token" not in repr(cache)


def test_a_session_cookie_is_signed_and_a_forged_one_is_refused() -> None:
    store = SessionStore(ttl=60)
    session, cookie = store.create(ALICE, "token")
    assert store.lookup(cookie) is session
    session_id, _, _ = cookie.rpartition(".")
    assert store.lookup(f"{session_id}.forged") is None
    assert store.lookup(session_id) is None
    assert store.lookup(None) is None
    store.drop(session)
    assert store.lookup(cookie) is None


def test_an_expired_session_is_gone() -> None:
    store = SessionStore(ttl=1e-9)
    _, cookie = store.create(ALICE, None)
    assert store.lookup(cookie) is None and len(store) == 0


def test_the_session_store_stays_bounded() -> None:
    store = SessionStore(ttl=60, limit=3)
    cookies = [store.create(ALICE, None)[1] for _ in range(5)]
    assert len(store) == 3
    assert store.lookup(cookies[0]) is None and store.lookup(cookies[-1]) is not None


def test_the_rate_limit_allows_a_burst_then_asks_to_wait_per_user() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert [limiter.acquire("a") for _ in range(2)] == [0.0, 0.0]
    wait = limiter.acquire("a")
    assert 0 < wait <= 1.0
    assert limiter.acquire("b") == 0.0
    assert retry_after_header(wait) == "1"
    assert retry_after_header(0.0001) == "1"


def _with(conditions: list[dict[str, str]], **extra: object) -> dict[str, object]:
    return {
        "metadata": {"name": "x", "namespace": "n", "managedFields": [{}]},
        "status": {"conditions": conditions, **extra},
    }


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([{"type": "Ready", "status": "True"}], "Ready"),
        ([{"type": "Ready", "status": "False"}], "NotReady"),
        ([{"type": "Ready", "status": "False"}, {"type": "Stalled", "status": "True"}], "Stalled"),
        (
            [{"type": "Ready", "status": "Unknown"}, {"type": "Reconciling", "status": "True"}],
            "Reconciling",
        ),
        ([], "Unknown"),
    ],
)
def test_health_reads_the_kstatus_conditions(
    conditions: list[dict[str, str]], expected: str
) -> None:
    assert health(_with(conditions)) == expected


def test_slim_drops_managed_fields_without_touching_the_original() -> None:
    item = _with([])
    assert "managedFields" not in slim(item)["metadata"]
    assert "managedFields" in item["metadata"]  # type: ignore[operator]


def test_the_server_view_has_tools_and_the_negotiated_protocol() -> None:
    item = _with(
        [{"type": "Ready", "status": "True"}],
        serverInfo={"name": "s", "version": "1", "protocolVersion": "2026-07-28"},
        tools=[{"name": "echo"}],
        toolCount=1,
    )
    view = mcp_server_view({**item, "spec": {"url": "http://x/mcp"}})
    assert view["protocolVersion"] == "2026-07-28" and view["tools"] == [{"name": "echo"}]
    assert view["mode"] == "remote" and view["health"] == "Ready"
    assert summary("mcpservers", item)["toolCount"] == 1


def test_the_grant_view_counts_down_to_the_expiry() -> None:
    item = {
        "metadata": {"name": "g", "namespace": "n"},
        "spec": {"role": "viewer", "members": [], "expiresAt": "2030-01-01T00:01:00Z"},
    }
    view = grant_view(item, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert view["secondsLeft"] == 60.0
    assert grant_view(item, now=datetime(2031, 1, 1, tzinfo=UTC))["secondsLeft"] == 0.0
