// A lost stream comes back without a reload and without losing a pending edit. Started by
// tests/integration/test_console_reconnect.py, which restarts the API server while this
// page has a number typed into the Scale form of WORKLOAD_NAME, then changes the server's
// status: the page says "Reconnecting…" (an aria-live status), is live again, shows the
// change, still holds the typed number, and scales with it. Prints JSON lines.
import { env, launch, logIn, newContext, nextLine, closeInput, report } from "./harness.mjs";

const url = env("CONSOLE_URL");
const namespace = env("CONSOLE_NAMESPACE");
const workload = env("WORKLOAD_NAME");
const live = '[data-testid="live"]';

const browser = await launch();
try {
  const page = await (await newContext(browser)).newPage();
  // Every text the page ever shows with "marker-" in it, noted as it appears: a later
  // status write (the operator's, if one runs) may replace it before anyone looks.
  await page.addInitScript(() => {
    window.__markers = new Set();
    new MutationObserver(() => {
      for (const found of document.body?.innerText.match(/marker-[a-z0-9]+/g) || []) window.__markers.add(found);
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  await logIn(page, url, env("CONSOLE_TOKEN"));
  await page.evaluate(() => (window.__noReload = true));
  await page.goto(`${url}/#/mcpservers/${namespace}/${workload}`);
  await page.getByRole("heading", { name: `MCPServer ${namespace}/${workload}` }).waitFor();
  const replicas = page.getByLabel("Replicas (0 stops the server)");
  await replicas.fill("3");
  await page.locator(live, { hasText: "Live" }).waitFor();
  report("edit-typed", { ariaLive: await page.locator(live).getAttribute("aria-live") });

  await page.locator(live, { hasText: "Reconnecting" }).waitFor({ timeout: 60_000 });
  report("reconnecting", { role: await page.locator(live).getAttribute("role") });
  await page.locator(live, { hasText: /^Live$/ }).waitFor({ timeout: 120_000 });
  report("live-again");

  const marker = await nextLine();
  await page.waitForFunction((m) => window.__markers.has(m), marker, { timeout: 60_000 });
  report("change-shown", {
    marker,
    typed: await replicas.inputValue(),
    reloaded: !(await page.evaluate(() => window.__noReload === true)),
  });
  await page.getByRole("button", { name: "Scale" }).click();
  await page.waitForFunction(() => document.querySelector("pre")?.innerText.includes("replicas: 3"), null, { timeout: 30_000 });
  report("scaled", { reloaded: !(await page.evaluate(() => window.__noReload === true)) });
  report("done");
} catch (error) {
  report("failed", { error: String(error?.stack || error) });
  process.exitCode = 1;
} finally {
  closeInput();
  await browser.close();
}
