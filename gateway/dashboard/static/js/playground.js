// The chat playground: a conversation with any model or alias, streamed from
// POST /v1/chat/completions, with its time to first token and tokens/s.

import { getJson, request } from "./api.js";
import { $, h, setText } from "./dom.js";
import { serverEvents } from "./sse.js";

export class Playground {
  constructor({ onError }) {
    this.onError = onError;
    this.select = $("#chat-model");
    this.prompt = $("#chat-prompt");
    this.temperature = $("#chat-temperature");
    this.log = $("#chat-log");
    this.stats = $("#chat-stats");
    this.send = $("#chat-send");
    this.stopButton = $("#chat-stop");
    this.messages = [];
    this.controller = null;
    $("#chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
    this.prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) this.ask();
    });
    this.stopButton.addEventListener("click", () => this.controller?.abort());
    $("#chat-clear").addEventListener("click", () => this.clearConversation());
  }

  // Models first, then aliases, as GET /v1/models lists them.
  async refreshModels() {
    const listing = await getJson("/v1/models");
    const names = listing.data.map((m) => (m.status === "alias" ? `${m.id} (alias)` : m.id));
    const current = [...this.select.options].map((o) => o.textContent);
    if (current.join("\n") === names.join("\n")) return;
    const chosen = this.select.value;
    this.select.replaceChildren(
      ...listing.data.map((m) =>
        h("option", { value: m.id }, m.status === "alias" ? `${m.id} (alias)` : m.id),
      ),
    );
    if (listing.data.some((m) => m.id === chosen)) this.select.value = chosen;
  }

  async ask() {
    const text = this.prompt.value.trim();
    if (!text || this.controller !== null) return;
    const model = this.select.value;
    const question = { role: "user", content: text };
    this.log.append(h("div", { class: "msg user" }, text));
    const bubble = h("div", { class: "msg assistant", dataset: { model } });
    this.log.append(bubble);
    this.prompt.value = "";
    const answer = await this.stream(model, [...this.messages, question], bubble);
    if (answer !== null) this.messages.push(question, { role: "assistant", content: answer });
  }

  // The answer's text, or null when it was stopped or failed (then it stays out of the
  // conversation, as in `lmx chat`).
  async stream(model, messages, bubble) {
    const controller = new AbortController();
    this.busy(controller);
    const timing = new Timing();
    const reasoning = h("span", { class: "reasoning" });
    const content = document.createTextNode("");
    bubble.append(reasoning, content);
    setText(this.stats, "waiting for the model…");
    try {
      const body = { model, messages, stream: true, stream_options: { include_usage: true } };
      if (this.temperature.value !== "") body.temperature = Number(this.temperature.value);
      const response = await request("/v1/chat/completions", {
        method: "POST",
        body,
        signal: controller.signal,
      });
      const answered = response.headers.get("x-lmx-model");
      for await (const event of serverEvents(response)) {
        if (event.comment?.startsWith("loading")) setText(this.stats, event.comment.replace(/ ([\d.]+)$/, " ($1 s)"));
        if (event.data === undefined || event.data === "[DONE]") continue;
        const chunk = JSON.parse(event.data);
        if (chunk.error) throw new Error(chunk.error.message ?? "the stream failed");
        timing.chunk(chunk, content, reasoning);
        setText(this.stats, timing.summary(answered));
        this.log.scrollTop = this.log.scrollHeight;
      }
      bubble.dataset.done = "true";
      setText(this.stats, timing.summary(answered, true));
      return content.data;
    } catch (error) {
      if (controller.signal.aborted) {
        bubble.classList.add("stopped");
        setText(this.stats, timing.summary(null, true));
      } else {
        bubble.append(h("span", { class: "error-text" }, `\n${error.message}`));
        setText(this.stats, "");
        if (error.status === 401) this.onError(error, "chat");
      }
      return null;
    } finally {
      this.busy(null);
    }
  }

  busy(controller) {
    this.controller = controller;
    this.send.disabled = controller !== null;
    this.stopButton.disabled = controller === null;
  }

  clearConversation() {
    this.controller?.abort();
    this.messages = [];
    this.log.replaceChildren();
    setText(this.stats, "");
  }
}

// Time to first token and decode speed, counted as the lmx command counts them:
// (tokens - 1) over the time from the first token to the last.
class Timing {
  constructor() {
    this.started = performance.now();
    this.first = null;
    this.last = null;
    this.chunks = 0;
    this.tokens = null; // from the usage chunk, when the server sends one
  }

  chunk(chunk, content, reasoning) {
    if (chunk.usage) this.tokens = chunk.usage.completion_tokens;
    const delta = chunk.choices?.[0]?.delta ?? {};
    const text = delta.content ?? "";
    const thought = delta.reasoning_content ?? delta.reasoning ?? "";
    if (!text && !thought) return;
    const now = performance.now();
    this.first ??= now;
    this.last = now;
    this.chunks += 1;
    if (thought) reasoning.append(thought);
    if (text) content.appendData(text);
  }

  summary(model, done = false) {
    if (this.first === null) return done ? "no tokens" : "waiting for the first token…";
    const tokens = this.tokens ?? this.chunks;
    const decode = (this.last - this.first) / 1000;
    const parts = [`${tokens} tokens`];
    if (tokens > 1 && decode > 0) parts.push(`${((tokens - 1) / decode).toFixed(1)} tok/s`);
    parts.push(`first token ${((this.first - this.started) / 1000).toFixed(2)} s`);
    if (done) parts.push(`total ${((performance.now() - this.started) / 1000).toFixed(2)} s`);
    if (model) parts.push(model);
    return parts.join(" · ");
  }
}
