"""A tiny fault-injecting HTTP/1.1 reverse proxy on loopback, for retry and outage tests.

It forwards every request to one upstream (``http://127.0.0.1:PORT``) unless told otherwise:

- ``fail_next(k, status, headers=..., body=...)``: answer the next ``k`` matching requests
  itself with that status (e.g. 429 + ``Retry-After: 1``, or 503), without forwarding them;
- ``drop_next(k)``: read the next ``k`` matching requests and close the connection unanswered;
- ``rewrite(pattern, replacement)``: rewrite request paths (regex) before forwarding,
  e.g. to make an API look like another version of itself;
- ``cut_streams()``: close every open streamed response (a Kubernetes watch) mid-stream;
- ``stall_streams()``: open streamed responses stop passing data but stay open, the way a
  connection dies silently behind a NAT or a crashed load balancer; only the client's own
  timeouts can notice.

Watch requests (``?watch=true``) are streamed through chunk by chunk without a read timeout;
everything else is buffered. With ``verify`` (an ``ssl.SSLContext`` carrying a client
certificate) the upstream may be HTTPS, e.g. a kube-apiserver: clients then talk plain HTTP
to the proxy and the proxy authenticates upstream as that certificate's identity.

Faults can be limited to a method and a path regex. Every request is recorded in
``requests`` (method, path, outcome), so a test can count what the client really sent.
The proxy runs its own event loop in a daemon thread, so sync and async tests can use it;
all its waits are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import httpx

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_MAX_HEAD = 64 * 1024
_MAX_BODY = 32 * 1024 * 1024
_IO_TIMEOUT = 30.0
_STALL_LIMIT = 900.0  # a stalled stream is held at most this long, then closed
_WATCH_QUERY = re.compile(r"(^|&)watch=(true|1)(&|$)")


@dataclass
class _Fault:
    remaining: int
    kind: Literal["status", "drop"]
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    method: str | None = None
    path: re.Pattern[str] | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass(frozen=True)
class Record:
    method: str
    path: str  # as received (before any rewrite), without query string
    outcome: str  # "forwarded <status>", "injected <status>", "dropped", "upstream error",
    # "streamed <status>" (a watch)
    at: float = 0.0  # time.monotonic() when the request arrived, to measure backoff


@dataclass(eq=False)  # identity: kept in a set while open
class _Stream:
    writer: asyncio.StreamWriter
    response: httpx.Response
    stalled: bool = False


class FaultProxy:
    """Reverse proxy from ``url`` (127.0.0.1, a free port) to ``upstream``."""

    def __init__(self, upstream: str, *, verify: ssl.SSLContext | bool = True) -> None:
        self.upstream = upstream.rstrip("/")
        self._verify = verify
        self._streams: set[_Stream] = set()
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._rewrites: list[tuple[re.Pattern[str], str]] = []
        self._records: list[Record] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.port = 0

    # ------------------------------------------------------------------ control

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b'{"message":"injected by fault proxy"}',
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (not forwarded)."""
        raw = body.encode() if isinstance(body, str) else body
        fault = _Fault(count, "status", status, dict(headers or {}), raw, method, _re(path))
        with self._lock:
            self._faults.append(fault)

    def drop_next(self, count: int, *, method: str | None = None, path: str | None = None) -> None:
        """Close the connection, unanswered, on the next ``count`` matching requests."""
        with self._lock:
            self._faults.append(_Fault(count, "drop", method=method, path=_re(path)))

    def rewrite(self, pattern: str, replacement: str) -> None:
        """Rewrite matching request paths (``re.sub``) before forwarding them."""
        with self._lock:
            self._rewrites.append((re.compile(pattern), replacement))

    def cut_streams(self) -> int:
        """Close every open streamed response at once; returns how many there were."""
        return self._on_streams(stall=False)

    def stall_streams(self) -> int:
        """Let every open streamed response go silent without closing it; returns how many."""
        return self._on_streams(stall=True)

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._streams)

    def _on_streams(self, *, stall: bool) -> int:
        loop = self._loop
        if loop is None:
            return 0
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.stalled = stall
            if not stall:
                loop.call_soon_threadsafe(stream.writer.transport.abort)
            # Ending the upstream read ends the forwarding loop; a stalled stream then waits,
            # silent, for the client to give up.
            asyncio.run_coroutine_threadsafe(stream.response.aclose(), loop)
        return len(streams)

    def reset(self) -> None:
        """Forget faults, rewrites and records."""
        with self._lock:
            self._faults.clear()
            self._rewrites.clear()
            self._records.clear()

    @property
    def requests(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def count(self, *, method: str | None = None, path: str | None = None) -> int:
        """How many requests (matching method and path regex) arrived so far."""
        pattern = _re(path)
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method)
            and (pattern is None or pattern.search(r.path))
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start within 10s")
        return self

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        timeout = httpx.Timeout(_IO_TIMEOUT, connect=5.0)
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, verify=self._verify
        ) as upstream:
            self._upstream_client = upstream
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await self._stop.wait()
                server.close()
                with self._lock:
                    streams = list(self._streams)
                for stream in streams:  # end open watches, so their handlers return
                    stream.writer.transport.abort()
                    await stream.response.aclose()
                for _ in range(50):  # bounded: 5 s for the handlers to finish
                    if not self._streams:
                        break
                    await asyncio.sleep(0.1)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.wait_closed(), 5)

    # ------------------------------------------------------------------ serving

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self._records.append(Record(method, path, outcome, time.monotonic()))

    def _rewritten(self, target: str) -> str:
        with self._lock:
            rewrites = list(self._rewrites)
        path, sep, query = target.partition("?")
        for pattern, replacement in rewrites:
            path = pattern.sub(replacement, path)
        return path + sep + query

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(10_000):  # keep-alive requests on one connection, bounded
                request = await _read_request(reader)
                if request is None:
                    return
                method, target, headers, body = request
                path = target.partition("?")[0]
                fault = self._take_fault(method, path)
                if fault is not None and fault.kind == "drop":
                    self._record(method, path, "dropped")
                    return
                if fault is not None:
                    self._record(method, path, f"injected {fault.status}")
                    out_headers = {"content-type": "application/json", **fault.headers}
                    await _write_response(writer, fault.status, out_headers.items(), fault.body)
                else:
                    await self._forward(
                        reader,
                        writer,
                        method=method,
                        path=path,
                        target=target,
                        headers=headers,
                        body=body,
                    )
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        method: str,
        path: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        # Each request is recorded BEFORE its answer is written, so a client that has its
        # answer also sees it counted.
        fwd_headers = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
        url = self.upstream + self._rewritten(target)
        watch = bool(_WATCH_QUERY.search(target.partition("?")[2]))
        try:
            request = self._upstream_client.build_request(
                method,
                url,
                headers=fwd_headers,
                content=body,
                # A watch is quiet for minutes at a time; only the client decides it is dead.
                timeout=httpx.Timeout(_IO_TIMEOUT, read=None) if watch else None,
            )
            response = await self._upstream_client.send(request, stream=True)
            if watch and response.status_code == 200:
                await self._stream(reader, writer, method, path, response)
                return
            try:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
        except httpx.HTTPError:
            self._record(method, path, "upstream error")
            await _write_response(writer, 502, [("content-type", "application/json")], b"{}")
            return
        out_headers = [(k, v) for k, v in response.headers.multi_items() if k not in _HOP_BY_HOP]
        self._record(method, path, f"forwarded {response.status_code}")
        await _write_response(writer, response.status_code, out_headers, raw)

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        response: httpx.Response,
    ) -> None:
        """Pass a watch through chunk by chunk, until it ends, is cut or stalls."""
        self._record(method, path, f"streamed {response.status_code}")
        stream = _Stream(writer, response)
        with self._lock:
            self._streams.add(stream)
        try:
            head = [
                (k, v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_BY_HOP
            ]
            await _write_head(
                writer, response.status_code, [*head, ("transfer-encoding", "chunked")]
            )
            # Cut, stalled or stopped: the upstream response is closed under our feet, which
            # httpx reports in more ways than HTTPError (StreamClosed is a RuntimeError).
            with contextlib.suppress(httpx.HTTPError, RuntimeError, OSError):
                async for chunk in response.aiter_raw():
                    if stream.stalled:
                        break
                    if chunk:
                        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await asyncio.wait_for(writer.drain(), _IO_TIMEOUT)
            if stream.stalled:
                # Silent from here on: no data, no close. The client's timeouts must notice.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_until_closed(reader), _STALL_LIMIT)
                raise ConnectionResetError("stalled stream ended")
            if writer.transport.is_closing():
                raise ConnectionResetError("stream cut")
            writer.write(b"0\r\n\r\n")
            await asyncio.wait_for(writer.drain(), _IO_TIMEOUT)
        finally:
            with self._lock:
                self._streams.discard(stream)
            await response.aclose()


async def _until_closed(reader: asyncio.StreamReader) -> None:
    for _ in range(1_000_000):
        if not await reader.read(65536):
            return


def _re(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern is not None else None


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IO_TIMEOUT)
    except asyncio.IncompleteReadError:
        return None  # client closed between requests
    except asyncio.LimitOverrunError as exc:
        raise ValueError("request head too large") from exc
    if len(head) > _MAX_HEAD:
        raise ValueError("request head too large")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length > _MAX_BODY:
            raise ValueError("request body too large")
        body = await asyncio.wait_for(reader.readexactly(length), _IO_TIMEOUT)
    return method, target, headers, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    for _ in range(1_000_000):
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), _IO_TIMEOUT)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            # Trailers (if any) end with an empty line.
            for _ in range(100):
                if await asyncio.wait_for(reader.readuntil(b"\r\n"), _IO_TIMEOUT) == b"\r\n":
                    break
            return b"".join(parts)
        total += size
        if total > _MAX_BODY:
            raise ValueError("request body too large")
        parts.append(await asyncio.wait_for(reader.readexactly(size + 2), _IO_TIMEOUT))
        parts[-1] = parts[-1][:-2]
    raise ValueError("too many chunks")


async def _write_head(
    writer: asyncio.StreamWriter, status: int, headers: Iterable[tuple[str, str]]
) -> None:
    lines = [f"HTTP/1.1 {status} {_reason(status)}", *(f"{k}: {v}" for k, v in headers)]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await asyncio.wait_for(writer.drain(), _IO_TIMEOUT)


async def _write_response(
    writer: asyncio.StreamWriter, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> None:
    reason = _reason(status)
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in _without_length(headers)]
    lines.append(f"content-length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await asyncio.wait_for(writer.drain(), _IO_TIMEOUT)


def _without_length(headers: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for key, value in headers:
        if key.lower() not in ("content-length", "transfer-encoding", "connection"):
            yield key, value


def _reason(status: int) -> str:
    try:
        return httpx.codes(status).name.replace("_", " ").title()
    except ValueError:
        return "Unknown"
