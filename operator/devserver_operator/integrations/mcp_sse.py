"""An incremental parser for Server-Sent Events (the ``text/event-stream`` format).

It follows the WHATWG HTML "event stream interpretation" rules, which MCP's HTTP transports
rely on:

- lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at the start of the
  next are one line ending); a UTF-8 byte order mark at the start of the stream is dropped;
- a line starting with ``:`` is a comment (servers send them as keep-alives);
- ``field: value`` with one optional space after the colon; a line without a colon is a field
  with an empty value; unknown fields are ignored;
- ``data`` lines are joined with ``\\n``; ``id`` sets the last event id (unless it contains
  NUL) and persists across events; ``retry`` takes only ASCII digits;
- an empty line dispatches the event; an event whose data is empty is not dispatched, but its
  ``id`` still counts (MCP servers send such "priming" events so clients can resume).

The parser bounds memory: a single line or event larger than ``max_event_bytes`` raises
:class:`SseEventTooLargeError`. Bytes are decoded as UTF-8 with replacement characters, across
chunk boundaries.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "SseEvent",
    "SseEventTooLargeError",
    "SseParser",
    "iter_sse_events",
]

DEFAULT_MAX_EVENT_BYTES = 32 * 1024 * 1024
"""A tools/list answer of 10,000 tools is a few MB; this bounds a hostile endless event."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event. ``event`` is ``"message"`` when the stream named no type."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    """The last event id in effect when this event was dispatched."""
    retry: int | None = None
    """The reconnection time in milliseconds, if the stream has set one so far."""


class SseEventTooLargeError(ValueError):
    """A line or an event exceeds the parser's size bound."""


class SseParser:
    """Feed it text or bytes as they arrive; it returns the events completed so far."""

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []
        self._partial_size = 0
        self._pending_cr = False
        self._first = True
        self._event_type = ""
        self._data: list[str] = []
        self._data_size = 0
        self._id_buffer: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The id to send as ``Last-Event-ID`` when resuming, if the server gave one."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The server's reconnection time in milliseconds, if it sent one."""
        return self._retry

    def feed(self, chunk: bytes | str) -> list[SseEvent]:
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        return self._feed_text(text)

    def close(self) -> list[SseEvent]:
        """End of stream: flush the decoder. An event not ended by a blank line is discarded."""
        events = self._feed_text(self._decoder.decode(b"", final=True))
        self._partial = []
        self._partial_size = 0
        self._pending_cr = False
        self._reset_event()
        return events

    def _feed_text(self, text: str) -> list[SseEvent]:
        if not text:
            return []
        if self._first:
            self._first = False
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._pending_cr:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        events: list[SseEvent] = []
        start = 0
        length = len(text)
        while start < length:
            cr = text.find("\r", start)
            lf = text.find("\n", start)
            if cr == -1 and lf == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                end, next_start = lf, lf + 1
            elif cr + 1 < length:
                end = cr
                next_start = cr + 2 if text[cr + 1] == "\n" else cr + 1
            else:
                # A CR at the very end: the line is complete, an LF may follow in the next chunk.
                end, next_start = cr, cr + 1
                self._pending_cr = True
            line = text[start:end]
            if self._partial:
                line = "".join([*self._partial, line])
                self._partial = []
                self._partial_size = 0
            event = self._process_line(line)
            if event is not None:
                events.append(event)
            start = next_start
        if start < length:
            # An unfinished line: keep the pieces, join them once the line ends (linear time).
            self._partial.append(text[start:])
            self._partial_size += length - start
            if self._partial_size > self._max:
                raise SseEventTooLargeError(
                    f"an event-stream line is longer than {self._max} characters"
                )
        return events

    def _process_line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self._max:
                raise SseEventTooLargeError(f"an event is larger than {self._max} characters")
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        self._last_id = self._id_buffer
        if not self._data:
            self._event_type = ""
            return None
        event = SseEvent(
            event=self._event_type or "message",
            data="\n".join(self._data),
            id=self._last_id,
            retry=self._retry,
        )
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._event_type = ""
        self._data = []
        self._data_size = 0


async def iter_sse_events(
    chunks: AsyncIterable[bytes], parser: SseParser | None = None
) -> AsyncGenerator[SseEvent, None]:
    """Parse an async byte stream (e.g. ``httpx.Response.aiter_bytes()``) into events.

    Pass your own ``parser`` to read ``last_event_id``/``retry`` after the stream ends.
    """
    parser = parser if parser is not None else SseParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event
