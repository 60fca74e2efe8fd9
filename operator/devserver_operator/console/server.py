"""`devserver-operator console`: serve the app with uvicorn, audit lines as plain JSON."""

from __future__ import annotations

import logging
import sys

import uvicorn

from .app import create_app
from .audit import AUDIT_LOGGER
from .settings import ConsoleSettings


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    audit = logging.getLogger(AUDIT_LOGGER)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))  # the line is JSON already
    audit.addHandler(handler)
    audit.propagate = False


def serve(settings: ConsoleSettings) -> None:
    configure_logging()
    app = create_app(settings)
    print(
        f"devserver console: http://{settings.host}:{settings.port}/", file=sys.stderr, flush=True
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
