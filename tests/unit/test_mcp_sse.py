"""The Server-Sent Events parser used by the MCP probe (WHATWG event-stream rules)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devserver_operator.integrations.mcp_sse import (
    SseEvent,
    SseEventTooLargeError,
    SseParser,
    iter_sse_events,
)


def parse(*chunks: bytes | str) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


def test_a_named_event_with_id() -> None:
    assert parse("event: endpoint\ndata: /messages/?session_id=1\nid: 7\n\n") == [
        SseEvent(event="endpoint", data="/messages/?session_id=1", id="7")
    ]


def test_the_default_event_type_is_message() -> None:
    assert parse('data: {"jsonrpc": "2.0"}\n\n') == [SseEvent(data='{"jsonrpc": "2.0"}')]


def test_data_lines_are_joined_with_newlines() -> None:
    assert parse("data: a\ndata: b\ndata:\ndata: c\n\n") == [SseEvent(data="a\nb\n\nc")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending(newline: str) -> None:
    stream = newline.join(["event: x", "data: 1", "", "data: 2", "", ""])
    assert parse(stream) == [SseEvent(event="x", data="1"), SseEvent(data="2")]


def test_crlf_split_across_chunks_is_one_line_ending() -> None:
    # Were the LF a second line ending, it would dispatch the event early (empty line).
    events = parse("data: a\r", "\ndata: b\r", "\n\r", "\n")
    assert events == [SseEvent(data="a\nb")]


def test_a_lone_cr_at_a_chunk_end_ends_the_line() -> None:
    assert parse("data: a\r", "\r") == [SseEvent(data="a")]


def test_comments_unknown_fields_and_colonless_lines() -> None:
    stream = ": keep-alive\nfoo: bar\ndata\nevent\n\n: another comment\n\n"
    # "data" without a colon is a data line with an empty value; "event" resets to message.
    assert parse(stream) == [SseEvent(data="")]


def test_only_one_space_after_the_colon_is_stripped() -> None:
    assert parse("data:  two spaces\ndata:none\n\n") == [SseEvent(data=" two spaces\nnone")]


def test_an_event_without_data_is_not_dispatched_but_its_id_counts() -> None:
    parser = SseParser()
    assert parser.feed("id: prime-1\nretry: 250\n\n") == []
    assert parser.last_event_id == "prime-1"
    assert parser.retry == 250
    # The id persists into later events until changed.
    assert parser.feed("data: x\n\n") == [SseEvent(data="x", id="prime-1", retry=250)]


def test_priming_event_with_empty_data_is_dispatched_with_empty_data() -> None:
    # WHATWG: "data:" appends an empty line, so the event fires with data "" (MCP ignores it).
    assert parse("id: 1\ndata:\n\n") == [SseEvent(data="", id="1")]


def test_id_with_nul_is_ignored_and_retry_takes_digits_only() -> None:
    parser = SseParser()
    parser.feed("id: good\nretry: 10\n\nid: b\0ad\nretry: 1x\nretry: -5\ndata: d\n\n")
    assert parser.last_event_id == "good"
    assert parser.retry == 10


def test_id_of_an_unfinished_event_does_not_count() -> None:
    parser = SseParser()
    parser.feed("id: 1\ndata: a\n\nid: 2\ndata: b\n")
    assert parser.close() == []
    assert parser.last_event_id == "1"


def test_a_byte_order_mark_is_dropped_only_at_the_start() -> None:
    assert parse("\ufeffdata: a\n\n") == [SseEvent(data="a")]
    assert parse(b"\xef\xbb", b"\xbfdata: a\n\n") == [SseEvent(data="a")]
    assert parse("data: \ufeffa\n\n") == [SseEvent(data="\ufeffa")]


def test_utf8_split_inside_a_character() -> None:
    raw = "data: gr\u00fc\u00dfe \u2603\n\n".encode()
    chunks = [raw[i : i + 1] for i in range(len(raw))]
    assert parse(*chunks) == [SseEvent(data="gr\u00fc\u00dfe \u2603")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse(b"data: \xff\xfe\n\n") == [SseEvent(data="\ufffd\ufffd")]


def test_an_unfinished_event_at_the_end_is_discarded() -> None:
    assert parse("data: complete\n\ndata: cut off") == [SseEvent(data="complete")]


def test_a_line_larger_than_the_bound_is_refused() -> None:
    parser = SseParser(max_event_bytes=1000)
    parser.feed("data: " + "x" * 500)
    with pytest.raises(SseEventTooLargeError):
        parser.feed("x" * 600)


def test_an_event_larger_than_the_bound_is_refused() -> None:
    parser = SseParser(max_event_bytes=1000)
    with pytest.raises(SseEventTooLargeError):
        parser.feed("data: " + "x" * 100 + "\n" * 1 + ("data: " + "y" * 100 + "\n") * 10)


def test_a_big_event_in_small_chunks_is_parsed_in_linear_time() -> None:
    payload = "z" * 2_000_000
    raw = f"data: {payload}\n\n"
    parser = SseParser()
    events: list[SseEvent] = []
    for start in range(0, len(raw), 1024):
        events += parser.feed(raw[start : start + 1024])
    assert [len(event.data) for event in events] == [len(payload)]


_STREAM = (
    "\ufeff: comment\r\nevent: endpoint\r\ndata: /messages/?s=1\r\n\r\n"
    'id: 1\ndata: {"a": 1}\ndata: {"b": "\u00fc"}\n\n'
    "retry: 100\rid: 2\rdata: x\r\r"
    "data:y\nevent: custom\n\n"
    "data: unfinished"
).encode()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(_STREAM)), max_size=20))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted({0, len(_STREAM), *cuts})
    chunks = [_STREAM[a:b] for a, b in itertools.pairwise(points)]
    assert parse(*chunks) == parse(_STREAM)
    assert parse(_STREAM) == [
        SseEvent(event="endpoint", data="/messages/?s=1"),
        SseEvent(data='{"a": 1}\n{"b": "\u00fc"}', id="1"),
        SseEvent(data="x", id="2", retry=100),
        SseEvent(event="custom", data="y", id="2", retry=100),
    ]


async def test_iter_sse_events_over_an_async_byte_stream() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"event: endpoint\nda", b"ta: /m\n", b"\nid: 9\ndata: {}\n\n"):
            yield chunk

    parser = SseParser()
    events = [event async for event in iter_sse_events(chunks(), parser)]
    assert events == [SseEvent(event="endpoint", data="/m"), SseEvent(data="{}", id="9")]
    assert parser.last_event_id == "9"
