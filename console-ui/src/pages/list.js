import { html } from "htm/preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, onLive } from "../api.js";
import { byPlural } from "../kinds.js";
import { ErrorNote, Health } from "../ui.js";

const PAGE = 200; // rows rendered at once: lists stay fast with thousands of objects

export function List({ plural }) {
  const info = byPlural[plural];
  const [rows, setRows] = useState(new Map());
  const [filter, setFilter] = useState("");
  const [limit, setLimit] = useState(PAGE);
  const [error, setError] = useState(null);

  async function load() {
    try {
      const { items } = await api("GET", "/" + plural);
      setRows(new Map(items.map((row) => [row.namespace + "/" + row.name, row])));
      setError(null);
    } catch (e) {
      setError(e);
    }
  }

  useEffect(() => {
    load();
    // Changes come one message at a time, hundreds at once when an operator resyncs: they
    // are applied once per frame (the latest per object), so a burst costs one render.
    let pending = new Map();
    let frame = 0;
    function flush() {
      frame = 0;
      const batch = pending;
      pending = new Map();
      setRows((current) => {
        const next = new Map(current);
        for (const [key, event] of batch) {
          if (event.type === "DELETED") next.delete(key);
          else next.set(key, event.summary);
        }
        return next;
      });
    }
    const stop = onLive((event) => {
      if (event.kind === "resync" && (!event.plural || event.plural === plural)) load();
      if (event.kind !== "change" || event.plural !== plural) return;
      pending.set(event.namespace + "/" + event.name, event);
      frame ||= requestAnimationFrame(flush);
    });
    return () => {
      stop();
      cancelAnimationFrame(frame);
    };
  }, [plural]);

  const shown = useMemo(() => {
    const needle = filter.toLowerCase();
    return [...rows.values()]
      .filter((row) => !needle || (row.namespace + "/" + row.name).toLowerCase().includes(needle))
      .sort((a, b) => (a.namespace + "/" + a.name).localeCompare(b.namespace + "/" + b.name));
  }, [rows, filter]);

  return html`
    <h1>${info.title}</h1>
    ${plural === "mcpservers" && html`<p><a class="button" href="#/new">New MCPServer</a></p>`}
    <${ErrorNote} error=${error} />
    <label for="filter">Filter by namespace/name</label>
    <input id="filter" type="search" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
    <table>
      <caption>${shown.length} ${info.title.toLowerCase()}</caption>
      <thead>
        <tr>
          <th scope="col">Namespace</th><th scope="col">Name</th><th scope="col">Health</th>
          <th scope="col">Reason</th>
          ${plural === "mcpservers" && html`<th scope="col">Tools</th><th scope="col">Replicas</th>`}
        </tr>
      </thead>
      <tbody>
        ${shown.slice(0, limit).map(
          (row) => html`<tr>
            <td>${row.namespace}</td>
            <td><a href=${`#/${plural}/${row.namespace}/${row.name}`}>${row.name}</a></td>
            <td><${Health} value=${row.health} /></td>
            <td title=${row.message || ""}>${row.reason || ""}</td>
            ${plural === "mcpservers" && html`<td>${row.toolCount ?? ""}</td><td>${row.replicas ?? ""}</td>`}
          </tr>`,
        )}
      </tbody>
    </table>
    ${shown.length > limit && html`<button type="button" onClick=${() => setLimit(limit + PAGE)}>Show more</button>`}
  `;
}
