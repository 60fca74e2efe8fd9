// The console in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): log in, create an MCPServer from a template and watch it become Ready
// without a reload, call one of its tools, scale a workload server, see a firing alert,
// run axe-core on every page, take screenshots.
// Started by tests/integration/test_console_browser.py, which prepares the cluster and reads
// the JSON lines this prints; exits non-zero on the first failed step.
import { readFileSync, mkdirSync } from "node:fs";
import { env, launch, newContext, report } from "./harness.mjs";

const url = env("CONSOLE_URL");
const token = env("CONSOLE_TOKEN");
const namespace = env("CONSOLE_NAMESPACE");
const mcpUrl = env("MCP_URL");
const shots = env("SCREENSHOT_DIR");
const workload = env("WORKLOAD_NAME");
const axeSource = readFileSync(new URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
mkdirSync(shots, { recursive: true });

const browser = await launch();
const context = await newContext(browser);
const page = await context.newPage();
const cspViolations = [];
page.on("console", (message) => {
  if (message.type() === "error" && /Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
});

async function audit(name) {
  // Evaluated through the DevTools protocol, so the page's strict CSP stays on.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  report("axe", { page: name, violations: result });
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

try {
  await page.goto(url + "/");
  await page.getByLabel("Kubernetes bearer token").waitFor();
  await audit("login");

  await page.getByLabel("Kubernetes bearer token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  await page.waitForFunction(() => !document.body.innerText.includes("…"));
  report("logged-in");
  await page.evaluate(() => (window.__noReload = true));
  await audit("dashboard");

  await page.getByRole("link", { name: "New MCPServer" }).first().click();
  await page.getByRole("heading", { name: "New MCPServer" }).waitFor();
  await page.getByLabel("Template").selectOption("remote");
  await page.getByLabel("Namespace").fill(namespace);
  const manifest = await page.getByLabel("Manifest (YAML)").inputValue();
  await page
    .getByLabel("Manifest (YAML)")
    .fill(manifest.replace("name: remote", "name: from-browser").replace("https://mcp.example.com/mcp", mcpUrl));
  await page.getByRole("button", { name: "Preview children" }).click();
  await page.getByRole("heading", { name: "Children the operator would create" }).waitFor();
  await audit("create");

  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: `MCPServer ${namespace}/from-browser` }).waitFor();
  const created = Date.now();
  await page.waitForFunction(() => document.querySelector("[data-testid=health]")?.innerText === "Ready", null, {
    timeout: 60_000,
  });
  report("ready-live", {
    seconds: (Date.now() - created) / 1000,
    reloaded: !(await page.evaluate(() => window.__noReload === true)),
  });
  await page.getByRole("heading", { name: /Tools \(3\)/ }).waitFor();
  await audit("detail");

  // Try a tool: the admin calls echo on the server it just created and sees the answer.
  await page.getByLabel("Tool", { exact: true }).selectOption("echo");
  await page.getByLabel("Arguments (JSON object)").fill('{"text": "hello from the browser"}');
  await page.getByRole("button", { name: "Call tool" }).click();
  const toolResult = page.getByTestId("tool-result");
  await toolResult.waitFor({ timeout: 30_000 });
  report("tool-called", { result: await toolResult.innerText() });
  await page.getByRole("button", { name: "Verify now" }).click();
  await page.getByText(/^Requested at /).waitFor();
  report("verify-requested");
  await audit("tool");

  await page.goto(`${url}/#/mcpservers/${namespace}/${workload}`);
  await page.getByLabel("Replicas (0 stops the server)").fill("2");
  await page.getByRole("button", { name: "Scale" }).click();
  await page.waitForFunction(() => document.querySelector("pre")?.innerText.includes("replicas: 2"));
  report("scaled", { replicas: 2 });
  await audit("scale");

  await page.goto(`${url}/#/teamaccesses`);
  await page.getByRole("heading", { name: "Grant time-limited access" }).waitFor();
  await page.getByLabel("Namespace").fill(namespace);
  await page.getByLabel("Name of the grant").fill("contractor");
  await page.getByLabel("Member name").fill("bob@example.com");
  await page.getByLabel("Role").selectOption("viewer");
  await page.getByLabel("Expires after (hours)").fill("2");
  await page.getByRole("button", { name: "Grant" }).click();
  const countdown = page.getByTestId("left-contractor");
  await countdown.waitFor({ timeout: 15_000 });
  const first = await countdown.innerText();
  await page.waitForFunction((before) => document.querySelector("[data-testid=left-contractor]").innerText !== before, first);
  report("granted", { first, later: await countdown.innerText() });
  await audit("grants");

  await page.goto(`${url}/#/mcpservers`);
  await page.getByRole("link", { name: "from-browser" }).waitFor();
  await audit("list");

  await page.goto(`${url}/#/alertrules`);
  await page.getByRole("heading", { name: "Alert rules" }).waitFor();
  await page.waitForFunction(() => document.querySelector("[data-testid=state-WorkloadDown]")?.innerText === "firing", null, {
    timeout: 60_000,
  });
  report("alerts", { firing: await page.getByTestId("state-WorkloadDown").first().innerText() });
  await audit("alerts");
  await page.getByRole("link", { name: "servers", exact: true }).click();
  await page.getByText("Rules: 1 firing, 0 pending").waitFor();
  report("alert-detail");
  await audit("alert-detail");

  await page.goto(`${url}/#/new`);
  await page.getByLabel("Namespace").fill(namespace);
  await page
    .getByLabel("Manifest (YAML)")
    .fill(`apiVersion: devserver.ecosphere.network/v1alpha1\nkind: MCPServer\nmetadata:\n  name: broken\nspec:\n  image: example.com/x:1\n  url: ${mcpUrl}\n`);
  await page.getByRole("button", { name: "Create" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  report("rejected", { message: await alert.innerText(), field: await page.locator(".field code").innerText().catch(() => "") });
  await audit("create-rejected");

  report("csp", { violations: cspViolations });
  report("done");
} catch (error) {
  report("failed", { error: String(error?.stack || error) });
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
