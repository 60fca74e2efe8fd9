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

// One EventSource per page; components subscribe to changes and to "refetch" moments
// (a resync of a kind, or a reconnect after the stream was lost).
const listeners = new Set();
let source = null;

export function connectLive() {
  if (source) return;
  source = new EventSource("/api/v1/stream");
  let lost = false;
  source.addEventListener("change", (event) => {
    const data = JSON.parse(event.data);
    listeners.forEach((listener) => listener({ kind: "change", ...data }));
  });
  source.addEventListener("resync", (event) => {
    const data = JSON.parse(event.data);
    listeners.forEach((listener) => listener({ kind: "resync", plural: data.plural }));
  });
  source.addEventListener("error", () => {
    lost = true;
    listeners.forEach((listener) => listener({ kind: "connection", live: false }));
  });
  source.addEventListener("open", () => {
    listeners.forEach((listener) => listener({ kind: "connection", live: true }));
    if (lost) listeners.forEach((listener) => listener({ kind: "resync", plural: null }));
    lost = false;
  });
  source.addEventListener("logout", () => window.location.reload());
}

export function onLive(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function disconnectLive() {
  source?.close();
  source = null;
}
