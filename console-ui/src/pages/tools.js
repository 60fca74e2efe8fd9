// "Try a tool" and the "Verify now" / "Sync now" actions of the detail pages.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { ErrorNote } from "../ui.js";

// Calls one tool of a Ready MCPServer. Only people allowed `create` on mcpservers/tools
// (TeamAccess admin) get past the API; others see its 403 here.
export function TryTool({ object }) {
  const tools = object.status?.tools || [];
  const { namespace, name } = object.metadata;
  const [picked, setPicked] = useState("");
  // Tools may arrive after the page (a server turning Ready live): default to the first.
  const tool = picked || tools[0]?.name || "";
  const [args, setArgs] = useState("{}");
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [mayCall, setMayCall] = useState(null);
  useEffect(() => {
    api("GET", `/namespaces/${namespace}/mcpservers/${name}/tools`).then((r) => setMayCall(r.mayCall), () => setMayCall(false));
  }, [namespace, name]);
  const ready = (object.status?.conditions || []).some((c) => c.type === "Ready" && c.status === "True");
  const chosen = tools.find((t) => t.name === tool);
  if (mayCall === false) {
    return html`<section aria-labelledby="try-title">
      <h2 id="try-title">Try a tool</h2>
      <p>Calling tools here needs permission to create <code>mcpservers/tools</code> in ${namespace} (TeamAccess role admin).</p>
    </section>`;
  }

  async function submit(event) {
    event.preventDefault();
    let parsed;
    try {
      parsed = JSON.parse(args || "{}");
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("a JSON object");
    } catch (e) {
      setError({ message: `Arguments must be a JSON object (${e.message})` });
      return;
    }
    setBusy(true);
    setResult(null);
    try {
      setResult(await api("POST", `/namespaces/${namespace}/mcpservers/${name}/tools/call`, { tool, arguments: parsed }));
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return html`<form onSubmit=${submit} aria-labelledby="try-title">
    <h2 id="try-title">Try a tool</h2>
    ${!ready && html`<p>The server is not Ready: tools can be called once it is.</p>`}
    <label for="tool">Tool</label>
    <select id="tool" value=${tool} onChange=${(e) => setPicked(e.target.value)} required>
      ${tools.map((t) => html`<option value=${t.name}>${t.name}</option>`)}
    </select>
    ${chosen?.description && html`<p class="hint">${chosen.description}</p>`}
    <label for="tool-args">Arguments (JSON object)</label>
    <textarea id="tool-args" rows="4" spellcheck="false" value=${args} onInput=${(e) => setArgs(e.target.value)}></textarea>
    <button type="submit" disabled=${busy || !tool}>${busy ? "Calling…" : "Call tool"}</button>
    <${ErrorNote} error=${error} />
    ${result && html`<${ToolResult} result=${result} />`}
  </form>`;
}

function ToolResult({ result }) {
  return html`<section aria-labelledby="result-title" data-testid="tool-result">
    <h3 id="result-title">${result.isError ? "The tool reported an error" : "Result"} of ${result.tool} (${result.durationSeconds} s)</h3>
    ${(result.content || []).map((item) =>
      item.type === "text"
        ? html`<pre tabindex="0">${item.text}</pre>`
        : html`<pre tabindex="0">${JSON.stringify(item, null, 2)}</pre>`,
    )}
    ${result.structuredContent != null &&
    html`<p>Structured content</p><pre tabindex="0">${JSON.stringify(result.structuredContent, null, 2)}</pre>`}
  </section>`;
}

// "Verify now" (MCPServer) and "Sync now" (WorkflowIntegration): the operator acts on the
// request at once; the outcome arrives with the object's next status over the live stream.
export function Actions({ plural, object }) {
  const [note, setNote] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const action = plural === "mcpservers" ? { path: "verify", label: "Verify now" } : { path: "sync", label: "Sync now" };
  const { namespace, name } = object.metadata;
  async function run() {
    setBusy(true);
    try {
      const answer = await api("POST", `/namespaces/${namespace}/${plural}/${name}/${action.path}`);
      setNote(`Requested at ${answer.requestedAt}; the status below follows live.`);
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return html`<section aria-labelledby="actions-title">
    <h2 id="actions-title">Actions</h2>
    <button type="button" onClick=${run} disabled=${busy}>${action.label}</button>
    ${note && html`<p role="status">${note}</p>`}
    <${ErrorNote} error=${error} />
  </section>`;
}
