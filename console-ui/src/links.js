// Sidebar links (n8n, OpenHands, GitHub, GitLab, ...) from the console's settings, and the
// single sign-on button of the login page when an OIDC issuer is configured.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";

export function SidebarLinks() {
  const [links, setLinks] = useState([]);
  useEffect(() => {
    api("GET", "/links").then((body) => setLinks(body.items), () => setLinks([]));
  }, []);
  if (!links.length) return null;
  // External: a new tab that gets neither this page's window (noopener) nor its URL (noreferrer).
  return html`<nav aria-label="Links" class="links">
    <ul>
      ${links.map(
        (link) => html`<li><a href=${link.url} target="_blank" rel="noopener noreferrer">${link.title}</a></li>`,
      )}
    </ul>
  </nav>`;
}

export function SingleSignOn() {
  const [url, setUrl] = useState(null);
  useEffect(() => {
    api("GET", "/config").then((body) => setUrl(body.login.oidc), () => setUrl(null));
  }, []);
  if (!url) return null;
  return html`<p class="sso"><a class="button" href=${url}>Log in with single sign-on</a></p>
    <p class="hint">Or paste a Kubernetes bearer token:</p>`;
}
