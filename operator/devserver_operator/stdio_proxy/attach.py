"""The server container's stdin and stdout through the Kubernetes attach API.

A WebSocket to ``pods/<pod>/attach`` speaks the API server's channel protocol
(``v5.channel.k8s.io``, else ``v4.channel.k8s.io``): every binary frame starts with a
channel byte, 0 stdin, 1 stdout, 2 stderr, 3 error (a Status when the stream ends). The
container runs with ``stdin: true, stdinOnce: false, tty: false``: its stdin stays open
between attaches, and stdout and stderr arrive apart, so the server's log never mixes with
its protocol.

In-cluster only: the pod's ServiceAccount token (re-read at every connection: projected
tokens rotate) and CA. The token's Role allows ``create`` on ``pods/attach`` and ``delete``
on ``pods`` for the server's pod names and nothing else (docs/security.md).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import aiohttp

from devserver_operator.kube.kubeconfig import in_cluster

logger = logging.getLogger(__name__)

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, CLOSE = 0, 1, 2, 3, 255
MAX_STDERR_LINE = 2000


@dataclass(frozen=True)
class PodTarget:
    namespace: str
    pod: str
    container: str


class AttachChannel:
    """One attach WebSocket as a StdioChannel."""

    def __init__(
        self, session: aiohttp.ClientSession, socket: aiohttp.ClientWebSocketResponse
    ) -> None:
        self._session = session
        self._socket = socket
        self._stderr = bytearray()

    async def write(self, data: bytes) -> None:
        if self._socket.closed:
            raise ConnectionError("the attach connection is closed")
        try:
            await self._socket.send_bytes(bytes([STDIN]) + data)
        except (aiohttp.ClientError, RuntimeError) as error:
            raise ConnectionError(f"writing to the server's stdin failed: {error}") from error

    async def read(self) -> bytes:
        while True:
            message = await self._socket.receive()
            if message.type != aiohttp.WSMsgType.BINARY:
                if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING):
                    continue
                return b""  # CLOSE, CLOSED, ERROR: the container's process ended
            data: bytes = message.data
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == STDOUT:
                if payload:
                    return payload
            elif channel == STDERR:
                self._log_stderr(payload)
            elif channel == ERROR:
                if payload:
                    logger.warning("attach ended: %.500s", payload.decode(errors="replace"))
                return b""
            elif channel == CLOSE:
                return b""

    def _log_stderr(self, payload: bytes) -> None:
        # The server's log, line by line and bounded, into the proxy's log.
        self._stderr += payload
        *lines, rest = bytes(self._stderr).split(b"\n")
        self._stderr = bytearray(rest[-MAX_STDERR_LINE:])
        for line in lines:
            logger.info("server: %s", line[:MAX_STDERR_LINE].decode(errors="replace"))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._socket.close()
        await self._session.close()


class PodAttacher:
    """Opens attach connections to one pod's container and restarts that pod."""

    def __init__(self, target: PodTarget, *, timeout: float = 10.0) -> None:
        self.target = target
        self._timeout = timeout

    def _login(self) -> tuple[str, ssl.SSLContext, dict[str, str]]:
        credentials = in_cluster()
        context = ssl.create_default_context(cafile=credentials["ca_path"])
        return (
            credentials["server"],
            context,
            {"Authorization": f"Bearer {credentials['token']}"},
        )

    def _pod_path(self) -> str:
        target = self.target
        return f"/api/v1/namespaces/{quote(target.namespace)}/pods/{quote(target.pod)}"

    async def open(self) -> AttachChannel:
        server, context, headers = self._login()
        query = urlencode(
            {
                "container": self.target.container,
                "stdin": "true",
                "stdout": "true",
                "stderr": "true",
                "tty": "false",
            }
        )
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout)
        )
        try:
            socket = await session.ws_connect(
                f"{server}{self._pod_path()}/attach?{query}",
                protocols=PROTOCOLS,
                headers=headers,
                ssl=context,
                heartbeat=30.0,  # a dead API server connection is noticed within a minute
                max_msg_size=4 * 1024 * 1024,  # the kubelet sends stdout in small frames
            )
        except aiohttp.WSServerHandshakeError as error:
            await session.close()
            # 400: the container is not running (yet); 403: RBAC; 404: no such pod.
            raise ConnectionError(
                f"attach to {self.target.pod} refused: {error.status} {error.message}"
            ) from error
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            await session.close()
            raise ConnectionError(f"attach to {self.target.pod} failed: {error}") from error
        return AttachChannel(session, socket)

    async def restart(self) -> None:
        """Delete the pod; its StatefulSet starts a fresh one (with a fresh process)."""
        server, context, headers = self._login()
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout)) as session,
            session.delete(f"{server}{self._pod_path()}", headers=headers, ssl=context) as answer,
        ):
            if answer.status >= 400 and answer.status != 404:
                text = (await answer.text())[:300]
                raise ConnectionError(f"deleting pod {self.target.pod}: {answer.status} {text}")
        logger.warning("deleted pod %s so that a fresh server process starts", self.target.pod)
