import { html } from "htm/preact";

// Health is spelled out, never shown by colour alone.
export function Health({ value }) {
  return html`<span class=${"health health-" + (value || "Unknown").toLowerCase()}>${value || "Unknown"}</span>`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.status ? `${error.status}: ` : ""}${error.message}</p>`;
}
