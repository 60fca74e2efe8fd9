// What every browser script here shares: Debian's Chromium driven by playwright-core, a
// JSON-lines report on stdout (read by the Python side: tests/support/console_browser.py),
// logging in with a bearer token, and lines sent back on stdin by the Python side.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

export function env(name) {
  if (!process.env[name]) throw new Error(`${name} is not set`);
  return process.env[name];
}

export const report = (step, data = {}) => console.log(JSON.stringify({ step, ...data }));

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

export const newContext = (browser) => browser.newContext({ viewport: { width: 1280, height: 860 } });

// Log in on the login page and wait for the dashboard.
export async function logIn(page, url, token) {
  await page.goto(url + "/");
  await page.getByLabel("Kubernetes bearer token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
}

// The Python side steers a script by writing lines to its stdin ("go", "stop", ...). Read
// only by scripts that ask, so the others never hold stdin open.
let lines = null;
const waiting = [];
const received = [];

export function nextLine() {
  if (!lines) {
    lines = createInterface({ input: process.stdin });
    lines.on("line", (line) => (waiting.length ? waiting.shift()(line) : received.push(line)));
    lines.on("close", () => waiting.splice(0).forEach((resolve) => resolve(null)));
  }
  if (received.length) return Promise.resolve(received.shift());
  return new Promise((resolve) => waiting.push(resolve));
}

export function closeInput() {
  lines?.close();
}
