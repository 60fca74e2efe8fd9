"""``devserver-operator stdio-proxy``: serve one attached stdio server over streamable HTTP."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence

from aiohttp import web

from .attach import PodAttacher, PodTarget
from .channel import StdioChannel, SubprocessChannel
from .http import ProxyApp, SessionLimits
from .upstream import Limits, Upstream

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--pod", help="attach to this pod's container (in-cluster)")
    target.add_argument(
        "--command",
        nargs=argparse.REMAINDER,
        help="start this local command instead (everything after --command)",
    )
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", ""),
        help="namespace of --pod (default: $POD_NAMESPACE)",
    )
    parser.add_argument("--container", default="server", help="container of --pod")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port")
    parser.add_argument("--path", default="/mcp", help="HTTP path of the MCP endpoint")
    parser.add_argument("--request-timeout", type=float, default=Limits.request_timeout)
    parser.add_argument("--max-message-bytes", type=int, default=Limits.max_message_bytes)
    parser.add_argument("--max-pending", type=int, default=Limits.max_pending)
    parser.add_argument("--max-sessions", type=int, default=SessionLimits.max_sessions)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    limits = Limits(
        request_timeout=args.request_timeout,
        max_message_bytes=args.max_message_bytes,
        max_pending=args.max_pending,
    )
    if args.pod:
        if not args.namespace:
            logger.error("--pod needs --namespace (or $POD_NAMESPACE)")
            return 2
        attacher = PodAttacher(PodTarget(args.namespace, args.pod, args.container))

        async def open_pod() -> StdioChannel:
            return await attacher.open()

        upstream = Upstream(open_pod, limits=limits, reset=attacher.restart)
    else:
        command: Sequence[str] = args.command or []
        if not command:
            logger.error("--command needs a command")
            return 2

        async def start() -> StdioChannel:
            return await SubprocessChannel.start(command)

        upstream = Upstream(start, limits=limits)
    app = ProxyApp(upstream, path=args.path, limits=SessionLimits(max_sessions=args.max_sessions))
    asyncio.run(_serve(app, args.port))
    return 0


async def _serve(app: ProxyApp, port: int) -> None:
    runner = web.AppRunner(app.application(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host=None, port=port).start()
    upstream = asyncio.create_task(app.upstream.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logger.info("serving MCP on port %d at %s", port, app.path)
    await stop.wait()
    upstream.cancel()
    await runner.cleanup()
