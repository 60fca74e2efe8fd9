// The console's browser benchmark (bench/console_browser.py starts it and reads its lines):
//  1. time to the first render of the MCP server list, at 1,000 MCPServers: a cold page load
//     (bundle, session, list, render) and a navigation inside the app;
//  2. a status change shown in the list: the page notes when a row's reason cell shows
//     "Bench<N>" (MutationObserver, then the next animation frame) and reports Date.now(),
//     which the Python side compares with the moment it sent the status patch;
//  3. 20 browser sessions (contexts, each logged in as its own person) on the list, held
//     open until the Python side, having read the console's RSS, says "stop".
import { env, launch, logIn, newContext, nextLine, closeInput, report } from "./harness.mjs";

const url = env("CONSOLE_URL");
const tokens = env("CONSOLE_TOKENS").split(",");
const objects = Number(env("OBJECTS"));
const samples = Number(process.env.SAMPLES || "10");

// Installed before any script of the page runs (through the DevTools protocol: the page's
// CSP stays strict). Notes when the list first shows all its rows' count, and when a
// reason cell first shows each "Bench<N>".
function watchList(expected) {
  window.__listShown = null;
  const seen = new Set();
  const check = () => {
    const caption = document.querySelector("caption");
    if (window.__listShown === null && caption?.textContent.startsWith(`${expected} `) && document.querySelector("tbody tr")) {
      requestAnimationFrame(() => (window.__listShown ??= performance.now()));
    }
    for (const cell of document.querySelectorAll("tbody td:nth-child(4)")) {
      const marker = cell.textContent;
      if (marker.startsWith("Bench") && !seen.has(marker)) {
        seen.add(marker);
        requestAnimationFrame(() => window.__shown?.(marker, Date.now()));
      }
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
}

// Generous: on a 2-core machine under a load of 30, the 20th session's list took over 60 s.
const listed = (page) => page.waitForFunction(() => window.__listShown !== null, null, { timeout: 180_000 });

const browser = await launch();
try {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.addInitScript(watchList, objects);
  await page.exposeFunction("__shown", (marker, at) => report("shown", { marker, at }));
  await logIn(page, url, tokens[0]);

  const cold = [];
  for (let i = 0; i < samples; i++) {
    await page.goto(`${url}/#/mcpservers`);
    await page.reload();
    await listed(page);
    cold.push(await page.evaluate(() => window.__listShown));
  }
  const inApp = [];
  for (let i = 0; i < samples; i++) {
    await page.goto(`${url}/#/`);
    await page.reload();
    await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    await page.evaluate(() => (window.__listShown = null));
    const started = await page.evaluate(() => {
      const now = performance.now();
      window.location.hash = "#/mcpservers";
      return now;
    });
    await listed(page);
    inApp.push((await page.evaluate(() => window.__listShown)) - started);
  }
  report("first-render", { cold, inApp, rows: await page.locator("tbody tr").count() });

  // The list is open with every row; the Python side patches statuses now.
  report("list-open");
  await nextLine();

  const sessions = [];
  for (const token of tokens.slice(1)) {
    const other = await (await newContext(browser)).newPage();
    await other.addInitScript(watchList, objects);
    await logIn(other, url, token);
    await other.goto(`${url}/#/mcpservers`);
    await listed(other).catch(async (error) => {
      const text = await other.locator("body").innerText().catch(() => "");
      throw new Error(`session ${sessions.length + 1}: ${error.message}\n${text.slice(0, 1500)}`);
    });
    sessions.push(other);
  }
  report("sessions-open", { sessions: sessions.length + 1 });
  await nextLine();
  report("done");
} catch (error) {
  report("failed", { error: String(error?.stack || error) });
  process.exitCode = 1;
} finally {
  closeInput();
  await browser.close();
}
