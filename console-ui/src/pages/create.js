import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import YAML from "yaml";
import { api } from "../api.js";
import { ErrorNote } from "../ui.js";

// The field the API server names in a 422 ("spec.url: Invalid value ..."), to show the
// message next to what it is about.
function fieldOf(message) {
  const found = /\b((?:spec|metadata)(?:\.[A-Za-z0-9_\[\]]+)*)/.exec(message || "");
  return found ? found[1] : null;
}

export function Create() {
  const [templates, setTemplates] = useState([]);
  const [chosen, setChosen] = useState("");
  const [namespace, setNamespace] = useState("default");
  const [text, setText] = useState("");
  const [preview, setPreview] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    api("GET", "/templates").then((r) => setTemplates(r.items), setError);
  }, []);

  function choose(name) {
    setChosen(name);
    const template = templates.find((t) => t.name === name);
    if (!template) return;
    const manifest = structuredClone(template.manifest);
    delete manifest.metadata.namespace;
    setText(YAML.stringify(manifest));
    setPreview(null);
  }

  function manifest() {
    const parsed = YAML.parse(text) || {};
    parsed.metadata = { ...(parsed.metadata || {}), namespace };
    return parsed;
  }

  async function showPreview() {
    try {
      setPreview(await api("POST", "/preview", manifest()));
      setError(null);
    } catch (e) {
      setError(e);
    }
  }

  async function create(event) {
    event.preventDefault();
    try {
      const created = await api("POST", `/namespaces/${namespace}/mcpservers`, manifest());
      window.location.hash = `#/mcpservers/${namespace}/${created.metadata.name}`;
    } catch (e) {
      setError(e);
    }
  }

  const field = error && fieldOf(error.message);
  return html`
    <h1>New MCPServer</h1>
    <form onSubmit=${create}>
      <label for="template">Template</label>
      <select id="template" value=${chosen} onChange=${(e) => choose(e.target.value)}>
        <option value="">Choose a template…</option>
        ${templates.map((t) => html`<option value=${t.name}>${t.name}</option>`)}
      </select>
      <p class="hint">${templates.find((t) => t.name === chosen)?.description || ""}</p>
      <label for="namespace">Namespace</label>
      <input id="namespace" value=${namespace} onInput=${(e) => setNamespace(e.target.value)} required />
      <label for="manifest">Manifest (YAML)</label>
      <textarea id="manifest" rows="18" value=${text} onInput=${(e) => setText(e.target.value)}
        aria-describedby=${error ? "manifest-error" : undefined} aria-invalid=${error ? "true" : "false"}></textarea>
      ${error && html`<div id="manifest-error">${field && html`<p class="field">Field: <code>${field}</code></p>`}<${ErrorNote} error=${error} /></div>`}
      <div class="actions">
        <button type="button" onClick=${showPreview}>Preview children</button>
        <button type="submit">Create</button>
      </div>
    </form>
    ${preview && html`<section aria-labelledby="preview-title">
      <h2 id="preview-title">Children the operator would create</h2>
      ${preview.note && html`<p>${preview.note}</p>`}
      <ul>${preview.children.map((c) => html`<li>${c.kind} ${c.metadata.name}</li>`)}</ul>
    </section>`}
  `;
}
