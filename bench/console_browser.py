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
- a burst: every object's status changed at once, then one more change, timed to the page
  as above (the page must keep up with a backlog of a thousand changes);
- the console's RSS with 20 browser sessions open on the list (20 contexts, 20 people).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
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


BASE = f"/apis/{API_VERSION}/namespaces/{NAMESPACE}/mcpservers"


def patch_reason(admin: httpx.Client, index: int, reason: str) -> float:
    """Sets srv-<index>'s Ready reason (the list's Reason column); when it was sent."""
    status = status_of(index)
    status["conditions"][0]["reason"] = reason
    sent = time.time()
    admin.patch(
        f"{BASE}/srv-{index:04d}/status",
        json={"status": status},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    return sent


def shown_after(script: BrowserScript, marker: str, sent: float, timeout: float) -> float:
    while (step := script.wait_for("shown", timeout=timeout))["marker"] != marker:
        pass
    return float(step["at"]) / 1000 - sent


def latencies(admin: httpx.Client, script: BrowserScript) -> list[float]:
    """Status patch sent -> the page's frame showing it, one change at a time."""
    found: list[float] = []
    for index in range(LATENCY_SAMPLES):
        sent = patch_reason(admin, index, f"Bench{index}")
        found.append(shown_after(script, f"Bench{index}", sent, timeout=10))
    return found


def burst(admin: httpx.Client, script: BrowserScript, objects: int) -> tuple[float, float]:
    """Every object's status changed at once (16 at a time, as an operator resyncing), then
    one more change: (seconds the burst took to send, its last change -> shown)."""
    started = time.time()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: patch_reason(admin, i, f"BenchBurst{i}"), range(objects)))
    sent = patch_reason(admin, 0, "BenchLast")
    return sent - started, shown_after(script, "BenchLast", sent, timeout=120)


def admin_client(kubeconfig: Path) -> httpx.Client:
    credentials = read_kubeconfig_credentials(kubeconfig)
    return httpx.Client(
        base_url=credentials.server_url,
        verify=credentials.ssl_context,
        headers=credentials.headers(),
        timeout=30,
        limits=httpx.Limits(max_connections=16),
    )


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
            with admin_client(kubeconfig) as admin:
                print(summary("status patch -> shown in the browser", latencies(admin, script)))
                took, last = burst(admin, script, args.objects)
            print(f"{args.objects} status changes sent in {took:.1f}s; the one after them "
                  f"shown {last * 1000:.0f} ms after it was sent")  # fmt: skip
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
