"""The operator process never loads the console's web stack (FastAPI, uvicorn)."""

from __future__ import annotations

import subprocess
import sys


def test_starting_the_operator_loads_no_fastapi() -> None:
    probe = (
        "import sys; import devserver_operator.cli, devserver_operator.runner, "
        "devserver_operator.kinds.mcpserver; "
        "loaded = [m for m in ('fastapi', 'uvicorn', 'starlette', 'devserver_operator.console') "
        "if m in sys.modules]; print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
