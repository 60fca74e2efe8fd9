import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, onLive } from "../api.js";
import { KINDS } from "../kinds.js";
import { ErrorNote } from "../ui.js";

const STATES = ["Ready", "Reconciling", "NotReady", "Stalled", "Unknown"];

export function Dashboard() {
  const [counts, setCounts] = useState({});
  const [error, setError] = useState(null);

  async function load() {
    try {
      const lists = await Promise.all(KINDS.map((k) => api("GET", "/" + k.plural)));
      const next = {};
      KINDS.forEach((k, i) => {
        next[k.plural] = Object.fromEntries(STATES.map((s) => [s, 0]));
        lists[i].items.forEach((row) => (next[k.plural][row.health] += 1));
      });
      setCounts(next);
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    load();
    let timer = null;
    // Changes arrive in bursts; one refetch per burst is enough for counts.
    return onLive(() => {
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    });
  }, []);

  return html`
    <h1>Dashboard</h1>
    <${ErrorNote} error=${error} />
    <table>
      <caption>Health of every object you may see, by kind</caption>
      <thead><tr><th scope="col">Kind</th>${STATES.map((s) => html`<th scope="col">${s}</th>`)}</tr></thead>
      <tbody>
        ${KINDS.map(
          (k) => html`<tr>
            <th scope="row"><a href=${"#/" + k.plural}>${k.title}</a></th>
            ${STATES.map((s) => html`<td>${counts[k.plural]?.[s] ?? "…"}</td>`)}
          </tr>`,
        )}
      </tbody>
    </table>
  `;
}
