import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import YAML from "yaml";
import { api, onLive } from "../api.js";
import { byPlural } from "../kinds.js";
import { ErrorNote, Health } from "../ui.js";
import { AlertRuleRules } from "./alerts.js";
import { Actions, TryTool } from "./tools.js";

function Conditions({ conditions }) {
  return html`<table>
    <caption>Conditions</caption>
    <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Message</th></tr></thead>
    <tbody>
      ${(conditions || []).map(
        (c) => html`<tr><td>${c.type}</td><td>${c.status}</td><td>${c.reason}</td><td>${c.message}</td></tr>`,
      )}
    </tbody>
  </table>`;
}

function Tools({ status }) {
  const tools = status?.tools || [];
  return html`<section aria-labelledby="tools-title">
    <h2 id="tools-title">Tools (${status?.toolCount ?? 0})</h2>
    <p>Protocol: ${status?.serverInfo?.protocolVersion || "not negotiated yet"}</p>
    <ul>${tools.map((t) => html`<li><strong>${t.name}</strong>${t.description ? ": " + t.description : ""}</li>`)}</ul>
  </section>`;
}

function Scale({ object, onDone }) {
  const [replicas, setReplicas] = useState(object.spec?.replicas ?? 1);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const { namespace, name } = object.metadata;
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    try {
      onDone(await api("POST", `/namespaces/${namespace}/mcpservers/${name}/scale`, { replicas: Number(replicas) }));
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }
  return html`<form onSubmit=${submit} aria-labelledby="scale-title">
    <h2 id="scale-title">Scale</h2>
    <label for="replicas">Replicas (0 stops the server)</label>
    <input id="replicas" type="number" min="0" max="1000" value=${replicas} onInput=${(e) => setReplicas(e.target.value)} />
    <button type="submit" disabled=${busy}>Scale</button>
    <${ErrorNote} error=${error} />
  </form>`;
}

function Children({ path }) {
  const [groups, setGroups] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api("GET", path + "/children").then((r) => setGroups(r.groups), setError);
  }, [path]);
  return html`<section aria-labelledby="children-title">
    <h2 id="children-title">Children</h2>
    <${ErrorNote} error=${error} />
    ${groups && !groups.some((g) => g.forbidden || g.items.length) && html`<p>None: the operator made nothing for this object.</p>`}
    <ul>
      ${(groups || []).flatMap((g) =>
        g.forbidden
          ? [html`<li>${g.kind}: not visible to you</li>`]
          : g.items.map((item) => html`<li>${g.kind} ${item.metadata.name}</li>`),
      )}
    </ul>
  </section>`;
}

function Events({ path, version }) {
  const [events, setEvents] = useState([]);
  useEffect(() => {
    api("GET", path + "/events").then((r) => setEvents(r.items), () => setEvents([]));
  }, [path, version]);
  return html`<table>
    <caption>Events</caption>
    <thead><tr><th scope="col">Type</th><th scope="col">Reason</th><th scope="col">Message</th><th scope="col">Last seen</th></tr></thead>
    <tbody>
      ${events.map((e) => html`<tr><td>${e.type}</td><td>${e.reason}</td><td>${e.message}</td><td>${e.lastTimestamp}</td></tr>`)}
    </tbody>
  </table>`;
}

export function Detail({ plural, namespace, name }) {
  const info = byPlural[plural];
  const path = `/namespaces/${namespace}/${plural}/${name}`;
  const [object, setObject] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    const load = () =>
      api("GET", path).then((found) => {
        setObject(found);
        setError(null);
      }, setError);
    load();
    return onLive((event) => {
      if (event.kind === "resync") load();
      if (event.kind === "change" && event.plural === plural && event.namespace === namespace && event.name === name) {
        if (event.type === "DELETED") setError({ message: "deleted" });
        else setObject(event.object);
      }
    });
  }, [path]);

  if (!object) return html`<h1>${info.kind} ${namespace}/${name}</h1><${ErrorNote} error=${error} />`;
  const ready = (object.status?.conditions || []).find((c) => c.type === "Ready");
  const health = (object.status?.conditions || []).some((c) => c.type === "Stalled" && c.status === "True")
    ? "Stalled"
    : ready?.status === "True" ? "Ready" : ready?.status === "False" ? "NotReady" : "Unknown";
  return html`
    <h1>${info.kind} ${namespace}/${name}</h1>
    <p>Health: <span data-testid="health"><${Health} value=${health} /></span></p>
    <${ErrorNote} error=${error} />
    <${Conditions} conditions=${object.status?.conditions} />
    ${(plural === "mcpservers" || plural === "workflowintegrations") && html`<${Actions} key=${path} plural=${plural} object=${object} />`}
    ${plural === "mcpservers" && html`<${Tools} status=${object.status} />`}
    ${plural === "mcpservers" && html`<${TryTool} key=${path} object=${object} />`}
    ${plural === "alertrules" && html`<${AlertRuleRules} namespace=${namespace} name=${name} version=${object.metadata.resourceVersion} />`}
    ${plural === "mcpservers" && !object.spec?.url && html`<${Scale} object=${object} onDone=${setObject} />`}
    <${Children} path=${path} />
    <${Events} path=${path} version=${object.metadata.resourceVersion} />
    <section aria-labelledby="yaml-title">
      <h2 id="yaml-title">YAML</h2>
      <pre tabindex="0">${YAML.stringify(object)}</pre>
    </section>
  `;
}
