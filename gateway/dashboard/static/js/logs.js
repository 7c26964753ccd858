// The log tail of one program, followed live through GET /admin/logs/stream.

import { request } from "./api.js";
import { $, h, setText } from "./dom.js";
import { serverEvents } from "./sse.js";

const TAIL_LINES = 200;
const KEEP_LINES = 1000;
const RETRY_MS = 3000;

export class LogsView {
  constructor({ onError }) {
    this.onError = onError;
    this.select = $("#log-program");
    this.output = $("#log-lines");
    this.state = $("#log-state");
    this.controller = null;
    this.retry = null;
    this.select.addEventListener("change", () => this.follow());
  }

  // The programs to choose from: the gateway, memwatch, and each model's worker.
  setPrograms(modelIds) {
    const programs = ["gateway", "memwatch", ...modelIds.map((id) => `worker-${id}`)];
    const current = [...this.select.options].map((o) => o.value);
    if (current.join("\n") === programs.join("\n")) return;
    const chosen = this.select.value || "gateway";
    this.select.replaceChildren(...programs.map((p) => h("option", { value: p }, p)));
    this.select.value = programs.includes(chosen) ? chosen : "gateway";
    const idle = this.controller === null && this.retry === null;
    if (this.select.value !== chosen || idle) this.follow();
  }

  follow() {
    this.stop();
    const program = this.select.value;
    if (!program) return;
    const controller = new AbortController();
    this.controller = controller;
    this.output.replaceChildren();
    this.read(program, controller).catch((error) => {
      if (controller.signal.aborted) return;
      this.controller = null;
      if (error.status === 401) {
        setText(this.state, "");
        this.onError(error, "logs");
        return;
      }
      setText(this.state, `stopped: ${error.message}; retrying`);
      this.retry = setTimeout(() => {
        this.retry = null;
        this.follow();
      }, RETRY_MS);
    });
  }

  async read(program, controller) {
    setText(this.state, "connecting…");
    const path = `/admin/logs/stream?program=${encodeURIComponent(program)}&lines=${TAIL_LINES}`;
    const response = await request(path, { signal: controller.signal });
    setText(this.state, "following");
    for await (const event of serverEvents(response)) {
      if (event.data !== undefined) this.append(JSON.parse(event.data).line);
    }
    throw new Error("the gateway ended the stream");
  }

  append(line) {
    const box = this.output;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    box.append(`${line}\n`);
    while (box.childNodes.length > KEEP_LINES) box.firstChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  stop() {
    clearTimeout(this.retry);
    this.retry = null;
    this.controller?.abort();
    this.controller = null;
  }

  clear() {
    this.stop();
    this.output.replaceChildren();
    setText(this.state, "");
  }
}
