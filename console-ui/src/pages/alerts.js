// Alert rules with their firing and pending alerts (GET /views/alerts), and the rules of one
// AlertRule on its detail page.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, onLive } from "../api.js";
import { ErrorNote, Health } from "../ui.js";

function RuleRows({ rules, namespace, owner }) {
  return rules.map(
    (r) => html`<tr>
      ${owner && html`<td><a href=${`#/alertrules/${namespace}/${owner}`}>${namespace}/${owner}</a></td>`}
      <td>${r.name}</td>
      <td data-testid=${`state-${r.name}`}>${r.state}</td>
      <td>${r.severity}</td>
      <td>${r.source}</td>
      <td>${r.activeSince || ""}</td>
      <td>${r.activeAlerts ?? ""}</td>
      <td>${r.lastError || r.summary || ""}</td>
    </tr>`,
  );
}

const HEAD = html`<th scope="col">Alert</th><th scope="col">State</th><th scope="col">Severity</th>
  <th scope="col">Condition</th><th scope="col">Active since</th><th scope="col">Active series</th>
  <th scope="col">Note</th>`;

export function Alerts() {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const load = () => api("GET", "/views/alerts").then((r) => (setRows(r.items), setError(null)), setError);
    load();
    return onLive((event) => {
      if ((event.kind === "change" && event.plural === "alertrules") || event.kind === "resync") load();
    });
  }, []);
  const all = rows || [];
  const active = all.flatMap((row) =>
    row.rules.filter((r) => r.state !== "inactive").map((r) => ({ ...r, owner: row.name, namespace: row.namespace })),
  );
  return html`
    <h1>Alert rules</h1>
    <${ErrorNote} error=${error} />
    <table>
      <caption>${active.length} firing or pending alerts</caption>
      <thead><tr><th scope="col">AlertRule</th>${HEAD}</tr></thead>
      <tbody>
        ${active.map((r) => html`<${RuleRows} rules=${[r]} namespace=${r.namespace} owner=${r.owner} />`)}
      </tbody>
    </table>
    <table>
      <caption>${all.length} alert rules</caption>
      <thead><tr><th scope="col">Namespace</th><th scope="col">Name</th><th scope="col">Health</th>
        <th scope="col">Firing</th><th scope="col">Pending</th><th scope="col">Rules</th></tr></thead>
      <tbody>
        ${all.map(
          (row) => html`<tr>
            <td>${row.namespace}</td>
            <td><a href=${`#/alertrules/${row.namespace}/${row.name}`}>${row.name}</a></td>
            <td><${Health} value=${row.health} /></td>
            <td>${row.firing}</td><td>${row.pending}</td><td>${row.rules.length}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  `;
}

// The rules of one AlertRule, from the same view (spec and status joined by the console).
export function AlertRuleRules({ namespace, name, version }) {
  const [row, setRow] = useState(null);
  useEffect(() => {
    api("GET", "/views/alerts").then(
      (r) => setRow(r.items.find((item) => item.namespace === namespace && item.name === name) || null),
      () => setRow(null),
    );
  }, [namespace, name, version]);
  if (!row) return null;
  return html`<table>
    <caption>Rules: ${row.firing} firing, ${row.pending} pending</caption>
    <thead><tr>${HEAD}</tr></thead>
    <tbody><${RuleRows} rules=${row.rules} namespace=${namespace} /></tbody>
  </table>`;
}
