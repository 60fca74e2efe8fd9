import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, onLive } from "../api.js";
import { ErrorNote, Health } from "../ui.js";

function left(expiresAt, now) {
  if (!expiresAt) return "never expires";
  let seconds = Math.max(0, Math.floor((Date.parse(expiresAt) - now) / 1000));
  if (seconds === 0) return "expired";
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
    if (seconds >= size || unit === "s") parts.push(Math.floor(seconds / size) + unit);
    seconds %= size;
  }
  return parts.join(" ");
}

function GrantForm({ onDone }) {
  const [form, setForm] = useState({ namespace: "default", name: "", kind: "User", member: "", role: "viewer", hours: "8" });
  const [error, setError] = useState(null);
  const set = (key) => (event) => setForm({ ...form, [key]: event.target.value });
  async function submit(event) {
    event.preventDefault();
    const expiresAt = new Date(Date.now() + Number(form.hours) * 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
    try {
      await api("POST", `/namespaces/${form.namespace}/teamaccesses`, {
        metadata: { name: form.name },
        spec: { role: form.role, members: [{ kind: form.kind, name: form.member }], expiresAt },
      });
      setError(null);
      onDone();
    } catch (e) {
      setError(e);
    }
  }
  return html`<form onSubmit=${submit} aria-labelledby="grant-title">
    <h2 id="grant-title">Grant time-limited access</h2>
    <label for="grant-namespace">Namespace</label>
    <input id="grant-namespace" value=${form.namespace} onInput=${set("namespace")} required />
    <label for="grant-name">Name of the grant</label>
    <input id="grant-name" value=${form.name} onInput=${set("name")} required />
    <label for="grant-kind">Member kind</label>
    <select id="grant-kind" value=${form.kind} onChange=${set("kind")}>
      <option>User</option><option>Group</option><option>ServiceAccount</option>
    </select>
    <label for="grant-member">Member name</label>
    <input id="grant-member" value=${form.member} onInput=${set("member")} required />
    <label for="grant-role">Role</label>
    <select id="grant-role" value=${form.role} onChange=${set("role")}>
      <option>viewer</option><option>operator</option><option>admin</option>
    </select>
    <label for="grant-hours">Expires after (hours)</label>
    <input id="grant-hours" type="number" min="0.1" step="0.1" value=${form.hours} onInput=${set("hours")} required />
    <div class="actions"><button type="submit">Grant</button></div>
    <${ErrorNote} error=${error} />
  </form>`;
}

export function Grants() {
  const [rows, setRows] = useState([]);
  const [now, setNow] = useState(Date.now());
  const [error, setError] = useState(null);
  const load = () => api("GET", "/views/grants").then((r) => setRows(r.items), setError);
  useEffect(() => {
    load();
    const tick = setInterval(() => setNow(Date.now()), 1000);
    let timer = null;
    const stop = onLive((event) => {
      if (event.kind === "resync" || (event.kind === "change" && event.plural === "teamaccesses")) {
        clearTimeout(timer);
        timer = setTimeout(load, 200);
      }
    });
    return () => {
      clearInterval(tick);
      stop();
    };
  }, []);
  return html`
    <h1>Team access</h1>
    <${ErrorNote} error=${error} />
    <table>
      <caption>${rows.length} grants</caption>
      <thead><tr>
        <th scope="col">Namespace</th><th scope="col">Name</th><th scope="col">Role</th>
        <th scope="col">Members</th><th scope="col">Time left</th><th scope="col">Health</th>
      </tr></thead>
      <tbody>
        ${rows.map(
          (row) => html`<tr>
            <td>${row.namespace}</td>
            <td><a href=${`#/teamaccesses/${row.namespace}/${row.name}`}>${row.name}</a></td>
            <td>${row.role}</td>
            <td>${row.members.map((m) => `${m.kind} ${m.name}`).join(", ")}</td>
            <td data-testid=${"left-" + row.name}>${left(row.expiresAt, now)}</td>
            <td><${Health} value=${row.health} /></td>
          </tr>`,
        )}
      </tbody>
    </table>
    <${GrantForm} onDone=${load} />
  `;
}
