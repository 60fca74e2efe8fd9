"""The audit log the request-counting tests and benchmarks read is still being appended to
by the API server: neither a line it is halfway through nor one cut by an offset may break a
reader, and a reader that follows the log sees each event once."""

from __future__ import annotations

import json
from pathlib import Path

from devserver_operator.localcluster.audit import answered_requests, read_audit_events
from tests.support.audit import AuditCursor


def _event(verb: str, uri: str, user: str = "someone") -> str:
    event = {
        "stage": "ResponseComplete",
        "verb": verb,
        "requestURI": uri,
        "user": {"username": user},
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    return json.dumps(event) + "\n"


def test_a_cursor_placed_inside_a_line_skips_that_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    earlier = _event("patch", "/api/v1/namespaces/a/configmaps/before")
    log.write_text(_event("get", "/api/v1/namespaces") + earlier[:40])
    cursor = AuditCursor.at_end(log)
    with log.open("a") as appending:
        appending.write(earlier[40:] + _event("create", "/api/v1/namespaces/a/configmaps/after"))
    assert cursor.writes("someone") == [("create", "/api/v1/namespaces/a/configmaps/after")]


def test_a_line_still_being_written_counts_once_it_is_complete(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(_event("get", "/api/v1/namespaces"))
    cursor = AuditCursor.at_end(log)
    pending = _event("delete", "/api/v1/namespaces/a/secrets/s")
    with log.open("a") as appending:
        appending.write(pending[:30])
    assert cursor.writes("someone") == []
    with log.open("a") as appending:
        appending.write(pending[30:])
    assert cursor.writes("someone") == [("delete", "/api/v1/namespaces/a/secrets/s")]


def test_a_cursor_at_a_line_boundary_reads_the_next_line(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(_event("get", "/api/v1/namespaces"))
    cursor = AuditCursor.at_end(log)
    with log.open("a") as appending:
        appending.write(_event("update", "/api/v1/namespaces/a/configmaps/c"))
    assert cursor.verbs("someone") == {"update": 1}


def test_a_reader_that_follows_the_log_reads_each_event_once(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    first, second = _event("create", "/a"), _event("patch", "/b")
    log.write_text(first + second[:25])
    events, offset = read_audit_events(log, 0)
    assert [event["requestURI"] for event in events] == ["/a"]
    with log.open("a") as appending:
        appending.write(second[25:])
    events, offset = read_audit_events(log, offset)
    assert [event["requestURI"] for event in events] == ["/b"]
    assert read_audit_events(log, offset) == ([], offset)


def test_a_reader_started_inside_an_unfinished_line_waits_past_it(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    cut = _event("delete", "/before")
    log.write_text(cut[:20])
    events, offset = read_audit_events(log, 10)
    assert events == []
    with log.open("a") as appending:
        appending.write(cut[20:] + _event("update", "/after"))
    events, _ = read_audit_events(log, offset)
    assert [event["requestURI"] for event in events] == ["/after"]


def test_each_answered_request_of_the_user_counts_once(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    watch_started = {**json.loads(_event("watch", "/w")), "stage": "ResponseStarted"}
    log.write_text(
        json.dumps(watch_started)
        + "\n"
        + _event("watch", "/w")
        + _event("get", "/other", user="somebody-else")
    )
    answered = answered_requests(log, 0, "someone")
    assert [(event["verb"], event["stage"]) for event in answered] == [
        ("watch", "ResponseComplete")
    ]
