"""Loopback receivers that record exactly what notifiers send.

- :class:`WebhookReceiver`: one threaded HTTP server on 127.0.0.1 for Slack, Teams and
  generic webhooks alike. Every request is recorded with its raw body bytes and headers;
  the answer per path prefix is configurable (``answer("/slack", 200, b"ok")``), and
  ``down()`` closes the listener so that clients get "connection refused" until it is back
  on the same port.
- :class:`SmtpReceiver`: a real SMTP server (aiosmtpd) on 127.0.0.1, plain, STARTTLS or
  implicit TLS, optionally with AUTH, recording every message it accepts.
- :func:`self_signed_certificate`: a key and certificate for 127.0.0.1/localhost, and a
  client context that trusts it.

All waits are bounded; nothing listens anywhere but loopback.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

WAIT_TIMEOUT = 20.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    status: int
    """What the receiver answered."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class WebhookReceiver:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._answers: dict[str, _Answer] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                answer = receiver._answer_for(self.path)
                recorded = RecordedRequest(
                    self.command,
                    self.path,
                    {key.lower(): value for key, value in self.headers.items()},
                    body,
                    time.monotonic(),
                    answer.status,
                )
                with receiver._lock:
                    receiver.requests.append(recorded)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """No listener on the port while inside: clients get connection refused."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    # behaviour ---------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(
        self,
        path_prefix: str,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._answers[path_prefix] = _Answer(status, body, dict(headers or {}))

    def _answer_for(self, path: str) -> _Answer:
        with self._lock:
            matches = [p for p in self._answers if path.startswith(p)]
            if not matches:
                return _Answer(200, b"ok")
            return self._answers[max(matches, key=len)]

    def received(self, path_prefix: str = "/") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def wait_for(
        self, count: int, path_prefix: str = "/", timeout: float = WAIT_TIMEOUT
    ) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.received(path_prefix)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{path_prefix}: {len(found)} requests after {timeout}s, expected {count}"
                )
            time.sleep(0.05)


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    authenticated_as: str | None

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


class _RecordingHandler:
    def __init__(
        self, sink: list[ReceivedMail], lock: threading.Lock, *, implicit_tls: bool
    ) -> None:
        self._sink = sink
        self._lock = lock
        self._implicit_tls = implicit_tls

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        login = getattr(session, "auth_data", None)
        mail = ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content),
            tls=self._implicit_tls or session.ssl is not None,
            authenticated_as=login.login.decode() if isinstance(login, LoginPassword) else None,
        )
        with self._lock:
            self._sink.append(mail)
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """``mode``: "plain", "starttls" (STARTTLS required before MAIL) or "tls" (implicit)."""

    def __init__(
        self,
        mode: str = "plain",
        *,
        certificate: tuple[Path, Path] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.mode = mode
        self.messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self.port = _free_port()
        server_context = None
        if mode in ("starttls", "tls"):
            assert certificate is not None, "TLS modes need a certificate"
            server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_context.load_cert_chain(*certificate)
        parameters: dict[str, Any] = {}
        if mode == "starttls":
            parameters.update(tls_context=server_context, require_starttls=True)
        if credentials is not None:
            user, password = credentials

            def authenticate(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = isinstance(data, LoginPassword) and (
                    data.login.decode(),
                    data.password.decode(),
                ) == (user, password)
                return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

            parameters.update(authenticator=authenticate, auth_require_tls=mode != "plain")
        self._controller = Controller(
            _RecordingHandler(self.messages, self._lock, implicit_tls=mode == "tls"),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=server_context if mode == "tls" else None,
            server_hostname="localhost",
            ready_timeout=10.0,
            **parameters,
        )

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, count: int, timeout: float = WAIT_TIMEOUT) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = list(self.messages)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} mails after {timeout}s, expected {count}")
            time.sleep(0.05)


@dataclass(frozen=True)
class Certificate:
    certificate: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certificate))
        return context


def self_signed_certificate(directory: Path) -> Certificate:
    """A certificate for localhost and 127.0.0.1, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    certificate_path = directory / "tls.crt"
    key_path = directory / "tls.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(certificate_path, key_path)


@contextlib.contextmanager
def temporary_certificate() -> Iterator[Certificate]:
    with tempfile.TemporaryDirectory(prefix="devserver-tls-") as directory:
        yield self_signed_certificate(Path(directory))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
