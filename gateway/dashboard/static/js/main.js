// The dashboard's loop: poll the gateway at most once a second (not while the tab is
// hidden or a key is being asked for), render what came back, and route refusals:
// a 401 asks for the key, anything else shows as a notice.

import { ApiError, getJson } from "./api.js";
import { $, setText } from "./dom.js";
import { KeyDialog, forgetKeys, getKey } from "./keys.js";
import { LogsView } from "./logs.js";
import { MemoryView, ModelsView } from "./models.js";
import { Playground } from "./playground.js";
import { InFlightView, RecentView } from "./requests.js";

const POLL_MS = 1000;
const NOTICE_MS = 15000;

class Dashboard {
  constructor() {
    const actions = { onError: (error, what) => this.failed(error, what), onChange: () => this.pollSoon() };
    this.models = new ModelsView(actions);
    this.memory = new MemoryView();
    this.inFlight = new InFlightView(actions);
    this.recent = new RecentView();
    this.logs = new LogsView(actions);
    this.playground = new Playground(actions);
    this.keys = new KeyDialog(() => this.keyGiven());
    this.connection = $("#connection");
    this.timer = null;
    this.polling = null;
    this.modelIds = "";
    this.noticeTimer = null;
    $("#key-button").addEventListener("click", () => this.keys.ask("admin", false));
    $("#forget-keys").addEventListener("click", () => this.forget());
    document.addEventListener("visibilitychange", () => this.pollSoon());
  }

  start() {
    this.poll();
    this.playground.refreshModels().catch((error) => this.failed(error, "models"));
  }

  pollSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), 0);
  }

  async poll() {
    clearTimeout(this.timer);
    if (this.polling !== null) return this.polling; // one poll at a time
    if (document.hidden) {
      this.show("paused (tab hidden)", "");
      return null;
    }
    if (this.keys.open) return null;
    this.polling = this.pollOnce().finally(() => {
      this.polling = null;
      this.timer = setTimeout(() => this.poll(), POLL_MS);
    });
    return this.polling;
  }

  async pollOnce() {
    const started = Date.now();
    try {
      const [status, inFlight, recent] = await Promise.all([
        getJson("/admin/status"),
        getJson("/admin/requests"),
        this.recent.fetch(),
      ]);
      this.render(status, inFlight.data, recent);
      this.show(`live · ${Date.now() - started} ms`, "live");
    } catch (error) {
      this.failed(error, "status");
    }
  }

  render(status, inFlight, recent) {
    const now = Date.now() / 1000;
    this.models.render(status.models, now);
    this.memory.render(status.memory);
    this.inFlight.render(inFlight);
    if (recent !== null) this.recent.render(recent);
    const ids = status.models.map((m) => m.id);
    this.logs.setPrograms(ids);
    if (ids.join("\n") !== this.modelIds) {
      this.modelIds = ids.join("\n");
      this.playground.refreshModels().catch((error) => this.failed(error, "models"));
    }
    if (!document.documentElement.dataset.rendered) {
      // When the page first showed live data, for the load-time test.
      document.documentElement.dataset.rendered = String(Math.round(performance.now()));
    }
  }

  failed(error, what) {
    if (error instanceof ApiError && error.status === 401) {
      if (error.keyKind === "admin") {
        this.clear(); // without the admin key, show nothing the admin routes guard
        this.show("key needed", "down");
      }
      this.keys.ask(error.keyKind, getKey(error.keyKind) !== null);
    } else if (error instanceof ApiError) {
      this.notice(`${what}: ${error.message}`);
    } else {
      this.show("gateway unreachable", "down");
    }
  }

  // An action's refusal stays up long enough to read, then goes.
  notice(text) {
    setText($("#notice"), text);
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => setText($("#notice"), ""), NOTICE_MS);
  }

  keyGiven() {
    setText($("#notice"), "");
    this.pollSoon();
    this.playground.refreshModels().catch((error) => this.failed(error, "models"));
  }

  forget() {
    forgetKeys();
    this.clear();
    this.pollSoon();
  }

  clear() {
    this.models.clear();
    this.memory.clear();
    this.inFlight.clear();
    this.recent.clear();
    this.logs.clear();
    this.modelIds = "";
  }

  show(text, kind) {
    setText(this.connection, text);
    this.connection.className = `pill ${kind}`;
  }
}

new Dashboard().start();
