// Building and filling elements. Text from the server only ever lands as text
// (textContent, never HTML): the page's CSP refuses HTML sinks besides.

export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

export const $ = (selector) => document.querySelector(selector);

export function setText(element, text) {
  const value = text ?? "";
  if (element.textContent !== value) element.textContent = value;
}

// A table body whose rows are kept by key and updated in place, so a button under the
// pointer is not replaced by a new one between mousedown and click.
export class KeyedRows {
  constructor(table, empty, makeRow) {
    this.body = table.tBodies[0];
    // Each column's label and class, copied onto its cells (the narrow layout uses both).
    this.columns = [...table.tHead.rows[0].cells].map((th) => ({
      label: th.textContent.trim(),
      className: th.className,
    }));
    this.empty = empty;
    this.makeRow = makeRow;
    this.rows = new Map();
  }

  update(items, keyOf, fill) {
    const keys = new Set();
    const ordered = items.map((item) => {
      const key = keyOf(item);
      keys.add(key);
      let row = this.rows.get(key);
      if (row === undefined) {
        row = this.makeRow(item, this.columns);
        this.rows.set(key, row);
      }
      fill(row, item);
      return row;
    });
    for (const [key, row] of this.rows) {
      if (!keys.has(key)) {
        row.remove();
        this.rows.delete(key);
      }
    }
    ordered.forEach((row, i) => {
      if (this.body.children[i] !== row) this.body.insertBefore(row, this.body.children[i] ?? null);
    });
    this.empty.hidden = items.length > 0;
  }

  clear() {
    this.update([], () => "", () => {});
  }
}

// A row with a cell per column, labelled from the header (the narrow layout shows labels).
export function labelledRow(columns, props = {}) {
  const row = h("tr", props);
  for (const { label, className } of columns) row.append(h("td", { "data-label": label, class: className }));
  return row;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function millis(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function count(n) {
  if (n === null || n === undefined) return "–";
  return n >= 10000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

export function clockTime(when) {
  if (when === null || when === undefined) return "–";
  const date = new Date(typeof when === "number" ? when * 1000 : when);
  return Number.isNaN(date.getTime()) ? String(when) : date.toLocaleTimeString([], { hour12: false });
}
