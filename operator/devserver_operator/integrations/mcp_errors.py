"""The error of the MCP probe, and the helpers that keep its messages safe to show.

Every failure of :func:`~devserver_operator.integrations.mcp_probe.probe_mcp_server` is an
:class:`McpProbeError` with a stable CamelCase ``reason`` (for a status condition) and a
one-sentence ``message`` a user can act on. Messages never contain header values (they may
carry tokens): URLs are shown without userinfo, query or fragment, text received from the
server is cut short and stripped of control characters, and as a last line of defence every
header value the probe sent is scrubbed from the final message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final, Literal, get_args

import httpx

__all__ = [
    "MCP_PROBE_REASONS",
    "McpProbeError",
    "McpProbeReason",
    "display_url",
    "redact",
    "snippet",
]

McpProbeReason = Literal[
    "InvalidURL",
    "InvalidHeaders",
    "ConnectionFailed",
    "Timeout",
    "HTTPError",
    "NotMCP",
    "InvalidJSONRPC",
    "ProtocolError",
    "UnsupportedProtocolVersion",
    "TooManyTools",
    "ResponseTooLarge",
]
"""Why a probe failed:

- ``InvalidURL``: the URL is not an absolute http(s) URL (a configuration error).
- ``InvalidHeaders``: a header name or value cannot be sent over HTTP (a configuration error).
- ``ConnectionFailed``: no TCP/TLS connection, or it broke before the answer arrived.
- ``Timeout``: the whole probe did not finish within its deadline.
- ``HTTPError``: the server answered with an HTTP error status (or an unusable redirect).
- ``NotMCP``: the answer is not MCP at all (an HTML page, plain text, a wrong content type).
- ``InvalidJSONRPC``: the answer claims to be JSON but is not a valid JSON-RPC 2.0 response.
- ``ProtocolError``: the server answered a JSON-RPC error, or broke an MCP rule.
- ``UnsupportedProtocolVersion``: the server negotiated a protocol version we do not speak.
- ``TooManyTools``: ``tools/list`` exceeded the bound on tools or pages.
- ``ResponseTooLarge``: a single answer exceeded the bound on its size.
"""

MCP_PROBE_REASONS: Final[tuple[McpProbeReason, ...]] = get_args(McpProbeReason)

REDACTED: Final = "[redacted]"
# Values shorter than this are not scrubbed: they would mangle ordinary words.
_MIN_REDACT_LEN: Final = 4
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r"\s+")


class McpProbeError(Exception):
    """An MCP probe failed: ``reason`` is one of :data:`MCP_PROBE_REASONS`.

    ``rpc_code`` and ``rpc_data`` hold the JSON-RPC error the server answered, if any
    (protocol negotiation reads them; they never appear in the message beyond the code).
    """

    def __init__(
        self,
        reason: McpProbeReason,
        message: str,
        *,
        rpc_code: int | None = None,
        rpc_data: Any = None,
    ) -> None:
        super().__init__(reason, message)
        self.reason: McpProbeReason = reason
        self.message = message
        self.rpc_code = rpc_code
        self.rpc_data = rpc_data

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"McpProbeError(reason={self.reason!r}, message={self.message!r})"


def display_url(url: httpx.URL) -> str:
    """The URL without userinfo, query and fragment (they may carry credentials)."""
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


def snippet(text: str | bytes, limit: int = 100, secrets: Iterable[str] = ()) -> str:
    """The first ``limit`` characters of text received from a server, safe to show.

    Secrets are scrubbed before the text is cut, so no prefix of a secret survives the cut.
    """
    if isinstance(text, bytes):
        text = text[: limit * 4 + 4096].decode("utf-8", errors="replace")
    else:
        text = text[: limit * 4 + 4096]
    text = redact(text, secrets)
    text = _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def secret_values(headers: Iterable[tuple[str, str]], url: httpx.URL) -> list[str]:
    """The values to scrub from messages: header values, URL password and query values."""
    values = [value.strip() for _, value in headers]
    # "Bearer abc..." is scrubbed whole and as the bare token.
    values += [value.split(" ", 1)[1].strip() for value in values if " " in value]
    if url.password:
        values.append(url.password)
    values += [value for _, value in url.params.multi_items()]
    unique = {value for value in values if len(value) >= _MIN_REDACT_LEN}
    return sorted(unique, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``[redacted]``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text
