// Requests in flight (GET /admin/requests, with a cancel button each) and the recent ones
// (GET /admin/requests/recent, newest first, with their errors).

import { ApiError, getJson, request } from "./api.js";
import { $, KeyedRows, clockTime, duration, h, labelledRow, millis, setText } from "./dom.js";

export class InFlightView {
  constructor({ onError, onChange }) {
    this.onError = onError;
    this.onChange = onChange;
    this.rows = new KeyedRows($("#in-flight"), $("#in-flight-empty"), (r, columns) => this.makeRow(r, columns));
  }

  makeRow(item, columns) {
    const row = labelledRow(columns, { dataset: { request: item.id } });
    const cancel = h("button", { type: "button", class: "cancel" }, "Cancel");
    cancel.addEventListener("click", () => this.cancel(item.id, cancel));
    row.cells[6].append(cancel);
    return row;
  }

  render(items) {
    this.rows.update(
      items,
      (r) => r.id,
      (row, r) => {
        const [model, route, state, age, tokens, client] = row.cells;
        setText(model, r.model);
        setText(route, r.stream ? `${r.route} (stream)` : r.route);
        setText(state, r.state);
        setText(age, duration(r.age_s));
        setText(tokens, String(r.tokens));
        setText(client, r.client ?? "–");
      },
    );
  }

  async cancel(id, button) {
    button.disabled = true;
    try {
      await request(`/admin/requests/${encodeURIComponent(id)}`, { method: "DELETE" });
    } catch (error) {
      // 404: it ended before the cancel reached it; nothing to report.
      if (!(error instanceof ApiError && error.status === 404)) this.onError(error, `cancel ${id}`);
    } finally {
      this.onChange();
    }
  }

  clear() {
    this.rows.clear();
  }
}

const RECENT_LIMIT = 25;

export class RecentView {
  constructor() {
    this.table = $("#recent");
    this.rows = new KeyedRows(this.table, $("#recent-empty"), (r, columns) => labelledRow(columns));
    this.available = true;
  }

  // The history endpoint is newer than some gateways: there a 404 means "not kept here"
  // (405 where the path meets DELETE /admin/requests/{id}).
  async fetch() {
    if (!this.available) return null;
    try {
      return (await getJson(`/admin/requests/recent?limit=${RECENT_LIMIT}`)).data;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        this.available = false;
        this.table.hidden = true;
        setText($("#recent-empty"), "History not available: this gateway keeps no recent requests.");
        $("#recent-empty").hidden = false;
        return null;
      }
      throw error;
    }
  }

  render(items) {
    this.rows.update(
      items,
      (r) => r.id,
      (row, r) => {
        const [time, model, route, status, ttft, speed, took, error] = row.cells;
        setText(time, clockTime(r.started));
        const requested = r.requested && r.requested !== r.model ? ` (${r.requested})` : "";
        setText(model, `${r.model ?? "–"}${requested}`);
        setText(route, r.stream ? `${r.route} (stream)` : r.route);
        setText(status, String(r.status));
        status.className = r.status >= 400 || r.error ? "status-bad" : "status-ok";
        setText(ttft, millis(r.ttft_ms));
        setText(speed, r.tokens_per_s == null ? "–" : r.tokens_per_s.toFixed(1));
        setText(took, millis(r.duration_ms));
        setText(error, typeof r.error === "object" && r.error !== null ? r.error.message : r.error);
        error.className = "error-text";
      },
    );
  }

  clear() {
    this.rows.clear();
  }
}
