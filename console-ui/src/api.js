// The console's REST API and its live stream, as the logged-in user.

function cookie(name) {
  const found = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || (typeof body?.detail === "string" ? body.detail : JSON.stringify(body?.detail ?? body)));
    this.status = status;
    this.body = body;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // Double-submit CSRF token: only this origin's script can read the cookie.
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("devserver_console_csrf");
  const response = await fetch("/api/v1" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

// One EventSource per page; components subscribe to changes, to "refetch" moments (a resync
// of a kind, or being live again after the stream or a watch was lost) and to the connection
// state. The page stays as it is while disconnected: nothing reloads, forms keep what was
// typed.
const listeners = new Set();
const emit = (event) => listeners.forEach((listener) => listener(event));
const RETRY_MAX_MS = 10_000;
let source = null;
let retry = null;
let attempts = 0;
let streamOpen = false;
let down = new Set(); // kinds whose shared watch the console has lost (it says so)
let live = true;

function announce() {
  const now = streamOpen && down.size === 0;
  if (now === live) return;
  live = now;
  emit({ kind: "connection", live });
  // Back after an outage: refetch whatever may have changed meanwhile.
  if (live) emit({ kind: "resync", plural: null });
}

function open() {
  source = new EventSource("/api/v1/stream");
  source.addEventListener("hello", (event) => {
    attempts = 0;
    streamOpen = true;
    down = new Set(JSON.parse(event.data).down || []);
    announce();
  });
  source.addEventListener("change", (event) => emit({ kind: "change", ...JSON.parse(event.data) }));
  source.addEventListener("resync", (event) => emit({ kind: "resync", plural: JSON.parse(event.data).plural }));
  source.addEventListener("watch", (event) => {
    const { plural, live: up } = JSON.parse(event.data);
    if (up) down.delete(plural);
    else down.add(plural);
    announce();
  });
  source.addEventListener("error", () => {
    streamOpen = false;
    announce();
    // EventSource retries a dropped stream by itself, but gives up for good when the answer
    // is an error (a 503 while the API server restarts): then open a new one, backing off.
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      const delay = Math.min(RETRY_MAX_MS, 1000 * 2 ** attempts++);
      retry = setTimeout(reopen, delay);
    }
  });
  source.addEventListener("logout", () => window.location.reload());
}

async function reopen() {
  retry = null;
  // A stream refused because the session ended (401) means: log in again.
  const session = await fetch("/api/v1/session", { credentials: "same-origin" }).catch(() => null);
  if (session?.status === 401) window.location.reload();
  else if (source) open();
}

export function connectLive() {
  if (!source) open();
}

export function onLive(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function disconnectLive() {
  clearTimeout(retry);
  retry = null;
  source?.close();
  source = null;
}
