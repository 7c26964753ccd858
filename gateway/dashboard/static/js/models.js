// The models table (from GET /admin/status) with its load/unload buttons, and the memory bar.

import { postJson } from "./api.js";
import { $, KeyedRows, bytes, count, duration, h, labelledRow, setText } from "./dom.js";

const LOADED = new Set(["ready", "draining"]);
const BUSY = new Set(["loading", "draining", "stopping"]);

export class ModelsView {
  constructor({ onError, onChange }) {
    this.onError = onError;
    this.onChange = onChange; // after an action: poll again now
    this.pending = new Map(); // model id -> "load" | "unload", while the call runs
    this.rows = new KeyedRows($("#models"), $("#models-empty"), (model, columns) =>
      this.makeRow(model, columns),
    );
  }

  makeRow(model, columns) {
    const row = labelledRow(columns, { dataset: { model: model.id } });
    const name = row.cells[0];
    name.append(h("span", { class: "model-id" }, model.id), h("span", { class: "sub" }));
    row.cells[1].append(h("span", { class: "state" }), h("span", { class: "error-text" }));
    row.cells[4].append(h("span"), h("span", { class: "meter" }, h("span")));
    const action = h("button", { type: "button", class: "action" });
    action.addEventListener("click", () => this.act(row.dataset.model, action.dataset.action));
    row.cells[10].append(action);
    return row;
  }

  render(models, now) {
    this.rows.update(
      models,
      (m) => m.id,
      (row, m) => this.fill(row, m, now),
    );
  }

  fill(row, m, now) {
    const [name, state, backend, port, rss, inFlight, queued, idle, ttl, cache] = row.cells;
    const facts = [m.aliases?.length ? `alias ${m.aliases.join(", ")}` : null, m.source];
    setText(name.lastChild, facts.filter(Boolean).join(" · "));
    const badge = state.firstChild;
    badge.className = `state state-${m.status}`;
    setText(badge, m.status);
    setText(state.lastChild, m.status === "failed" ? m.error : "");
    setText(backend, m.backend);
    setText(port, m.port ?? "–");
    fillMemory(rss, m);
    setText(inFlight, String(m.in_flight ?? 0));
    setText(queued, String(m.queued ?? 0));
    const idleFor = idleSeconds(m, now);
    setText(idle, m.in_flight > 0 ? "busy" : duration(idleFor));
    setText(ttl, ttlLeft(m, idleFor));
    setText(cache, cacheText(m.prompt_cache));
    this.fillAction(row.cells[10].firstChild, m);
  }

  fillAction(button, m) {
    const pending = this.pending.get(m.id);
    const load = !LOADED.has(m.status);
    button.dataset.action = load ? "load" : "unload";
    setText(button, pending === "load" ? "Loading…" : pending === "unload" ? "Unloading…" : load ? "Load" : "Unload");
    button.disabled = pending !== undefined || BUSY.has(m.status);
  }

  async act(modelId, action) {
    this.pending.set(modelId, action);
    this.onChange();
    try {
      await postJson(`/admin/models/${action}`, { model: modelId });
    } catch (error) {
      this.onError(error, `${action} ${modelId}`);
    } finally {
      this.pending.delete(modelId);
      this.onChange();
    }
  }

  clear() {
    this.rows.clear();
  }
}

function fillMemory(cell, m) {
  const [text, meter] = cell.children;
  setText(text, `${bytes(m.rss_bytes)} / ${bytes(m.estimate_bytes)}`);
  const share = m.rss_bytes && m.estimate_bytes ? m.rss_bytes / m.estimate_bytes : 0;
  meter.firstChild.style.width = `${Math.min(100, share * 100)}%`;
  meter.classList.toggle("over", share > 1);
}

function idleSeconds(m, now) {
  if (!LOADED.has(m.status) || !m.last_used) return null;
  return now - m.last_used;
}

function ttlLeft(m, idleFor) {
  if (!LOADED.has(m.status)) return "–";
  if (!m.ttl_s) return "never";
  return m.in_flight > 0 ? duration(m.ttl_s) : duration(m.ttl_s - (idleFor ?? 0));
}

function cacheText(cache) {
  if (!cache) return "–";
  const asked = cache.hits + cache.misses;
  return `${cache.hits}/${asked} hits · ${count(cache.tokens_reused)} tok reused`;
}

export class MemoryView {
  constructor() {
    this.bar = $("#memory-bar");
    this.legend = $("#memory-legend");
  }

  render(memory) {
    const total = memory.total_bytes;
    const workers = memory.workers.reduce((sum, w) => sum + (w.rss_bytes ?? 0), 0);
    const others = Math.max(0, memory.used_bytes - workers);
    const [otherSeg, workerSeg, threshold] = this.bar.children;
    otherSeg.style.width = percent(others, total);
    workerSeg.style.width = percent(workers, total);
    threshold.style.left = percent(memory.threshold_bytes, total);
    this.bar.setAttribute(
      "aria-label",
      `memory: ${bytes(memory.used_bytes)} used of ${bytes(total)}, threshold ${bytes(memory.threshold_bytes)}`,
    );
    this.legend.replaceChildren(
      `used ${bytes(memory.used_bytes)} of ${bytes(total)}: `,
      h("span", { class: "swatch workers" }),
      `this server's workers ${bytes(workers)}, `,
      h("span", { class: "swatch other" }),
      `everything else ${bytes(others)} · `,
      h("span", { class: "swatch threshold" }),
      `load threshold ${bytes(memory.threshold_bytes)} (${memory.threshold_percent}%)`,
    );
  }

  clear() {
    for (const seg of this.bar.children) seg.style.width = "";
    setText(this.legend, "");
  }
}

function percent(part, total) {
  return `${total ? Math.min(100, (100 * part) / total) : 0}%`;
}
