import { html } from "htm/preact";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, connectLive, disconnectLive, onLive } from "./api.js";
import { KINDS, byPlural } from "./kinds.js";
import { Alerts } from "./pages/alerts.js";
import { SidebarLinks, SingleSignOn } from "./links.js";
import { Create } from "./pages/create.js";
import { Dashboard } from "./pages/dashboard.js";
import { Grants } from "./pages/grants.js";
import { Detail } from "./pages/detail.js";
import { List } from "./pages/list.js";
import { ErrorNote } from "./ui.js";
import "./style.css";

function useHash() {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const update = () => setHash(window.location.hash);
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return hash;
}

function Page({ hash }) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "new") return html`<${Create} />`;
  if (parts.length === 1 && parts[0] === "teamaccesses") return html`<${Grants} />`;
  if (parts.length === 1 && parts[0] === "alertrules") return html`<${Alerts} />`;
  if (parts.length === 1 && byPlural[parts[0]]) return html`<${List} plural=${parts[0]} />`;
  if (parts.length === 3 && byPlural[parts[0]]) {
    return html`<${Detail} plural=${parts[0]} namespace=${parts[1]} name=${parts[2]} />`;
  }
  return html`<${Dashboard} />`;
}

function Login({ onLogin }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  async function submit(event) {
    event.preventDefault();
    try {
      onLogin(await api("POST", "/session", { token }));
    } catch (e) {
      setError(e);
    }
  }
  return html`<main id="main" class="login">
    <h1>devserver console</h1>
    <${SingleSignOn} />
    <form onSubmit=${submit}>
      <label for="token">Kubernetes bearer token</label>
      <textarea id="token" rows="4" value=${token} onInput=${(e) => setToken(e.target.value)}
        autocomplete="off" spellcheck="false" required></textarea>
      <p class="hint">For example from <code>kubectl create token NAME</code>. What you see and may do is what Kubernetes RBAC allows this token.</p>
      <button type="submit">Log in</button>
      <${ErrorNote} error=${error} />
    </form>
  </main>`;
}

function Shell({ session, onLogout }) {
  const hash = useHash();
  const [live, setLive] = useState(true);
  useEffect(() => {
    connectLive();
    const stop = onLive((event) => event.kind === "connection" && setLive(event.live));
    return () => {
      stop();
      disconnectLive();
    };
  }, []);
  async function logout() {
    await api("DELETE", "/session").catch(() => null);
    onLogout();
  }
  return html`
    <a class="skip" href="#main">Skip to content</a>
    ${session.localAdmin &&
    html`<div class="banner" role="status">Local dev mode: you are the local admin (no login; everything runs with the console's own rights).</div>`}
    <header>
      <span class="brand">devserver console</span>
      <nav aria-label="Main">
        <ul>
          <li><a href="#/">Dashboard</a></li>
          ${KINDS.map((k) => html`<li><a href=${"#/" + k.plural}>${k.title}</a></li>`)}
          <li><a href="#/new">New MCPServer</a></li>
          <li><a href="/api/v1/docs">API</a></li>
        </ul>
      </nav>
      <${SidebarLinks} />
      <span class="user">${session.user.username}</span>
      <span class=${live ? "live" : "live live-down"} role="status" aria-live="polite" data-testid="live">${live ? "Live" : "Reconnecting… (what you typed is kept)"}</span>
      ${!session.localAdmin && html`<button type="button" onClick=${logout}>Log out</button>`}
    </header>
    <main id="main" tabindex="-1"><${Page} hash=${hash} /></main>
  `;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [error, setError] = useState(null);
  useEffect(() => {
    api("GET", "/session").then(setSession, (e) => (e.status === 401 ? setSession(null) : setError(e)));
  }, []);
  if (error) return html`<main id="main"><${ErrorNote} error=${error} /></main>`;
  if (session === undefined) return html`<main id="main"><p>Loading…</p></main>`;
  if (session === null) return html`<${Login} onLogin=${setSession} />`;
  return html`<${Shell} session=${session} onLogout=${() => setSession(null)} />`;
}

render(html`<${App} />`, document.getElementById("app"));
