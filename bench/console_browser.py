"""The console in Debian's Chromium with 1,000 MCPServers: first render of the list, a status
change from the API server to the page, and the console's RSS with 20 browser sessions.

    PYTHONPATH=operator:. .venv/bin/python -m bench.console_browser [--objects 1000]

The cluster and the console process are bench/console_api.py's (N MCPServers with a Ready
status; `devserver-operator console` as its own process). The browser part is
console-ui/e2e/bench.mjs (playwright-core, as the browser tests), run through
tests/support/console_browser.py. People are ServiceAccounts holding devserver-viewer, one
per browser session, each logged in with a real token. Measured:

- first render of the MCP server list: from navigation start (a cold load: bundle, session,
  list, render) or from the hash change (inside the app) to the frame after the table shows
  its rows;
- a status patch on the API server (time.time() before the request) to the frame after the
  row's Reason cell shows it (Date.now() in the page; same machine, same clock), n=100;
- the console's RSS with 20 browser sessions open on the list (20 contexts, 20 people).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx
from tests.support.console_browser import BrowserScript, ensure_browser_tools

from bench.common import http_client, load, machine, memory_mib, summary
from bench.console_api import (
    NAMESPACE,
    console_with_objects,
    status_of,
    viewer_token,
    wait_until_listed,
)
from devserver_operator.api import API_VERSION
from devserver_operator.localcluster import read_kubeconfig_credentials

SESSIONS = 20
LATENCY_SAMPLES = 100


async def tokens(kubeconfig: Path, url: str, objects: int) -> list[str]:
    async with http_client(kubeconfig) as admin:
        found = [await viewer_token(admin, f"viewer-{i:02d}") for i in range(SESSIONS)]
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {found[0]}"}, timeout=30
    ) as console:
        print(f"console lists {await wait_until_listed(console, objects)} MCPServers")
    return found


def latencies(kubeconfig: Path, script: BrowserScript) -> list[float]:
    """Status patch sent -> the page's frame showing it, one change at a time."""
    credentials = read_kubeconfig_credentials(kubeconfig)
    base = f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/mcpservers"
    found: list[float] = []
    with httpx.Client(
        base_url=credentials.server_url,
        verify=credentials.ssl_context,
        headers=credentials.headers(),
        timeout=30,
    ) as admin:
        for index in range(LATENCY_SAMPLES):
            marker = f"Bench{index}"
            status = status_of(index)
            status["conditions"][0]["reason"] = marker
            sent = time.time()
            admin.patch(
                f"{base}/srv-{index:04d}/status",
                json={"status": status},
                headers={"Content-Type": "application/merge-patch+json"},
            ).raise_for_status()
            while (step := script.wait_for("shown", timeout=10))["marker"] != marker:
                pass
            found.append(step["at"] / 1000 - sent)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10, help="page loads per render figure")
    args = parser.parse_args()
    print(machine())
    print(load())
    ensure_browser_tools()
    with console_with_objects(args.objects) as (kubeconfig, url, pid):
        people = asyncio.run(tokens(kubeconfig, url, args.objects))
        environment = {
            "CONSOLE_URL": url,
            "CONSOLE_TOKENS": ",".join(people),
            "OBJECTS": str(args.objects),
            "SAMPLES": str(args.samples),
        }
        with BrowserScript("bench.mjs", environment) as script:
            rendered = script.wait_for("first-render", timeout=600)
            print(f"list rows rendered: {rendered['rows']}")
            print(summary("first render, cold page load", [ms / 1000 for ms in rendered["cold"]]))
            print(summary("first render, inside the app", [ms / 1000 for ms in rendered["inApp"]]))
            script.wait_for("list-open", timeout=60)
            print(summary("status patch -> shown in the browser", latencies(kubeconfig, script)))
            print(load())
            script.send("go")
            opened = script.wait_for("sessions-open", timeout=600)
            time.sleep(3)
            rss, peak = memory_mib(pid)
            print(f"console RSS with {args.objects} objects and {opened['sessions']} browser "
                  f"sessions: {rss:.1f} MiB (peak {peak:.1f} MiB)")  # fmt: skip
            script.send("stop")
            by_step = script.finish(timeout=60)
            assert "done" in by_step, script.transcript()
        print(load())


if __name__ == "__main__":
    main()
